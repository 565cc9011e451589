import Foundation

/// Everything that can go wrong in the SSH layer; each case names the host and port and, where there is
/// one, the fix.
public enum SSHError: LocalizedError, Sendable, Equatable {
    /// The host name could not be resolved to an address.
    case resolutionFailed(host: String, port: Int, reason: String)
    /// TCP connect failed (refused, unreachable, ...).
    case connectionFailed(host: String, port: Int, reason: String)
    /// TCP connect did not complete within the connect timeout.
    case connectionTimedOut(host: String, port: Int, seconds: Double)
    /// The SSH handshake failed (no common algorithm, connection dropped, ...).
    case handshakeFailed(host: String, port: Int, reason: String)
    /// The peer accepted TCP but did not complete the SSH handshake in time.
    case handshakeTimedOut(host: String, port: Int, seconds: Double)
    /// The host's key is not in known_hosts and the policy is `strict`.
    case hostKeyUnknown(
        host: String, port: Int, keyType: String, fingerprint: String,
        knownHostsFile: String, lineToAdd: String)
    /// The host presents a key that differs from the one recorded in known_hosts.
    case hostKeyChanged(
        host: String, port: Int, keyType: String, fingerprint: String,
        knownHostsFile: String, line: Int)
    /// The host presents a key marked `@revoked` in known_hosts.
    case hostKeyRevoked(host: String, port: Int, fingerprint: String, knownHostsFile: String, line: Int)
    /// known_hosts exists but cannot be read or written.
    case knownHostsUnusable(path: String, reason: String)
    /// Every authentication method failed; `attempts` says what was tried and why each failed.
    case authenticationFailed(host: String, port: Int, user: String, attempts: [AuthenticationAttempt])
    /// A remote command ran longer than its timeout; its channel was closed.
    case commandTimedOut(host: String, port: Int, command: String, seconds: Double)
    /// The session failed while in use (connection lost, protocol error); reconnect to continue.
    case sessionFailed(host: String, port: Int, reason: String)
    /// The connection was lost while in use (reset, closed, or no answer to the keepalives): the session is
    /// unusable; a new connection may work. Anything started on the host may still be running there.
    case connectionLost(host: String, port: Int, reason: String)
    /// The client was closed before the operation.
    case closed(host: String, port: Int)
    /// An upload failed; the destination was left untouched.
    case uploadFailed(host: String, port: Int, path: String, reason: String)
    /// The uploaded file's SHA-256 on the host differs from the local file's.
    case checksumMismatch(host: String, port: Int, path: String, expected: String, actual: String)
    /// A local file could not be read.
    case localFileUnreadable(path: String, reason: String)
    /// The jump host `jump` (ProxyJump) could not open a channel to `host`.
    case jumpFailed(jump: String, host: String, port: Int, reason: String)

    public var errorDescription: String? {
        switch self {
        case .resolutionFailed(let host, let port, let reason):
            return
                "\(Self.address(host, port)): cannot resolve host name: \(reason). Check the host name or use an IP address."
        case .connectionFailed(let host, let port, let reason):
            return
                "\(Self.address(host, port)): cannot connect: \(reason). Check that the host is up, sshd listens on port \(port) and no firewall blocks it."
        case .connectionTimedOut(let host, let port, let seconds):
            return
                "\(Self.address(host, port)): TCP connect timed out after \(Self.format(seconds)). The host is down or a firewall drops packets; raise ssh.connect_timeout only if the network is slow."
        case .handshakeFailed(let host, let port, let reason):
            return
                "\(Self.address(host, port)): SSH handshake failed: \(reason). If the server has only an RSA host key, give it an ed25519 or ECDSA host key (libssh2 1.10 cannot use rsa-sha2 host keys)."
        case .handshakeTimedOut(let host, let port, let seconds):
            return
                "\(Self.address(host, port)): the server accepted TCP but did not complete the SSH handshake within \(Self.format(seconds)). Is an SSH server really listening on port \(port)?"
        case .hostKeyUnknown(let host, let port, let keyType, let fingerprint, let file, let line):
            return """
                \(Self.address(host, port)): host key is not known (\(keyType) \(fingerprint)); nothing was run.
                Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_\(Self.keyFileStem(keyType))_key.pub), then add this line to \(file):
                  \(line)
                or set host_key_checking: accept-new to record new hosts automatically.
                """
        case .hostKeyChanged(let host, let port, let keyType, let fingerprint, let file, let line):
            return """
                \(Self.address(host, port)): HOST KEY CHANGED: the server presents \(keyType) \(fingerprint), which differs from line \(line) of \(file); nothing was run.
                This can mean a man-in-the-middle attack, or that the host was reinstalled. Verify the new fingerprint on the host, then remove the old entry with:
                  ssh-keygen -R \(ShellQuote.quote(KnownHosts.hostField(host: host, port: port))) -f \(ShellQuote.quote(file))
                """
        case .hostKeyRevoked(let host, let port, let fingerprint, let file, let line):
            return
                "\(Self.address(host, port)): the server presents a key marked @revoked at line \(line) of \(file) (\(fingerprint)); refusing to connect."
        case .knownHostsUnusable(let path, let reason):
            return
                "known_hosts file \(path): \(reason). Fix its permissions or point ssh.known_hosts at a readable file."
        case .authenticationFailed(let host, let port, let user, let attempts):
            var text = "\(Self.address(host, port)): authentication as \(user) failed."
            if attempts.isEmpty {
                text += " No method was available: start ssh-agent (SSH_AUTH_SOCK) or list identity files."
            } else {
                text += " Tried:"
                for attempt in attempts { text += "\n  - \(attempt.method): \(attempt.reason)" }
            }
            return text
        case .commandTimedOut(let host, let port, let command, let seconds):
            return
                "\(Self.address(host, port)): command timed out after \(Self.format(seconds)) and its channel was closed: \(command)"
        case .sessionFailed(let host, let port, let reason):
            return "\(Self.address(host, port)): SSH session failed: \(reason)"
        case .connectionLost(let host, let port, let reason):
            return "\(Self.address(host, port)): connection lost: \(reason)"
        case .closed(let host, let port):
            return "\(Self.address(host, port)): the SSH connection is already closed."
        case .uploadFailed(let host, let port, let path, let reason):
            return "\(Self.address(host, port)): upload to \(path) failed: \(reason)"
        case .checksumMismatch(let host, let port, let path, let expected, let actual):
            return
                "\(Self.address(host, port)): \(path) has SHA-256 \(actual) after upload, expected \(expected). Check free space on the host and retry."
        case .localFileUnreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .jumpFailed(let jump, let host, let port, let reason):
            return "\(Self.address(host, port)): the jump host \(jump) could not reach it: \(reason)"
        }
    }

    /// True when the connection itself failed (lost, reset, unanswered, or already closed): connecting
    /// again is the remedy, and the host may still be running what it was asked to.
    public var isConnectionLost: Bool {
        switch self {
        case .connectionLost, .closed: return true
        default: return false
        }
    }

    static func address(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
    }

    static func keyFileStem(_ keyType: String) -> String {
        switch keyType {
        case "ssh-ed25519": return "ed25519"
        case let type where type.hasPrefix("ecdsa"): return "ecdsa"
        case "ssh-rsa": return "rsa"
        default: return "*"
        }
    }
}

/// One authentication method that was tried, and why it failed.
public struct AuthenticationAttempt: Sendable, Equatable, CustomStringConvertible {
    /// What was tried, e.g. `identity file ~/.ssh/id_ed25519` or `ssh-agent key user@host (ssh-ed25519)`.
    public var method: String
    /// Why it failed.
    public var reason: String

    public init(method: String, reason: String) {
        self.method = method
        self.reason = reason
    }

    public var description: String { "\(method): \(reason)" }
}
