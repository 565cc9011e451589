import CLibSSH2
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

// Commands: one channel each, output streamed line by line, exit status or signal.
extension SessionCore {
    /// Runs one command on a fresh channel; see ``SSHClient/run(_:timeout:onOutput:)``.
    func execute(
        _ command: String, timeout: Duration?, cancel: CancelFlag,
        onOutput: (@Sendable (OutputLine) -> Void)?
    ) throws -> CommandResult {
        try ensureUsable()
        let started = ContinuousClock.now
        let commandDeadline = timeout.map { started + $0 }
        let channel = try openChannel(cancel: cancel, deadline: commandDeadline, command: command)
        var stdout = BoundedOutput()
        var stderr = BoundedOutput()
        var splitters = (stdout: LineSplitter(stream: .stdout), stderr: LineSplitter(stream: .stderr))
        do {
            let rc = try retry(cancel: cancel, deadline: earliest(commandDeadline, protocolDeadline())) {
                command.withCString { drover_channel_exec(channel, $0, UInt32(command.utf8.count)) }
            }
            guard rc == 0 else { throw failure("cannot start the command", rc) }
            // Nothing is written to stdin: close it, so commands that read it do not wait forever.
            _ = try? retry(cancel: cancel, deadline: protocolDeadline()) { libssh2_channel_send_eof(channel) }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                var progressed = false
                for stream in [Int32(0), Int32(SSH_EXTENDED_DATA_STDERR)] {
                    while true {
                        let count = buffer.withUnsafeMutableBufferPointer { pointer in
                            pointer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: pointer.count) {
                                drover_channel_read(channel, stream, $0, pointer.count)
                            }
                        }
                        if count > 0 {
                            progressed = true
                            lastHeard = .now
                            let chunk = buffer[0..<count]
                            if stream == 0 {
                                stdout.append(chunk)
                                splitters.stdout.feed(chunk, to: onOutput)
                            } else {
                                stderr.append(chunk)
                                splitters.stderr.feed(chunk, to: onOutput)
                            }
                        } else if count == 0 || count == Int(LIBSSH2_ERROR_EAGAIN) {
                            break
                        } else {
                            throw failure("reading the command's output failed", Int32(count))
                        }
                    }
                }
                if !progressed && libssh2_channel_eof(channel) != 0 { break }
                if !progressed { try waitForSocket(cancel: cancel, deadline: commandDeadline) }
            }
        } catch let interruption as WaitInterruption {
            abandon(channel)
            if interruption == .cancelled { throw CancellationError() }
            throw SSHError.commandTimedOut(host: host, port: port, command: command, seconds: timeout?.seconds ?? 0)
        } catch {
            abandon(channel)
            throw error
        }
        splitters.stdout.flush(to: onOutput)
        splitters.stderr.flush(to: onOutput)
        // The exit status arrives after EOF and is only reliable once the channel is closed.
        do {
            _ = try retry(cancel: nil, deadline: protocolDeadline()) { libssh2_channel_close(channel) }
            _ = try retry(cancel: nil, deadline: protocolDeadline()) { libssh2_channel_wait_closed(channel) }
        } catch {
            abandon(channel)
            throw markBroken("the server did not close the channel in time")
        }
        let status = libssh2_channel_get_exit_status(channel)
        let signal = exitSignal(of: channel)
        release(channel)
        return CommandResult(
            command: command, stdout: Data(stdout.result), stderr: Data(stderr.result), exitStatus: status,
            exitSignal: signal, duration: ContinuousClock.now - started)
    }

    func openChannel(
        cancel: CancelFlag, deadline: ContinuousClock.Instant?, command: String
    ) throws -> OpaquePointer {
        do {
            while true {
                if let channel = drover_channel_open_session(session) { return channel }
                let rc = libssh2_session_last_errno(session)
                guard rc == LIBSSH2_ERROR_EAGAIN else { throw failure("cannot open a channel", rc) }
                try waitForSocket(cancel: cancel, deadline: earliest(deadline, protocolDeadline()))
            }
        } catch WaitInterruption.cancelled {
            throw CancellationError()
        } catch is WaitInterruption {
            throw SSHError.commandTimedOut(
                host: host, port: port, command: command,
                seconds: (deadline.map { $0 - ContinuousClock.now } ?? .zero).seconds)
        }
    }

    func exitSignal(of channel: OpaquePointer) -> String? {
        var name: UnsafeMutablePointer<CChar>?
        var nameLength = 0
        libssh2_channel_get_exit_signal(channel, &name, &nameLength, nil, nil, nil, nil)
        guard let name else { return nil }
        defer { libssh2_free(session, name) }
        return String(decoding: UnsafeRawBufferPointer(start: name, count: nameLength), as: UTF8.self)
    }

    /// Closes a channel whose command is being abandoned (timeout, cancellation, error) without waiting
    /// for the command: sshd keeps a channel open until its command exits, and libssh2 1.10 cannot signal
    /// it. The remote command may therefore run on; its channel is freed with the session.
    func abandon(_ channel: OpaquePointer) {
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .seconds(1)) { libssh2_channel_close(channel) }
        let closed = try? retry(cancel: nil, deadline: ContinuousClock.now + .milliseconds(300)) {
            libssh2_channel_wait_closed(channel)
        }
        if closed == 0 { release(channel) }
    }

    func release(_ channel: OpaquePointer) {
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .seconds(5)) { libssh2_channel_free(channel) }
    }
}
