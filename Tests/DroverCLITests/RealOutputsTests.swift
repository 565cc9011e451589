import DroverTestSupport
import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// What real Chef Backend nodes print beyond the seeds, end to end: progress indicators, a deposed leader, a
/// node that is not part of a cluster.
@Suite("what real chef-backend nodes print", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct RealOutputsTests {
    @Test func progressIndicatorsReadAsTextEverywhere() async throws {
        try await SandboxCluster.with { cluster in
            let junit = cluster.scratch("junit.xml")
            let html = cluster.scratch("run.html")
            let run = try await cluster.drover(["upgrade", "--yes", "--junit", junit, "--html", html])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            // The simulator draws a bar with carriage returns and ANSI sequences before "Restarting services".
            func clean(_ text: String, _ what: String) {
                #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x0D }, "\(what) has none")
            }
            clean(run.stdout, "the console")
            #expect(run.stdout.contains("be2| Restarting services\n"), "\(run.stdout)")
            let transcript = try #require(
                StateReader.file("transcript.jsonl", in: cluster.stateDirectory), "the run's transcript")
            #expect(!transcript.contains("\\u001b") && !transcript.contains("\\r"), "the transcript")
            #expect(transcript.contains("Restarting services"))
            let report = try String(contentsOfFile: html, encoding: .utf8)
            clean(report, "the HTML report")
            #expect(report.contains("Restarting services") && !report.contains("[?25l"))
            let xml = try String(contentsOfFile: junit, encoding: .utf8)
            clean(xml, "JUnit")
            #expect(XMLParser(data: Data(xml.utf8)).parse(), "JUnit is valid XML 1.0")
        }
    }

    @Test func aDeposedLeaderIsNotYetRejoined() async throws {
        try await SandboxCluster.with { cluster in
            // Just after a failover: be2 leads, be1 still reads deposed_leader (its services restarting).
            let store = cluster.sandbox.store
            try await Processes.offPool {
                try store.update { state, now in
                    guard let be1 = state.index("be1") else { return }
                    state.setLeader("be2", at: now)
                    state.setPhase(be1, .rejoining(until: now + 3600), at: now)
                    if let be2 = state.index("be2") { state.setPhase(be2, .synced, at: now) }
                }
            }
            let status = try await cluster.drover(["status"])
            #expect(
                status.stdout.contains("be1 (") && status.stdout.contains("): deposed_leader, version"),
                "\(status.stdout)")
            // A wait for be1 does not take it for rejoined, and says what it saw.
            let playbook = cluster.scratch("wait-be1.yml")
            try """
            name: wait-be1
            description: Wait until be1 has rejoined.
            preflight: none
            steps:
              - name: wait
                target: node:be1
                actions:
                  - wait: rejoined
                    timeout: 2s
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let run = try await cluster.drover(["run", playbook, "--yes"])
            #expect(run.status != 0, "\(run.stdout)")
            #expect(run.stdout.contains("rejoined did not hold on be1 within 2s: role deposed_leader"), "\(run.stdout)")
        }
    }

    /// Since chef-backend 1.3.2 `pgsql-promote` waits up to 5 minutes: a promotion that takes long (seconds
    /// here) is waited for under the default failover timeout, with no second failover and one node out at a time.
    @Test func aPromotionThatTakesLongIsWaitedFor() async throws {
        try await SandboxCluster.with { cluster in
            // The inventory's own failover timeout goes: the default (10m) applies.
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            inventory = inventory.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("  failover:") }.joined(separator: "\n")
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let plan = try await cluster.drover(["plan"])
            #expect(plan.stdout.contains("wait a node other than be1 is leader (within 10m)"), "\(plan.stdout)")

            let seconds = 5.0
            try await cluster.breakNode("be1", "slow-promotion", String(seconds))
            let run = try await cluster.drover(["upgrade", "--yes", "--json"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            let events = run.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let leaderStep = events.first {
                $0["event"] as? String == "step_finished" && $0["step"] as? String == "upgrade-leader"
            }
            #expect(leaderStep?["outcome"] as? String == "succeeded", "\(String(describing: leaderStep))")
            #expect((leaderStep?["duration_s"] as? Double ?? 0) >= seconds, "the promotion took its time")
            try await expectUpgradedSafely(cluster)
            #expect(await cluster.started("chef-backend-ctl upgrade --failover", on: "be1") == 1, "one failover")
        }
    }

    @Test func aNodeNotPartOfAClusterIsNamed() async throws {
        try await SandboxCluster.with { cluster in
            // be3 comes back as a newly installed machine: chef-backend-ctl cluster-status exits 1 there.
            try await cluster.sandbox.heal("be3", fresh: true)
            let status = try await cluster.drover(["status"])
            #expect(
                status.stdout.contains(
                    "be3 (") && status.stdout.contains("NOT PART OF A CLUSTER (cluster-status exited 1: "),
                "\(status.stdout)")
            let json = try await cluster.drover(["status", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let nodes = try #require(object["nodes"] as? [[String: Any]])
            #expect(nodes.first { $0["name"] as? String == "be3" }?["in_cluster"] as? Bool == false)
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.status == 1, "\(diagnosis.stdout)")
            #expect(
                diagnosis.stdout.contains(
                    "Situation: not-in-cluster: be3 is not part of a cluster: its chef-backend-ctl cluster-status exits 1"
                ),
                "\(diagnosis.stdout)")
            #expect(
                diagnosis.stdout.contains("  Only if be3 is a new or rebuilt machine that should take its place, run:"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty)
        }
    }
}
