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

    var socketDescriptor: Int32 = -1
    var session: OpaquePointer?
    /// Set when the session can no longer be used; later operations fail with this reason.
    var brokenReason: String?
    var keepaliveEnabled = false
    /// When the operation in progress started: silence is counted from then at the earliest.
    var operationStarted = ContinuousClock.now
    /// When the server was last heard from (poll saw data, or a read returned some).
    var lastHeard = ContinuousClock.now

    /// The tunnels (ProxyJump) this session carries for sessions to other hosts.
    var tunnels: [Tunnel] = []
    /// A connected stream to use instead of a TCP connection (a tunnel through a jump host).
    let providedSocket: Int32?

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

    var host: String { endpoint.host }
    var port: Int { endpoint.port }

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

    func openSocket() throws -> Int32 {
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

    func ensureUsable() throws {
        guard session != nil else { throw SSHError.closed(host: host, port: port) }
        if let brokenReason {
            throw SSHError.connectionLost(host: host, port: port, reason: "\(brokenReason); reconnect to continue")
        }
        operationStarted = .now
    }

    /// How long the server has not been heard from during the current operation: from the kernel's count
    /// of the last data received on a TCP socket, else (a tunnel's socket pair) from what poll and reads saw.
    func silence() -> Duration {
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
    func checkAlive() throws {
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

    func protocolDeadline() -> ContinuousClock.Instant { ContinuousClock.now + options.sessionTimeout }

    func earliest(_ a: ContinuousClock.Instant?, _ b: ContinuousClock.Instant) -> ContinuousClock.Instant {
        a.map { min($0, b) } ?? b
    }

    /// Repeats a libssh2 call while it answers EAGAIN, waiting on the socket in between.
    func retry(cancel: CancelFlag?, deadline: ContinuousClock.Instant, _ call: () -> Int32) throws -> Int32 {
        while true {
            let rc = call()
            guard rc == LIBSSH2_ERROR_EAGAIN else { return rc }
            try waitForSocket(cancel: cancel, deadline: deadline)
        }
    }

    /// The same for calls that return a pointer and report EAGAIN through the session's last errno.
    func retryPointer(
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
    func waitForSocket(cancel: CancelFlag?, deadline: ContinuousClock.Instant?) throws {
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

    func failure(_ what: String, _ rc: Int32) -> SSHError {
        if rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_SOCKET_RECV || rc == LIBSSH2_ERROR_SOCKET_SEND
            || rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_CHANNEL_CLOSED
        {
            return markBroken("\(what): \(lastError(rc))")
        }
        return SSHError.sessionFailed(host: host, port: port, reason: "\(what): \(lastError(rc))")
    }

    func markBroken(_ reason: String) -> SSHError {
        brokenReason = reason
        return SSHError.connectionLost(host: host, port: port, reason: reason)
    }

    func lastError(_ rc: Int32) -> String {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        if let session { libssh2_session_last_error(session, &message, &length, 0) }
        let text = message.map { String(cString: $0) } ?? ""
        return text.isEmpty ? "libssh2 error \(rc)" : "\(text) (libssh2 error \(rc))"
    }
}

func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
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
