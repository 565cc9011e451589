import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

@Suite("simulator output matches the documented formats")
struct FormatTests {
    @Test func healthyStatusMatchesTheDocumentedSample() async throws {
        let harness = try SimulatedClusterHarness()
        let output = await harness.ctl("be2", "status")
        #expect(output.status == 0)
        let recorded = cells(try Repository.fixture("Recorded/status-healthy.txt"))
        let simulated = cells(output.stdout)
        #expect(simulated[0] == recorded[0], "same header")
        let documented = Dictionary(uniqueKeysWithValues: recorded.dropFirst().map { ($0[0], $0[3]) })
        for row in simulated.dropFirst() where documented[row[0]] != nil {
            #expect(row[3] == documented[row[0]], "distributed status of \(row[0])")
            #expect(row[1].range(of: #"^running \(pid \d+\)$"#, options: .regularExpression) != nil)
            #expect(row[2].range(of: #"^\d+d \d+h \d+m \d+s$"#, options: .regularExpression) != nil)
        }
        #expect(Set(simulated.dropFirst().map(\.[0])).isSuperset(of: documented.keys))
        #expect(
            output.stdout.contains("epmd") && output.stdout.contains("System  Local Status"),
            "1.4+ rows, like the leaderless sample")
    }

    @Test func leaderlessStatusUsesTheIssueThreadWording() async throws {
        let harness = try SimulatedClusterHarness()
        try harness.store.update { cluster, now in
            cluster.setLeader(nil, at: now)
            for index in cluster.nodes.indices { cluster.setPhase(index, .waiting, at: now) }
        }
        let simulated = cells(await harness.ctl("be1", "status").stdout)
        let recorded = cells(try Repository.fixture("Recorded/status-leaderless.txt"))
        let leaderl = { (rows: [[String]]) in rows.first { $0.first == "leaderl" }?.last }
        let postgres = { (rows: [[String]]) in rows.first { $0.first == "postgresql" }?.last }
        #expect(leaderl(simulated) == leaderl(recorded))
        #expect(postgres(simulated) == postgres(recorded))
    }

    @Test func simpleStatusIsRunitForm() async throws {
        let harness = try SimulatedClusterHarness()
        let pattern = #"^(run|down): [a-z]+: (\(pid \d+\) )?\d+s(, normally up)?; run: log: \(pid \d+\) \d+s$"#
        for line in try Repository.fixture("Recorded/status-simple.txt").split(separator: "\n") {
            #expect(
                String(line).range(of: pattern, options: .regularExpression) != nil,
                "the pattern fits the documented sample")
        }
        try harness.store.update { cluster, _ in cluster.nodes[1].servicesDown.insert("postgresql") }
        let lines = await harness.ctl("be2", "status", "--simple").stdout.split(separator: "\n")
        #expect(lines.count == 5)
        for line in lines { #expect(String(line).range(of: pattern, options: .regularExpression) != nil, "\(line)") }
        #expect(lines.contains { $0.hasPrefix("down: postgresql:") && $0.contains("normally up") })
    }

    @Test func clusterStatusMatchesTheDocumentedColumns() async throws {
        let harness = try SimulatedClusterHarness()
        let simulated = cells(await harness.ctl("be3", "cluster-status").stdout)
        let recorded = cells(try Repository.fixture("Recorded/cluster-status.txt"))
        #expect(simulated[0] == recorded[0])
        #expect(simulated.count == 4)
        let roles: [String] = simulated.dropFirst().map { $0[3] }
        let masters: [String] = simulated.dropFirst().map { $0[5] }.filter { $0 == "master" }
        #expect(roles.sorted() == ["follower", "follower", "leader"])
        #expect(masters.count == 1)
        for row in simulated.dropFirst() {
            #expect(row[2].range(of: "^[0-9a-f]{32}$", options: .regularExpression) != nil)
        }
    }

    @Test func serviceCommandLinesMatchTheDocumentedForm() async throws {
        let harness = try SimulatedClusterHarness()
        let stop = await harness.ctl("be2", "stop", "etcd").stdout
        let start = await harness.ctl("be2", "start", "etcd").stdout
        #expect(stop.range(of: #"^ok: down: etcd: \d+s, normally up\n$"#, options: .regularExpression) != nil)
        #expect(start.range(of: #"^ok: run: etcd: \(pid \d+\) \d+s\n$"#, options: .regularExpression) != nil)
        let documented = try Repository.fixture("Recorded/service-commands.txt")
        #expect(documented.contains("ok: down: etcd: 393s, normally up"))
    }

    @Test(
        "unknown subcommands and bad arguments fail with usage on stderr",
        arguments: [
            ["frobnicate"], ["set-cluster-failover", "maybe"], ["status", "nosuchservice"], ["promote"],
            ["upgrade", "--fast"], [],
        ])
    func usageErrors(arguments: [String]) async throws {
        let harness = try SimulatedClusterHarness()
        let invocation = await harness.ctlArray(arguments)
        #expect(invocation.status != 0)
        #expect(invocation.stderr.contains("Usage: chef-backend-ctl"))
        #expect(invocation.stdout.isEmpty)
    }

    @Test func packageToolsReportAndInstallVersions() async throws {
        let harness = try SimulatedClusterHarness()
        #expect(await harness.run("be2", "dpkg-query", "-W", "-f=${Version}", "chef-backend").stdout == "2.3.15-1")
        #expect(await harness.run("be2", "rpm", "-q", "chef-backend").stdout == "chef-backend-2.3.15-1.el7.x86_64\n")
        let install = await harness.run("be2", "dpkg", "-i", "/var/tmp/chef-backend_2.3.16-1_amd64.deb")
        #expect(install.status == 0 && install.stdout.contains("Setting up chef-backend (2.3.16-1)"))
        #expect(await harness.run("be2", "dpkg-query", "-W", "-f=${Version}", "chef-backend").stdout == "2.3.16-1")
        #expect(try harness.cluster.node("be2")?.runningVersion == "2.3.15", "installing changes nothing that runs")
        #expect(await harness.run("be2", "dpkg", "-i", "/var/tmp/missing.deb").status != 0)
    }
}
