import DroverInventory
import DroverSSH
import Foundation

/// Copies `package.upload` from the workstation to `package.path` on every backend before a run.
public enum PackageUpload {
    /// What happened on one node.
    public struct NodeOutcome: Sendable, Equatable {
        public enum Result: Sendable, Equatable {
            case alreadyPresent
            /// Uploaded and its SHA-256 verified on the node.
            case uploaded(digest: String)
            case failed(String)
        }
        public var node: String
        public var result: Result

        public var ok: Bool {
            if case .failed = result { return false }
            return true
        }

        /// One line for a person: `package PATH on NODE: ...`.
        public func line(path: String) -> String {
            switch result {
            case .alreadyPresent: return "package \(path) on \(node): already holds an identical file"
            case .uploaded(let digest):
                return "package \(path) on \(node): uploaded and verified (SHA-256 \(digest.prefix(12))…)"
            case .failed(let why): return "package \(path) on \(node): FAILED: \(why)"
            }
        }
    }

    /// Why nothing was uploaded.
    public enum UploadError: LocalizedError {
        case unreadable(path: String, detail: String)
        case digestMismatch(path: String, digest: String, expected: String)

        public var errorDescription: String? {
            switch self {
            case .unreadable(_, let detail): return "package.upload: \(detail)"
            case .digestMismatch(let path, let digest, let expected):
                return
                    "package.upload \(path) has SHA-256 \(digest), but package.sha256 says \(expected); nothing was uploaded"
            }
        }
    }

    /// Uploads where needed and returns each connected backend's outcome, in inventory order (empty when the
    /// inventory sets no `package.upload`); throws, having uploaded nothing, when the local file cannot be
    /// read or does not match `package.sha256`. `progress` is called from the upload threads.
    public static func run(
        _ connection: any NodeTransport, progress: @escaping @Sendable (String, UploadProgress) -> Void = { _, _ in }
    ) async throws -> [NodeOutcome] {
        guard let package = connection.inventory.package, let local = package.upload else { return [] }
        let path = UserAccount.expandingTilde(local)
        let digest: String
        do {
            digest = try await BlockingWork.run { try Digest.sha256Hex(ofFile: path) }
        } catch {
            throw UploadError.unreadable(path: local, detail: error.localizedDescription)
        }
        if let expected = package.sha256, expected != digest {
            throw UploadError.digestMismatch(path: local, digest: digest, expected: expected)
        }
        let results = await withTaskGroup(of: (String, NodeOutcome.Result).self) { group in
            for node in connection.connectedNames {
                group.addTask {
                    do {
                        let existing = try await connection.run(
                            node, "sha256sum -- \(ShellQuote.quote(package.path)) 2>/dev/null", timeout: .seconds(600))
                        if existing.succeeded, existing.stdoutText.hasPrefix(digest) { return (node, .alreadyPresent) }
                        _ = try await connection.upload(node, file: path, to: package.path) { progress(node, $0) }
                        return (node, .uploaded(digest: digest))
                    } catch {
                        return (node, .failed(error.localizedDescription))
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        return connection.connectedNames.map { NodeOutcome(node: $0, result: results[$0] ?? .failed("not attempted")) }
    }
}
