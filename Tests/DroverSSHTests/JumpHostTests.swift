import DroverSSH
import DroverTestSupport
import Foundation
import Testing

/// ProxyJump: sessions carried by a `direct-tcpip` channel of a jump host's session, against real sshd.
/// The jump hosts log at DEBUG1, where sshd records each forwarding it makes.
@Suite("jump hosts (ProxyJump)", needsSSHD, .timeLimit(.minutes(2 * TestTime.factor)))
struct JumpHostTests {
    static let jumpLogging = SSHServerConfiguration(logLevel: "DEBUG1")

    /// The forwardings sshd logged to `target`.
    static func forwardings(in server: SSHServer, to target: SSHServer) -> Int {
        server.log.components(separatedBy: "target \(target.address) port \(target.port)").count - 1
    }

    /// The sessions `server` authenticated (its readiness probe connects without authenticating).
    static func sessions(in server: SSHServer) -> Int {
        server.log.components(separatedBy: "Accepted publickey").count - 1
    }

    @Test func commandsRunThroughAJumpHostAndEveryConnectionIsItsForwarding() async throws {
        try await withSSHServers([Self.jumpLogging, SSHServerConfiguration()]) { servers in
            let (jump, target) = (servers[0], servers[1])
            let bastion = try await connect(jump)
            let client = try await SSHClient.connect(
                to: target.endpoint, options: try testOptions(for: target), through: bastion)
            let result = try await client.run("echo through; echo err >&2; exit 3")
            #expect(result.stdoutText == "through\n" && result.stderrText == "err\n" && result.exitStatus == 3)
            // Large output through the tunnel: flow control in both directions.
            let big = try await client.run("head -c 3000000 /dev/zero | tr '\\\\0' x")
            #expect(big.stdout.count == 3_000_000 && big.succeeded)
            await client.close()
            await bastion.close()
            _ = try await Processes.offPool { usleep(200_000) }
            #expect(Self.forwardings(in: jump, to: target) == 1, "the jump host forwarded one connection")
            #expect(Self.sessions(in: target) == 1, "and the target's one session came through it")
        }
    }

    @Test func twoHops() async throws {
        try await withSSHServers([Self.jumpLogging, Self.jumpLogging, SSHServerConfiguration()]) { servers in
            let (first, second, target) = (servers[0], servers[1], servers[2])
            let hop1 = try await connect(first)
            let hop2 = try await SSHClient.connect(
                to: second.endpoint, options: try testOptions(for: second), through: hop1)
            let client = try await SSHClient.connect(
                to: target.endpoint, options: try testOptions(for: target), through: hop2)
            #expect(try await client.run("echo two hops").stdoutText == "two hops\n")
            await client.close()
            await hop2.close()
            await hop1.close()
            _ = try await Processes.offPool { usleep(200_000) }
            #expect(Self.forwardings(in: first, to: second) == 1 && Self.forwardings(in: second, to: target) == 1)
        }
    }

    @Test func severalSessionsShareOneJumpSession() async throws {
        try await withSSHServers([Self.jumpLogging, SSHServerConfiguration(), SSHServerConfiguration()]) { servers in
            let jump = servers[0]
            let bastion = try await connect(jump)
            var clients: [SSHClient] = []
            for target in servers.dropFirst() {
                clients.append(
                    try await SSHClient.connect(
                        to: target.endpoint, options: try testOptions(for: target), through: bastion))
            }
            let outputs = try await withThrowingTaskGroup(of: String.self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        let result = try await client.run("sleep 0.3; echo \(index)")
                        return result.stdoutText
                    }
                }
                var all: [String] = []
                for try await output in group { all.append(output) }
                return all.sorted()
            }
            #expect(outputs == ["0\n", "1\n"])
            for client in clients { await client.close() }
            await bastion.close()
            #expect(Self.sessions(in: jump) == 1, "one session on the jump host")
        }
    }

    @Test func aWrongHostKeyAtTheJumpHostNamesTheJumpHost() async throws {
        try await withSSHServers([SSHServerConfiguration(), SSHServerConfiguration()]) { servers in
            let (jump, other) = (servers[0], servers[1])
            var options = try testOptions(for: jump)
            // known_hosts holds another host's key under the jump host's name.
            let lines = other.knownHostsLines().map {
                $0.replacingOccurrences(of: "[\(other.address)]:\(other.port)", with: "[\(jump.address)]:\(jump.port)")
            }
            let knownHosts = try temporaryDirectory("jump-keys") + "/known_hosts"
            try lines.joined(separator: "\n").appending("\n").write(
                toFile: knownHosts, atomically: true, encoding: .utf8)
            options.knownHostsFile = knownHosts
            let error = await expectSSHError { _ = try await SSHClient.connect(to: jump.endpoint, options: options) }
            guard case .hostKeyChanged(let host, let port, _, _, _, _)? = error else {
                Issue.record("expected hostKeyChanged, got \(String(describing: error))")
                return
            }
            #expect(host == jump.address && port == jump.port)
        }
    }

    @Test func aTargetTheJumpHostCannotReachNamesBoth() async throws {
        try await withSSHServer { jump in
            let bastion = try await connect(jump)
            let nowhere = SSHEndpoint(host: jump.address, port: 1)
            let error = await expectSSHError {
                _ = try await SSHClient.connect(to: nowhere, options: try testOptions(for: jump), through: bastion)
            }
            guard case .jumpFailed(let jumpName, let host, let port, _)? = error else {
                Issue.record("expected jumpFailed, got \(String(describing: error))")
                return
            }
            #expect(jumpName.contains(jump.address) && host == jump.address && port == 1)
            #expect(try await bastion.run("echo still usable").succeeded, "the jump session survives")
            await bastion.close()
        }
    }
}
