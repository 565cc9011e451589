import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

// A step's commands, run detached on the node, and reconnecting to nodes lost meanwhile.
extension Runner {
    /// Runs one command of a step (`action`: its number in the step) detached on the node, so that it outlives
    /// the SSH session; `changes` false for one that changes no cluster state (a backup).
    func runCommand(
        _ command: String, on node: String, step: Playbook.Step, action: Int, changes: Bool = true
    ) async throws {
        try await runCommands([(command, action)], on: node, step: step, changes: changes)
    }

    /// Runs consecutive commands of a step (`action`: each one's number in the step) detached on the node, as
    /// one SSH command: each starts once the one before it succeeded, and each has its own record, events
    /// and transcript entry.
    func runCommands(
        _ commands: [(command: String, action: Int)], on node: String, step: Playbook.Step,
        changes: Bool = true
    ) async throws {
        try await checkLock(before: step, node: node)
        // Durable before the command starts: a run killed from here on cannot count the step as untouched.
        do {
            try await recorder?.commandsStarting(step: step.name, node: node)
        } catch {
            throw StepFailure(
                step: step.name, node: node,
                what:
                    "the journal could not be written before the step's first command (\(error.localizedDescription)); nothing of the step was started",
                advice: [
                    NextStep(
                        "Make the state directory writable (free space, permissions), then continue:",
                        commands: [resumeCommand])
                ])
        }
        if changes { changesBegan = true }
        // A command may change what a reading shows, unless the topology says it cannot (a read, a switch
        // that no reading shows): then the last reading still stands for the next step.
        let neutral = topology.readingNeutralCommands
        if commands.contains(where: { command in
            !neutral.contains { command.command == $0 || command.command.hasPrefix($0 + " ") }
        }) {
            lastReading = nil
        }
        let reporter = self.reporter
        let recorder = self.recorder
        let texts = commands.map(\.command)
        let records = ClusterLock.recordsDirectory(for: inventory, node: node, runID: runID)
        let nodeCommands = commands.map {
            // A command marked `again` has a record of this process's own: a resumed run runs it again.
            let name = NodeCommand.recordName(step: step.name, node: node, action: $0.action)
            return NodeCommand(
                directory: records, name: step.again.contains($0.action) ? name + ".again-" + attempt : name,
                command: $0.command)
        }
        // A resumed run re-running a step that failed starts its failed command again; anything else re-attaches.
        let retryFailed =
            resuming?.steps.contains { $0.step == step.name && $0.node == node && $0.status == .failed } ?? false
        let startedAt = Locked(commands.map { _ in Date() })
        @Sendable func started(_ index: Int) {
            startedAt.withLock { $0[index] = Date() }
            reporter.emit(
                Event(.actionStarted(node: node, step: step.name, command: texts[index])))
        }
        @Sendable func finished(_ index: Int, _ detached: DetachedResult) {
            let result = detached.result
            recorder?.command(
                node: node, command: texts[index], started: startedAt.withLock { $0[index] }, finished: Date(),
                exitStatus: result.exitStatus, signal: result.exitSignal, stdout: result.stdoutText,
                stderr: result.stderrText,
                error: nil, gaps: detached.gaps)
            reporter.emit(
                Event(
                    .commandFinished(
                        node: node, command: texts[index], exitStatus: Int(result.exitStatus),
                        duration: result.duration.secondsValue)))
        }
        let current = Locked(0)
        started(0)
        let results: [DetachedResult]
        do {
            results = try await connection.runDetached(
                node, nodeCommands, retryFailed: retryFailed, timeout: inventory.ssh.commandTimeout,
                onOutput: { _, line in
                    reporter.emit(
                        Event(
                            .output(node: node, stream: line.stream.rawValue, line: TerminalText.readable(line.text))))
                },
                onConnection: { index, event in
                    Self.report(event, node: node, command: texts[index], reporter: reporter)
                },
                onStarted: { index in
                    current.withLock { $0 = index }
                    started(index)
                },
                onFinished: finished)
        } catch is CancellationError {
            let index = current.withLock { $0 }
            recorder?.command(
                node: node, command: texts[index], started: startedAt.withLock { $0[index] }, finished: Date(),
                exitStatus: nil,
                signal: nil, stdout: "", stderr: "",
                error: "aborted: drover stopped following it (it may still run on \(node))")
            throw CancellationError()
        } catch {
            let index = current.withLock { $0 }
            recorder?.command(
                node: node, command: texts[index], started: startedAt.withLock { $0[index] }, finished: Date(),
                exitStatus: nil,
                signal: nil, stdout: "", stderr: "", error: error.localizedDescription)
            throw StepFailure(
                step: step.name, node: node, what: "\(texts[index]): \(error.localizedDescription)",
                advice: [
                    NextStep(
                        "Check that \(node) is reachable, then see what the command left behind:",
                        commands: ["drover status \(inventoryFlag)"]),
                    NextStep(
                        "When it is reachable, continue (a command still running there is waited for, not run again):",
                        commands: [resumeCommand]),
                ])
        }
        for (index, detached) in results.enumerated() {
            let result = detached.result
            let command = texts[index]
            guard result.succeeded else {
                let tail = TerminalText.readableLines(result.stderrText).split(separator: "\n").suffix(5).joined(
                    separator: "\n    ")
                throw StepFailure(
                    step: step.name, node: node,
                    what:
                        "`\(command)` on \(node) exited \(result.exitSignal.map { "by signal \($0)" } ?? "with status \(result.exitStatus)")\(tail.isEmpty ? "" : ":\n    \(tail)")",
                    advice: [NextStep(topology.logAdvice(node: node))])
            }
            if let state = T.failoverSetting(of: command) {
                failover = (state, step.name)
                await recorder?.failoverSet(state, step: step.name)
            }
        }
    }

    /// Checks that the cluster's lock is still this run's on every reachable backend, and takes it on those
    /// reachable again; stops the run before `step` changes `node` when it is not.
    func checkLock(before step: Playbook.Step, node: String) async throws {
        guard let lock else { return }
        do {
            for taken in try await lock.verify(connection) {
                reporter.emit(Event(.note("\(taken): reachable again; the cluster lock is taken there too")))
            }
        } catch let lost as ClusterLock.Holding.Lost {
            throw StepFailure(
                step: step.name, node: node,
                what:
                    "\(lost.localizedDescription); stopped before \(step.name) changed \(node), nothing of it was started",
                advice: [
                    NextStep(
                        lost.holder == nil
                            ? "If the lock was removed to stop this run, the run can be continued later:"
                            : "Another run now drives the cluster: let it finish (drover status shows it). Then, if this run is still wanted:",
                        commands: [resumeCommand])
                ])
        } catch {
            throw StepFailure(
                step: step.name, node: node,
                what:
                    "the cluster lock could not be checked (\(error.localizedDescription)); nothing of \(step.name) was started",
                advice: [
                    NextStep("When \(node) and the backends are reachable, continue:", commands: [resumeCommand])
                ])
        }
    }

    /// Connects again to the nodes whose session was lost (during a reading, say), each on its own backoff,
    /// and says which are back.
    func reconnectLost() async {
        for (node, after) in await connection.reconnectLost() {
            reporter.emit(
                Event(
                    .reconnected(
                        node: node, after: after.secondsValue, commandState: nil,
                        message: Self.reconnectedText(node, after))))
        }
    }

    /// `be2: connection lost; reconnected after 12 s`.
    static func reconnectedText(_ node: String, _ after: Duration) -> String {
        "\(node): connection lost; reconnected after \(Int(after.secondsValue.rounded())) s"
    }

    /// Says what the connection did while a node command ran: on the console and as events.
    static func report(_ event: ConnectionEvent, node: String, command: String, reporter: any Reporter) {
        switch event {
        case .lost(let reason):
            reporter.emit(
                Event(
                    .connectionLost(
                        node: node, reason: reason,
                        message: "\(node): connection lost (\(reason)); reconnecting, `\(command)` runs on there")))
        case .reattached(let after, let state):
            let what =
                state == .finished
                ? "`\(command)` had finished"
                : (state == .started ? "`\(command)` had not started; started it" : "`\(command)` kept running")
            reporter.emit(
                Event(
                    .reconnected(
                        node: node, after: after.secondsValue, commandState: state.rawValue,
                        message: Self.reconnectedText(node, after) + "; " + what)))
        case .found(let state):
            let what =
                state == .finished
                ? "had already finished on \(node) before this run attached; its recorded status is used, it is not run again"
                : "is still running on \(node) (started before this run attached); following it, not starting it again"
            reporter.emit(Event(.note("`\(command)` \(what)")))
        }
    }
}
