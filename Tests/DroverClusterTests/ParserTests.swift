import DroverChefBackend
import DroverCluster
import DroverTestSupport
import Foundation
import Testing

@Suite("parsers of the documented chef-backend-ctl outputs")
struct ParserTests {
    @Test("healthy samples, in any row order", arguments: ["status-healthy.txt", "status-healthy-reordered.txt"])
    func healthyStatus(file: String) throws {
        let report = try StatusReport.parse(try Repository.fixture("Recorded/" + file))
        #expect(report["leaderl"]?.count("leader") == 1 && report["leaderl"]?.count("follower") == 2)
        #expect(report["postgresql"]?.count("synced") == 2)
        let etcd = report["etcd"]?.fraction("healthy nodes")
        #expect(etcd?.0 == 3 && etcd?.1 == 3)
        #expect(report["elasticsearch"]?.fields["state"] == "green")
        let criteria = Predicates.distributedHealthy(report, source: "x", allowYellow: false)
        #expect(criteria.allSatisfy { $0.holds })
    }

    @Test func leaderlessSampleWithEpmdAndSystemTable() throws {
        let report = try StatusReport.parse(try Repository.fixture("Recorded/status-leaderless.txt"))
        #expect(
            report.rows.keys.sorted() == ["elasticsearch", "epmd", "etcd", "leaderl", "postgresql"],
            "the System table is not read as services")
        #expect(report["postgresql"]?.isRunning == false)
        #expect(report["postgresql"]?.count("synced") == nil)
        let criteria = Predicates.distributedHealthy(report, source: "x", allowYellow: true)
        let failing = criteria.filter { !$0.holds }.map { $0.name }
        #expect(failing == ["leaderl", "postgresql"])
    }

    @Test func extraColumnsAreTolerated() throws {
        let text = """
            Service        Local Status        Time in State  Extra   Distributed Node Status
            leaderl        running (pid 1)     0d 0h 1m 0s    yes     leader: 1; waiting: 0; follower: 2; total: 3
            """
        #expect(try StatusReport.parse(text)["leaderl"]?.count("follower") == 2)
        let members = try ClusterStatusTable.parse(
            """
            Name  IP        GUID                              Role      Following  PG        ES
            a     10.0.0.1  dc0c6ea77a751f94037cd950e8451fa3  leader    -          leader    master
            """)
        #expect(members.first?.role == "leader" && members.first?.postgres == "leader")
    }

    @Test func clusterStatusSample() throws {
        let members = try ClusterStatusTable.parse(try Repository.fixture("Recorded/cluster-status.txt"))
        #expect(members.map(\.name) == ["backend-1", "backend-2", "backend-3"])
        #expect(members.map(\.role) == ["leader", "follower", "follower"])
        #expect(members[2].elasticsearch == "master" && members[0].ip == "192.168.33.215")
    }

    @Test func aDeposedLeaderIsReadOnRunsOfSpacesAndIsNotYetAFollower() throws {
        let members = try ClusterStatusTable.parse(try Repository.fixture("Recorded/cluster-status-deposed-leader.txt"))
        #expect(members.map(\.role) == ["deposed_leader", "leader", "follower"])
        #expect(members.map(\.postgres) == ["offline", "leader", "follower"] && members[2].elasticsearch == "master")
        var node = NodeObservation(name: "backend-1", host: "192.168.33.215")
        node.members = members
        node.installedVersion = "2.3.16"
        node.unsyncedSentinel = false
        let observation = ClusterObservation(nodes: [node], time: Date())
        let role = Predicates.rejoined("backend-1", in: observation, targetVersion: "2.3.16").first {
            $0.name == "role"
        }
        #expect(role?.holds == false && role?.detail == "role deposed_leader", "a wait treats it as not yet rejoined")
    }

    @Test func unrecognisedOutputIsAnError() {
        #expect(throws: ParseError.self) { _ = try StatusReport.parse("command not found") }
        #expect(throws: ParseError.self) {
            _ = try ClusterStatusTable.parse("This node is not part of a configured cluster.")
        }
        #expect(throws: ParseError.self) { _ = try VersionManifest.buildVersion("{}") }
    }

    @Test func manifestAndDiskFree() throws {
        #expect(try VersionManifest.buildVersion(#"{"build_version":"2.3.16","manifest_format":2}"#) == "2.3.16")
        let df =
            "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/vdb  20971520  8388608  12582912  40% /var/opt/chef-backend\n"
        #expect(try DiskFree.availableMB(df) == 12288)
    }

    @Test(
        "version order",
        arguments: [
            ("2.3.16", "2.3.9", ComparisonResult.orderedDescending), ("2.3.15", "2.3.16", .orderedAscending),
            ("3.0", "3.0.0", .orderedSame),
        ])
    func versions(a: String, b: String, expected: ComparisonResult) {
        #expect(compareVersions(a, b) == expected)
    }
}
