import DroverCluster
import DroverInventory
import Foundation
import Testing

@testable import DroverChefBackend
@testable import DroverEngine

/// Situations decided from one reading, without nodes: what real releases print.
@Suite("diagnosis of what real nodes print")
struct DiagnosisTests {
    static let inventory = try! Inventory.parse(
        """
        cluster: c
        backends:
          - { name: be1, host: 10.0.0.1 }
          - { name: be2, host: 10.0.0.2 }
          - { name: be3, host: 10.0.0.3 }
        """, file: "/i.yml")

    @Test func aNodeWhoseClusterStatusExitsOneIsNotPartOfACluster() throws {
        let members = try ClusterStatusTable.parse(
            """
            Name  IP        GUID                              Role      PG        ES
            be1   10.0.0.1  dc0c6ea77a751f94037cd950e8451fa3  leader    leader    master
            be2   10.0.0.2  008782c59d3628b6bb7f43556ac0c66c  follower  follower  not_master
            """)
        var nodes = ["be1", "be2", "be3"].map { NodeObservation(name: $0, host: "10.0.0.\($0.last!)") }
        nodes[0].members = members
        nodes[1].members = members
        nodes[2].notInCluster = "This node is not part of a configured cluster."
        let situations = ClusterDiagnosis.situations(
            ClusterObservation(nodes: nodes), inventory: Self.inventory, inventoryPath: "/i.yml", lastRun: nil)
        let found = try #require(situations.first)
        #expect(found.id == "not-in-cluster" && found.summary.hasPrefix("be3 is not part of a cluster"))
        #expect(found.evidence.first == "be3: cluster-status exited 1: This node is not part of a configured cluster.")
        #expect(found.commandCondition == "be3 is a new or rebuilt machine that should take its place")
        #expect(found.firstCommand == "drover status --inventory /i.yml")
    }

    /// A leader that did not appear in time may still be coming: since chef-backend 1.3.2 a promotion may take
    /// 5 minutes, and the advice says so before the logs; other waits go straight to the logs.
    @Test func aLeaderWaitThatTimedOutSaysAPromotionMayTakeMinutes() {
        let topology = ChefBackendTopology(inventory: Self.inventory)
        let advice = topology.waitTimeoutAdvice(predicate: "leader-is", timeout: .seconds(60))
        #expect(advice.count == 1 && advice[0].commands.isEmpty, "words only: the summary lists status and resume")
        #expect(
            advice.first?.text
                == "A promotion may take minutes (since chef-backend 1.3.2 pgsql-promote waits up to 5 minutes for PostgreSQL's recovery): if no node leads yet, the election may still be under way; wait until one leads, then continue. timeouts.failover bounds this wait (1m here, shorter than a promotion may take; the default, 10m, leaves margin above 5 minutes)."
        )
        let atDefault = topology.waitTimeoutAdvice(predicate: "leader-moved", timeout: .seconds(600))
        #expect(atDefault.first?.text.contains("(10m here; the default") == true, "\(atDefault)")
        #expect(topology.waitTimeoutAdvice(predicate: "rejoined", timeout: .seconds(60)).isEmpty)
        #expect(Self.inventory.timeouts.failover == .seconds(600), "the default leaves margin above 5 minutes")
    }
}
