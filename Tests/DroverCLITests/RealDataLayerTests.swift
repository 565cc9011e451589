import DroverTestSupport
import Foundation
import Testing

/// Every test of the real data layer, one at a time: each starts three etcd members, three PostgreSQL
/// instances and three leaderl stand-ins, and several at once beside the rest of the suite starve a 2-core
/// machine (elections and lease renewals then fail for lack of CPU, not for anything under test).
@Suite("the real data layer", .serialized, needsSandbox)
enum RealServices {}

extension RealServices {
    /// The real data layer the rehearsal stands on (Fixtures/RealServices/datalayer.py): etcd and PostgreSQL 15
    /// streaming replication on three loopback addresses, and a write load whose ledger counts acknowledged
    /// writes lost. Needs root, postgresql-15, etcd-server, etcd-client and python3-psycopg2 (`make test-deps`).
    @Suite(
        "a real data layer: PostgreSQL replication and etcd", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
    struct RealDataLayerTests {
        static let script = Repository.root.appendingPathComponent("Fixtures/RealServices/datalayer.py").path
        /// Debian's Python: python3-psycopg2 is installed for it.
        static let python = "/usr/bin/python3"

        static func layer(_ arguments: [String]) async throws -> Processes.Output {
            try await Processes.offPool { try Processes.run(python, [script] + arguments, timeout: .seconds(180)) }
        }

        static func json(_ output: Processes.Output) -> [String: Any] {
            let line = output.stdout.split(separator: "\n").last.map(String.init) ?? ""
            return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
        }

        @Test func aPlannedSwitchoverUnderAWriteLoadLosesNoAcknowledgedWrite() async throws {
            #expect(
                FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")
                    && FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/15/bin/postgres"),
                "make test-deps installs postgresql-15, etcd-server, etcd-client and python3-psycopg2")
            // Traversable by the postgres user (the test's own temporary directories are not).
            let directory = "/tmp/drover-real-\(UUID().uuidString.prefix(8))"
            let addresses = (1...3).map { _ in LoopbackAddresses.next(port: 5432) }
            let nodes = zip(["be1", "be2", "be3"], addresses).map { "\($0)=\($1)" }.joined(separator: ",")
            let up = try await Self.layer(["up", "--dir", directory, "--nodes", nodes])
            defer { _ = try? Processes.run(Self.python, [Self.script, "down", "--dir", directory]) }
            try #require(up.status == 0, "\(up.stdout)\(up.stderr)")
            let state = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: directory + "/state.json")))
                    as? [String: Any])
            let pids = try #require(state["pids"] as? [String: Int])
            #expect(pids.count == 9, "an etcd member, a PostgreSQL and a leaderl stand-in per node: \(pids)")

            let before = Self.json(try await Self.layer(["status", "--dir", directory]))
            #expect((before["be1"] as? [String: Any])?["role"] as? String == "primary", "\(before)")
            #expect((before["be2"] as? [String: Any])?["streaming"] as? Bool == true, "\(before)")
            #expect(before["etcd_healthy"] as? Bool == true, "\(before)")
            #expect(before["leader"] as? String == "be1", "the primary holds the election: \(before)")

            // Writes through a multi-host connection while the primary moves from be1 to be2.
            let report = directory + ".load.json"
            defer {
                try? FileManager.default.removeItem(atPath: report)
                try? FileManager.default.removeItem(atPath: report + ".err")
            }
            let load = try Processes.spawn(
                Self.python, [Self.script, "load", "--dir", directory, "--seconds", "6", "--rate", "50"],
                stdout: report,
                stderr: report + ".err")
            try await Task.sleep(for: .seconds(2))
            let switchover = try await Self.layer(["switchover", "--dir", directory, "--to", "be2"])
            #expect(switchover.status == 0, "\(switchover.stdout)\(switchover.stderr)")
            #expect(
                await load.exitStatus() == 0, "\((try? String(contentsOfFile: report + ".err", encoding: .utf8)) ?? "")"
            )
            let ledger = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
            )
            #expect(ledger["lost"] as? Int == 0, "no acknowledged write lost: \(ledger)")
            #expect((ledger["acknowledged"] as? Int ?? 0) > 0, "\(ledger)")

            let after = Self.json(try await Self.layer(["status", "--dir", directory]))
            #expect((after["be2"] as? [String: Any])?["role"] as? String == "primary", "\(after)")
            #expect(after["leader"] as? String == "be2", "\(after)")
            for standby in ["be1", "be3"] {
                #expect((after[standby] as? [String: Any])?["streaming"] as? Bool == true, "\(standby): \(after)")
            }

            let down = try await Self.layer(["down", "--dir", directory])
            #expect(down.status == 0, "\(down.stderr)")
            for (name, pid) in pids {
                #expect(kill(pid_t(pid), 0) != 0 || Self.isZombie(pid), "\(name) (pid \(pid)) stopped")
            }
            #expect(!FileManager.default.fileExists(atPath: directory), "nothing left behind")
            try? FileManager.default.removeItem(atPath: report)
            try? FileManager.default.removeItem(atPath: report + ".err")
        }

        /// Waits until `status` satisfies `condition` (polled every 0.5 s), or fails saying what it waited for.
        static func waitForStatus(
            _ directory: String, _ what: String, within seconds: Double = 30,
            _ condition: @escaping @Sendable ([String: Any]) -> Bool
        ) async throws -> [String: Any] {
            let deadline = ContinuousClock.now + .seconds(seconds)
            var last: [String: Any] = [:]
            while ContinuousClock.now < deadline {
                last = Self.json(try await Self.layer(["status", "--dir", directory]))
                if condition(last) { return last }
                try await Task.sleep(for: .milliseconds(500))
            }
            Issue.record("waited \(seconds) s for \(what); the data layer: \(last)")
            return last
        }

        /// Starts a data layer on three fresh addresses for `body`, and always stops it.
        static func withLayer(_ body: (String) async throws -> Void) async throws {
            let directory = "/tmp/drover-real-\(UUID().uuidString.prefix(8).lowercased())"
            let addresses = (1...3).map { _ in LoopbackAddresses.next(port: 5432) }
            let nodes = zip(["be1", "be2", "be3"], addresses).map { "\($0)=\($1)" }.joined(separator: ",")
            let up = try await Self.layer(["up", "--dir", directory, "--nodes", nodes])
            defer { _ = try? Processes.run(Self.python, [Self.script, "down", "--dir", directory]) }
            try #require(up.status == 0, "\(up.stdout)\(up.stderr)")
            try await body(directory)
            let down = try await Self.layer(["down", "--dir", directory])
            #expect(down.status == 0, "\(down.stderr)")
        }

        static func role(_ status: [String: Any], _ node: String) -> String? {
            (status[node] as? [String: Any])?["role"] as? String
        }

        static func streaming(_ status: [String: Any], _ node: String) -> Bool {
            (status[node] as? [String: Any])?["streaming"] as? Bool == true
        }

        /// With failover off, a leader whose PostgreSQL is held down is not replaced; turned on, a standby is
        /// elected on the etcd lease and promoted, the other follows it, and the old leader, released, rejoins.
        @Test func aLeaderHeldDownIsReplacedOnlyWithFailoverOn() async throws {
            try await Self.withLayer { directory in
                _ = try await Self.layer(["failover", "--dir", directory, "--set", "off"])
                let held = try await Self.layer(["hold", "--dir", directory, "--node", "be1"])
                #expect(held.status == 0, "\(held.stderr)")
                // The lease's TTL (15 s) and more: the lease has lapsed, and nobody may campaign.
                try await Task.sleep(for: .seconds(20))
                let blocked = Self.json(try await Self.layer(["status", "--dir", directory]))
                #expect(
                    blocked["leader"] is NSNull || blocked["leader"] == nil, "no election with failover off: \(blocked)"
                )
                #expect(Self.role(blocked, "be2") == "standby" && Self.role(blocked, "be3") == "standby", "\(blocked)")

                _ = try await Self.layer(["failover", "--dir", directory, "--set", "on"])
                let elected = try await Self.waitForStatus(directory, "a standby elected, promoted and followed") {
                    guard let leader = $0["leader"] as? String, leader != "be1" else { return false }
                    let other = leader == "be2" ? "be3" : "be2"
                    return Self.role($0, leader) == "primary" && Self.streaming($0, other)
                }
                let leader = elected["leader"] as? String ?? "?"
                _ = try await Self.layer(["release", "--dir", directory, "--node", "be1"])
                let rejoined = try await Self.waitForStatus(directory, "be1 streaming from \(leader)") {
                    Self.streaming($0, "be1") && $0["leader"] as? String == leader
                }
                #expect(Self.role(rejoined, "be1") == "standby", "\(rejoined)")
            }
        }

        /// A leader's PostgreSQL killed (`kill -9`) with failover off is started again and leads again, as runit
        /// and leaderl would; no acknowledged write is lost.
        @Test func aKilledLeaderPostgresIsStartedAgainAndLeadsAgain() async throws {
            try await Self.withLayer { directory in
                _ = try await Self.layer(["failover", "--dir", directory, "--set", "off"])
                let report = directory + ".load.json"
                defer {
                    try? FileManager.default.removeItem(atPath: report)
                    try? FileManager.default.removeItem(atPath: report + ".err")
                }
                let load = try Processes.spawn(
                    Self.python, [Self.script, "load", "--dir", directory, "--seconds", "12", "--rate", "50"],
                    stdout: report, stderr: report + ".err")
                try await Task.sleep(for: .seconds(2))
                let killed = try await Self.layer(["kill", "--dir", directory, "--node", "be1"])
                #expect(killed.status == 0, "\(killed.stderr)")
                let back = try await Self.waitForStatus(directory, "be1 leading again with both standbys streaming") {
                    $0["leader"] as? String == "be1" && Self.role($0, "be1") == "primary" && Self.streaming($0, "be2")
                        && Self.streaming($0, "be3")
                }
                #expect(Self.role(back, "be2") == "standby" && Self.role(back, "be3") == "standby", "\(back)")
                #expect(
                    await load.exitStatus() == 0,
                    "\((try? String(contentsOfFile: report + ".err", encoding: .utf8)) ?? "")"
                )
                let ledger = try #require(
                    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report)))
                        as? [String: Any]
                )
                #expect(ledger["lost"] as? Int == 0, "a crash restart keeps every commit: \(ledger)")
            }
        }

        static func isZombie(_ pid: Int) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.range(of: ") ", options: .backwards)
            else { return true }
            return stat[close.upperBound...].first == "Z"
        }
    }

    /// Drover's rolling upgrade of a sandbox whose backends stand on the real data layer (`up --real`), under a
    /// write load: the short rehearsal.
    @Suite("a rolling upgrade on a real data layer", needsSandbox, .timeLimit(.minutes(6 * TestTime.factor)))
    struct RealRehearsalTests {
        @Test func droverUpgradesUnderAWriteLoadAndLosesNoAcknowledgedWrite() async throws {
            try await SandboxCluster.with(rejoin: "90s", real: true) { cluster in
                let real = try #require(
                    try await Processes.offPool { cluster.sandbox.record()?.realDataLayer },
                    "the sandbox has a real data layer")
                let before = RealDataLayerTests.json(
                    try await RealDataLayerTests.layer(["status", "--dir", real.directory]))
                #expect(before["leader"] as? String == "be1", "\(before)")
                let status = try await cluster.drover(["status"])
                #expect(status.status == 0, "the simulator reports the real services: \(status.stdout)\(status.stderr)")

                let report = cluster.scratch("ledger.json")
                let load = try Processes.spawn(
                    RealDataLayerTests.python,
                    [RealDataLayerTests.script, "load", "--dir", real.directory, "--seconds", "600", "--rate", "50"],
                    stdout: report, stderr: report + ".err")
                // A test that throws stops the load too (its own child, by pid, while it runs).
                defer { if load.isRunning { kill(load.pid, SIGKILL) } }
                try await Task.sleep(for: .seconds(1))
                let upgrade = try await cluster.drover(["upgrade", "--yes"], timeout: .seconds(300))
                #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
                // The inventory's write probe (one write through the multi-host connection, every 0.5 s) in the
                // summary. What it saw depends on the machine's load (a Python start per answer), not asserted here;
                // WriteProbeTests checks the windows.
                let writes = upgrade.stdout.split(separator: "\n").first { $0.hasPrefix("Writes: ") }.map(String.init)
                #expect(
                    writes?.contains("answers from \(RealDataLayerTests.python) ") == true
                        && writes?.contains(" probe --dir \(real.directory)") == true,
                    "the summary says what the write probe saw: \(writes ?? upgrade.stdout)")
                try await Task.sleep(for: .seconds(1))
                kill(load.pid, SIGTERM)
                #expect(
                    await load.exitStatus() == 0,
                    "\((try? String(contentsOfFile: report + ".err", encoding: .utf8)) ?? "")")
                let ledger = try #require(
                    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report)))
                        as? [String: Any])
                print("the ledger of Drover's upgrade: \(ledger)")
                #expect(ledger["lost"] as? Int == 0, "no acknowledged write lost: \(ledger)")
                #expect((ledger["acknowledged"] as? Int ?? 0) > 100, "\(ledger)")
                // The planned switchover's outage is the client's reconnect; a follower's restart causes none.
                #expect((ledger["longest_outage_s"] as? Double ?? 99) < 5, "\(ledger)")

                let after = RealDataLayerTests.json(
                    try await RealDataLayerTests.layer(["status", "--dir", real.directory]))
                let leader = try #require(after["leader"] as? String, "\(after)")
                #expect(leader != "be1", "the leader failed over: \(after)")
                #expect((after[leader] as? [String: Any])?["role"] as? String == "primary", "\(after)")
                for standby in ["be1", "be2", "be3"] where standby != leader {
                    #expect((after[standby] as? [String: Any])?["streaming"] as? Bool == true, "\(standby): \(after)")
                }
                let state = try await cluster.state()
                #expect(
                    state.nodes.allSatisfy { $0.runningVersion == "2.3.16" }, "\(state.nodes.map(\.runningVersion))")
                #expect(state.leader == leader, "the simulator's leader is etcd's: \(String(describing: state.leader))")
            }
        }
    }

    /// A follower's upgrade that fails on the real data layer: Drover stops with the follower down and the others
    /// serving; healed, `drover resume` finishes the upgrade.
    @Suite("a failed upgrade on a real data layer", needsSandbox, .timeLimit(.minutes(6 * TestTime.factor)))
    struct RealFailedUpgradeTests {
        @Test func aFollowerThatDoesNotComeBackStopsTheRunAndResumeFinishesIt() async throws {
            try await SandboxCluster.with(rejoin: "20s", real: true) { cluster in
                let real = try #require(try await Processes.offPool { cluster.sandbox.record()?.realDataLayer })
                try await cluster.breakNode("be2", "upgrade-fails")
                let upgrade = try await cluster.drover(["upgrade", "--yes"], timeout: .seconds(300))
                #expect(upgrade.status == 1, "\(upgrade.stdout)\n\(upgrade.stderr)")
                #expect(upgrade.stdout.contains("drover resume"), "the next command: \(upgrade.stdout)")
                let stopped = RealDataLayerTests.json(
                    try await RealDataLayerTests.layer(["status", "--dir", real.directory]))
                #expect(stopped["leader"] as? String == "be1" && RealDataLayerTests.role(stopped, "be1") == "primary")
                #expect(RealDataLayerTests.role(stopped, "be2") == "down", "be2's PostgreSQL stays down: \(stopped)")
                #expect(RealDataLayerTests.streaming(stopped, "be3"), "be3 untouched and streaming: \(stopped)")
                #expect(await cluster.started("chef-backend-ctl upgrade", on: "be3") == 0, "nothing more was changed")

                try await cluster.sandbox.heal("be2")
                let resume = try await cluster.drover(["resume", "--yes"], timeout: .seconds(300))
                #expect(resume.status == 0, "\(resume.stdout)\n\(resume.stderr)")
                let after = RealDataLayerTests.json(
                    try await RealDataLayerTests.layer(["status", "--dir", real.directory]))
                let leader = try #require(after["leader"] as? String, "\(after)")
                #expect(leader != "be1" && RealDataLayerTests.role(after, leader) == "primary", "\(after)")
                for node in ["be1", "be2", "be3"] where node != leader {
                    #expect(RealDataLayerTests.streaming(after, node), "\(node): \(after)")
                }
                let state = try await cluster.state()
                #expect(
                    state.nodes.allSatisfy { $0.runningVersion == "2.3.16" }, "\(state.nodes.map(\.runningVersion))")
            }
        }

        /// The simulated Elasticsearch's known 2.x → 3.x failure on the old leader works over the real data layer
        /// too: Drover upgrades it again once it follows.
        @Test func aHalfUpgradedElasticsearchOnTheOldLeaderIsUpgradedAgain() async throws {
            try await SandboxCluster.with(scale: 0.3, rejoin: "60s", versions: ("2.3.15", "3.1.1"), real: true) {
                cluster in
                try await cluster.breakNode("be1", "es-path-scripts")
                let upgrade = try await cluster.drover(["upgrade", "--yes"], timeout: .seconds(300))
                #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
                #expect(upgrade.stdout.contains("finish-elasticsearch-upgrade on be1"), "\(upgrade.stdout)")
                let state = try await cluster.state()
                #expect(state.nodes.allSatisfy { !$0.elasticsearchHalfUpgraded && $0.runningVersion == "3.1.1" })
            }
        }
    }
}
