import CLibSSH2
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

// Uploads over SFTP, written to a temporary name, verified by SHA-256 and renamed.
extension SessionCore {
    /// Uploads over SFTP to a temporary name beside `remotePath`, then `mv -f` into place and compares
    /// the remote SHA-256 with the local one.
    func upload(
        localPath: String, remotePath: String, mode: Int32, cancel: CancelFlag,
        progress: (@Sendable (UploadProgress) -> Void)?
    ) throws -> String {
        try ensureUsable()
        guard let handle = FileHandle(forReadingAtPath: localPath) else {
            throw SSHError.localFileUnreadable(path: localPath, reason: "no such file or not readable")
        }
        defer { try? handle.close() }
        let total = (try? FileManager.default.attributesOfItem(atPath: localPath)[.size] as? NSNumber)?.int64Value ?? 0
        let directory = (remotePath as NSString).deletingLastPathComponent
        let name = (remotePath as NSString).lastPathComponent
        let temporary = (directory.isEmpty ? "" : directory + "/") + ".\(name).drover-\(UUID().uuidString.prefix(8))"
        let uploadFailure = { (reason: String) in
            SSHError.uploadFailed(host: self.host, port: self.port, path: remotePath, reason: reason)
        }
        var hasher = SHA256Hasher()
        do {
            guard
                let sftp = try retryPointer(
                    cancel: cancel, deadline: protocolDeadline(), { libssh2_sftp_init(session) })
            else {
                throw uploadFailure(
                    "the server offers no SFTP subsystem (\(lastError(libssh2_session_last_errno(session))))")
            }
            defer { _ = try? retry(cancel: nil, deadline: protocolDeadline()) { libssh2_sftp_shutdown(sftp) } }
            let file = try retryPointer(cancel: cancel, deadline: protocolDeadline()) {
                temporary.withCString { drover_sftp_open_for_write(sftp, $0, UInt32(temporary.utf8.count), Int(mode)) }
            }
            guard let file else {
                throw uploadFailure("cannot create \(temporary): \(sftpError(sftp))")
            }
            var sent: Int64 = 0
            progress?(UploadProgress(bytesSent: 0, totalBytes: total))
            do {
                while let chunk = try handle.read(upToCount: 256 * 1024), !chunk.isEmpty {
                    hasher.update(chunk)
                    var offset = 0
                    let bytes = [UInt8](chunk)
                    while offset < bytes.count {
                        let written = try retry(cancel: cancel, deadline: protocolDeadline()) {
                            bytes[offset...].withUnsafeBufferPointer { pointer in
                                pointer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: pointer.count) {
                                    Int32(clamping: libssh2_sftp_write(file, $0, pointer.count))
                                }
                            }
                        }
                        guard written > 0 else { throw uploadFailure("write failed: \(sftpError(sftp))") }
                        offset += Int(written)
                        sent += Int64(written)
                        progress?(UploadProgress(bytesSent: sent, totalBytes: total))
                    }
                }
                _ = try retry(cancel: cancel, deadline: protocolDeadline()) { libssh2_sftp_fsync(file) }
            } catch {
                _ = try? retry(cancel: nil, deadline: protocolDeadline()) { libssh2_sftp_close_handle(file) }
                throw error
            }
            let closed = try retry(cancel: cancel, deadline: protocolDeadline()) { libssh2_sftp_close_handle(file) }
            guard closed == 0 else { throw uploadFailure("closing the file failed: \(sftpError(sftp))") }
        } catch WaitInterruption.cancelled {
            removeQuietly(temporary)
            throw CancellationError()
        } catch is WaitInterruption {
            removeQuietly(temporary)
            throw uploadFailure("the server stopped answering")
        } catch {
            removeQuietly(temporary)
            throw error
        }
        // libssh2 1.10's SFTP rename cannot replace an existing file; mv -f on one filesystem is atomic.
        let move = try execute(
            "mv -f -- \(ShellQuote.quote(temporary)) \(ShellQuote.quote(remotePath))",
            timeout: .seconds(60), cancel: cancel, onOutput: nil)
        guard move.succeeded else {
            removeQuietly(temporary)
            throw uploadFailure(
                "mv into place failed: \(move.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let expected = Digest.hex(hasher.finish())
        let actual = try remoteSHA256(remotePath, cancel: cancel)
        guard actual == expected else {
            throw SSHError.checksumMismatch(
                host: host, port: port, path: remotePath, expected: expected, actual: actual)
        }
        return expected
    }

    /// The SHA-256 of a remote file (`sha256sum`, else `shasum -a 256`, else `openssl`).
    func remoteSHA256(_ path: String, cancel: CancelFlag) throws -> String {
        let quoted = ShellQuote.quote(path)
        let result = try execute(
            "sha256sum -- \(quoted) 2>/dev/null || shasum -a 256 -- \(quoted) 2>/dev/null || openssl dgst -sha256 -r \(quoted)",
            timeout: .seconds(600), cancel: cancel, onOutput: nil)
        let digest = result.stdoutText.split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init) ?? ""
        guard result.succeeded, digest.count == 64 else {
            throw SSHError.uploadFailed(
                host: host, port: port, path: path,
                reason: "cannot compute its SHA-256 on the host: \(result.stderrText)")
        }
        return digest.lowercased()
    }

    func removeQuietly(_ path: String) {
        guard brokenReason == nil else { return }
        _ = try? execute(
            "rm -f -- \(ShellQuote.quote(path))", timeout: .seconds(30),
            cancel: CancelFlag(wake: wake), onOutput: nil)
    }

    func sftpError(_ sftp: OpaquePointer) -> String {
        let rc = libssh2_session_last_errno(session)
        if rc == LIBSSH2_ERROR_SFTP_PROTOCOL {
            let status = libssh2_sftp_last_error(sftp)
            let names: [UInt: String] = [
                2: "no such file or directory", 3: "permission denied", 4: "failure",
                11: "file already exists", 14: "no space left on device",
            ]
            return "SFTP status \(status) (\(names[status] ?? "error"))"
        }
        return lastError(rc)
    }
}
