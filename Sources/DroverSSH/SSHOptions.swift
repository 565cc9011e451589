import Foundation

/// Where to connect: a host name, IPv4 or IPv6 address, and a port.
public struct SSHEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 22) {
        self.host = host
        self.port = port
    }

    public var description: String { SSHError.address(host, port) }
}

/// How to treat host keys that are not (yet) in known_hosts.
public enum HostKeyPolicy: String, Sendable, CaseIterable {
    /// Unknown or changed keys are refused (the default).
    case strict
    /// Unknown keys are appended to known_hosts; changed keys are refused.
    case acceptNew = "accept-new"
    /// Keys are not checked; a warning is logged on every connection.
    case off
}

/// Where passphrases of encrypted identity files come from.
public struct PassphraseSource: Sendable {
    let resolve: @Sendable (_ keyPath: String) -> String?

    /// Asks `resolve` for the passphrase of the key at a path; nil means none is available.
    public init(_ resolve: @escaping @Sendable (_ keyPath: String) -> String?) {
        self.resolve = resolve
    }

    /// No passphrases: encrypted keys are skipped (and reported).
    public static let none = PassphraseSource { _ in nil }

    /// Reads the passphrase from an environment variable.
    public static func environment(_ name: String = "DROVER_SSH_PASSPHRASE") -> PassphraseSource {
        PassphraseSource { _ in ProcessInfo.processInfo.environment[name] }
    }
}

/// Connection and authentication settings for one SSH connection.
public struct SSHOptions: Sendable {
    /// The remote user.
    public var user: String
    /// Private key files tried after the agent, in order (`~` is expanded).
    public var identityFiles: [String]
    /// The ssh-agent socket; nil or empty: no agent. Defaults to `SSH_AUTH_SOCK`.
    public var agentSocket: String?
    /// Where passphrases of encrypted keys come from.
    public var passphrase: PassphraseSource
    /// The known_hosts file used to verify and (with `accept-new`) record host keys.
    public var knownHostsFile: String
    public var hostKeyPolicy: HostKeyPolicy
    /// Bound on the TCP connect.
    public var connectTimeout: Duration
    /// Bound on each protocol exchange (handshake, authentication, opening or closing a channel).
    public var sessionTimeout: Duration
    /// Interval of SSH keepalive messages while a command runs; nil disables them.
    public var keepaliveInterval: Duration?
    /// How many keepalives in a row may go unanswered before the connection counts as lost (OpenSSH's
    /// ServerAliveCountMax); 0: never.
    public var keepaliveCountMax: Int

    public init(
        user: String = UserAccount.name,
        identityFiles: [String] = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"],
        agentSocket: String? = ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"],
        passphrase: PassphraseSource = .environment(),
        knownHostsFile: String = "~/.ssh/known_hosts",
        hostKeyPolicy: HostKeyPolicy = .strict,
        connectTimeout: Duration = .seconds(10),
        sessionTimeout: Duration = .seconds(30),
        keepaliveInterval: Duration? = .seconds(15),
        keepaliveCountMax: Int = 3
    ) {
        self.user = user
        self.identityFiles = identityFiles
        self.agentSocket = agentSocket
        self.passphrase = passphrase
        self.knownHostsFile = knownHostsFile
        self.hostKeyPolicy = hostKeyPolicy
        self.connectTimeout = connectTimeout
        self.sessionTimeout = sessionTimeout
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveCountMax = keepaliveCountMax
    }
}

/// The outcome of a remote command.
public struct CommandResult: Sendable, Equatable {
    public var command: String
    public var stdout: Data
    public var stderr: Data
    /// The exit status; 0 also when the command was killed by a signal (see `exitSignal`).
    public var exitStatus: Int32
    /// The signal name without `SIG` (e.g. `TERM`) when the command was killed by one.
    public var exitSignal: String?
    public var duration: Duration

    public init(command: String, stdout: Data, stderr: Data, exitStatus: Int32, exitSignal: String?, duration: Duration)
    {
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.duration = duration
    }

    /// True when the command exited 0 and was not killed by a signal.
    public var succeeded: Bool { exitStatus == 0 && exitSignal == nil }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// One line of remote output, streamed as it arrives.
public struct OutputLine: Sendable, Equatable {
    public enum Stream: String, Sendable { case stdout, stderr }
    public var stream: Stream
    public var text: String

    public init(stream: Stream, text: String) {
        self.stream = stream
        self.text = text
    }
}

/// Progress of an upload.
public struct UploadProgress: Sendable, Equatable {
    public var bytesSent: Int64
    public var totalBytes: Int64

    public init(bytesSent: Int64, totalBytes: Int64) {
        self.bytesSent = bytesSent
        self.totalBytes = totalBytes
    }
}

extension PassphraseSource {
    /// The environment variable when set; otherwise, when standard input is a terminal, a prompt on
    /// /dev/tty without echo (one at a time, each key asked once). Never prompts without a terminal.
    public static func environmentOrTerminal(_ name: String = "DROVER_SSH_PASSPHRASE") -> PassphraseSource {
        let cache = TerminalPrompt()
        return PassphraseSource { keyPath in
            if let value = ProcessInfo.processInfo.environment[name] { return value }
            guard isatty(0) == 1 else { return nil }
            return cache.passphrase(for: keyPath)
        }
    }
}

/// Asks for passphrases on the controlling terminal, echo off; serialised, cached per key.
final class TerminalPrompt: Sendable {
    private let answers = Locked<[String: String]>([:])

    func passphrase(for keyPath: String) -> String? {
        answers.withLock { answers in
            if let known = answers[keyPath] { return known }
            guard let answer = Self.ask("Passphrase for \(keyPath): ") else { return nil }
            answers[keyPath] = answer
            return answer
        }
    }

    static func ask(_ prompt: String) -> String? {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var original = termios()
        guard tcgetattr(fd, &original) == 0 else { return nil }
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(fd, TCSAFLUSH, &silent)
        defer { tcsetattr(fd, TCSAFLUSH, &original) }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        _ = write(fd, "\n", 1)
        return String(decoding: bytes, as: UTF8.self)
    }
}
