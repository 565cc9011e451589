import CLibSSH2
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// libssh2 is initialised once per process, before any session exists (and after OpenSSL).
private let libssh2Initialised: Int32 = {
    precondition(openSSLInitialised, "OpenSSL could not be initialised")
    return libssh2_init(0)
}()

/// Why a wait on the session's socket ended early.
enum WaitInterruption: Error {
    case deadline
    case cancelled
}

/// One SSH session: its socket, libssh2 handle and every operation on it.
///
/// Invariant: every method runs on the owning ``SessionThread``; this type is not thread-safe and is
/// `@unchecked Sendable` only so that the thread's jobs can capture it.
final class SessionCore: @unchecked Sendable {
    let endpoint: SSHEndpoint
    let options: SSHOptions
    let logger: Logger
    let wake = WakePipe()

    private var socketDescriptor: Int32 = -1
    private var session: OpaquePointer?
    /// Set when the session can no longer be used; later operations fail with this reason.
    private var brokenReason: String?
    private var keepaliveEnabled = false
    /// When the operation in progress started: silence is counted from then at the earliest.
    private var operationStarted = ContinuousClock.now
    /// When the server was last heard from (poll saw data, or a read returned some).
    private var lastHeard = ContinuousClock.now

    /// The tunnels (ProxyJump) this session carries for sessions to other hosts.
    private var tunnels: [Tunnel] = []
    /// A connected stream to use instead of a TCP connection (a tunnel through a jump host).
    private let providedSocket: Int32?

    init(endpoint: SSHEndpoint, options: SSHOptions, logger: Logger, socket: Int32? = nil) {
        self.endpoint = endpoint
        self.options = options
        self.logger = logger
        self.providedSocket = socket
    }

    deinit {
        shutdown()
        wake.close()
    }

    private var host: String { endpoint.host }
    private var port: Int { endpoint.port }

    // MARK: Connecting

    /// Connects, verifies the host key and authenticates; throws ``SSHError`` naming the cause.
    func connect() throws {
        precondition(libssh2Initialised == 0, "libssh2_init failed")
        socketDescriptor = try providedSocket ?? openSocket()
        guard let session = drover_session_init() else {
            throw SSHError.sessionFailed(host: host, port: port, reason: "libssh2 could not allocate a session")
        }
        self.session = session
        let knownHosts = try KnownHosts(path: UserAccount.expandingTilde(options.knownHostsFile))
        preferKnownHostKeyTypes(knownHosts)

        // Handshake and authentication run in libssh2's blocking mode bounded by its session timeout;
        // channels later run non-blocking under poll(2).
        libssh2_session_set_blocking(session, 1)
        libssh2_session_set_timeout(session, Int(options.sessionTimeout.milliseconds))
        let rc = libssh2_session_handshake(session, libssh2_socket_t(socketDescriptor))
        if rc == LIBSSH2_ERROR_TIMEOUT {
            throw SSHError.handshakeTimedOut(host: host, port: port, seconds: options.sessionTimeout.seconds)
        } else if rc != 0 {
            throw SSHError.handshakeFailed(host: host, port: port, reason: lastError(rc))
        }
        try verifyHostKey(knownHosts)
        try authenticate()
        libssh2_session_set_blocking(session, 0)
        if let interval = options.keepaliveInterval {
            // want_reply = 1, as OpenSSH's ServerAliveInterval: the server answers each keepalive, so a
            // connection that stopped answering is told from one that is merely quiet. libssh2 1.10 keeps a
            // few bytes per answer until the session ends (libssh2 issue #623): bounded by the run's length.
            libssh2_keepalive_config(session, 1, UInt32(max(1, interval.seconds.rounded())))
            keepaliveEnabled = true
        }
        logger.debug("connected", metadata: ["ssh.host": "\(endpoint)", "ssh.user": "\(options.user)"])
    }

    private func openSocket() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw SSHError.resolutionFailed(host: host, port: port, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        let deadline = ContinuousClock.now + options.connectTimeout
        var lastReason = "no usable address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastReason = String(cString: strerror(errno))
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastReason = String(cString: strerror(errno))
                Glibc.close(fd)
                continue
            }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let remaining = deadline - ContinuousClock.now
            let ready = remaining > .zero ? poll(&descriptor, 1, remaining.milliseconds) : 0
            if ready == 0 {
                Glibc.close(fd)
                throw SSHError.connectionTimedOut(host: host, port: port, seconds: options.connectTimeout.seconds)
            }
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
            if ready < 0 || socketError != 0 {
                lastReason = String(cString: strerror(ready < 0 ? errno : socketError))
                Glibc.close(fd)
                continue
            }
            var on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            // TCP keepalive detects a dead peer; libssh2 itself never does.
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, socklen_t(MemoryLayout<Int32>.size))
            var idle: Int32 = 60
            var interval: Int32 = 15
            var count: Int32 = 4
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
        throw SSHError.connectionFailed(host: host, port: port, reason: lastReason)
    }

    /// libssh2 1.10 offers ECDSA before ed25519; ask for the types already recorded for this host first,
    /// so a host known only by its ed25519 key is not reported as unknown.
    private func preferKnownHostKeyTypes(_ knownHosts: KnownHosts) {
        let supported = [
            "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
            "ssh-rsa", "ssh-dss",
        ]
        let known = knownHosts.keyTypes(host: host, port: port).filter(supported.contains)
        let preference = (known + supported.filter { !known.contains($0) }).joined(separator: ",")
        libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, preference)
    }

    private func verifyHostKey(_ knownHosts: KnownHosts) throws {
        var length = 0
        var type: Int32 = 0
        guard let pointer = libssh2_session_hostkey(session, &length, &type) else {
            throw SSHError.handshakeFailed(host: host, port: port, reason: "the server sent no host key")
        }
        let blob = Array(UnsafeRawBufferPointer(start: pointer, count: length).bindMemory(to: UInt8.self))
        let keyType = KnownHosts.keyType(ofBlob: blob) ?? "unknown"
        let fingerprint = KnownHosts.fingerprint(ofBlob: blob)
        let metadata: Logger.Metadata = ["ssh.host": "\(endpoint)", "ssh.host_key": "\(keyType) \(fingerprint)"]
        if options.hostKeyPolicy == .off {
            logger.warning(
                "host key checking is off: \(endpoint) presents \(keyType) \(fingerprint), not verified",
                metadata: metadata)
            return
        }
        switch knownHosts.verify(host: host, port: port, keyBlob: blob) {
        case .match:
            return
        case .revoked(let line):
            throw SSHError.hostKeyRevoked(
                host: host, port: port, fingerprint: fingerprint, knownHostsFile: knownHosts.path, line: line)
        case .changed(let line):
            throw SSHError.hostKeyChanged(
                host: host, port: port, keyType: keyType, fingerprint: fingerprint,
                knownHostsFile: knownHosts.path, line: line)
        case .unknown:
            let line = KnownHosts.line(host: host, port: port, keyBlob: blob)
            guard options.hostKeyPolicy == .acceptNew else {
                throw SSHError.hostKeyUnknown(
                    host: host, port: port, keyType: keyType, fingerprint: fingerprint,
                    knownHostsFile: knownHosts.path, lineToAdd: line)
            }
            try KnownHosts.append(line, to: knownHosts.path)
            logger.notice(
                "recorded new host key of \(endpoint) (\(keyType) \(fingerprint)) in \(knownHosts.path)",
                metadata: metadata)
        }
    }

    private func authenticate() throws {
        let user = options.user
        var attempts: [AuthenticationAttempt] = []
        let offered: String? = user.withCString { name in
            libssh2_userauth_list(session, name, UInt32(user.utf8.count)).map { String(cString: $0) }
        }
        if libssh2_userauth_authenticated(session) != 0 { return }
        let methods = offered?.split(separator: ",").map(String.init) ?? []
        guard methods.contains("publickey") else {
            attempts.append(
                AuthenticationAttempt(
                    method: "publickey",
                    reason:
                        "the server does not offer it (offers: \(methods.isEmpty ? "nothing" : methods.joined(separator: ", ")))"
                ))
            throw SSHError.authenticationFailed(host: host, port: port, user: user, attempts: attempts)
        }
        if let socketPath = options.agentSocket, !socketPath.isEmpty {
            if try authenticateWithAgent(socketPath: socketPath, attempts: &attempts) { return }
        }
        for file in options.identityFiles {
            if try authenticate(withKeyFile: file, attempts: &attempts) { return }
        }
        throw SSHError.authenticationFailed(host: host, port: port, user: user, attempts: attempts)
    }

    private func authenticateWithAgent(socketPath: String, attempts: inout [AuthenticationAttempt]) throws -> Bool {
        let method = "ssh-agent (\(socketPath))"
        guard let agent = libssh2_agent_init(session) else {
            attempts.append(AuthenticationAttempt(method: method, reason: "libssh2 could not create an agent handle"))
            return false
        }
        defer {
            libssh2_agent_disconnect(agent)
            libssh2_agent_free(agent)
        }
        socketPath.withCString { libssh2_agent_set_identity_path(agent, $0) }
        guard libssh2_agent_connect(agent) == 0 else {
            attempts.append(
                AuthenticationAttempt(method: method, reason: "cannot connect to the agent; is SSH_AUTH_SOCK stale?"))
            return false
        }
        guard libssh2_agent_list_identities(agent) == 0 else {
            attempts.append(AuthenticationAttempt(method: method, reason: "cannot list the agent's keys"))
            return false
        }
        var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
        var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
        var tried = 0
        while libssh2_agent_get_identity(agent, &identity, previous) == 0, let current = identity {
            previous = current
            tried += 1
            let blob = Array(UnsafeBufferPointer(start: current.pointee.blob, count: Int(current.pointee.blob_len)))
            let keyType = KnownHosts.keyType(ofBlob: blob) ?? "unknown"
            let comment = current.pointee.comment.map { String(cString: $0) } ?? ""
            let rc = options.user.withCString { libssh2_agent_userauth(agent, $0, current) }
            if rc == 0 { return true }
            attempts.append(
                AuthenticationAttempt(
                    method:
                        "ssh-agent key \(comment.isEmpty ? KnownHosts.fingerprint(ofBlob: blob) : comment) (\(keyType))",
                    reason: publicKeyFailure(rc, isRSA: keyType == "ssh-rsa")))
            if rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_TIMEOUT {
                throw SSHError.sessionFailed(host: host, port: port, reason: lastError(rc))
            }
        }
        if tried == 0 {
            attempts.append(
                AuthenticationAttempt(method: method, reason: "the agent holds no keys (ssh-add lists none)"))
        }
        return false
    }

    private func authenticate(withKeyFile file: String, attempts: inout [AuthenticationAttempt]) throws -> Bool {
        let path = UserAccount.expandingTilde(file)
        let method = "identity file \(file)"
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file"
            attempts.append(AuthenticationAttempt(method: method, reason: reason))
            return false
        }
        let info = PrivateKeyInfo(contents: String(decoding: data, as: UTF8.self))
        guard let info else {
            attempts.append(AuthenticationAttempt(method: method, reason: "not a private key in OpenSSH or PEM format"))
            return false
        }
        var passphrase: String?
        if info.encrypted {
            passphrase = options.passphrase.resolve(path)
            guard passphrase != nil else {
                attempts.append(
                    AuthenticationAttempt(
                        method: method,
                        reason:
                            "the key is encrypted and no passphrase is available: set DROVER_SSH_PASSPHRASE, run on a terminal, or load the key into ssh-agent"
                    ))
                return false
            }
        }
        // libssh2 1.10 decrypts an encrypted key (bcrypt_pbkdf, CPU-bound and slow) inside this blocking
        // call, and its timeout counts from the call's start: on a busy machine that local work alone used
        // the time meant for the server. Allow for it, then restore the session timeout.
        if info.encrypted {
            libssh2_session_set_timeout(
                session, Int(options.sessionTimeout.milliseconds) + Self.keyDerivationAllowanceMilliseconds)
        }
        defer { if info.encrypted { libssh2_session_set_timeout(session, Int(options.sessionTimeout.milliseconds)) } }
        let rc = options.user.withCString { name in
            path.withCString { keyPath in
                withOptionalCString(passphrase) { secret in
                    drover_userauth_publickey_fromfile(session, name, UInt32(options.user.utf8.count), keyPath, secret)
                }
            }
        }
        if rc == 0 { return true }
        var reason = publicKeyFailure(rc, isRSA: info.isRSA)
        if rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
            reason =
                info.encrypted
                ? "wrong passphrase, or a key format libssh2 cannot read" : "libssh2 cannot read this key file"
        }
        attempts.append(AuthenticationAttempt(method: method, reason: reason))
        if rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_TIMEOUT {
            throw SSHError.sessionFailed(host: host, port: port, reason: lastError(rc))
        }
        return false
    }

    /// Extra time an authentication with an encrypted key file may take, for decrypting the key locally.
    static let keyDerivationAllowanceMilliseconds = 120_000

    private func publicKeyFailure(_ rc: Int32, isRSA: Bool) -> String {
        if rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
            if isRSA {
                return
                    "the server refused this RSA key: libssh2 1.10 signs RSA only with SHA-1 (ssh-rsa), which OpenSSH 8.8 and later reject. Use an ed25519 key, or let the server accept it with PubkeyAcceptedAlgorithms +ssh-rsa"
            }
            return "the server refused this key (is its public key in the user's authorized_keys?)"
        }
        return lastError(rc)
    }

    // MARK: Running commands

    /// Runs one command on a fresh channel; see ``SSHClient/run(_:timeout:onOutput:)``.
    func execute(
        _ command: String, timeout: Duration?, cancel: CancelFlag,
        onOutput: (@Sendable (OutputLine) -> Void)?
    ) throws -> CommandResult {
        try ensureUsable()
        let started = ContinuousClock.now
        let commandDeadline = timeout.map { started + $0 }
        let channel = try openChannel(cancel: cancel, deadline: commandDeadline, command: command)
        var stdout = Data()
        var stderr = Data()
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
                                stdout.append(contentsOf: chunk)
                                splitters.stdout.feed(chunk, to: onOutput)
                            } else {
                                stderr.append(contentsOf: chunk)
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
            command: command, stdout: stdout, stderr: stderr, exitStatus: status,
            exitSignal: signal, duration: ContinuousClock.now - started)
    }

    private func openChannel(
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

    private func exitSignal(of channel: OpaquePointer) -> String? {
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
    private func abandon(_ channel: OpaquePointer) {
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .seconds(1)) { libssh2_channel_close(channel) }
        let closed = try? retry(cancel: nil, deadline: ContinuousClock.now + .milliseconds(300)) {
            libssh2_channel_wait_closed(channel)
        }
        if closed == 0 { release(channel) }
    }

    private func release(_ channel: OpaquePointer) {
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .seconds(5)) { libssh2_channel_free(channel) }
    }

    // MARK: Uploading

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

    private func removeQuietly(_ path: String) {
        guard brokenReason == nil else { return }
        _ = try? execute(
            "rm -f -- \(ShellQuote.quote(path))", timeout: .seconds(30),
            cancel: CancelFlag(wake: wake), onOutput: nil)
    }

    private func sftpError(_ sftp: OpaquePointer) -> String {
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

    // MARK: Tunnels (ProxyJump)

    /// One `direct-tcpip` channel and the local end of the socket pair the inner session runs over.
    final class Tunnel {
        let channel: OpaquePointer
        let socket: Int32
        let target: SSHEndpoint
        var toChannel: [UInt8] = []
        var toSocket: [UInt8] = []
        var socketClosed = false
        var eofSent = false
        var channelClosed = false
        var failed = false

        init(channel: OpaquePointer, socket: Int32, target: SSHEndpoint) {
            self.channel = channel
            self.socket = socket
            self.target = target
        }

        /// Failed, or both directions ended with nothing left to deliver.
        var finished: Bool { failed || (socketClosed && channelClosed && toChannel.isEmpty && toSocket.isEmpty) }
    }

    var hasTunnels: Bool { !tunnels.isEmpty }

    /// Opens a channel from this (jump) host to `target` and returns the descriptor an inner session
    /// connects over; the bytes are pumped by ``pumpTunnels(waitingAtMost:)`` on this session's thread.
    func openTunnel(to target: SSHEndpoint, cancel: CancelFlag) throws -> Int32 {
        try ensureUsable()
        let deadline = ContinuousClock.now + options.connectTimeout + options.sessionTimeout
        var channel: OpaquePointer?
        do {
            channel = try retryPointer(cancel: cancel, deadline: deadline) {
                libssh2_channel_direct_tcpip_ex(session, target.host, Int32(target.port), "127.0.0.1", 22)
            }
        } catch WaitInterruption.cancelled {
            throw CancellationError()
        } catch is WaitInterruption {
            throw SSHError.jumpFailed(
                jump: SSHError.address(host, port), host: target.host, port: target.port, reason: "no answer in time")
        }
        guard let channel else {
            throw SSHError.jumpFailed(
                jump: SSHError.address(host, port), host: target.host, port: target.port,
                reason: lastError(libssh2_session_last_errno(session)))
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            release(channel)
            throw SSHError.jumpFailed(
                jump: SSHError.address(host, port), host: target.host, port: target.port,
                reason: "socketpair: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(pair[1], F_SETFL, fcntl(pair[1], F_GETFL) | O_NONBLOCK)
        tunnels.append(Tunnel(channel: channel, socket: pair[1], target: target))
        logger.debug("tunnel opened", metadata: ["ssh.jump": "\(endpoint)", "ssh.target": "\(target)"])
        return pair[0]
    }

    /// Moves what is waiting between every tunnel's channel and socket, then waits (at most `timeout`
    /// milliseconds) for more, or for the wake pipe (a job was queued).
    func pumpTunnels(waitingAtMost timeout: Int32 = 500) {
        guard session != nil, brokenReason == nil else {
            for tunnel in tunnels { close(tunnel) }
            tunnels = []
            return
        }
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        var rounds = 0
        var progressed = true
        while progressed && rounds < 256 {
            progressed = false
            rounds += 1
            for tunnel in tunnels where !tunnel.finished {
                if move(tunnel, &buffer) { progressed = true }
            }
        }
        for tunnel in tunnels where tunnel.finished { close(tunnel) }
        tunnels.removeAll { $0.finished }
        if keepaliveEnabled {
            var secondsToNext: Int32 = 0
            _ = libssh2_keepalive_send(session, &secondsToNext)
        }
        let directions = libssh2_session_block_directions(session)
        // Read from the server only while a tunnel can take what arrives: a full inner socket would
        // otherwise make every poll return at once.
        var sessionEvents: Int16 =
            tunnels.isEmpty || tunnels.contains { $0.toSocket.isEmpty && !$0.channelClosed } ? Int16(POLLIN) : 0
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { sessionEvents |= Int16(POLLOUT) }
        var descriptors = [
            pollfd(fd: socketDescriptor, events: sessionEvents, revents: 0),
            pollfd(fd: wake.readDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        for tunnel in tunnels {
            var events: Int16 = 0
            if tunnel.toChannel.isEmpty && !tunnel.socketClosed { events |= Int16(POLLIN) }
            if !tunnel.toSocket.isEmpty { events |= Int16(POLLOUT) }
            descriptors.append(pollfd(fd: tunnel.socket, events: events, revents: 0))
        }
        _ = poll(&descriptors, nfds_t(descriptors.count), tunnels.isEmpty ? timeout : min(timeout, 200))
        if descriptors[1].revents != 0 { wake.drain() }
    }

    /// One pass over a tunnel in both directions; true when bytes moved.
    private func move(_ tunnel: Tunnel, _ buffer: inout [UInt8]) -> Bool {
        var moved = false
        // The inner session's bytes to the channel.
        if tunnel.toChannel.isEmpty && !tunnel.socketClosed {
            let count = buffer.withUnsafeMutableBytes { read(tunnel.socket, $0.baseAddress, $0.count) }
            if count > 0 {
                tunnel.toChannel = Array(buffer[0..<count])
                moved = true
            } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                tunnel.socketClosed = true
            }
        }
        if !tunnel.toChannel.isEmpty {
            let written = tunnel.toChannel.withUnsafeBufferPointer { pointer in
                pointer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: pointer.count) {
                    drover_channel_write(tunnel.channel, $0, pointer.count)
                }
            }
            if written > 0 {
                tunnel.toChannel.removeFirst(written)
                moved = true
            } else if written != Int(LIBSSH2_ERROR_EAGAIN) {
                tunnel.failed = true
                return moved
            }
        }
        if tunnel.socketClosed && tunnel.toChannel.isEmpty && !tunnel.eofSent {
            let rc = libssh2_channel_send_eof(tunnel.channel)
            if rc != LIBSSH2_ERROR_EAGAIN { tunnel.eofSent = true }
        }
        // The channel's bytes to the inner session.
        if tunnel.toSocket.isEmpty && !tunnel.channelClosed {
            let count = buffer.withUnsafeMutableBufferPointer { pointer in
                pointer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: pointer.count) {
                    drover_channel_read(tunnel.channel, 0, $0, pointer.count)
                }
            }
            if count > 0 {
                tunnel.toSocket = Array(buffer[0..<count])
                moved = true
            } else if count == 0 || count == Int(LIBSSH2_ERROR_EAGAIN) {
                if libssh2_channel_eof(tunnel.channel) != 0 {
                    tunnel.channelClosed = true
                    _ = Glibc.shutdown(tunnel.socket, Int32(SHUT_WR))
                }
            } else {
                tunnel.failed = true
                return moved
            }
        }
        if !tunnel.toSocket.isEmpty {
            // MSG_NOSIGNAL: an inner session that closed its end makes this EPIPE, not a SIGPIPE that kills drover.
            let written = tunnel.toSocket.withUnsafeBytes {
                send(tunnel.socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written > 0 {
                tunnel.toSocket.removeFirst(written)
                moved = true
            } else if written < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                tunnel.failed = true
            }
        }
        return moved
    }

    /// Closes a tunnel's socket and, without waiting long, its channel.
    private func close(_ tunnel: Tunnel) {
        Glibc.close(tunnel.socket)
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .milliseconds(500)) {
            libssh2_channel_close(tunnel.channel)
        }
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .seconds(1)) {
            libssh2_channel_free(tunnel.channel)
        }
        logger.debug("tunnel closed", metadata: ["ssh.jump": "\(endpoint)", "ssh.target": "\(tunnel.target)"])
    }

    // MARK: Closing

    /// Disconnects politely (bounded) and releases everything.
    func shutdown() {
        for tunnel in tunnels { Glibc.close(tunnel.socket) }
        tunnels = []
        if let session {
            if brokenReason == nil {
                _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .seconds(2)) {
                    drover_session_disconnect(session, "drover closing")
                }
            }
            libssh2_session_free(session)
            self.session = nil
        }
        if socketDescriptor >= 0 {
            Glibc.close(socketDescriptor)
            socketDescriptor = -1
        }
        if brokenReason == nil { brokenReason = "the connection was closed" }
    }

    // MARK: Non-blocking plumbing

    private func ensureUsable() throws {
        guard session != nil else { throw SSHError.closed(host: host, port: port) }
        if let brokenReason {
            throw SSHError.connectionLost(host: host, port: port, reason: "\(brokenReason); reconnect to continue")
        }
        operationStarted = .now
    }

    /// How long the server has not been heard from during the current operation: from the kernel's count
    /// of the last data received on a TCP socket, else (a tunnel's socket pair) from what poll and reads saw.
    private func silence() -> Duration {
        let sinceStart = ContinuousClock.now - operationStarted
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        if providedSocket == nil, getsockopt(socketDescriptor, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 {
            return min(sinceStart, .milliseconds(Int64(info.tcpi_last_data_recv)))
        }
        return min(sinceStart, ContinuousClock.now - lastHeard)
    }

    /// Fails the session when the server has answered none of `keepaliveCountMax` keepalives in a row (as
    /// OpenSSH's ServerAliveCountMax): a frozen or silently dropped connection is lost, not slow.
    private func checkAlive() throws {
        guard keepaliveEnabled, let configured = options.keepaliveInterval, options.keepaliveCountMax > 0 else {
            return
        }
        // libssh2 sends keepalives at whole seconds, never more often than every 2 s (it turns 1 into 2).
        let interval = max(.seconds(2), configured)
        let limit = interval * options.keepaliveCountMax + .seconds(1)
        let quiet = silence()
        if quiet > limit {
            throw markBroken(
                "no answer from the server for \(Int(quiet.seconds.rounded())) s (\(options.keepaliveCountMax) keepalives "
                    + "\(Int(interval.seconds.rounded())) s apart went unanswered)")
        }
    }

    private func protocolDeadline() -> ContinuousClock.Instant { ContinuousClock.now + options.sessionTimeout }

    private func earliest(_ a: ContinuousClock.Instant?, _ b: ContinuousClock.Instant) -> ContinuousClock.Instant {
        a.map { min($0, b) } ?? b
    }

    /// Repeats a libssh2 call while it answers EAGAIN, waiting on the socket in between.
    private func retry(cancel: CancelFlag?, deadline: ContinuousClock.Instant, _ call: () -> Int32) throws -> Int32 {
        while true {
            let rc = call()
            guard rc == LIBSSH2_ERROR_EAGAIN else { return rc }
            try waitForSocket(cancel: cancel, deadline: deadline)
        }
    }

    /// The same for calls that return a pointer and report EAGAIN through the session's last errno.
    private func retryPointer(
        cancel: CancelFlag?, deadline: ContinuousClock.Instant,
        _ call: () -> OpaquePointer?
    ) throws -> OpaquePointer? {
        while true {
            if let pointer = call() { return pointer }
            guard libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN else { return nil }
            try waitForSocket(cancel: cancel, deadline: deadline)
        }
    }

    /// Waits until the socket is ready in the direction libssh2 needs, the deadline passes, the operation
    /// is cancelled, or a keepalive is due (which it sends).
    private func waitForSocket(cancel: CancelFlag?, deadline: ContinuousClock.Instant?) throws {
        if cancel?.isCancelled == true { throw WaitInterruption.cancelled }
        var timeout: Int32 = 1000
        if keepaliveEnabled {
            var secondsToNext: Int32 = 0
            if libssh2_keepalive_send(session, &secondsToNext) == 0 {
                timeout = min(timeout, max(1, secondsToNext) * 1000)
            }
        }
        if let deadline {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { throw WaitInterruption.deadline }
            timeout = min(timeout, max(1, remaining.milliseconds))
        }
        let directions = libssh2_session_block_directions(session)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        var descriptors = [
            pollfd(fd: socketDescriptor, events: events, revents: 0),
            pollfd(fd: wake.readDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        _ = poll(&descriptors, nfds_t(descriptors.count), timeout)
        if descriptors[0].revents & Int16(POLLIN) != 0 { lastHeard = .now }
        if descriptors[1].revents != 0 { wake.drain() }
        if cancel?.isCancelled == true { throw WaitInterruption.cancelled }
        try checkAlive()
    }

    private func failure(_ what: String, _ rc: Int32) -> SSHError {
        if rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_SOCKET_RECV || rc == LIBSSH2_ERROR_SOCKET_SEND
            || rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_CHANNEL_CLOSED
        {
            return markBroken("\(what): \(lastError(rc))")
        }
        return SSHError.sessionFailed(host: host, port: port, reason: "\(what): \(lastError(rc))")
    }

    private func markBroken(_ reason: String) -> SSHError {
        brokenReason = reason
        return SSHError.connectionLost(host: host, port: port, reason: reason)
    }

    private func lastError(_ rc: Int32) -> String {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        if let session { libssh2_session_last_error(session, &message, &length, 0) }
        let text = message.map { String(cString: $0) } ?? ""
        return text.isEmpty ? "libssh2 error \(rc)" : "\(text) (libssh2 error \(rc))"
    }
}

/// Splits a stream of bytes into lines for streaming callbacks.
struct LineSplitter {
    let stream: OutputLine.Stream
    private var pending: [UInt8] = []

    init(stream: OutputLine.Stream) { self.stream = stream }

    mutating func feed(_ bytes: ArraySlice<UInt8>, to handler: (@Sendable (OutputLine) -> Void)?) {
        guard let handler else { return }
        pending.append(contentsOf: bytes)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            handler(OutputLine(stream: stream, text: String(decoding: line, as: UTF8.self)))
            pending.removeSubrange(...newline)
        }
    }

    mutating func flush(to handler: (@Sendable (OutputLine) -> Void)?) {
        guard let handler, !pending.isEmpty else { return }
        handler(OutputLine(stream: stream, text: String(decoding: pending, as: UTF8.self)))
        pending.removeAll()
    }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString(body)
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    var milliseconds: Int32 {
        Int32(clamping: Int64((seconds * 1000).rounded(.up)))
    }
}
