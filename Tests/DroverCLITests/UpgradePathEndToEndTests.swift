import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// `drover plan upgrade` and `drover upgrade` choose the documented path from the live cluster.
@Suite("upgrade paths chosen from the live cluster", needsSandbox, .timeLimit(.minutes(6 * TestTime.factor)))
struct UpgradePathEndToEndTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var installed: String
        var target: String
        var fault: String? = nil
        var path: String
        /// Words the plan's text must contain.
        var says: [String]
        /// The pre-flight check that refuses.
        var refusedBy = "path"
        var testDescription: String { "\(installed) → \(target)\(fault.map { " (\($0))" } ?? ""): \(path)" }
    }

    static let rows: [Row] = [
        // Without frontends reachable over SSH, the downtime path cannot run.
        Row(
            installed: "1.4.6", target: "2.3.16", path: "downtime-1-to-2",
            says: ["1.x to 2.x", "give each frontends: entry host"],
            refusedBy: "frontends"),
        Row(
            installed: "2.0.30", target: "3.1.1", path: "refused",
            says: ["upgrade to 2.3.16 first", "drover upgrade --inventory"]),
        Row(
            installed: "2.3.15", target: "3.1.1", fault: "es-old-index", path: "downtime-reindex",
            says: ["chef was created by Elasticsearch 5.4.1", "give each frontends: entry host"], refusedBy: "frontends"
        ),
        Row(
            installed: "2.3.15", target: "3.1.1", fault: "es-index-unhealthy", path: "refused",
            says: ["not green: yellow open chef"]),
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
            #expect(plan.stdout.contains("[FAIL] \(row.refusedBy)"), "\(plan.stdout)")
            let json = try await cluster.drover(["plan", "upgrade", "--format", "json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let path = try #require(object["path"] as? [String: Any])
            #expect(path["name"] as? String == row.path)
            #expect((path["reasons"] as? [String])?.isEmpty == false)
            #expect(object["would_start"] as? Bool == false)

            let before = (await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(upgrade.status == 2, "\(upgrade.stderr)")
            #expect(upgrade.stderr.contains("pre-flight failed: \(row.refusedBy)"), "\(upgrade.stderr)")
            #expect(upgrade.stderr.contains("nothing was changed"))
            #expect(
                (await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count == before,
                "nothing changed")
        }
    }

    @Test func minorUpgradeIsRolling() async throws {
        try await SandboxCluster.with { cluster in
            let plan = try await cluster.drover(["plan", "upgrade", "--format", "json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
            let path = try #require(object["path"] as? [String: Any])
            #expect(path["name"] as? String == "rolling" && path["playbook"] as? String == "upgrade")
            #expect(
                (path["reasons"] as? [String])?.first?.contains("2.3.15 → 2.3.16 stays within major version 2") == true)
            // Elasticsearch is not read for an upgrade within a major version.
            #expect(!(await cluster.log()).contains { $0.command.hasPrefix("curl") })
        }
    }

    @Test func majorUpgradeWithFreshIndexesIsRollingAndReadsOnlyTheLeader() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s", versions: ("2.3.15", "3.1.1")) { cluster in
            let plan = try await cluster.drover(["plan", "upgrade"])
            #expect(plan.status == 0, "\(plan.stdout)\n\(plan.stderr)")
            #expect(plan.stdout.contains("Path: rolling (playbook upgrade)"))
            #expect(
                plan.stdout.contains("created by Elasticsearch 5.6.16 or later (chef created by Elasticsearch 5.6.16)"))
            // The repair of a half-upgraded Elasticsearch is shown as conditional: the plan cannot know yet.
            #expect(
                plannedActions(plan.stdout).contains(
                    "finish-elasticsearch-upgrade be1: only if be1's Elasticsearch log shows `unknown setting [path.scripts]`"
                ),
                "\(plan.stdout)")
            let reads = (await cluster.log()).filter { $0.event == "started" && $0.command.hasPrefix("curl") }
            #expect(
                reads.count == 2 && Set(reads.map(\.node)) == ["be1"],
                "two reads, on the leader: \(reads.map(\.command))")
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
            let upgrades = log.filter { $0.node == "be1" && $0.command.hasPrefix("chef-backend-ctl upgrade") }.map(
                \.command)
            #expect(upgrades == ["chef-backend-ctl upgrade --failover", "chef-backend-ctl upgrade"], "\(upgrades)")
            for other in ["be2", "be3"] {
                #expect(
                    log.filter { $0.node == other && $0.command.hasPrefix("chef-backend-ctl upgrade") }.count == 1,
                    "\(other) upgraded once")
            }
            let state = try await cluster.state()
            #expect(state.nodes.allSatisfy { !$0.elasticsearchHalfUpgraded && $0.runningVersion == "3.1.1" })
        }
    }

    // MARK: downtime-1-to-2

    /// The order the reference documents, checked from the simulator's command log.
    static func expectDowntimeOrder(_ log: [LoggedCommand], sourceLocation: SourceLocation = #_sourceLocation) {
        let changes = log.filter { $0.event == "started" && $0.isMutating }
        func first(_ predicate: (LoggedCommand) -> Bool) -> Int? { changes.firstIndex(where: predicate) }
        func last(_ predicate: (LoggedCommand) -> Bool) -> Int? { changes.lastIndex(where: predicate) }
        let backendChange: (LoggedCommand) -> Bool = {
            $0.node.hasPrefix("be") && $0.command != "chef-backend-ctl backup"
        }
        guard let lastMaintenanceOn = last({ $0.command == "chef-server-ctl maintenance on" }),
            let firstBackendChange = first(backendChange),
            let leaderDown = first({ $0.node == "be1" && $0.command == "chef-backend-ctl down-for-upgrade" }),
            let lastDown = last({ $0.command == "chef-backend-ctl down-for-upgrade" }),
            let firstUpgrade = first({ $0.command == "chef-backend-ctl upgrade" }),
            let leaderUpgrade = last({ $0.node == "be1" && $0.command == "chef-backend-ctl upgrade" }),
            let lastFollowerUpgrade = last({ $0.node != "be1" && $0.command == "chef-backend-ctl upgrade" }),
            let firstReconfigure = first({ $0.command == "chef-server-ctl reconfigure" }),
            let firstMaintenanceOff = first({ $0.command == "chef-server-ctl maintenance off" })
        else {
            Issue.record(
                "a documented command is missing: \(changes.map { "\($0.node) \($0.command)" })",
                sourceLocation: sourceLocation)
            return
        }
        let order = changes.map { "\($0.node) \($0.command)" }
        #expect(
            lastMaintenanceOn < firstBackendChange,
            "every frontend in maintenance before any backend changes: \(order)", sourceLocation: sourceLocation)
        #expect(
            leaderDown == first({ $0.command == "chef-backend-ctl down-for-upgrade" }),
            "the leader goes down first: \(order)", sourceLocation: sourceLocation)
        #expect(
            lastDown < firstUpgrade, "every backend down before any upgrade: \(order)", sourceLocation: sourceLocation)
        #expect(
            lastFollowerUpgrade < leaderUpgrade, "the followers are upgraded before the leader: \(order)",
            sourceLocation: sourceLocation)
        #expect(
            leaderUpgrade < firstReconfigure, "the frontends are reconfigured after the backends: \(order)",
            sourceLocation: sourceLocation)
        #expect(
            firstMaintenanceOff > (last({ $0.command == "chef-server-ctl reconfigure" }) ?? 0),
            "maintenance off last: \(order)", sourceLocation: sourceLocation)
        #expect(
            changes[firstMaintenanceOff...].allSatisfy { $0.command == "chef-server-ctl maintenance off" },
            "nothing changes after maintenance off: \(order)",
            sourceLocation: sourceLocation)
    }

    @Test func downtimeOneToTwoRunsInTheDocumentedOrder() async throws {
        try await SandboxCluster.with(rejoin: "30s", versions: ("1.4.6", "2.3.16"), frontends: 2) { cluster in
            let plan = try await cluster.drover(["plan", "upgrade"])
            #expect(plan.status == 0, "\(plan.stdout)\n\(plan.stderr)")
            #expect(plan.stdout.contains("Path: downtime-1-to-2 (playbook upgrade-downtime-1-to-2)"))
            #expect(
                plan.stdout.contains("[ok] frontends fe1: connected, host key verified; /_status pong"),
                "\(plan.stdout)")
            #expect(
                plan.stdout.contains("Backup: chef-backend-ctl backup on be2"),
                "the downtime path takes a backup by default")
            // An old run's records on a frontend, to be pruned when this run ends.
            let frontendRecords = cluster.sandbox.directory + "/nodes/fe1/var/opt/opscode/drover-runs"
            try await Processes.offPool {
                try FileManager.default.createDirectory(
                    atPath: frontendRecords + "/old-run", withIntermediateDirectories: true)
                try FileManager.default.setAttributes(
                    [.modificationDate: Date(timeIntervalSinceNow: -31 * 86_400)],
                    ofItemAtPath: frontendRecords + "/old-run")
            }
            let upgrade = try await cluster.drover(["upgrade", "--yes"], timeout: .seconds(300))
            #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
            #expect(upgrade.stdout.contains("upgrade-downtime-1-to-2"))
            #expect(upgrade.stdout.contains("Backup: be2:/var/opt/chef-backup/"))
            let log = await cluster.log()
            Self.expectDowntimeOrder(log)
            let backup = log.firstIndex { $0.event == "started" && $0.command == "chef-backend-ctl backup" }
            let firstChange = log.firstIndex {
                $0.event == "started" && $0.isMutating && $0.command != "chef-backend-ctl backup"
            }
            #expect(
                backup != nil && firstChange != nil && backup! < firstChange!,
                "the backup comes first: \(log.prefix(through: backup ?? log.count - 1).filter { $0.event == "started" && $0.isMutating }.map { "\($0.node) \($0.command)" })"
            )
            let state = try await cluster.state()
            #expect(
                state.nodes.allSatisfy { $0.runningVersion == "2.3.16" && $0.phase == .synced },
                "\(state.nodes.map { "\($0.name) \($0.phase)" })")
            #expect(state.leader == "be1", "the leader from before the downtime leads again")
            #expect(state.frontends.allSatisfy { !$0.maintenance && $0.reconfigures == 1 && $0.configuredMajor == 2 })
            // A frontend's commands are recorded beside Chef Infra Server's state, not a backend's path.
            let records = try await Processes.offPool {
                try FileManager.default.subpathsOfDirectory(
                    atPath: cluster.sandbox.directory + "/nodes/fe1/var/opt/opscode/drover-runs")
            }
            #expect(records.contains { $0.hasSuffix("fe1.1.status") }, "\(records)")
            let pruned = try await Processes.offPool { () -> Bool in
                let deadline = ContinuousClock.now + .seconds(10)
                while FileManager.default.fileExists(atPath: frontendRecords + "/old-run"),
                    ContinuousClock.now < deadline
                {
                    usleep(50_000)
                }
                return !FileManager.default.fileExists(atPath: frontendRecords + "/old-run")
            }
            #expect(pruned, "a frontend's records older than 30 days are pruned at the end of a run")
        }
    }

    @Test(
        "SIGKILL in the middle of the downtime, then resume, finishes it in order",
        arguments: ["down-followers on be2", "upgrade-followers on be3", "reconfigure-frontends on fe1"])
    func downtimeResumesAfterKill(killPoint: String) async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "30s", versions: ("1.4.6", "2.3.16"), frontends: 1) {
            cluster in
            #expect(try await cluster.killRun(["upgrade", "--yes"], at: killPoint), "reached the kill point")
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 0, "\(resume.stdout)\n\(resume.stderr)")
            #expect(
                resume.stderr.contains("Found run") && resume.stderr.contains("upgrade-downtime-1-to-2"),
                "\(resume.stderr)")
            Self.expectDowntimeOrder(await cluster.log())
            let state = try await cluster.state()
            #expect(
                state.nodes.allSatisfy { $0.runningVersion == "2.3.16" && $0.phase == .synced },
                "\(state.nodes.map { "\($0.name) \($0.phase)" })")
            #expect(state.frontends.allSatisfy { !$0.maintenance && $0.configuredMajor == 2 })
            let again = try await cluster.drover(["resume", "--yes"])
            #expect(again.status == 0 && again.stdout.contains("Nothing to resume"))
        }
    }

    @Test func unreachableFrontendRefusesTheDowntimePath() async throws {
        try await SandboxCluster.with(versions: ("1.4.6", "2.3.16"), frontends: 1) { cluster in
            // A frontend whose host key is not the one known: refused before any change.
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            let fe1 = try #require(inventory.range(of: #"name: fe1\n    host: (\S+)"#, options: .regularExpression))
            let host = String(inventory[fe1].split(separator: " ").last!)
            inventory = inventory.replacingOccurrences(
                of: "    host: \(host)", with: "    host: \(host)\n    port: 2299")
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(upgrade.status == 2, "\(upgrade.stdout)\n\(upgrade.stderr)")
            #expect(upgrade.stderr.contains("pre-flight failed: frontends on fe1"), "\(upgrade.stderr)")
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty, "nothing changed")
        }
    }

    // MARK: downtime-reindex

    static func expectReindexOrder(_ log: [LoggedCommand], sourceLocation: SourceLocation = #_sourceLocation) {
        let changes = log.filter { $0.event == "started" && $0.isMutating }
        let order = changes.map { "\($0.node) \($0.command)" }
        func first(_ text: String) -> Int? { changes.firstIndex { $0.command.hasPrefix(text) } }
        func last(_ text: String) -> Int? { changes.lastIndex { $0.command.hasPrefix(text) } }
        guard let maintenanceOn = last("chef-server-ctl maintenance on"),
            let firstBackendChange = changes.firstIndex(where: {
                $0.node.hasPrefix("be") && $0.command != "chef-backend-ctl backup"
            }),
            let lastUpgrade = last("chef-backend-ctl upgrade"),
            let firstStop = first("chef-backend-ctl stop elasticsearch"),
            let lastStop = last("chef-backend-ctl stop elasticsearch"),
            let firstRemove = first("rm -fr /var/opt/chef-backend/elasticsearch/data"),
            let lastRemove = last("rm -fr /var/opt/chef-backend/elasticsearch/data"),
            let firstStart = first("chef-backend-ctl start elasticsearch"),
            let reconfigure = first("chef-server-ctl reconfigure"),
            let failoverOn = last("chef-backend-ctl set-cluster-failover on"),
            let reindex = first("chef-server-ctl reindex -a"),
            let maintenanceOff = first("chef-server-ctl maintenance off")
        else {
            Issue.record("a documented command is missing: \(order)", sourceLocation: sourceLocation)
            return
        }
        #expect(
            maintenanceOn < firstBackendChange, "frontends in maintenance before any backend changes: \(order)",
            sourceLocation: sourceLocation)
        #expect(
            lastUpgrade < firstStop, "every backend upgraded before Elasticsearch stops: \(order)",
            sourceLocation: sourceLocation)
        #expect(
            Set(changes[firstStop...lastStop].map(\.node)) == ["be1", "be2", "be3"] && lastStop < firstRemove,
            "Elasticsearch stopped on every backend before any data is removed: \(order)",
            sourceLocation: sourceLocation)
        #expect(
            Set(changes[firstRemove...lastRemove].map(\.node)) == ["be1", "be2", "be3"] && lastRemove < firstStart,
            "data removed on every backend before Elasticsearch starts again: \(order)", sourceLocation: sourceLocation)
        #expect(
            firstStart < reconfigure && reconfigure < failoverOn && failoverOn < reindex && reindex < maintenanceOff,
            "start, reconfigure, failover on, reindex, maintenance off: \(order)", sourceLocation: sourceLocation)
        #expect(
            changes[maintenanceOff...].allSatisfy { $0.command == "chef-server-ctl maintenance off" },
            "maintenance off last: \(order)",
            sourceLocation: sourceLocation)
    }

    @Test func downtimeReindexRunsInTheDocumentedOrder() async throws {
        try await SandboxCluster.with(rejoin: "30s", versions: ("2.3.15", "3.1.1"), frontends: 2) { cluster in
            try await cluster.breakNode("be1", "es-old-index")
            let plan = try await cluster.drover(["plan", "upgrade", "--set", "chef_nodes=4500", "--format", "json"])
            #expect(plan.status == 0, "\(plan.stdout)\n\(plan.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
            #expect((object["path"] as? [String: Any])?["name"] as? String == "downtime-reindex")
            #expect(
                (object["downtime"] as? [String: Any])?["reindex_minutes"] as? Int == 9,
                "\(String(describing: object["downtime"]))")
            #expect(object["playbook"] as? String == "upgrade-downtime-reindex")
            // Every backend and both frontends, one after another: 20 s alone, minutes beside the whole suite.
            let upgrade = try await cluster.drover(["upgrade", "--yes"], timeout: .seconds(300))
            #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
            Self.expectReindexOrder(await cluster.log())
            let state = try await cluster.state()
            #expect(
                state.indexes == [SimulatedIndex(name: "chef", created: "6.8.23", health: "green")],
                "rebuilt by the reindex: \(state.indexes)")
            #expect(state.nodes.allSatisfy { $0.runningVersion == "3.1.1" } && state.clusterFailover)
            #expect(state.frontends.allSatisfy { !$0.maintenance })
        }
    }

    @Test(
        "SIGKILL while Elasticsearch is stopped or emptied, then resume, finishes the reindex",
        arguments: ["stop-elasticsearch on be2", "remove-elasticsearch-data on be2"])
    func downtimeReindexResumesAfterKill(killPoint: String) async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "30s", versions: ("2.3.15", "3.1.1"), frontends: 1) {
            cluster in
            try await cluster.breakNode("be1", "es-old-index")
            #expect(try await cluster.killRun(["upgrade", "--yes"], at: killPoint), "reached the kill point")
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 0, "\(resume.stdout)\n\(resume.stderr)")
            Self.expectReindexOrder(await cluster.log())
            let state = try await cluster.state()
            #expect(
                state.indexes.map(\.created) == ["6.8.23"] && state.frontends.allSatisfy { !$0.maintenance },
                "\(state.indexes)")
        }
    }
}
