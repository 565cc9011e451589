import CLibSSH2
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

// Tunnels (ProxyJump): direct-tcpip channels carrying other sessions, pumped on this session's thread.
extension SessionCore {
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
    func move(_ tunnel: Tunnel, _ buffer: inout [UInt8]) -> Bool {
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
    func close(_ tunnel: Tunnel) {
        Glibc.close(tunnel.socket)
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .milliseconds(500)) {
            libssh2_channel_close(tunnel.channel)
        }
        _ = try? retry(cancel: nil, deadline: ContinuousClock.now + .seconds(1)) {
            libssh2_channel_free(tunnel.channel)
        }
        logger.debug("tunnel closed", metadata: ["ssh.jump": "\(endpoint)", "ssh.target": "\(tunnel.target)"])
    }
}
