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
        let result = try Processes.run(
            "/usr/bin/ssh-add", ["-q", privateKey], environment: ["SSH_AUTH_SOCK": socketPath])
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
        fd = try LoopbackAddresses.listen(address: address, port: port)
    }

    deinit { close() }

    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }
}
