import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// `$HOME` as OpenSSH and XDG tools read it, and which recorded runs belong to which cluster.
@Suite(
    "HOME, XDG_STATE_HOME and the runs of clusters that share a name", needsSandbox,
    .timeLimit(.minutes(3 * TestTime.factor)))
struct HomeAndHistoryTests {
    /// The journals recorded under a state directory, as `cluster/run-id` paths.
    static func journals(under state: String) -> [String] {
        let clusters = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
        return clusters.flatMap { cluster in
            ((try? FileManager.default.contentsOfDirectory(atPath: state + "/" + cluster)) ?? [])
                .filter { FileManager.default.fileExists(atPath: "\(state)/\(cluster)/\($0)/journal.json") }
                .map { "\(cluster)/\($0)" }
        }
    }

    @Test func runsAreRecordedUnderHomeOrXDGStateHome() async throws {
        try await SandboxCluster.with { cluster in
            let first = try await cluster.drover(["run", "set-failover", "--set", "state=on", "--yes"])
            #expect(first.status == 0, "\(first.stderr)")
            let home = try await Processes.offPool { Self.journals(under: cluster.home + "/.local/state/drover") }
            #expect(
                home.count == 1 && home[0].hasPrefix("sandbox/"), "journal under $HOME/.local/state/drover: \(home)")

            let xdg = try temporaryDirectory("xdg")
            let second = try await cluster.drover(
                ["run", "set-failover", "--set", "state=on", "--yes"], environment: ["XDG_STATE_HOME": xdg])
            #expect(second.status == 0, "\(second.stderr)")
            #expect(
                try await Processes.offPool { Self.journals(under: xdg + "/drover") }.count == 1,
                "XDG_STATE_HOME wins over HOME")
            #expect(
                try await Processes.offPool { Self.journals(under: cluster.home + "/.local/state/drover") }.count == 1)

            let runs = try await DroverBinary.run(["runs"], environment: cluster.environment)
            #expect(
                runs.stdout.contains(String(home[0].dropFirst("sandbox/".count))),
                "drover runs reads $HOME: \(runs.stdout)")
        }
    }

    @Test func tildeInTheInventoryIsHome() async throws {
        try await SandboxCluster.with { cluster in
            let ssh = cluster.home + "/.ssh"
            try await Processes.offPool {
                try FileManager.default.createDirectory(
                    atPath: ssh, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try FileManager.default.copyItem(atPath: cluster.sandbox.identityPath, toPath: ssh + "/id_ed25519")
                try FileManager.default.copyItem(atPath: cluster.sandbox.knownHostsPath, toPath: ssh + "/known_hosts")
                var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
                inventory = inventory.replacingOccurrences(of: cluster.sandbox.identityPath, with: "~/.ssh/id_ed25519")
                    .replacingOccurrences(of: cluster.sandbox.knownHostsPath, with: "~/.ssh/known_hosts")
                try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            }
            let output = try await cluster.drover(["exec", "--", "true"])
            #expect(output.status == 0, "~ is $HOME: \(output.stderr)")
            let elsewhere = try temporaryDirectory("other-home")
            let refused = try await cluster.drover(["exec", "--", "true"], environment: ["HOME": elsewhere])
            #expect(refused.status == 2)
            #expect(
                refused.stderr.contains(elsewhere + "/.ssh/known_hosts"),
                "the other HOME's known_hosts: \(refused.stderr)")
        }
    }

    @Test func runsOfAnotherClusterWithTheSameNameAreIgnored() async throws {
        let home = try temporaryDirectory("shared-home")
        let environment = ["HOME": home]
        // Cluster A: an upgrade that fails on be2 after failover was turned off.
        try await SandboxCluster.with { first in
            try await first.breakNode("be2", "upgrade-fails")
            let failed = try await first.drover(["upgrade", "--yes"], environment: environment)
            #expect(failed.status == 1, "\(failed.stdout)\n\(failed.stderr)")
            let diagnosis = try await first.drover(["diagnose"], environment: environment)
            #expect(
                diagnosis.stdout.contains("cluster failover was left off by run"),
                "A's own run left failover off: \(diagnosis.stdout)")
        }
        // Cluster B: the same `cluster:` name, other nodes, the same HOME.
        try await SandboxCluster.with { second in
            let diagnosis = try await second.drover(["diagnose"], environment: environment)
            #expect(diagnosis.status == 0, "B is healthy: \(diagnosis.stdout)\n\(diagnosis.stderr)")
            #expect(!diagnosis.stdout.contains("failover was left off"), "\(diagnosis.stdout)")
            #expect(
                diagnosis.stderr.contains("ignoring 1 recorded run of cluster name 'sandbox'"), "\(diagnosis.stderr)")

            let resume = try await second.drover(["resume", "--yes"], environment: environment)
            #expect(
                resume.status == 0 && resume.stdout.contains("Nothing to resume"), "\(resume.stdout)\n\(resume.stderr)")
            #expect(resume.stderr.contains("ignoring 1 recorded run"))
            #expect(
                (await second.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty,
                "nothing of A's run was resumed on B")

            let plan = second.home + "/plan.json"
            let planned = try await second.drover(["plan", "--out", plan], environment: environment)
            #expect(planned.status == 0, "\(planned.stderr)")
            let text = try await Processes.offPool { try String(contentsOfFile: plan, encoding: .utf8) }
            #expect(text.contains(#""failover":"unknown""#), "the plan does not take A's failover flag for B's")
            #expect(planned.stderr.contains("ignoring 1 recorded run"))
        }
    }

    @Test func aHalfUpgradedClusterIsContinuedByAFreshUpgrade() async throws {
        try await SandboxCluster.with { cluster in
            // be2 upgraded by hand; Elasticsearch is yellow while versions are mixed, as documented.
            let manual = try await cluster.drover([
                "exec", "--node", "be2", "--",
                "dpkg -i /var/tmp/chef-backend_2.3.16-1_amd64.deb && chef-backend-ctl upgrade",
            ])
            #expect(manual.status == 0, "\(manual.stderr)")
            let deadline = ContinuousClock.now + .seconds(60)
            // The simulator applies transitions when its state is next updated: statusReport() does that.
            let sandbox = cluster.sandbox
            while ContinuousClock.now < deadline {
                _ = try await Processes.offPool { try sandbox.statusReport() }
                if try await cluster.state().node("be2")?.phase == .synced { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await cluster.state().node("be2")?.phase == .synced, "be2 synced after its manual upgrade")
            let status = try await cluster.drover(["status"])
            #expect(status.stdout.contains("state: yellow"), "\(status.stdout)")
            let plan = try await cluster.drover(["plan"])
            #expect(plan.status == 0, "yellow with mixed versions passes pre-flight: \(plan.stdout)\n\(plan.stderr)")
            #expect(plan.stdout.contains("expected while versions are mixed"), "\(plan.stdout)")
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
            try await expectUpgradedSafely(cluster)
        }
    }
}
