import DroverChefBackend
import DroverCluster
import DroverDRBDPair
import Foundation
import Testing

@Suite("node identity: the inventory against cluster-status and each node's publish_address")
struct NodeIdentityTests {
    @Test(
        "publish_address as Chef's guides and join-cluster write it",
        arguments: [
            ("publish_address '10.0.0.1'\n", "10.0.0.1"),
            ("publish_address = '10.0.0.2'\n", "10.0.0.2"),
            ("  publish_address \"fd00::1\"\nvip '10.0.0.9'\n", "fd00::1"),
            ("# publish_address '10.0.0.3'\n", nil),
            ("publish_addressx '10.0.0.4'\n", nil),
            ("publish_address '10.0.0.5\n", nil),
            ("publish_address '1.1.1.1'\npublish_address '2.2.2.2'\n", "2.2.2.2"),
            ("publish_address ' 10.0.0.6'\n", nil),
            ("", nil),
        ])
    func publishAddress(text: String, expected: String?) {
        #expect(PublishAddress.parse(text) == expected)
    }

    /// cluster-status as every node prints it: be1..be3 at .11, .12, .13.
    static let table = """
        Name  IP         GUID                              Role      PG        ES
        be1   10.1.0.11  dc0c6ea77a751f94037cd950e8451fa3  leader    leader    not_master
        be2   10.1.0.12  008782c59d3628b6bb7f43556ac0c66c  follower  follower  not_master
        be3   10.1.0.13  1af654172b1830927a571d9a5ba7965b  follower  follower  master
        """

    static func observation(hosts: [String], reached: [String?]) throws -> ClusterObservation {
        let members = try ClusterStatusTable.parse(table)
        let nodes = zip(zip(["be1", "be2", "be3"], hosts), reached).map { pair, published in
            var node = NodeObservation(name: pair.0, host: pair.1)
            if let published {
                node.publishAddress = published
                node.members = members
            } else {
                node.unreachable = "connection refused"
            }
            return node
        }
        return ClusterObservation(nodes: nodes)
    }

    @Test func theRightHostsMatch() throws {
        let seen = try Self.observation(
            hosts: ["10.1.0.11", "10.1.0.12", "10.1.0.13"], reached: ["10.1.0.11", "10.1.0.12", "10.1.0.13"])
        #expect(seen.identityMismatches.isEmpty)
        // Reached through another address (NAT, a VPN): the machine's own publish_address decides.
        let natted = try Self.observation(
            hosts: ["203.0.113.1", "203.0.113.2", "203.0.113.3"], reached: ["10.1.0.11", "10.1.0.12", "10.1.0.13"])
        #expect(natted.identityMismatches.isEmpty)
    }

    @Test func aHostLeadingNowhereIsNotADeadNode() throws {
        let seen = try Self.observation(
            hosts: ["10.0.0.9", "10.1.0.12", "10.1.0.13"], reached: [nil, "10.1.0.12", "10.1.0.13"])
        #expect(
            seen.identityMismatches.map(\.detail) == [
                "be1: the inventory says 10.0.0.9, the cluster knows be1 at 10.1.0.11 and sees it healthy (leader)"
            ])
        #expect(seen.listedUp("be1"))
    }

    @Test func swappedHostsAreBothNamed() throws {
        let seen = try Self.observation(
            hosts: ["10.1.0.12", "10.1.0.11", "10.1.0.13"], reached: ["10.1.0.12", "10.1.0.11", "10.1.0.13"])
        #expect(seen.identityMismatches.map(\.node) == ["be1", "be2"])
        #expect(
            seen.identityMismatches.first?.detail
                == "be1: the inventory says 10.1.0.12, which reaches a machine that publishes 10.1.0.12 (the cluster's be2), but the cluster knows be1 at 10.1.0.11"
        )
    }

    @Test func aNodeTheClusterNoLongerListsIsDown() throws {
        var seen = try Self.observation(
            hosts: ["10.1.0.11", "10.1.0.12", "10.1.0.13"], reached: ["10.1.0.11", "10.1.0.12", nil])
        let members = try ClusterStatusTable.parse(Self.table).filter { $0.name != "be3" }
        for index in 0..<2 { seen.nodes[index].members = members }
        #expect(seen.identityMismatches.isEmpty && !seen.listedUp("be3"))
    }

    @Test(
        "addresses compared as addresses",
        arguments: [
            ("10.0.0.1", "10.0.0.1"), ("::ffff:10.0.0.1", "10.0.0.1"), ("fd00:0:0::1", "fd00::1"),
            ("FD00::1", "fd00::1"), ("be1.example.com", nil), ("#{node['ipaddress']}", nil), ("", nil),
            ("10.0.0.256", nil),
        ] as [(String, String?)])
    func normalized(text: String, expected: String?) {
        #expect(IPAddress.normalized(text) == expected)
    }

    @Test func oneAddressInAnotherFormIsTheSameMachine() throws {
        var seen = try Self.observation(
            hosts: ["10.1.0.11", "10.1.0.12", "10.1.0.13"], reached: ["10.1.0.11", "10.1.0.12", "10.1.0.13"])
        seen.nodes[0].publishAddress = "::ffff:10.1.0.11"
        #expect(seen.identityMismatches.isEmpty)
        // A publish_address that is no address (a Ruby expression) is not compared.
        seen.nodes[1].publishAddress = "#{node['ipaddress']}"
        #expect(seen.identityMismatches.isEmpty)
    }

    @Test func aHostNameThatCannotBeReachedIsNotCompared() throws {
        let seen = try Self.observation(
            hosts: ["be1.example.com", "10.1.0.12", "10.1.0.13"], reached: [nil, "10.1.0.12", "10.1.0.13"])
        #expect(seen.identityMismatches.isEmpty, "a name says nothing about the address the cluster lists")
    }
}

@Suite("the DRBD pair: which machine each inventory node is")
struct PairIdentityTests {
    static func node(_ name: String, host: String, machine: String?, reachable: Bool = true) -> PairNodeObservation {
        var node = PairNodeObservation(name: name, host: host)
        node.machineName = machine
        if !reachable { node.unreachable = "connection refused" }
        return node
    }

    @Test(
        "two nodes, two machines, or a name not read: no mismatch",
        arguments: [
            ["be1.example.com", "be2.example.com"], ["be1", nil], [nil, nil],
        ] as [[String?]])
    func distinct(_ machines: [String?]) {
        let pair = PairObservation(nodes: [
            Self.node("be1", host: "10.0.0.1", machine: machines[0]),
            Self.node("be2", host: "10.0.0.2", machine: machines[1]),
        ])
        #expect(pair.identityMismatches.isEmpty)
    }

    @Test func oneMachineListedTwiceNamesTheSecondNode() throws {
        let pair = PairObservation(nodes: [
            Self.node("be1", host: "10.0.0.1", machine: "pc1"), Self.node("be2", host: "10.0.0.1", machine: "pc1"),
        ])
        let mismatch = try #require(pair.identityMismatches.first)
        #expect(pair.identityMismatches.count == 1)
        #expect(mismatch.node == "be2" && mismatch.inventoryHost == "10.0.0.1")
        #expect(mismatch.detail.hasPrefix("be2: the inventory's host 10.0.0.1 leads to the machine named pc1"))
    }

    @Test func aNodeNotReachedIsNotCompared() {
        let pair = PairObservation(nodes: [
            Self.node("be1", host: "10.0.0.1", machine: "pc1"),
            Self.node("be2", host: "10.0.0.2", machine: "pc1", reachable: false),
        ])
        #expect(pair.identityMismatches.isEmpty)
    }
}
