import DroverSSH
import DroverSandbox
import DroverTestSupport
import Foundation
import Testing

/// The sandbox needs root (port 22, bind mounts in private mount namespaces) and OpenSSH's server.
let sandboxAvailable = geteuid() == 0 && SSHServer.isAvailable

@Suite(
    "drover-sandbox lifecycle, end to end",
    .enabled(if: sandboxAvailable, "needs root and openssh-server (make test installs it; run as root)"),
    .timeLimit(.minutes(3 * TestTime.factor)))
struct SandboxLifecycleTests {
    func sandbox(_ arguments: [String], dir: String) async throws -> Processes.Output {
        try await Processes.offPool {
            try Processes.run(DroverBinary.builtProduct("drover-sandbox"), arguments + ["--dir", dir])
        }
    }

    func options(_ sandbox: Sandbox) -> SSHOptions {
        SSHOptions(
            user: "root", identityFiles: [sandbox.identityPath], agentSocket: nil, passphrase: .none,
            knownHostsFile: sandbox.knownHostsPath, hostKeyPolicy: .strict,
            connectTimeout: .seconds(3), sessionTimeout: .seconds(10))
    }

    @Test func upCommandsBreakHealDown() async throws {
        let dir = try temporaryDirectory("sandbox-test") + "/sandbox"
        let up = try await sandbox(["up", "--delay-scale", "0.05"], dir: dir)
        #expect(up.status == 0, "\(up.stderr)")
        let box = Sandbox(directory: dir)
        guard let record = box.record() else {
            Issue.record("no sandbox record: \(up.stderr)")
            return
        }
        var pids = record.nodes.compactMap(\.pid)
        do {
            #expect(up.stdout.contains(box.inventoryPath))
            // Every hint names this sandbox's directory, so that pasted it acts on this one.
            for hint in ["break be2 upgrade-fails --dir \(dir)", "heal be2 --dir \(dir)", "down --dir \(dir)"] {
                #expect(up.stdout.contains("drover-sandbox " + hint + "\n"), "\(up.stdout)")
            }
            let again = try await sandbox(["up"], dir: dir).stderr
            #expect(
                again.contains("already running") && again.contains("`drover-sandbox down --dir \(dir)`"), "\(again)")
            let inventory = try String(contentsOfFile: box.inventoryPath, encoding: .utf8)
            for node in record.nodes { #expect(inventory.contains("host: \(node.address)")) }

            // Every node answers over real SSH with its own identity, verified against known_hosts.
            var clients: [String: SSHClient] = [:]
            for node in record.nodes {
                clients[node.name] = try await SSHClient.connect(
                    to: SSHEndpoint(host: node.address, port: 22), options: options(box))
            }
            let status = try await clients["be2"]!.run("chef-backend-ctl status")
            #expect(status.succeeded && status.stdoutText.contains("leader: 1; waiting: 0; follower: 2; total: 3"))
            let clusterStatus = try await clients["be3"]!.run("chef-backend-ctl cluster-status").stdoutText
            for node in record.nodes { #expect(clusterStatus.contains(node.address)) }
            #expect(try await clients["be1"]!.run("chef-backend-ctl frobnicate").exitStatus != 0)

            // Node-local paths are private to each node.
            _ = try await clients["be1"]!.run("echo be1-only > /var/tmp/marker; echo x > /var/opt/chef-backend/x")
            #expect(try await clients["be2"]!.run("test -e /var/tmp/marker").exitStatus == 1)
            #expect(
                !FileManager.default.fileExists(atPath: "/var/tmp/marker"), "the workstation's /var/tmp is untouched")
            #expect(try await clients["be1"]!.run("cat /var/tmp/marker").stdoutText == "be1-only\n")
            #expect(try await clients["be2"]!.run("ls /var/tmp").stdoutText == "chef-backend_2.3.16-1_amd64.deb\n")
            // The services' logs that Chef's guides and Drover's advice point to are there.
            #expect(
                try await clients["be2"]!.run("cat /var/log/chef-backend/leaderl/current").stdoutText.contains(
                    "leaderl started"))

            // Every command is logged with its node.
            let log = try String(contentsOfFile: box.commandLog, encoding: .utf8)
            #expect(log.contains(#""command":"chef-backend-ctl status","event":"started","node":"be2""#))
            #expect(log.contains(#""event":"finished","exit_status":0"#))

            // break / heal
            #expect(try await sandbox(["break", "be2", "unreachable"], dir: dir).status == 0)
            await #expect(throws: SSHError.self) {
                _ = try await SSHClient.connect(
                    to: SSHEndpoint(host: record.nodes[1].address, port: 22), options: options(box))
            }
            #expect(try await clients["be1"]!.run("chef-backend-ctl status leaderl").stdoutText.contains("follower: 1"))
            #expect(try await sandbox(["break", "be9", "unreachable"], dir: dir).stderr.contains("no node named be9"))
            #expect(try await sandbox(["heal", "be2"], dir: dir).status == 0)
            pids = box.record()?.nodes.compactMap(\.pid) ?? pids
            let healed = try await SSHClient.connect(
                to: SSHEndpoint(host: record.nodes[1].address, port: 22), options: options(box))
            #expect(try await healed.run("true").succeeded, "same host key after the restart")
            #expect(try await sandbox(["status"], dir: dir).stdout.contains("be2"))
            for client in clients.values { await client.close() }
            await healed.close()
        } catch {
            _ = try? await sandbox(["down"], dir: dir)
            throw error
        }

        let down = try await sandbox(["down"], dir: dir)
        #expect(down.status == 0, "\(down.stderr)")
        for pid in pids { #expect(!Processes.isAlive(pid), "sshd \(pid) stopped") }
        #expect(!FileManager.default.fileExists(atPath: dir), "no file left behind")
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        #expect(!mounts.contains(dir))
        #expect(try await sandbox(["down"], dir: dir).stderr.contains("no sandbox"))
    }

    /// `break --help` lists every fault of every node kind; `status` lists the frontends.
    @Test func helpAndStatusCoverTheFrontends() async throws {
        let help = try await sandbox(["break", "--help"], dir: "/nonexistent")
        for fault in ["upgrade-fails", "frontend-upgrade-fails", "frontend-does-not-start", "drbd-split-brain"] {
            #expect(help.stdout.contains(fault), "\(help.stdout)")
        }
        let words = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("or a frontend (fe1, ...)"), "the node argument names frontends: \(words)")
        let dir = try temporaryDirectory("sandbox-test") + "/sandbox"
        let up = try await sandbox(["up", "--delay-scale", "0.05", "--frontends", "1"], dir: dir)
        #expect(up.status == 0, "\(up.stderr)")
        let status = try await sandbox(["status"], dir: dir)
        _ = try await sandbox(["down"], dir: dir)
        #expect(
            status.stdout.split(separator: "\n").contains { $0.hasPrefix("fe1 ") && $0.contains("frontend") },
            "\(status.stdout)")
    }
}
