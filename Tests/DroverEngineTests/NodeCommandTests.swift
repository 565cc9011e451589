import DroverSSH
import DroverTestSupport
import Foundation
import Testing

@testable import DroverEngine

/// The node-command script run by /bin/sh here, as sshd would run it on a node: start, re-attach, records.
@Suite("node commands: detached, recorded, re-attached", .timeLimit(.minutes(2)))
struct NodeCommandTests {
    /// What one run of the script printed and exited with; its marker lines apart.
    struct Run {
        var stdout: [String]
        var stderr: [String]
        var markers: [NodeCommand.State]
        var status: Int32
    }

    /// The login shells a node may run the script with: Debian's dash as /bin/sh, and bash.
    static let shells = ["/bin/sh", "/bin/bash"]

    static func run(_ script: String, _ shell: String) async throws -> Run {
        let output = try await Processes.offPool { try Processes.run(shell, ["-c", script]) }
        let errLines = output.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter {
            !$0.isEmpty
        }
        let markers = errLines.compactMap { NodeCommand.state(of: OutputLine(stream: .stderr, text: $0)) }
        return Run(
            stdout: output.stdout.split(separator: "\n").map(String.init),
            stderr: errLines.filter { !$0.hasPrefix(NodeCommand.marker) }, markers: markers, status: output.status)
    }

    static func command(_ text: String, in directory: String, name: String = "step.be1.1") -> NodeCommand {
        NodeCommand(directory: directory + "/drover-runs/RUN", name: name, command: text)
    }

    @Test(arguments: Self.shells) func startsRecordsAndExitsWithTheCommandsStatus(shell: String) async throws {
        let directory = try temporaryDirectory("nodecmd")
        let command = Self.command("echo one; echo two >&2; echo \"it's quoted\"; exit 3", in: directory)
        let first = try await Self.run(command.script(), shell)
        #expect(first.markers == [.started])
        #expect(first.stdout == ["one", "it's quoted"] && first.stderr == ["two"])
        #expect(first.status == 3)
        let record = command.directory + "/" + command.name
        let status = try String(contentsOfFile: record + ".status", encoding: .utf8)
        #expect(status.hasPrefix("pid ") && status.hasSuffix("\nexit 3\n"), "\(status)")
        #expect(try String(contentsOfFile: record + ".command", encoding: .utf8) == command.command + "\n")
        let records = try FileManager.default.attributesOfItem(atPath: command.directory)
        #expect((records[.posixPermissions] as? Int) == 0o700, "readable by its owner only")
        let output = try FileManager.default.attributesOfItem(atPath: record + ".out")
        #expect((output[.posixPermissions] as? Int) == 0o600)
        // Run again: the record is used, the command is not run a second time.
        let again = try await Self.run(command.script(), shell)
        #expect(again.markers == [.finished] && again.status == 3 && again.stdout == ["one", "it's quoted"])
        // From the lines already seen: nothing repeated.
        let rest = try await Self.run(command.script(seen: .init(stdout: 1, stderr: 1)), shell)
        #expect(rest.stdout == ["it's quoted"] && rest.stderr.isEmpty)
    }

    /// Several followers that reach a never-started record at once (a session made again while the lost one
    /// still runs its script): the command starts once, and each of them follows it to its status.
    @Test(arguments: Self.shells) func followersArrivingTogetherStartTheCommandOnce(shell: String) async throws {
        let directory = try temporaryDirectory("nodecmd")
        let records = 8
        let followers = 4
        let outcomes = try await withThrowingTaskGroup(of: (Int, Run).self) { group in
            for record in 0..<records {
                let command = Self.command(
                    "echo once >> \(ShellQuote.quote(directory))/count.\(record); sleep 0.3; exit 4", in: directory,
                    name: "step.be1.\(record)")
                for _ in 0..<followers {
                    group.addTask {
                        // Await first, then form the tuple (swiftlang/swift#91911).
                        let run = try await Self.run(command.script(), shell)
                        return (record, run)
                    }
                }
            }
            var all: [(Int, Run)] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        for record in 0..<records {
            let count = try String(contentsOfFile: "\(directory)/count.\(record)", encoding: .utf8)
            #expect(count == "once\n", "record \(record) started \(count.split(separator: "\n").count) times")
            let runs = outcomes.filter { $0.0 == record }.map(\.1)
            #expect(runs.filter { $0.markers.contains(.started) }.count == 1, "one of them started it")
            #expect(runs.allSatisfy { $0.status == 4 }, "each follower has its status: \(runs.map(\.status))")
        }
    }

    @Test(arguments: Self.shells) func aFailedCommandRunsAgainOnlyWhenAskedAndKeepsItsOldRecord(
        shell: String
    ) async throws {
        let directory = try temporaryDirectory("nodecmd")
        let counter = directory + "/count"
        let command = Self.command("echo x >> \(ShellQuote.quote(counter)); exit 1", in: directory)
        _ = try await Self.run(command.script(), shell)
        let reattached = try await Self.run(command.script(), shell)
        #expect(reattached.markers == [.finished] && reattached.status == 1)
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "x\n", "not run twice")
        let retried = try await Self.run(command.script(retryFailed: true), shell)
        #expect(retried.markers == [.started] && retried.status == 1)
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "x\nx\n")
        let kept = try FileManager.default.contentsOfDirectory(atPath: command.directory).filter {
            $0.hasPrefix(command.name + ".failed.") && $0.hasSuffix(".out")
        }
        #expect(kept.count == 1, "the failed attempt's record is kept beside the new one")
        // A successful command is never retried.
        let ok = Self.command("echo y >> \(ShellQuote.quote(counter))", in: directory, name: "ok.be1.1")
        _ = try await Self.run(ok.script(), shell)
        let notRetried = try await Self.run(ok.script(retryFailed: true), shell)
        #expect(notRetried.markers == [.finished] && notRetried.status == 0)
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "x\nx\ny\n")
    }

    @Test(arguments: Self.shells) func outlivesItsFollowerAndIsFollowedAgainFromWhereItWas(shell: String) async throws {
        let directory = try temporaryDirectory("nodecmd")
        let gate = directory + "/gate"
        let command = Self.command(
            "echo first; while [ ! -e \(ShellQuote.quote(gate)) ]; do sleep 0.05; done; echo second; echo done >&2; exit 7",
            in: directory)
        // The follower is killed as a lost connection would end it (its whole process group, by pid).
        let out = directory + "/follower.out"
        let follower = try Processes.spawn(
            "/usr/bin/setsid", [shell, "-c", command.script()], stdout: out, stderr: directory + "/follower.err")
        let record = command.directory + "/" + command.name
        try await Processes.offPool {
            let deadline = ContinuousClock.now + .seconds(20)
            while ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").isEmpty && ContinuousClock.now < deadline
            { usleep(20_000) }
        }
        kill(-follower.pid, SIGKILL)
        _ = await follower.exitStatus()
        #expect(
            try !String(contentsOfFile: record + ".status", encoding: .utf8).contains("exit"),
            "still running after its follower died")
        // Re-attached while it runs: the first line was seen, the rest arrives, then its status.
        async let attached = Self.run(command.script(seen: .init(stdout: 1, stderr: 0)), shell)
        // The gate opens once the new follower follows the output (its `tail -F` of the record runs), however
        // slowly it got there on a loaded machine.
        let following = try await Processes.offPool {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                // Its own `tail`: from the second line (the killed follower's, perhaps not gone yet, began at the
                // first).
                if Self.processRuns(containing: ["tail -n +2 ", "--pid=", record + ".out"]) { return true }
                usleep(20_000)
            }
            return false
        }
        #expect(following, "the re-attached follower never started following \(record).out")
        FileManager.default.createFile(atPath: gate, contents: nil)
        let run = try await attached
        #expect(run.markers == [.running])
        #expect(run.stdout == ["second"] && run.stderr == ["done"], "\(run)")
        #expect(run.status == 7)
    }

    @Test(arguments: Self.shells) func aRecordWithoutAStartedCommandStartsIt_OneThatVanishedIsReported(
        shell: String
    ) async throws {
        let directory = try temporaryDirectory("nodecmd")
        let command = Self.command("echo ran", in: directory)
        let record = command.directory + "/" + command.name
        // The record was claimed, nothing was started (the follower died right after claiming it).
        try FileManager.default.createDirectory(atPath: command.directory, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: record + ".command", contents: Data((command.command + "\n").utf8))
        let started = try await Self.run(command.script(), shell)
        #expect(started.markers == [.started] && started.stdout == ["ran"] && started.status == 0)
        // Started, but ended without an exit status (killed with its wrapper, or the node restarted).
        try Data("pid 1\n".utf8).write(to: URL(fileURLWithPath: record + ".status"))
        let vanished = try await Self.run(command.script(), shell)
        #expect(vanished.markers == [.vanished] && vanished.status == 125)
    }

    @Test(arguments: Self.shells) func anUnusableRecordDirectoryIsSaid(shell: String) async throws {
        let directory = try temporaryDirectory("nodecmd")
        FileManager.default.createFile(
            atPath: directory + "/drover-runs", contents: Data("a file, not a directory".utf8))
        let run = try await Self.run(Self.command("true", in: directory).script(), shell)
        #expect(run.markers == [.unusable] && run.status == 125)
        // The product's directory is never created: a node without it is not one to run on.
        let missing = directory + "/not-installed"
        let refused = try await Self.run(Self.command("true", in: missing).script(), shell)
        #expect(refused.markers == [.unusable] && !FileManager.default.fileExists(atPath: missing))
    }

    @Test(arguments: Self.shells) func consecutiveCommandsRunInOneScriptEachOnceTheOneBeforeSucceeded(
        shell: String
    ) async throws {
        let directory = try temporaryDirectory("nodecmd")
        let counter = ShellQuote.quote(directory + "/count")
        let install = Self.command("echo installing; echo i >> \(counter)", in: directory, name: "up.be1.1")
        let upgrade = Self.command(
            "echo upgrading; echo warn >&2; echo u >> \(counter)", in: directory, name: "up.be1.2")
        let both = try await Self.run(NodeCommand.script([install, upgrade], seen: [.init(), .init()]), shell)
        let section = NodeCommand.marker + " section 2"
        #expect(both.stdout == ["installing", section, "upgrading"] && both.stderr == ["warn"], "\(both)")
        #expect(both.markers == [.started, .started] && both.status == 0)
        // Again, from the lines seen: both finished, nothing repeated, nothing run twice.
        let again = try await Self.run(
            NodeCommand.script([install, upgrade], seen: [.init(stdout: 1), .init(stdout: 1, stderr: 1)]), shell)
        #expect(again.stdout == [section] && again.markers == [.finished, .finished] && again.status == 0, "\(again)")
        #expect(try String(contentsOfFile: directory + "/count", encoding: .utf8) == "i\nu\n")
        // A command that fails ends the script with its status; the next is never started.
        let failing = Self.command("echo broken >&2; exit 4", in: directory, name: "bad.be1.1")
        let never = Self.command("echo n >> \(counter)", in: directory, name: "bad.be1.2")
        let failed = try await Self.run(NodeCommand.script([failing, never], seen: [.init(), .init()]), shell)
        #expect(failed.status == 4 && failed.markers == [.started] && failed.stderr == ["broken"])
        #expect(!FileManager.default.fileExists(atPath: never.directory + "/" + never.name + ".command"))
        #expect(try String(contentsOfFile: directory + "/count", encoding: .utf8) == "i\nu\n")
    }

    /// A command that prints Drover's marker words cannot pass for the script: the marker ends in a nonce.
    @Test func aForgedMarkerIsOutput() {
        let forged = OutputLine(stream: .stderr, text: "##drover-node-command## vanished")
        #expect(NodeCommand.state(of: forged) == nil)
        #expect(NodeCommand.split(forged) == [forged])
        #expect(NodeCommand.marker.hasPrefix("##drover-node-command##") && NodeCommand.marker.count > 32)
    }

    @Test func aMarkerGluedToALastLineWithoutANewlineIsSplitOff() {
        let glued = OutputLine(stream: .stdout, text: #"{"a":1}"# + NodeCommand.marker + " section 2")
        let parts = NodeCommand.split(glued)
        #expect(parts.map(\.text) == [#"{"a":1}"#, NodeCommand.marker + " section 2"])
        #expect(NodeCommand.section(of: parts[1]) == 2 && NodeCommand.section(of: parts[0]) == nil)
        let vanished = NodeCommand.split(
            OutputLine(stream: .stderr, text: "half a line" + NodeCommand.marker + " vanished"))
        #expect(vanished.count == 2 && NodeCommand.state(of: vanished[1]) == .vanished)
        #expect(NodeCommand.split(OutputLine(stream: .stderr, text: "plain")).map(\.text) == ["plain"])
    }

    @Test(
        "record names keep only safe characters",
        arguments: [
            ("upgrade-follower", "be2", 1, "upgrade-follower.be2.1"),
            ("odd step/..", "node 1", 2, "odd_step_...node_1.2"),
        ])
    func recordNames(step: String, node: String, action: Int, expected: String) {
        #expect(NodeCommand.recordName(step: step, node: node, action: action) == expected)
    }
    /// True when a process of this machine has every one of `parts` in its command line (a /proc scan).
    static func processRuns(containing parts: [String]) -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.contains { entry in
            guard entry.allSatisfy(\.isNumber),
                let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { return false }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return parts.allSatisfy { line.contains($0) }
        }
    }
}
