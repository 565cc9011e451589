import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

@Suite("simulator state machine")
struct StateMachineTests {
    let package = "/var/tmp/chef-backend_2.3.16-1_amd64.deb"

    @Test func followerUpgradeRejoinsThenSyncs() async throws {
        // Syncing lasts 5 s, long enough to be seen however loaded the machine is.
        let harness = try SimulatedClusterHarness(scale: 0.1) { $0.sync = 50 }
        #expect(await harness.ctl("be1", "set-cluster-failover", "off").status == 0)
        #expect(await harness.run("be2", "dpkg", "-i", package).status == 0)
        let upgrade = await harness.ctl("be2", "upgrade")
        #expect(upgrade.status == 0)
        // upgrade returns once leaderl sees a follower again; PostgreSQL is still syncing.
        let right = try harness.cluster
        #expect(right.role(of: right.node("be2")!) == "follower")
        #expect(right.postgresState(of: right.node("be2")!) == "syncing")
        #expect(harness.sentinel("be2", NodePaths.unsynced))
        #expect(await harness.ctl("be1", "status").stdout.contains("syncing: 1; synced: 1"))
        #expect(try await harness.eventually { $0.node("be2")?.phase == .synced })
        #expect(!harness.sentinel("be2", NodePaths.unsynced))
        #expect(try harness.cluster.node("be2")?.runningVersion == "2.3.16")
        let transitions = try harness.cluster.transitions.filter { $0.node == "be2" }.map(\.to)
        #expect(transitions == ["rejoining", "syncing", "synced"])
    }

    @Test func leaderFailoverNeedsClusterFailoverOn() async throws {
        let harness = try SimulatedClusterHarness()
        _ = await harness.run("be1", "dpkg", "-i", package)
        _ = await harness.ctl("be1", "set-cluster-failover", "off")
        let refused = await harness.ctl("be1", "upgrade", "--failover")
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("set-cluster-failover on"))
        #expect(try harness.cluster.node("be1")?.runningVersion == "2.3.15", "nothing changed")
        _ = await harness.ctl("be1", "set-cluster-failover", "on")
        #expect(await harness.ctl("be1", "upgrade", "--failover").status == 0)
        let cluster = try harness.cluster
        #expect(cluster.leader != "be1")
        #expect(cluster.role(of: cluster.node("be1")!) == "follower")
        #expect(cluster.outages.isEmpty)
        #expect(cluster.transitions.contains { $0.to == "leader:none" }, "briefly leaderless during the election")
    }

    @Test func inPlaceLeaderUpgradeIsRecordedAsAnOutage() async throws {
        let harness = try SimulatedClusterHarness()
        _ = await harness.run("be1", "dpkg", "-i", package)
        #expect(await harness.ctl("be1", "upgrade").status == 0)
        let cluster = try harness.cluster
        #expect(cluster.outages.count == 1)
        #expect(cluster.outages[0].node == "be1" && cluster.outages[0].end != nil)
        #expect(cluster.currentLeader?.name == "be1")
    }

    @Test func upgradeFaultFailsAndLeavesTheNodeWaiting() async throws {
        let harness = try SimulatedClusterHarness()
        try harness.store.update { cluster, _ in cluster.nodes[1].faults.insert(.upgradeFails) }
        _ = await harness.run("be2", "dpkg", "-i", package)
        let result = await harness.ctl("be2", "upgrade")
        #expect(result.status != 0 && result.stderr.contains("upgrade failed"))
        #expect(await harness.ctl("be1", "status").stdout.contains("waiting: 1"))
    }

    @Test func neverSyncingNodeEndsPartiallySynced() async throws {
        let harness = try SimulatedClusterHarness(scale: 0.02)
        try harness.store.update { cluster, _ in cluster.nodes[2].faults.insert(.neverSyncs) }
        _ = await harness.run("be3", "dpkg", "-i", package)
        #expect(await harness.ctl("be3", "upgrade").status == 0)
        #expect(try await harness.eventually { $0.node("be3")?.phase == .partiallySynced })
        #expect(harness.sentinel("be3", NodePaths.unsynced))
        #expect(await harness.ctl("be3", "cluster-status", "--json").stdout.contains(#""partially_synced":true"#))
        // The documented fix: stop leaderl, pgsql-follow, remove the sentinel, start leaderl.
        #expect(
            await harness.ctl("be3", "pgsql-follow", "10.0.0.11", "--verbose").status != 0,
            "refused without PSQL_INTERNAL_OK")
        #expect(
            await harness.ctl("be3", "pgsql-follow", "10.0.0.11", environment: ["PSQL_INTERNAL_OK": "true"]).stderr
                .contains("stop leaderl"))
        _ = await harness.ctl("be3", "stop", "leaderl")
        #expect(
            await harness.ctl(
                "be3", "pgsql-follow", "10.0.0.11", "--verbose", environment: ["PSQL_INTERNAL_OK": "true"]
            ).status == 0)
        try FileManager.default.removeItem(atPath: harness.directory + "/nodes/be3" + NodePaths.unsynced)
        _ = await harness.ctl("be3", "start", "leaderl")
        #expect(await harness.ctl("be1", "status").stdout.contains("synced: 2"))
    }

    @Test func demotePromoteAndForceLeaderFollowTheExitRules() async throws {
        let harness = try SimulatedClusterHarness()
        _ = await harness.ctl("be1", "set-cluster-failover", "off")
        #expect(await harness.ctl("be1", "demote").status != 0, "failover disabled")
        #expect(await harness.ctl("be1", "promote", "be2").status != 0, "failover disabled")
        _ = await harness.ctl("be1", "set-cluster-failover", "on")
        #expect(await harness.ctl("be2", "force-leader").status != 0, "a leader exists")
        #expect(await harness.ctl("be1", "demote").status == 0)
        #expect(try harness.cluster.currentLeader?.name != "be1")
        #expect(await harness.ctl("be1", "promote", "10.0.0.13").status == 0, "by IP")
        #expect(try harness.cluster.currentLeader?.name == "be3")
        _ = await harness.ctl("be2", "set-node-failover", "off")
        #expect(await harness.ctl("be1", "promote", "be2").status != 0, "node failover disabled")
    }

    @Test func partitionHealsByPromotingANode() async throws {
        let harness = try SimulatedClusterHarness()
        try harness.store.update { cluster, now in
            cluster.setLeader(nil, at: now)
            for index in cluster.nodes.indices { cluster.setPhase(index, .waiting, at: now) }
        }
        #expect(await harness.ctl("be1", "status").stdout.contains("leader: 0; waiting: 3; follower: 0; total: 3"))
        #expect(await harness.ctl("be2", "promote", "be2").status == 0)
        #expect(try await harness.eventually { cluster in cluster.members.allSatisfy { $0.phase == .synced } })
        #expect(await harness.ctl("be1", "status").stdout.contains("leader: 1; waiting: 0; follower: 2; total: 3"))
    }

    @Test func removeNodeAndRejoin() async throws {
        let harness = try SimulatedClusterHarness()
        #expect(
            await harness.ctl("be3", "remove-node", "be3").stderr.contains("cannot be run on the node being removed"))
        #expect(await harness.ctl("be1", "remove-node", "be3").stderr.contains("still running"))
        try harness.store.update { cluster, _ in cluster.nodes[2].unreachable = true }
        #expect(await harness.ctl("be1", "remove-node", "be3").status == 0)
        #expect(await harness.ctl("be1", "status").stdout.contains("total: 2"))
        try harness.store.update { cluster, _ in cluster.nodes[2].unreachable = false }
        #expect(await harness.ctl("be3", "cleanse").status == 0)
        #expect(!FileManager.default.fileExists(atPath: harness.directory + "/nodes/be3" + NodePaths.config))
        let secrets = harness.directory + "/nodes/be3/root/secrets.json"
        try FileManager.default.copyItem(atPath: harness.directory + "/nodes/be1" + NodePaths.secrets, toPath: secrets)
        #expect(
            await harness.ctl("be3", "join-cluster", "10.0.0.11", "-s", "relative.json", "-y").status != 0,
            "secrets path must be absolute")
        #expect(await harness.ctl("be3", "join-cluster", "10.0.0.11", "-s", "/root/secrets.json", "-y").status == 0)
        #expect(try await harness.eventually { $0.node("be3")?.phase == .synced })
        #expect(await harness.ctl("be1", "status").stdout.contains("total: 3"))
    }

    @Test func quorumLossRecoveryNeedsASoleSurvivor() async throws {
        let harness = try SimulatedClusterHarness()
        #expect(
            await harness.ctl("be1", "create-cluster", "--quorum-loss-recovery", "-y").status != 0,
            "two nodes still answer")
        try harness.store.update { cluster, now in
            cluster.setLeader(nil, at: now)
            for index in 1...2 { cluster.nodes[index].unreachable = true }
            cluster.setPhase(0, .waiting, at: now)
        }
        #expect(await harness.ctl("be1", "create-cluster", "--quorum-loss-recovery", "-y").status == 0)
        let cluster = try harness.cluster
        #expect(cluster.currentLeader?.name == "be1")
        #expect(cluster.members.map(\.name) == ["be1"])
    }

    @Test func diskFullShowsInDfAndStopsInstalls() async throws {
        let harness = try SimulatedClusterHarness()
        try harness.store.update { cluster, _ in cluster.nodes[1].faults.insert(.diskFull) }
        let df = await harness.run("be2", "df", "-Pk", "/var/opt/chef-backend").stdout.split(separator: "\n")
        #expect(Int(df[1].split(separator: " ")[3])! < 250 * 1024)
        #expect(await harness.run("be2", "dpkg", "-i", package).stderr.contains("No space left on device"))
    }
}
