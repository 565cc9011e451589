import Foundation

/// A real `ssh-agent` on its own socket, stopped by pid.
public final class SSHAgent: @unchecked Sendable {
    public let socketPath: String
    private let process: ChildProcess

    /// Starts `ssh-agent -D -a SOCKET` and waits for its socket.
    public init() throws {
        socketPath = try temporaryDirectory("agent") + "/agent.sock"
        process = try Processes.spawn("/usr/bin/ssh-agent", ["-D", "-a", socketPath])
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                stop()
                throw FixtureError.commandFailed("ssh-agent", "no socket at \(socketPath)")
            }
            usleep(10_000)
        }
    }

    deinit { stop() }

    /// Loads a private key into the agent.
    public func add(_ privateKey: String) throws {
        let result = try Processes.run("/usr/bin/ssh-add", ["-q", privateKey], environment: ["SSH_AUTH_SOCK": socketPath])
        guard result.status == 0 else { throw FixtureError.commandFailed("ssh-add", result.stderr) }
    }

    public func stop() {
        Processes.stop(process)
    }
}

/// A TCP listener that accepts connections and never says anything, like a hung server.
public final class BlackholeListener: @unchecked Sendable {
    public let address: String
    public let port: Int
    private var fd: Int32

    public init() throws {
        port = 2222
        address = LoopbackAddresses.next(port: port)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, address, &socketAddress.sin_addr)
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else { throw FixtureError.commandFailed("listen", String(cString: strerror(errno))) }
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}
