import DroverSSH
import DroverTestSupport
import Foundation
import Testing

@Suite(
    "at a terminal", .enabled(if: SSHServer.isAvailable, Comment(rawValue: SSHServer.unavailableReason)),
    .timeLimit(.minutes(3 * TestTime.factor)))
struct TerminalTests {
    @Test func encryptedKeyPassphraseIsAskedOnTheTerminal() async throws {
        let keys = try TestKeys.shared()
        try await withSSHServer { server in
            let inventory = try server.writeInventory(cluster: "tty", identityFile: keys.encrypted.privateKey)
            let environment = ProcessInfo.processInfo.environment
                .filter { $0.key != "DROVER_SSH_PASSPHRASE" && $0.key != "SSH_AUTH_SOCK" }
                .merging(["NO_COLOR": "1"]) { $1 }
            let result = try await Processes.offPool {
                try PseudoTerminal.run(
                    DroverBinary.path, ["exec", "--inventory", inventory, "--", "echo", "hello-from-n1"],
                    environment: environment,
                    answers: [("Passphrase for \(keys.encrypted.privateKey): ", TestKeys.passphrase)])
            }
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("Passphrase for \(keys.encrypted.privateKey)"))
            #expect(result.output.contains("n1| hello-from-n1"))
            #expect(!result.output.contains(TestKeys.passphrase), "the passphrase is not echoed")
        }
    }
}

@Suite("confirmation and manual steps", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct ConfirmationTests {
    func terminal(
        _ cluster: SandboxCluster, _ arguments: [String], answers: [(String, String)]
    ) async throws -> PseudoTerminal.Result {
        let all = cluster.arguments(arguments)
        // The test's own HOME, so that its runs are recorded there and `resume` finds them.
        let environment = ProcessInfo.processInfo.environment.merging(
            cluster.environment.merging(["NO_COLOR": "1"]) {
                $1
            }
        ) { $1 }
        return try await Processes.offPool {
            try PseudoTerminal.run(
                DroverBinary.path, all, environment: environment, answers: answers.map { (prompt: $0.0, reply: $0.1) })
        }
    }

    @Test func upgradeOnATerminalShowsThePlanAndAsks() async throws {
        try await SandboxCluster.with { cluster in
            let declined = try await terminal(cluster, ["upgrade"], answers: [("Type yes to start the run:", "no")])
            #expect(
                declined.status == 0 && declined.output.contains("Steps:")
                    && declined.output.contains("Not started; nothing was changed."))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty)
            let accepted = try await terminal(cluster, ["upgrade"], answers: [("Type yes to start the run:", "yes")])
            #expect(accepted.status == 0, "\(accepted.output)")
            try await expectUpgradedSafely(cluster)
        }
    }

    @Test func destructiveAndManualSteps() async throws {
        try await SandboxCluster.with { cluster in
            let playbook = cluster.scratch("guarded.yml")
            try """
            name: guarded
            description: A destructive step and a manual one.
            preflight: basic
            steps:
              - name: restart-etcd
                target: node:be2
                actions:
                  - confirm: Restarting etcd on {{node}} briefly takes one of three etcd members away.
                  - run: chef-backend-ctl restart etcd
              - name: look
                target: node:be2
                actions:
                  - manual: Check the monitoring dashboard for {{node}}.
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let noTerminal = try await cluster.drover(["run", playbook, "--yes"])
            #expect(noTerminal.status == 64 && noTerminal.stderr.contains("--assume-done"))
            let scripted = try await cluster.drover(["run", playbook, "--yes", "--assume-done"])
            #expect(scripted.status == 0, "\(scripted.stderr)")
            #expect(scripted.stdout.contains("Restarting etcd on be2") && scripted.stdout.contains("assumed done"))
            let interactive = try await terminal(
                cluster, ["run", playbook],
                answers: [
                    ("Type yes to start the run:", "yes"), ("Type yes to go ahead:", "yes"),
                    ("type done (or abort):", "done"),
                ])
            #expect(interactive.status == 0, "\(interactive.output)")
            #expect(interactive.output.contains("MANUAL (be2): Check the monitoring dashboard for be2."))
            let refused = try await terminal(
                cluster, ["run", playbook],
                answers: [("Type yes to start the run:", "yes"), ("Type yes to go ahead:", "no")])
            #expect(refused.status != 0 && refused.output.contains("not confirmed by the operator"))
            #expect(
                (await cluster.log()).filter { $0.event == "started" && $0.command == "chef-backend-ctl restart etcd" }
                    .count == 2, "the declined run did not restart etcd")
        }
    }

    /// Ctrl-C or SIGTERM at a destructive step's prompt withdraws the question: the step's command never starts,
    /// the run records the interruption, releases the lock and exits 130, and `resume` asks the step again.
    @Test(
        "an interrupt at a confirmation prompt lets go, and resume asks again",
        arguments: [("Ctrl-C", PseudoTerminal.interrupt), ("SIGTERM", PseudoTerminal.terminate)])
    func interruptAtThePrompt(signal: String, reply: String) async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "partially-synced")
            let interrupted = try await terminal(
                cluster, ["run", "resync-node", "--set", "node=be3"],
                answers: [("Type yes to start the run:", "yes"), ("Type yes to go ahead:", reply)])
            #expect(interrupted.status == 130, "\(signal): \(interrupted.output)")
            #expect(interrupted.output.contains("interrupted at the operator's prompt"), "\(interrupted.output)")
            let removals = { (await cluster.log()).filter { $0.event == "started" && $0.command.hasPrefix("rm -f") } }
            #expect(await removals().isEmpty, "the step's command did not start")
            let locks = ["be1", "be2", "be3"].filter {
                FileManager.default.fileExists(
                    atPath: cluster.sandbox.directory + "/nodes/\($0)/var/opt/chef-backend/drover.lock")
            }
            #expect(locks.isEmpty, "the lock was released on every node, not left on \(locks)")
            let journal = try #require(StateReader.journal(in: cluster.stateDirectory))
            let record = try #require(
                try JSONSerialization.jsonObject(with: Data(journal.utf8)) as? [String: Any])
            let last = try #require((record["steps"] as? [[String: Any]])?.last)
            #expect(record["status"] as? String == "interrupted" && last["step"] as? String == "remove-sentinel")
            #expect(last["commands_started"] as? Bool == false, "the journal knows the step changed nothing")
            // On a terminal, resume asks first, as a fresh run does; declined, it changes nothing.
            let declined = try await terminal(
                cluster, ["resume"], answers: [("Type yes to continue the run:", "no")])
            #expect(declined.status == 0 && declined.output.contains("Not resumed; nothing was changed."))
            #expect(await removals().isEmpty)
            // Resumed, the step is asked again (here with --yes) and runs once.
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(resumed.stdout.contains("re-running remove-sentinel on be3"), "\(resumed.stdout)")
            #expect(await removals().count == 1)
            #expect(try await cluster.state().node("be3")?.phase == .synced)
        }
    }

    /// With `--json` on a terminal, stdout stays JSON Lines (a pipe reads it): the plan, the questions and the
    /// answers' outcome go to the terminal on stderr.
    @Test func jsonOnATerminalKeepsItsQuestionsOffStdout() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "partially-synced")
            let out = cluster.scratch("events.jsonl")
            let command = ShellQuote.join([DroverBinary.path] + cluster.arguments(["run", "resync-node"]))
            let environment = ProcessInfo.processInfo.environment.merging(cluster.environment) { $1 }
            let run = try await Processes.offPool {
                try PseudoTerminal.run(
                    "/bin/sh", ["-c", "\(command) --set node=be3 --json > \(ShellQuote.quote(out))"],
                    environment: environment,
                    answers: [
                        (prompt: "Type yes to start the run:", reply: "yes"),
                        (prompt: "Type yes to go ahead:", reply: PseudoTerminal.interrupt),
                    ])
            }
            #expect(run.status == 130, "\(run.output)")
            #expect(run.output.contains("Steps:") && run.output.contains("Type yes to go ahead:"), "\(run.output)")
            let declined = try await Processes.offPool {
                try PseudoTerminal.run(
                    "/bin/sh",
                    [
                        "-c",
                        "\(ShellQuote.join([DroverBinary.path] + cluster.arguments(["resume", "--json"]))) >> \(ShellQuote.quote(out))",
                    ],
                    environment: environment, answers: [(prompt: "Type yes to continue the run:", reply: "no")])
            }
            #expect(declined.status == 0 && declined.output.contains("Not resumed; nothing was changed."))
            let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
            #expect(!lines.isEmpty)
            for line in lines {
                #expect(
                    (try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any],
                    "stdout holds only JSON Lines: \(line)")
            }
        }
    }

    /// promote-node stopped at its confirmation: every node is waiting_for_leader, the state it exists to fix,
    /// and that is what its resume expects (the runbook is resumed on its own pre-flight, not the upgrade's).
    @Test func promoteNodeStoppedAtItsPromptIsResumed() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be1", "partition")
            let interrupted = try await terminal(
                cluster, ["run", "promote-node", "--set", "node=be2"],
                answers: [("Type yes to start the run:", "yes"), ("Type yes to go ahead:", PseudoTerminal.interrupt)])
            #expect(interrupted.status == 130, "\(interrupted.output)")
            #expect(await cluster.started("chef-backend-ctl promote be2", on: "be2") == 0)
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            let state = try await cluster.state()
            #expect(state.currentLeader?.name == "be2" && state.members.allSatisfy { $0.phase == .synced })
        }
    }
}
