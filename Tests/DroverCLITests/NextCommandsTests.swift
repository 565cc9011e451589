import DroverTestSupport
import Foundation
import Testing

/// What a failed run says to do next works when pasted: each command whole on its own line, through Drover
/// (the inventory's keys and known_hosts, a journal), run as a person would in a shell on a terminal.
@Suite("a failed run's next commands, pasted", needsSandbox, .timeLimit(.minutes(4 * TestTime.factor)))
struct NextCommandsTests {
    /// The commands under `Next:`: the lines indented below a numbered step.
    static func nextCommands(_ output: String) -> [String] {
        guard let next = output.range(of: "\nNext:\n") else { return [] }
        return output[next.upperBound...].split(separator: "\n").prefix { $0.hasPrefix("  ") }
            .filter { $0.hasPrefix("       ") }.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The console's `step N/M NAME on NODE` lines, in order.
    static func stepNumbers(_ output: String) -> [(index: Int, total: Int, step: String)] {
        output.split(whereSeparator: \.isNewline).compactMap { line in
            guard let range = line.range(of: "] step ") else { return nil }
            let words = line[range.upperBound...].split(separator: " ")
            let numbers = words.first?.split(separator: "/").compactMap { Int($0) } ?? []
            guard numbers.count == 2, words.count >= 4 else { return nil }
            return (numbers[0], numbers[1], words[1...3].joined(separator: " ").replacingOccurrences(of: ":", with: ""))
        }
    }

    /// The run id of `Run ID; see it again: ...`.
    static func runID(_ output: String) -> String? {
        output.split(whereSeparator: \.isNewline).first { $0.hasPrefix("Run ") && $0.contains("; see it again") }
            .flatMap { $0.split(separator: " ").dropFirst().first.map { String($0.dropLast()) } }
    }

    /// Runs `command` as pasted into `sh` on a terminal, with drover on PATH, answering the run's question.
    static func paste(_ command: String, cluster: SandboxCluster) async throws -> PseudoTerminal.Result {
        let directory = (DroverBinary.path as NSString).deletingLastPathComponent
        var environment = ProcessInfo.processInfo.environment.merging(cluster.environment) { $1 }
        environment["PATH"] = directory + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["NO_COLOR"] = "1"
        let shell = environment
        return try await Processes.offPool {
            try PseudoTerminal.run(
                "/bin/sh", ["-c", command], environment: shell,
                answers: [
                    (prompt: "Type yes to start the run:", reply: "yes"),
                    (prompt: "Type yes to continue the run:", reply: "yes"),
                ].filter { command.contains(" resume ") ? $0.prompt.contains("continue") : true })
        }
    }

    /// A follower's upgrade fails; the run stops with failover off.
    static func failedUpgrade(_ cluster: SandboxCluster) async throws -> [String] {
        try await cluster.breakNode("be2", "upgrade-fails")
        let failed = try await cluster.drover(["upgrade", "--yes"])
        #expect(failed.status == 1, "\(failed.stdout)\n\(failed.stderr)")
        let inventory = "--inventory \(cluster.inventoryPath)"
        let commands = Self.nextCommands(failed.stdout)
        #expect(
            commands == [
                "drover status \(inventory)", "drover resume \(inventory)", "drover upgrade \(inventory) --yes",
                "drover run set-failover --set state=on \(inventory)",
            ], "\(failed.stdout)")
        #expect(failed.stdout.contains("  2. Read be2's logs: /var/log/chef-backend/*/current\n"))
        #expect(
            failed.stdout.contains("  5. To stop here instead, turn failover back on:\n       drover run set-failover"))
        #expect(!failed.stdout.contains("ssh root@"), "no raw ssh: it would bypass the inventory and the journal")
        return commands
    }

    /// A CI job's run with `--state-dir` and `--playbooks`: every command it prints carries both, the summary's and
    /// `diagnose`'s; pasted, they finish the upgrade. `resume` without the state directory says where it looked and,
    /// the cluster being half-upgraded, exits 2 instead of calling it finished.
    @Test func aRunsOwnOptionsGoWithItsPrintedCommands() async throws {
        try await SandboxCluster.with(rejoin: "2s") { cluster in
            try await cluster.breakNode("be2", "upgrade-fails")
            let state = cluster.scratch("drover-state")
            let playbooks = cluster.scratch("playbooks")
            try FileManager.default.createDirectory(atPath: playbooks, withIntermediateDirectories: true)
            let failed = try await cluster.drover([
                "upgrade", "--yes", "--state-dir", state, "--playbooks", playbooks,
            ])
            #expect(failed.status == 1, "\(failed.stdout)\n\(failed.stderr)")
            let inventory = "--inventory \(cluster.inventoryPath)"
            let carried = "--state-dir \(state) --playbooks \(playbooks)"
            #expect(
                Self.nextCommands(failed.stdout) == [
                    "drover status \(inventory)", "drover resume \(inventory) \(carried)",
                    "drover upgrade \(inventory) --state-dir \(state) --playbooks \(playbooks) --yes",
                    "drover run set-failover --set state=on \(inventory) \(carried)",
                ], "\(failed.stdout)")
            let runID = try #require(Self.runID(failed.stdout))
            #expect(failed.stdout.contains("see it again: drover show \(runID) --state-dir \(state)\n"))
            // Without the state directory, resume finds no run, says where it looked, and sees the cluster undone.
            let lost = try await cluster.drover(["resume", "--yes"])
            #expect(lost.status == 2, "\(lost.stdout)\(lost.stderr)")
            #expect(lost.stderr.contains("no run of it is recorded in \(cluster.stateDirectory)/sandbox"))
            #expect(lost.stderr.contains("But the cluster is not done") && !lost.stdout.contains("finished"))
            let otherCluster = try await DroverBinary.run(
                ["runs", "--cluster", "ci-b", "--state-dir", state], environment: cluster.environment)
            #expect(
                otherCluster.stdout.contains("No runs of cluster ci-b recorded in \(state); it has runs of sandbox"),
                "\(otherCluster.stdout)")
            let diagnosis = try await cluster.drover(["diagnose", "--state-dir", state])
            // diagnose takes no --playbooks: the journal names the playbook's file, which resume reads.
            #expect(
                diagnosis.stdout.contains("\n      drover resume \(inventory) --state-dir \(state)\n"),
                "\(diagnosis.stdout)")
            try await cluster.sandbox.heal("be2")
            let show = try await Self.paste("drover show \(runID) --state-dir \(state)", cluster: cluster)
            #expect(show.status == 0, "\(show.output)")
            let resumed = try await Self.paste(Self.nextCommands(failed.stdout)[1], cluster: cluster)
            #expect(resumed.status == 0, "\(resumed.output)")
            try await expectUpgradedSafely(cluster)
            // Its duration is the run's wall time, from the first attempt's start, not the last attempt's.
            let journal = try #require(StateReader.journal(in: state))
            let record = try #require(try JSONSerialization.jsonObject(with: Data(journal.utf8)) as? [String: Any])
            let dates = ["started", "finished"].compactMap {
                (record[$0] as? String).flatMap(ISO8601DateFormatter().date)
            }
            let said = try #require(
                resumed.output.range(of: #"Succeeded in [0-9.]+s"#, options: .regularExpression).map {
                    Double(resumed.output[$0].dropFirst("Succeeded in ".count).dropLast())
                } ?? nil, "\(resumed.output)")
            #expect(dates.count == 2 && abs(said - dates[1].timeIntervalSince(dates[0])) < 1.5, "\(said) \(dates)")
        }
    }

    @Test func continuingAFailedUpgradeWorksWhenPasted() async throws {
        try await SandboxCluster.with(rejoin: "2s") { cluster in
            let commands = try await Self.failedUpgrade(cluster)
            let status = try await Self.paste(commands[0], cluster: cluster)
            #expect([0, 2].contains(status.status) && status.output.contains("be2"), "\(status.output)")
            try await cluster.sandbox.heal("be2")
            let resumed = try await Self.paste(commands[1], cluster: cluster)
            #expect(resumed.status == 0, "\(resumed.output)")
            try await expectUpgradedSafely(cluster)
            // The resumed run numbers on as the plan does: the failed step keeps its number, the last is the total.
            let numbers = Self.stepNumbers(resumed.output)
            #expect(numbers.first?.index == 2 && numbers.first?.step == "upgrade-follower on be2", "\(resumed.output)")
            #expect(numbers.last.map { $0.index == $0.total } == true, "\(resumed.output)")
            #expect(numbers.map(\.index) == Array(2...(numbers.last?.total ?? 2)), "\(resumed.output)")
            let show = try await DroverBinary.run(
                ["show", try #require(Self.runID(resumed.output))], environment: cluster.environment)
            #expect(
                show.stdout.contains(
                    "  resumed:\n  2. upgrade-follower on be2: succeeded\n  3. upgrade-follower on be3"),
                "\(show.stdout)")
        }
    }

    @Test func stoppingAFailedUpgradeInsteadWorksWhenPasted() async throws {
        try await SandboxCluster.with(rejoin: "2s") { cluster in
            let commands = try await Self.failedUpgrade(cluster)
            // Through Drover (the inventory's keys and known_hosts), with a journal of its own.
            let restore = try await Self.paste(commands[3], cluster: cluster)
            #expect(restore.status == 0, "\(restore.output)")
            #expect(await cluster.started("chef-backend-ctl set-cluster-failover on", on: "be1") == 1)
            let runs = try await DroverBinary.run(["runs"], environment: cluster.environment)
            #expect(runs.stdout.contains(" set-failover ") && runs.stdout.contains(" succeeded "), "\(runs.stdout)")
            // A table with a header row, its columns where the rows' are.
            let header = try #require(runs.stdout.split(separator: "\n").first.map(String.init))
            #expect(
                header.hasPrefix("RUN ID ") && header.contains(" PLAYBOOK ") && header.contains(" STATUS "),
                "\(runs.stdout)")
            let column = try #require(header.range(of: "PLAYBOOK")).lowerBound.utf16Offset(in: header)
            for row in runs.stdout.split(separator: "\n").dropFirst() {
                #expect(
                    row.utf16.count > column && row[row.index(row.startIndex, offsetBy: column - 1)] == " ", "\(row)")
            }
        }
    }

    @Test func everyRunEndsWithItsIdAndWhatItWrote() async throws {
        try await SandboxCluster.with { cluster in
            let junit = cluster.scratch("reports/junit.xml")
            let html = cluster.scratch("run.html")
            let run = try await cluster.drover([
                "run", "set-failover", "--set", "state=on", "--yes", "--junit", junit, "--html", html,
            ])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            let lines = run.stdout.split(separator: "\n").map(String.init).suffix(5)
            let runID = try #require(lines.first?.split(separator: " ").dropFirst().first).dropLast()
            let directory = cluster.stateDirectory + "/sandbox/" + runID
            #expect(
                Array(lines) == [
                    "Run \(runID); see it again: drover show \(runID)", "  journal:    \(directory)/journal.json",
                    "  transcript: \(directory)/transcript.jsonl", "  JUnit:      \(junit)", "  report:     \(html)",
                ], "\(run.stdout)")
            #expect(FileManager.default.fileExists(atPath: junit) && FileManager.default.fileExists(atPath: html))
            let show = try await DroverBinary.run(["show", String(runID)], environment: cluster.environment)
            #expect(show.status == 0 && show.stdout.contains("set-failover on sandbox, succeeded"), "\(show.stdout)")
            // With --json, stdout is the events only; the same lines go to stderr.
            let json = try await cluster.drover(["run", "set-failover", "--set", "state=on", "--yes", "--json"])
            #expect(json.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix("{") }, "\(json.stdout)")
            #expect(json.stderr.contains("; see it again: drover show "), "\(json.stderr)")
        }
    }
}
