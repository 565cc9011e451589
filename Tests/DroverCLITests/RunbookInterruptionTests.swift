import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// Every runbook, killed (SIGKILL) as each of its steps starts: before that step's command, while it runs, or
/// just after it (which is also just before the next step), then followed as an operator would follow
/// Drover alone: `drover diagnose`, and the command it prints under "Run:", pasted with `--yes`, until diagnose
/// finds the cluster healthy. No case may end in a dead end (diagnose without a command, or a command that
/// cannot continue), the runbook's purpose must be achieved, and each destructive command must run exactly once.
@Suite(
    "runbooks killed at every step, then followed to the end", needsSandbox, .timeLimit(.minutes(4 * TestTime.factor)))
struct RunbookInterruptionTests {
    /// A runbook in the situation it exists for.
    struct Scenario: Sendable {
        var playbook: String
        var topology = "chef-backend"
        var sets: [String]
        /// The plan's step count in this situation.
        var steps: Int
        /// Manual steps the test plays beforehand (a replacement machine built): runs get `--assume-done`.
        var assumeDone = false
        /// Commands (by prefix) that must start exactly once: the destructive ones.
        var once: [String]
        var prepare: @Sendable (SandboxCluster) async throws -> Void
        /// The runbook's purpose, read from the simulator's state at the end.
        var achieved: @Sendable (SandboxCluster) async throws -> Bool
        /// What the runbook alone does, when its purpose needs another runbook after it (discard-node-data
        /// leaves the pair for promote-secondary); nil: ``achieved``.
        var ownEffect: (@Sendable (SandboxCluster) async throws -> Bool)? = nil
    }

    /// One runbook killed as one of its steps starts.
    struct Interruption: Sendable, CustomTestStringConvertible {
        var scenario: Scenario
        var step: Int
        var testDescription: String { "\(scenario.playbook) killed at step \(step)/\(scenario.steps)" }
    }

    /// Plays the operator's part of a manual step: a new machine with chef-backend, and the cluster's secrets.
    static func newMachine(_ cluster: SandboxCluster, _ node: String, secretsFrom source: String) async throws {
        try await cluster.sandbox.heal(node, fresh: true)
        let root = cluster.sandbox.directory + "/nodes/"
        try FileManager.default.copyItem(
            atPath: root + source + "/etc/chef-backend/chef-backend-secrets.json",
            toPath: root + node + "/etc/chef-backend/chef-backend-secrets.json")
    }

    static func allSynced(_ cluster: SandboxCluster, leader: String? = nil) async throws -> Bool {
        let state = try await cluster.state()
        return state.members.count == 3 && state.members.allSatisfy { $0.phase == .synced }
            && state.currentLeader != nil && (leader == nil || state.currentLeader?.name == leader)
    }

    static let scenarios: [Scenario] = [
        Scenario(
            playbook: "resync-node", sets: ["node=be3"], steps: 5,
            once: ["rm -f /var/opt/chef-backend/leaderl/data/unsynced"],
            prepare: { try await $0.breakNode("be3", "partially-synced") },
            achieved: { cluster in
                let be3 = try await cluster.state().node("be3")
                return be3?.phase == .synced && be3?.servicesDown.isEmpty == true
            }),
        Scenario(
            playbook: "promote-node", sets: ["node=be2"], steps: 2, once: ["chef-backend-ctl promote"],
            prepare: { try await $0.breakNode("be1", "partition") },
            achieved: { try await allSynced($0, leader: "be2") }),
        Scenario(
            playbook: "reinstate-deposed-leader", sets: ["node=be1"], steps: 4,
            once: ["rm /var/opt/chef-backend/leaderl/data/no-start-pgsql"],
            prepare: { try await $0.breakNode("be1", "deposed-leader") },
            achieved: { try await allSynced($0, leader: "be1") }),
        Scenario(
            playbook: "replace-failed-node", sets: ["failed=be3", "replacement=be3"], steps: 5, assumeDone: true,
            once: ["chef-backend-ctl remove-node"],
            prepare: { cluster in
                try await cluster.breakNode("be3", "unreachable")
                try await newMachine(cluster, "be3", secretsFrom: "be1")
            },
            achieved: { try await allSynced($0) }),
        Scenario(
            playbook: "quorum-loss-recovery", sets: ["survivor=be1", "new1=be2", "new2=be3"], steps: 6,
            assumeDone: true, once: ["chef-backend-ctl create-cluster"],
            prepare: { cluster in
                try await cluster.breakNode("be1", "two-nodes-lost")
                try await newMachine(cluster, "be2", secretsFrom: "be1")
                try await newMachine(cluster, "be3", secretsFrom: "be1")
            },
            achieved: { try await allSynced($0, leader: "be1") }),
        Scenario(
            playbook: "set-failover", sets: ["state=on"], steps: 1, once: [],
            prepare: { cluster in
                let off = try await cluster.drover(["run", "set-failover", "--set", "state=off", "--yes"])
                #expect(off.status == 0, "\(off.stdout)\(off.stderr)")
            },
            achieved: { try await $0.state().clusterFailover }),
        Scenario(
            playbook: "drbd-restart", topology: "drbd-pair", sets: ["node=be2"], steps: 1, once: [],
            prepare: { cluster in
                try await cluster.breakNode("be2", "drbd-secondary-down")
                try await cluster.sandbox.heal("be2")
            },
            achieved: { try await $0.pairState().node("be2")?.disk == "UpToDate" }),
        Scenario(
            playbook: "graceful-transition", topology: "drbd-pair", sets: [], steps: 2, once: [],
            prepare: { _ in },
            achieved: { cluster in
                let pair = try await cluster.pairState()
                return pair.node("be2")?.role == "Primary" && pair.node("be1")?.keepalived == true
            }),
        Scenario(
            playbook: "discard-node-data", topology: "drbd-pair", sets: ["node=be1"], steps: 1,
            once: ["drbdadm wipe-md"],
            prepare: { try await $0.breakNode("be1", "drbd-both-secondary", "5000", "100") },
            achieved: { try await $0.pairState().nodes.contains { $0.role == "Primary" && $0.current == "master" } },
            ownEffect: { try await ["Inconsistent", "UpToDate"].contains($0.pairState().node("be1")?.disk ?? "") }),
        Scenario(
            playbook: "promote-secondary", topology: "drbd-pair", sets: ["node=be2"], steps: 2,
            once: ["drbdadm primary"],
            prepare: { try await $0.breakNode("be1", "drbd-both-secondary", "0", "0") },
            achieved: { try await $0.pairState().node("be2")?.current == "master" }),
        Scenario(
            playbook: "rebuild-partner", topology: "drbd-pair", sets: ["survivor=be2", "new=be1"], steps: 5,
            assumeDone: true, once: ["drbdadm primary --force"],
            prepare: { cluster in
                try await cluster.breakNode("be1", "drbd-primary-lost-unsynced")
                try await cluster.sandbox.heal("be1", fresh: true)
            },
            achieved: { cluster in
                let pair = try await cluster.pairState()
                return pair.node("be2")?.current == "master" && pair.node("be1")?.disk == "UpToDate"
            }),
    ]

    static let interruptions: [Interruption] = scenarios.flatMap { scenario in
        (1...scenario.steps).map { Interruption(scenario: scenario, step: $0) }
    }

    /// The runbooks that ask before their destructive step.
    static let withPrompts = scenarios.filter {
        // discard-node-data leaves the pair for promote-secondary (the kill matrix follows it there).
        ["drbd-restart", "graceful-transition", "set-failover", "discard-node-data"].contains($0.playbook) == false
    }

    /// Each runbook on a terminal, interrupted (Ctrl-C) at its destructive step's question: the step's command
    /// never starts, the run lets go (exit 130), and the printed `drover resume` finishes the runbook's work,
    /// its destructive command run once.
    @Test(arguments: withPrompts.map(\.playbook))
    func interruptedAtItsPromptThenResumed(_ playbook: String) async throws {
        let scenario = try #require(Self.scenarios.first { $0.playbook == playbook })
        try await SandboxCluster.with(topology: scenario.topology) { cluster in
            try await scenario.prepare(cluster)
            var arguments = ["run", scenario.playbook] + scenario.sets.flatMap { ["--set", $0] }
            if scenario.assumeDone { arguments.append("--assume-done") }
            let all = cluster.arguments(arguments)
            let environment = ProcessInfo.processInfo.environment.merging(
                cluster.environment.merging(["NO_COLOR": "1"]) { $1 }
            ) { $1 }
            let interrupted = try await Processes.offPool {
                try PseudoTerminal.run(
                    DroverBinary.path, all, environment: environment,
                    answers: [
                        (prompt: "Type yes to start the run:", reply: "yes"),
                        (prompt: "Type yes to go ahead:", reply: PseudoTerminal.interrupt),
                    ])
            }
            #expect(interrupted.status == 130, "\(interrupted.output)")
            #expect(interrupted.output.contains("drover resume --inventory"), "the next command: \(interrupted.output)")
            let started = { await cluster.log().filter { $0.event == "started" } }
            for prefix in scenario.once {
                #expect(await started().filter { $0.command.hasPrefix(prefix) }.isEmpty, "`\(prefix)` did not start")
            }
            var resume = ["resume", "--yes"]
            if scenario.assumeDone { resume.append("--assume-done") }
            let resumed = try await cluster.drover(resume)
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(try await scenario.achieved(cluster), "\(resumed.stdout)")
            for prefix in scenario.once {
                #expect(await started().filter { $0.command.hasPrefix(prefix) }.count == 1, "`\(prefix)` ran once")
            }
        }
    }

    /// Each runbook whose destructive command fails once (the simulator fails its first attempt): the run stops
    /// with exit 1 and its next commands, the cause (a one-off) is gone, and the `drover resume` it printed,
    /// pasted, finishes the runbook, the command started twice in all (the failure, then the success).
    @Test(arguments: scenarios.filter { !$0.once.isEmpty }.map(\.playbook))
    func aDestructiveCommandThatFailsIsResumed(_ playbook: String) async throws {
        let scenario = try #require(Self.scenarios.first { $0.playbook == playbook })
        try await SandboxCluster.with(topology: scenario.topology) { cluster in
            try await scenario.prepare(cluster)
            let destructive = try #require(scenario.once.first)
            // Whichever node runs it (each node's /root is its own).
            for name in ["be1", "be2", "be3"] {
                let root = cluster.sandbox.directory + "/nodes/\(name)/root"
                guard FileManager.default.fileExists(atPath: root) else { continue }
                try destructive.write(toFile: root + "/drover-sim-fail-once", atomically: true, encoding: .utf8)
            }
            var arguments = ["run", scenario.playbook] + scenario.sets.flatMap { ["--set", $0] } + ["--yes"]
            if scenario.assumeDone { arguments.append("--assume-done") }
            let failed = try await cluster.drover(arguments)
            #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
            let printed = NextCommandsTests.nextCommands(failed.stdout)
            let resume = try #require(printed.first { $0.hasPrefix("drover resume ") }, "\(failed.stdout)")
            var words = resume.split(separator: " ").dropFirst().map(String.init) + ["--yes"]
            if scenario.assumeDone { words.append("--assume-done") }
            let pasted = words
            let environment = try DroverBinary.environment(cluster.environment)
            let resumed = try await Processes.offPool {
                try Processes.run(DroverBinary.path, pasted, environment: environment)
            }
            #expect(resumed.status == 0, "\(failed.stdout)\n$ \(resume)\n\(resumed.stdout)\(resumed.stderr)")
            #expect(try await (scenario.ownEffect ?? scenario.achieved)(cluster), "\(resumed.stdout)")
            let started = await cluster.log().filter { $0.event == "started" && $0.command.hasPrefix(destructive) }
            #expect(
                started.count == 2, "`\(destructive)`: the failed attempt, then one that ran: \(started.map(\.command))"
            )
        }
    }

    /// The command diagnose prints for its first situation: the one under "Run:", else the first it names
    /// (`drover diagnose` again, when the advice is to wait).
    static func printedCommand(_ diagnosis: String) -> String? {
        let lines = diagnosis.split(separator: "\n").map(String.init)
        let first = lines.prefix { !$0.hasPrefix("Situation:") }.count
        let situation = lines.dropFirst(first + 1).prefix { !$0.hasPrefix("Situation:") }
        let commands = situation.indices.filter {
            situation[$0].trimmingCharacters(in: .whitespaces).hasPrefix("drover ")
        }
        let chosen = commands.first { $0 > situation.startIndex && situation[$0 - 1] == "  Run:" } ?? commands.first
        return chosen.map { situation[$0].trimmingCharacters(in: .whitespaces) }
    }

    @Test(arguments: interruptions)
    func killedAtEveryStepThenFollowed(_ interruption: Interruption) async throws {
        let scenario = interruption.scenario
        try await SandboxCluster.with(topology: scenario.topology) { cluster in
            try await scenario.prepare(cluster)
            var arguments = ["run", scenario.playbook] + scenario.sets.flatMap { ["--set", $0] } + ["--yes"]
            if scenario.assumeDone { arguments.append("--assume-done") }
            let point = "] step \(interruption.step)/\(scenario.steps) "
            let run = try cluster.start(arguments)
            let reached = try await cluster.waitFor(point, in: run.stdout, timeout: .seconds(60))
            kill(run.child.pid, SIGKILL)
            _ = await run.child.exitStatus()
            let first = (try? String(contentsOfFile: run.stdout, encoding: .utf8)) ?? ""
            try #require(reached, "the run never showed `\(point)`:\n\(first)")

            // As an operator with only Drover's words: diagnose, paste what it says to run, again.
            let environment = try DroverBinary.environment(cluster.environment)
            var transcript = first
            var followed: [String] = []
            var healthy = false
            var looks = 0
            while looks < 20, followed.filter({ !$0.hasPrefix("drover diagnose") }).count < 5 {
                looks += 1
                let diagnosis = try await cluster.drover(["diagnose"])
                transcript += "\n$ drover diagnose (exit \(diagnosis.status))\n" + diagnosis.stdout + diagnosis.stderr
                if diagnosis.status == 0 {
                    healthy = true
                    break
                }
                guard let command = Self.printedCommand(diagnosis.stdout) else {
                    Issue.record("a dead end: diagnose printed no command to run\n\(transcript)")
                    return
                }
                followed.append(command)
                if command.hasPrefix("drover diagnose ") || command.hasPrefix("drover status ") {
                    try await Task.sleep(for: .seconds(1))  // what diagnose says to do: wait, then look again
                    continue
                }
                var words = command.split(separator: " ").map(String.init)
                #expect(words.first == "drover" && !command.contains("'"), "\(command)")
                words.removeFirst()
                if ["run", "resume"].contains(words.first) {
                    words.append("--yes")
                    if scenario.assumeDone { words.append("--assume-done") }
                }
                let pasted = words
                let result = try await Processes.offPool {
                    try Processes.run(DroverBinary.path, pasted, environment: environment)
                }
                transcript += "\n$ \(command) (exit \(result.status))\n" + result.stdout + result.stderr
            }
            #expect(healthy, "still not healthy after \(followed)\n\(transcript)")
            #expect(try await scenario.achieved(cluster), "the runbook's purpose, after \(followed)\n\(transcript)")
            let started = await cluster.log().filter { $0.event == "started" }
            for prefix in scenario.once {
                let runs = started.filter { $0.command.hasPrefix(prefix) }.map { "\($0.node): \($0.command)" }
                #expect(runs.count == 1, "`\(prefix)` started \(runs.count) times: \(runs)\n\(transcript)")
            }
            if scenario.topology == "drbd-pair" {
                let pair = try await cluster.pairState()
                #expect(pair.violations.isEmpty, "\(pair.violations)")
            }
        }
    }
}
