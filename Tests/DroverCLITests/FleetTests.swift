import DroverTestSupport
import Foundation
import Testing

/// Several clusters in one command: parallel clusters, each strictly serial inside, each with its own lock,
/// journal, transcript and JUnit file.
@Suite("fleets: several clusters in one command", needsSandbox, .timeLimit(.minutes(4 * TestTime.factor)))
struct FleetTests {
    /// The JSON objects of a run's stdout.
    static func events(_ stdout: String) -> [[String: Any]] {
        stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// The cluster directories with a journal under the fleet's state directory.
    static func journals(_ fleet: SandboxFleet) async throws -> [String: String] {
        let state = fleet.stateDirectory
        return try await Processes.offPool {
            var found: [String: String] = [:]
            for cluster in (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? [] {
                found[cluster] = StateReader.journal(in: state + "/" + cluster)
            }
            return found
        }
    }

    @Test func everyClusterUpgradesInParallelWithItsOwnRecords() async throws {
        try await SandboxFleet.with(["alpha", "beta", "gamma"]) { fleet in
            let junit = fleet.home + "/junit"
            let run = try await fleet.drover([
                "upgrade", "--inventories", fleet.inventories, "--yes", "--json", "--junit", junit,
            ])
            #expect(run.status == 0, "\(run.stderr)")
            let events = Self.events(run.stdout)
            #expect(events.count == run.stdout.split(separator: "\n").count, "stdout is JSON Lines only")
            let perCluster = events.filter { $0["event"] as? String != "fleet_finished" }
            #expect(
                !perCluster.isEmpty && perCluster.allSatisfy { fleet.names.contains($0["cluster"] as? String ?? "") },
                "every event carries its cluster")
            let finished = try #require(events.last { $0["event"] as? String == "fleet_finished" })
            let outcomes = (finished["clusters"] as? [[String: Any]] ?? []).map {
                "\($0["cluster"] ?? "")=\($0["outcome"] ?? "")"
            }
            #expect(outcomes == ["alpha=succeeded", "beta=succeeded", "gamma=succeeded"])
            // In parallel: every cluster started before any finished.
            func times(_ name: String) -> [String] {
                perCluster.filter { $0["event"] as? String == name }.compactMap { $0["time"] as? String }
            }
            #expect(
                times("run_started").count == 3 && times("run_started").max()! < times("run_finished").min()!,
                "started \(times("run_started")), finished \(times("run_finished"))")
            for name in fleet.names {
                #expect(try await fleet.versions(name).values.allSatisfy { $0 == "2.3.16" }, "\(name) upgraded")
                #expect(FileManager.default.fileExists(atPath: "\(junit)/\(name).xml"), "\(name)'s JUnit report")
            }
            let journals = try await Self.journals(fleet)
            #expect(
                Set(journals.keys) == Set(fleet.names) && journals.values.allSatisfy { $0.contains("\"succeeded\"") })
        }
    }

    @Test func oneFailingClusterStopsOnlyItself() async throws {
        try await SandboxFleet.with(["alpha", "beta", "gamma"]) { fleet in
            try await fleet["beta"].breakNode("be2", "upgrade-fails")
            // Runs recorded under a state directory of their own: the commands printed at the end carry it.
            let state = fleet.home + "/fleet-state"
            let run = try await fleet.drover([
                "upgrade", "--inventory", fleet.inventory("alpha"), "--inventory", fleet.inventory("beta"),
                "--inventory", fleet.inventory("gamma"), "--yes", "--state-dir", state,
            ])
            #expect(run.status == 1, "the most severe outcome: \(run.stdout)")
            #expect(try await fleet.versions("alpha").values.allSatisfy { $0 == "2.3.16" })
            #expect(try await fleet.versions("gamma").values.allSatisfy { $0 == "2.3.16" })
            let beta = try await fleet.versions("beta")
            #expect(beta["be1"] == "2.3.15" && beta["be3"] == "2.3.15", "beta stopped at its first failure: \(beta)")
            // Not a terminal: each line prefixed by its cluster, then the summary table.
            #expect(
                run.stdout.contains("alpha | ") && run.stdout.contains("beta  | FAILED at step upgrade-follower on be2")
            )
            let table = run.stdout.split(separator: "\n").filter {
                $0.hasPrefix("alpha ") || $0.hasPrefix("beta ") || $0.hasPrefix("gamma ")
            }
            #expect(table.contains { $0.hasPrefix("beta ") && $0.contains("failed") && $0.contains(" 1 ") }, "\(table)")
            #expect(
                run.stdout.contains("drover resume --inventory \(fleet.inventory("beta")) --state-dir \(state) --yes"),
                "\(run.stdout)")
            #expect(run.stdout.contains("drover resume --inventory \(fleet.inventory("beta")) --state-dir \(state)\n"))
        }
    }

    @Test func failFastStartsNoOtherClusterAndStopsTheRunningOnesCleanly() async throws {
        try await SandboxFleet.with(["alpha", "beta", "gamma"], scale: 0.3, rejoin: "20s") { fleet in
            // beta's pre-flight refuses (free space on be2): a failure of the fleet, with nothing changed on beta.
            try await fleet["beta"].breakNode("be2", "disk-full")
            let run = try await fleet.drover([
                "upgrade", "--inventories", fleet.inventories, "--parallel", "2", "--fail-fast", "--yes",
            ])
            #expect(run.status == 1, "a failure, not an interruption: \(run.stdout)")
            #expect(run.stdout.contains("STOPPED by --fail-fast"), "\(run.stdout)")
            #expect(await fleet["gamma"].log().isEmpty, "gamma never started: nothing was sent to it")
            #expect(
                run.stdout.contains("drover upgrade --inventory \(fleet.inventory("gamma")) --yes"),
                "how to start gamma")
            // alpha stopped between steps: no node left mid-upgrade.
            let alpha = try await fleet["alpha"].state()
            #expect(alpha.nodes.allSatisfy { $0.phase == .synced }, "\(alpha.nodes.map { "\($0.name) \($0.phase)" })")
            #expect(alpha.nodes.contains { $0.runningVersion == "2.3.15" }, "alpha had more to do")

            #expect(
                try await fleet.versions("beta").values.allSatisfy { $0 == "2.3.15" }, "beta refused before any change")

            // The fleet resumes what stopped: alpha finishes; beta and gamma have no run to resume.
            let resume = try await fleet.drover(["resume", "--inventories", fleet.inventories, "--yes"])
            #expect(resume.status == 0, "\(resume.stdout)\n\(resume.stderr)")
            #expect(try await fleet.versions("alpha").values.allSatisfy { $0 == "2.3.16" })
            #expect(resume.stdout.contains("gamma | Nothing to resume"), "\(resume.stdout)")
        }
    }

    @Test func firstInterruptStopsEveryClusterAfterItsStepAndResumeFinishesThem() async throws {
        try await SandboxFleet.with(["alpha", "beta"], scale: 0.3, rejoin: "20s") { fleet in
            let run = try fleet.start(["upgrade", "--inventories", fleet.inventories, "--yes", "--json"])
            // Both clusters are inside a follower's upgrade.
            for name in fleet.names {
                #expect(try await fleet["alpha"].waitFor("\"cluster\":\"\(name)\"", in: run.stdout), "\(name) started")
            }
            #expect(try await fleet["alpha"].waitFor("\"step\":\"upgrade-follower\"", in: run.stdout))
            kill(run.child.pid, SIGINT)
            let status = await run.child.exitStatus()
            let stdout = try await Processes.offPool { try String(contentsOfFile: run.stdout, encoding: .utf8) }
            #expect(status == 130, "interrupted: \(stdout.suffix(2000))")
            for name in fleet.names {
                let state = try await fleet[name].state()
                #expect(
                    state.nodes.allSatisfy { $0.phase == .synced },
                    "\(name): the step in flight finished and was verified")
            }
            let journals = try await Self.journals(fleet)
            #expect(journals.count == 2 && journals.values.allSatisfy { $0.contains("\"interrupted\"") })

            let resume = try await fleet.drover(["resume", "--inventories", fleet.inventories, "--yes"])
            #expect(resume.status == 0, "\(resume.stdout)\n\(resume.stderr)")
            for name in fleet.names {
                #expect(try await fleet.versions(name).values.allSatisfy { $0 == "2.3.16" }, "\(name) finished")
            }
        }
    }

    @Test func onATerminalALiveTableShowsEveryCluster() async throws {
        try await SandboxFleet.with(["alpha", "beta"]) { fleet in
            let environment = try DroverBinary.environment(
                fleet.environment.merging(["NO_COLOR": "1", "TERM": "xterm"]) { $1 })
            let inventories = fleet.inventories
            let result = try await Processes.offPool {
                try PseudoTerminal.run(
                    DroverBinary.path, ["upgrade", "--inventories", inventories, "--yes"], environment: environment,
                    answers: [])
            }
            #expect(result.status == 0, "\(result.output.suffix(1500))")
            #expect(result.output.contains("cluster  phase"), "the table's header")
            #expect(result.output.contains("\u{1B}[3A"), "the table (a header and two clusters) is redrawn in place")
            #expect(result.output.contains("upgrade-follower"), "a cluster's phase")
            #expect(!result.output.contains("alpha | "), "no prefixed lines on a terminal")
            let lines = result.output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(
                lines.contains { $0.hasPrefix("alpha") && $0.contains("succeeded") && $0.contains(" 0 ") },
                "the summary table")
        }
    }

    @Test func statusAndPlanOfAFleetPrintEachClusterWholeInOrder() async throws {
        try await SandboxFleet.with(["alpha", "beta"]) { fleet in
            let status = try await fleet.drover(["status", "--inventories", fleet.inventories])
            #expect(status.status == 0, "\(status.stderr)")
            let alpha = try #require(status.stdout.range(of: "== alpha (\(fleet.inventory("alpha"))) =="))
            let beta = try #require(status.stdout.range(of: "== beta (\(fleet.inventory("beta"))) =="))
            #expect(alpha.upperBound < beta.lowerBound && status.stdout.components(separatedBy: "Healthy.").count == 3)

            let json = try await fleet.drover(["status", "--inventories", fleet.inventories, "--json"])
            #expect(
                Self.events(json.stdout).compactMap { $0["cluster"] as? String } == ["alpha", "beta"],
                "one object per cluster")

            let plans = fleet.home + "/plans"
            let plan = try await fleet.drover(["plan", "--inventories", fleet.inventories, "--out", plans])
            #expect(plan.status == 0, "\(plan.stderr)")
            for name in fleet.names {
                #expect(FileManager.default.fileExists(atPath: "\(plans)/\(name).json"), "\(name)'s saved plan")
            }
        }
    }
}

/// Fleets refused before anything is contacted.
@Suite("fleets: bad input", .timeLimit(.minutes(2 * TestTime.factor)))
struct FleetInputTests {
    static func inventory(_ cluster: String, in directory: String) throws -> String {
        let path = "\(directory)/\(cluster).yml"
        let text =
            "cluster: \(cluster)\nbackends:\n  - name: be1\n    host: 10.9.0.1\n  - name: be2\n    host: 10.9.0.2\n  - name: be3\n    host: 10.9.0.3\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func twoInventoriesOfOneClusterAreRefused() async throws {
        let directory = try temporaryDirectory("fleet-input")
        let first = try Self.inventory("same", in: directory)
        let second = directory + "/copy.yml"
        try FileManager.default.copyItem(atPath: first, toPath: second)
        let run = try await DroverBinary.run(["status", "--inventories", directory])
        #expect(run.status == 64)
        #expect(
            run.stderr.contains("cluster same is also the cluster of") && run.stderr.contains("copy.yml"),
            "\(run.stderr)")
    }

    @Test func severalClustersRunOnlyWithYes() async throws {
        let directory = try temporaryDirectory("fleet-input")
        _ = try Self.inventory("one", in: directory)
        _ = try Self.inventory("two", in: directory)
        let run = try await DroverBinary.run(["upgrade", "--inventories", directory])
        #expect(
            run.status == 64 && run.stderr.contains("only with --yes")
                && run.stderr.contains("drover plan --inventories"), "\(run.stderr)")
    }

    @Test func anEmptyDirectoryIsNamed() async throws {
        let directory = try temporaryDirectory("fleet-input")
        let run = try await DroverBinary.run(["plan", "--inventories", directory])
        #expect(
            run.status == 64 && run.stderr.contains(directory) && run.stderr.contains("no inventory"), "\(run.stderr)")
    }
}
