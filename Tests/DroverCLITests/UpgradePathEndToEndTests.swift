import DroverTestSupport
import Foundation
import Testing

/// `drover plan upgrade` and `drover upgrade` choose the documented path from the live cluster.
@Suite("upgrade paths chosen from the live cluster", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct UpgradePathEndToEndTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var installed: String
        var target: String
        var fault: String? = nil
        var path: String
        /// Words the plan's text must contain.
        var says: [String]
        var testDescription: String { "\(installed) → \(target)\(fault.map { " (\($0))" } ?? ""): \(path)" }
    }

    static let rows: [Row] = [
        Row(installed: "1.4.6", target: "2.3.16", path: "downtime-1-to-2", says: ["1.x to 2.x"]),
        Row(installed: "2.0.30", target: "3.1.1", path: "refused", says: ["upgrade to 2.3.16 first", "drover upgrade --inventory"]),
        Row(installed: "2.3.15", target: "3.1.1", fault: "es-old-index", path: "downtime-reindex", says: ["chef was created by Elasticsearch 5.4.1"]),
        Row(installed: "2.3.15", target: "3.1.1", fault: "es-index-unhealthy", path: "refused", says: ["not green: yellow open chef"]),
        Row(installed: "3.1.1", target: "4.0.0", path: "refused", says: ["no upgrade path from 3.x to 4.x"]),
        Row(installed: "1.4.6", target: "3.1.1", path: "refused", says: ["skips 2.x"]),
    ]

    @Test("a path Drover cannot run rolling is refused with its reasons, and nothing changes", arguments: rows)
    func refusedOrNotRolling(row: Row) async throws {
        try await SandboxCluster.with(versions: (row.installed, row.target)) { cluster in
            if let fault = row.fault { try await cluster.breakNode("be1", fault) }
            let plan = try await cluster.drover(["plan", "upgrade"])
            #expect(plan.status == 2, "\(plan.stdout)\n\(plan.stderr)")
            #expect(plan.stdout.contains("Path: \(row.path)"), "\(plan.stdout)")
            for words in row.says { #expect(plan.stdout.contains(words), "\(plan.stdout)") }
            #expect(plan.stdout.contains("[FAIL] path"))
            let json = try await cluster.drover(["plan", "upgrade", "--format", "json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let path = try #require(object["path"] as? [String: Any])
            #expect(path["name"] as? String == row.path)
            #expect((path["reasons"] as? [String])?.isEmpty == false)
            #expect(object["would_start"] as? Bool == false)

            let before = (await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(upgrade.status == 2, "\(upgrade.stderr)")
            #expect(upgrade.stderr.contains("pre-flight failed: path"), "\(upgrade.stderr)")
            #expect(upgrade.stderr.contains("nothing was changed"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count == before, "nothing changed")
        }
    }

    @Test func minorUpgradeIsRolling() async throws {
        try await SandboxCluster.with { cluster in
            let plan = try await cluster.drover(["plan", "upgrade", "--format", "json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
            let path = try #require(object["path"] as? [String: Any])
            #expect(path["name"] as? String == "rolling" && path["playbook"] as? String == "upgrade")
            #expect((path["reasons"] as? [String])?.first?.contains("2.3.15 → 2.3.16 stays within major version 2") == true)
            // Elasticsearch is not read for an upgrade within a major version.
            #expect(!(await cluster.log()).contains { $0.command.hasPrefix("curl") })
        }
    }

    @Test func majorUpgradeWithFreshIndexesIsRollingAndReadsOnlyTheLeader() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s", versions: ("2.3.15", "3.1.1")) { cluster in
            let plan = try await cluster.drover(["plan", "upgrade"])
            #expect(plan.status == 0, "\(plan.stdout)\n\(plan.stderr)")
            #expect(plan.stdout.contains("Path: rolling (playbook upgrade)"))
            #expect(plan.stdout.contains("created by Elasticsearch 5.6.16 or later (chef created by Elasticsearch 5.6.16)"))
            let reads = (await cluster.log()).filter { $0.event == "started" && $0.command.hasPrefix("curl") }
            #expect(reads.count == 2 && Set(reads.map(\.node)) == ["be1"], "two reads, on the leader: \(reads.map(\.command))")
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
            let status = try await cluster.drover(["status"])
            #expect(status.stdout.components(separatedBy: "3.1.1").count - 1 >= 3, "\(status.stdout)")
        }
    }

    @Test func halfUpgradedElasticsearchOnTheOldLeaderIsUpgradedAgain() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s", versions: ("2.3.15", "3.1.1")) { cluster in
            try await cluster.breakNode("be1", "es-path-scripts")
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
            #expect(upgrade.stdout.contains("finish-elasticsearch-upgrade on be1"), "\(upgrade.stdout)")
            #expect(upgrade.stdout.contains("unknown setting [path.scripts]"), "the output says why")
            let log = await cluster.log().filter { $0.event == "started" }
            let upgrades = log.filter { $0.node == "be1" && $0.command.hasPrefix("chef-backend-ctl upgrade") }.map(\.command)
            #expect(upgrades == ["chef-backend-ctl upgrade --failover", "chef-backend-ctl upgrade"], "\(upgrades)")
            for other in ["be2", "be3"] {
                #expect(log.filter { $0.node == other && $0.command.hasPrefix("chef-backend-ctl upgrade") }.count == 1, "\(other) upgraded once")
            }
            let state = try await cluster.state()
            #expect(state.nodes.allSatisfy { !$0.elasticsearchHalfUpgraded && $0.runningVersion == "3.1.1" })
        }
    }
}
