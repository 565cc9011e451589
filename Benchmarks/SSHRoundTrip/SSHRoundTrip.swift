import DroverSSH
import DroverTestSupport
import Foundation

/// Measures Drover's SSH layer against OpenSSH's `ssh` client on one loopback sshd, in the same run:
/// a full connection (connect, authenticate, run `true`), and 200 sequential `true` commands over one
/// connection (Drover: one session, a channel per command; OpenSSH: a ControlMaster socket, one `ssh`
/// process per command). Prints both and the ratio; rerun with `make bench`.
@main
@MainActor
struct SSHRoundTrip {
    nonisolated static let connections = 10
    nonisolated static let commands = 200

    static func main() async throws {
        guard SSHServer.isAvailable else {
            print(SSHServer.unavailableReason)
            exit(1)
        }
        let server = try await Processes.offPool { try SSHServer() }
        defer { server.stop() }
        let keys = try TestKeys.shared()
        let knownHosts = try server.writeKnownHosts()
        let options = SSHOptions(
            identityFiles: [keys.ed25519.privateKey], agentSocket: nil, passphrase: .none,
            knownHostsFile: knownHosts, hostKeyPolicy: .strict)
        let sshBase = [
            "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", "UserKnownHostsFile=\(knownHosts)", "-i", keys.ed25519.privateKey,
            "-p", String(server.port), "-l", UserAccount.name,
        ]

        // Warm up both sides once (key loading, page cache).
        _ = try await SSHClient.connect(to: server.endpoint, options: options).run("true")
        _ = try Processes.run("/usr/bin/ssh", sshBase + [server.address, "true"])

        var droverConnect: [Duration] = []
        var sshConnect: [Duration] = []
        for _ in 0..<connections {
            droverConnect.append(
                try await measure {
                    let client = try await SSHClient.connect(to: server.endpoint, options: options)
                    _ = try await client.run("true")
                    await client.close()
                })
            sshConnect.append(
                try await measure {
                    let result = try await Processes.offPool {
                        try Processes.run("/usr/bin/ssh", sshBase + [server.address, "true"])
                    }
                    guard result.status == 0 else { throw FixtureError.commandFailed("ssh", result.stderr) }
                })
        }

        let client = try await SSHClient.connect(to: server.endpoint, options: options)
        let droverCommands = try await measure {
            for _ in 0..<commands { _ = try await client.run("true") }
        }
        await client.close()

        let control = try temporaryDirectory("bench") + "/control"
        let master =
            sshBase + ["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-S", control, "-f", "-N", server.address]
        guard try Processes.run("/usr/bin/ssh", master).status == 0 else {
            throw FixtureError.commandFailed("ssh -M", "")
        }
        let sshCommands = try await measure {
            try await Processes.offPool {
                for _ in 0..<commands {
                    let result = try Processes.run(
                        "/usr/bin/ssh", sshBase + ["-o", "ControlMaster=no", "-S", control, server.address, "true"])
                    guard result.status == 0 else { throw FixtureError.commandFailed("ssh -S", result.stderr) }
                }
            }
        }
        _ = try Processes.run("/usr/bin/ssh", sshBase + ["-S", control, "-O", "exit", server.address])

        let sshVersion = try Processes.run("/usr/bin/ssh", ["-V"]).stderr.trimmingCharacters(
            in: .whitespacesAndNewlines)
        print(
            "Drover SSH benchmark: loopback sshd, \(sshVersion), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print(row("", "drover", "OpenSSH ssh", "ssh / drover"))
        let connectDrover = median(droverConnect)
        let connectSSH = median(sshConnect)
        print(
            row(
                "connect+auth+true (median of \(connections))", ms(connectDrover), ms(connectSSH),
                ratio(connectSSH, connectDrover)))
        print(
            row(
                "\(commands) x true on one connection", ms(droverCommands), ms(sshCommands) + " (ControlMaster)",
                ratio(sshCommands, droverCommands)))
        print(
            row(
                "per command", ms(droverCommands / commands), ms(sshCommands / commands),
                ratio(sshCommands, droverCommands)))
    }

    @MainActor static func measure(_ body: () async throws -> Void) async throws -> Duration {
        let start = ContinuousClock.now
        try await body()
        return ContinuousClock.now - start
    }

    static func median(_ values: [Duration]) -> Duration { values.sorted()[values.count / 2] }

    static func ms(_ value: Duration) -> String {
        let (seconds, attoseconds) = value.components
        return String(format: "%.2f ms", Double(seconds) * 1000 + Double(attoseconds) / 1e15)
    }

    static func ratio(_ a: Duration, _ b: Duration) -> String {
        String(format: "%.1fx", a / b)
    }

    static func row(_ a: String, _ b: String, _ c: String, _ d: String) -> String {
        a.padding(toLength: 42, withPad: " ", startingAt: 0) + b.padding(toLength: 14, withPad: " ", startingAt: 0)
            + c.padding(toLength: 28, withPad: " ", startingAt: 0) + d
    }
}
