import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Signs with an RSA key held by ssh-agent, asking for SHA-2 itself: `SSH2_AGENTC_SIGN_REQUEST` with the
/// `SSH_AGENT_RSA_SHA2_512` or `_256` flag on the agent's socket (libssh2 1.10's agent code asks for no
/// flag, so the agent answers with SHA-1, which OpenSSH 8.8 and later refuse).
///
/// Runs on the session's own thread: one connection per signature, and one deadline (`timeout`) for all of
/// its reads and writes.
struct AgentSigner {
    let socketPath: String
    /// The identity's blob as the agent listed it (`ssh-rsa`, e, n).
    let keyBlob: [UInt8]
    /// How long the agent may take to answer (it may ask its user to confirm: `ssh-add -c`).
    var timeout: Duration = .seconds(60)

    static let signRequest: UInt8 = 13
    static let signResponse: UInt8 = 14
    static let flags = ["rsa-sha2-256": UInt32(2), "rsa-sha2-512": UInt32(4)]
    /// The largest answer read: a signature is a few hundred bytes.
    static let maximumAnswer = 64 * 1024

    /// The raw signature of `data` for `algorithm` (libssh2 adds the name), in memory from malloc for libssh2
    /// to free; nil when the agent cannot be reached, refuses, or answers with another algorithm.
    func sign(_ data: UnsafeBufferPointer<UInt8>, algorithm: String) -> (UnsafeMutablePointer<UInt8>, Int)? {
        guard let flag = Self.flags[algorithm] else { return nil }
        let request =
            [Self.signRequest] + Wire.string(keyBlob) + Wire.string(Array(data)) + Wire.uint32(Int(flag))
        guard let answer = exchange(Wire.uint32(request.count) + request),
            let raw = Self.rawSignature(answer: answer, algorithm: algorithm),
            let buffer = malloc(raw.count)?.assumingMemoryBound(to: UInt8.self)
        else { return nil }
        raw.withUnsafeBufferPointer { buffer.initialize(from: $0.baseAddress!, count: raw.count) }
        return (buffer, raw.count)
    }

    /// The raw signature in an agent's answer (`SSH2_AGENT_SIGN_RESPONSE`, its signature `string algorithm`,
    /// `string raw signature`); nil for a refusal, a malformed answer or another algorithm.
    static func rawSignature(answer: [UInt8], algorithm: String) -> [UInt8]? {
        guard answer.first == signResponse else { return nil }
        var outer = WireReader(Array(answer.dropFirst()))
        guard let wrapped = outer.readString() else { return nil }
        var inner = WireReader(wrapped)
        guard inner.readString() == Array(algorithm.utf8), let raw = inner.readString(), !raw.isEmpty else {
            return nil
        }
        return raw
    }

    /// Sends a message to the agent and returns its answer's body (without the length).
    private func exchange(_ message: [UInt8]) -> [UInt8]? {
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard socket >= 0 else { return nil }
        defer { close(socket) }
        let deadline = ContinuousClock.now + timeout
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        // A local socket connects at once (or not at all), even non-blocking.
        guard connected == 0 || errno == EINPROGRESS || errno == EAGAIN, ready(socket, POLLOUT, deadline),
            write(all: message, to: socket, deadline),
            let header = read(count: 4, from: socket, deadline)
        else { return nil }
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard length > 0, length <= Self.maximumAnswer else { return nil }
        return read(count: length, from: socket, deadline)
    }

    /// Waits until `socket` is ready for `events`; false once `deadline` passed or on an error.
    private func ready(_ socket: Int32, _ events: Int32, _ deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            var entry = pollfd(fd: socket, events: Int16(events), revents: 0)
            let milliseconds = Int32(min(left.milliseconds, 60_000))
            let found = poll(&entry, 1, max(1, milliseconds))
            if found < 0 && errno == EINTR { continue }
            if found > 0 { return entry.revents & Int16(POLLERR | POLLNVAL) == 0 }
            if found < 0 { return false }
        }
    }

    private func write(all bytes: [UInt8], to socket: Int32, _ deadline: ContinuousClock.Instant) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 && (errno == EINTR || errno == EAGAIN) {
                guard ready(socket, Int32(POLLOUT), deadline) else { return false }
                continue
            }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    private func read(count: Int, from socket: Int32, _ deadline: ContinuousClock.Instant) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            guard ready(socket, Int32(POLLIN), deadline) else { return nil }
            let got = bytes[received...].withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if got < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard got > 0 else { return nil }
            received += got
        }
        return bytes
    }
}
