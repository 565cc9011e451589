import DroverSSH
import Foundation

/// How to start one OpenSSH server for a test.
public struct SSHServerConfiguration: Sendable {
    /// Port to listen on (each server has its own loopback address, so ports never collide).
    public var port: Int
    /// Public key lines accepted for the login user; defaults to the shared test ed25519 and ECDSA keys.
    public var authorizedKeys: [String]?
    /// Environment set by sshd in every session (`SetEnv`), e.g. a simulated node's identity.
    public var environment: [String: String]
    /// Host key types to generate (`ed25519`, `ecdsa`, `rsa`).
    public var hostKeyTypes: [String]
    /// sshd's LogLevel (`DEBUG1` shows keepalive requests).
    public var logLevel: String
    /// Extra sshd_config lines.
    public var extraConfig: [String]
    /// Directories bind-mounted over paths inside the server's own mount namespace (needs root):
    /// sessions see `source` at `target`; the rest of the machine does not.
    public var bindMounts: [(source: String, target: String)]
    /// The machine's own name (`uname -n`) its sessions see, in a UTS namespace of its own (needs root, and
    /// bind mounts); nil leaves this machine's.
    public var hostname: String?
    /// Address to listen on; nil picks a free 127.0.x.y.
    public var address: String?
    /// The server's directory; nil makes a temporary one. Host keys already there are reused.
    public var directory: String?

    public init(
        port: Int = 2222, authorizedKeys: [String]? = nil, environment: [String: String] = [:],
        hostKeyTypes: [String] = ["ed25519", "ecdsa"], logLevel: String = "VERBOSE",
        extraConfig: [String] = [], bindMounts: [(source: String, target: String)] = [],
        hostname: String? = nil, address: String? = nil, directory: String? = nil
    ) {
        self.port = port
        self.authorizedKeys = authorizedKeys
        self.environment = environment
        self.hostKeyTypes = hostKeyTypes
        self.logLevel = logLevel
        self.extraConfig = extraConfig
        self.bindMounts = bindMounts
        self.hostname = hostname
        self.address = address
        self.directory = directory
    }
}

/// A real OpenSSH server (`/usr/sbin/sshd`) on a loopback address, stopped by pid.
public final class SSHServer: @unchecked Sendable {
    /// The path of OpenSSH's server.
    public static let sshdPath = "/usr/sbin/sshd"

    /// True when sshd and ssh-keygen are installed.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: sshdPath)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh-keygen")
    }

    /// Why tests that need sshd are skipped.
    public static let unavailableReason =
        "OpenSSH server not installed: run `apt-get install -y openssh-server` (or `make test`, which installs it)"

    public let address: String
    public let port: Int
    /// The server's private directory (config, host keys, log).
    public let directory: String
    /// The host's public keys, one `type base64` line each.
    public let hostPublicKeys: [String]
    private let process: ChildProcess

    public var endpoint: SSHEndpoint { SSHEndpoint(host: address, port: port) }
    public var pid: pid_t { process.pid }
    /// sshd's log so far.
    public var log: String { (try? String(contentsOfFile: directory + "/sshd.log", encoding: .utf8)) ?? "" }

    /// Starts a server and waits until it answers with an SSH banner.
    public init(_ configuration: SSHServerConfiguration = SSHServerConfiguration()) throws {
        guard Self.isAvailable else { throw FixtureError.unavailable(Self.unavailableReason) }
        let keys = try TestKeys.shared()
        port = configuration.port
        address = configuration.address ?? LoopbackAddresses.next(port: configuration.port)
        if let chosen = configuration.directory {
            try FileManager.default.createDirectory(atPath: chosen, withIntermediateDirectories: true)
            directory = chosen
        } else {
            directory = try temporaryDirectory("sshd-\(address)")
        }
        if geteuid() == 0 {
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        }

        var publicKeys: [String] = []
        var config = [
            "ListenAddress \(address.contains(":") ? "[\(address)]" : address):\(port)",
            "AuthorizedKeysFile \(directory)/authorized_keys",
            "PidFile \(directory)/sshd.pid",
            "UsePAM no",
            "StrictModes no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "Subsystem sftp internal-sftp",
            "MaxStartups 100:30:200",
            "MaxSessions 50",
            "LogLevel \(configuration.logLevel)",
        ]
        for type in configuration.hostKeyTypes {
            let path = "\(directory)/ssh_host_\(type)_key"
            if !FileManager.default.fileExists(atPath: path) {
                let result = try Processes.run("/usr/bin/ssh-keygen", ["-q", "-t", type, "-N", "", "-f", path])
                guard result.status == 0 else { throw FixtureError.commandFailed("ssh-keygen", result.stderr) }
            }
            config.append("HostKey \(path)")
            let line = try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ").prefix(2)
                .joined(separator: " ")
            publicKeys.append(line)
        }
        hostPublicKeys = publicKeys
        // A private HOME keeps the login user's dotfiles (a slow ~/.bashrc, say) out of tests and benchmarks.
        let home = directory + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var environment = ["HOME": home]
        environment.merge(configuration.environment) { $1 }
        let pairs = environment.sorted { $0.key < $1.key }.map { "\"\($0.key)=\($0.value)\"" }
        config.append("SetEnv " + pairs.joined(separator: " "))
        config += configuration.extraConfig
        try config.joined(separator: "\n").appending("\n").write(
            toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
        let authorized =
            configuration.authorizedKeys ?? [
                keys.ed25519.publicKey, keys.ecdsa.publicKey, keys.encrypted.publicKey, keys.rsa.publicKey,
            ]
        try authorized.joined(separator: "\n").appending("\n").write(
            toFile: directory + "/authorized_keys", atomically: true, encoding: .utf8)

        let check = try Processes.run(Self.sshdPath, ["-t", "-f", directory + "/sshd_config"])
        guard check.status == 0 else { throw FixtureError.serverDidNotStart(address, check.stderr) }

        let sshdArguments = ["-D", "-f", directory + "/sshd_config", "-E", directory + "/sshd.log"]
        if configuration.bindMounts.isEmpty {
            process = try Processes.spawn(Self.sshdPath, sshdArguments)
        } else {
            var script = "set -e\n"
            for mount in configuration.bindMounts {
                script +=
                    "mkdir -p \(ShellQuote.quote(mount.target))\nmount --bind \(ShellQuote.quote(mount.source)) \(ShellQuote.quote(mount.target))\n"
            }
            if let hostname = configuration.hostname { script += "hostname \(ShellQuote.quote(hostname))\n" }
            script += "exec " + ShellQuote.join([Self.sshdPath] + sshdArguments) + "\n"
            let namespaces = ["--mount"] + (configuration.hostname == nil ? [] : ["--uts"])
            process = try Processes.spawn(
                "/usr/bin/unshare", namespaces + ["--propagation", "private", "/bin/sh", "-c", script],
                stderr: directory + "/sshd.log")
        }
        do {
            try waitUntilReady()
        } catch {
            stop()
            throw error
        }
    }

    deinit {
        if !detached { stop() }
    }

    private var detached = false

    /// Leaves the server running after this object and this process are gone (the sandbox stops it
    /// later by pid).
    public func detach() {
        detached = true
        Processes.unregister(process.pid)
    }

    /// Starts servers in parallel, off the cooperative pool; if one fails, the others are stopped.
    public static func start(_ configurations: [SSHServerConfiguration]) async throws -> [SSHServer] {
        try await withThrowingTaskGroup(of: (Int, SSHServer).self) { group in
            for (index, configuration) in configurations.enumerated() {
                group.addTask {
                    // Await first, then form the tuple (swiftlang/swift#91911; see SSHClient.connectAll).
                    let server = try await Processes.offPool { try SSHServer(configuration) }
                    return (index, server)
                }
            }
            var servers: [(Int, SSHServer)] = []
            do {
                for try await server in group { servers.append(server) }
            } catch {
                for (_, server) in servers { server.stop() }
                throw error
            }
            return servers.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Stops the server and every session process it started, by pid.
    public func stop() {
        let pid = process.pid
        guard process.isRunning else { return }
        let children = Processes.descendantIdentities(of: pid)
        Processes.stop(process)
        for child in children { Processes.stop(child, grace: .milliseconds(500)) }
    }

    /// A known_hosts line for this server (`[address]:port type key`), optionally only for one key type.
    public func knownHostsLines(types: [String]? = nil) -> [String] {
        let name = KnownHosts.hostField(host: address, port: port)
        return
            hostPublicKeys
            .filter { line in types.map { $0.contains(String(line.split(separator: " ")[0])) } ?? true }
            .map { "\(name) \($0)" }
    }

    /// Writes a known_hosts file listing this server's keys and returns its path.
    public func writeKnownHosts(types: [String]? = nil, in directory: String? = nil) throws -> String {
        let folder = try directory ?? temporaryDirectory("known-hosts")
        let path = folder + "/known_hosts"
        try knownHostsLines(types: types).joined(separator: "\n").appending("\n").write(
            toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Writes a Drover inventory for one backend `n1` on this server (with its known_hosts beside it) and
    /// returns its path; `sshSettings` are extra lines of the `ssh:` section, e.g. `sudo: true`.
    public func writeInventory(cluster: String, identityFile: String, sshSettings: [String] = []) throws -> String {
        let directory = try temporaryDirectory(cluster)
        let knownHosts = try writeKnownHosts(in: directory)
        let path = directory + "/inv.yml"
        let settings = sshSettings.map { "\n  \($0)" }.joined()
        try """
        cluster: \(cluster)
        ssh:
          user: \(UserAccount.name)
          port: \(port)
          identity_files: [\(identityFile)]
          known_hosts: \(knownHosts)\(settings)
        backends:
          - name: n1
            host: \(address)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func waitUntilReady() throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw FixtureError.serverDidNotStart(address, log) }
            if Self.readsBanner(address: address, port: port) { return }
            usleep(20_000)
        }
        throw FixtureError.serverDidNotStart(address, "no SSH banner within 15 s\n" + log)
    }

    /// True when `address:port` accepts TCP and sends an SSH banner.
    static func readsBanner(address: String, port: Int) -> Bool {
        let stream = InputStreamReader(address: address, port: port)
        return stream?.readPrefix(4)?.starts(with: "SSH-") ?? false
    }
}

/// Starts several servers and stops them when `body` ends, also when it throws.
public func withSSHServers<T>(
    _ configurations: [SSHServerConfiguration],
    _ body: ([SSHServer]) async throws -> T
) async throws -> T {
    // The shared client keys are generated (ssh-keygen) on first use: do that here, off the pool, rather
    // than in a test's synchronous helper on a pool thread that other tests would queue behind.
    _ = try await Processes.offPool { try TestKeys.shared() }
    let servers = try await SSHServer.start(configurations)
    do {
        let result = try await body(servers)
        try await Processes.offPool { for server in servers { server.stop() } }
        return result
    } catch {
        _ = try? await Processes.offPool { for server in servers { server.stop() } }
        throw error
    }
}

/// Starts one server for the duration of `body`.
public func withSSHServer<T>(
    _ configuration: SSHServerConfiguration = SSHServerConfiguration(),
    _ body: (SSHServer) async throws -> T
) async throws -> T {
    try await withSSHServers([configuration]) { try await body($0[0]) }
}

/// A tiny blocking TCP reader for readiness checks.
struct InputStreamReader {
    private let fd: Int32

    init?(address: String, port: Int) {
        let family = address.contains(":") ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected: Bool
        if family == AF_INET {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, address, &socketAddress.sin_addr)
            connected = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        } else {
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, address, &socketAddress.sin6_addr)
            connected = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
                }
            }
        }
        guard connected else {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    func readPrefix(_ count: Int) -> String? {
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = recv(fd, &buffer, count, Int32(MSG_WAITALL))
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }
}
