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
        let records = connection.places.recordsDirectory(node: node, runID: runID)
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

    /// Checks that the cluster's lock is still this run's on every reachable backend (from the reading taken
    /// moments ago where it read the lock), and takes it on those reachable again; stops the run before `step`'s
    /// next command on `node` when it is not.
    func checkLock(before step: Playbook.Step, node: String) async throws {
        guard let lock else { return }
        let reading = lastReading.flatMap { reading -> (nodes: [String], texts: [String: String])? in
            guard ContinuousClock.now - reading.at <= Self.lockReadingLimit,
                let acquired = lock.acquiredAt, reading.at > acquired
            else { return nil }
            let texts = reading.observation.lockOwnerTexts
            return (reading.observation.lockReadNodes, Dictionary(texts.map { ($0.node, $0.text) }) { $1 })
        }
        // A backend the command changes must hold the lock first: one not reachable yet (a host coming back) is
        // waited for as a command's lost connection is (backoff 1 s doubling to 15 s, up to the command timeout).
        if inventory.backend(named: node) != nil, connection.failures[node] != nil {
            reporter.emit(Event(.note("\(node): not reachable yet; waiting for it to take the cluster lock there")))
            let deadline = ContinuousClock.now + inventory.ssh.commandTimeout
            var pause = Duration.seconds(1)
            while !(await connection.reconnect(node)), ContinuousClock.now < deadline {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(15))
            }
        }
        do {
            for taken in try await lock.verify(connection, reading: reading, required: node) {
                reporter.emit(Event(.note("\(taken): reachable again; the cluster lock is taken there too")))
            }
        } catch let lost as ClusterLock.Holding.Lost {
            var advice: [NextStep] = []
            if lost.unconfirmed {
                advice = [NextStep("When the backends are reachable, continue:", commands: [resumeCommand])]
            } else if let holder = lost.holder, holder.runID == runID {
                advice = [
                    NextStep(
                        "Let that drover finish the run (drover status shows it). Only if it is gone, continue here:",
                        commands: [resumeCommand])
                ]
            } else if let holder = lost.holder {
                let unlock =
                    "drover unlock \(inventoryFlag) "
                    + (holder.isOwnerless ? "--ownerless" : "--run-id \(holder.runID)")
                advice = [
                    NextStep(
                        "Another run holds the cluster: let it finish (drover status shows it). If it is over, remove its lock:",
                        commands: [unlock]),
                    NextStep("Then continue this run:", commands: [resumeCommand]),
                ]
            } else {
                advice = [
                    NextStep(
                        "If the lock was removed to stop this run, the run can be continued later:",
                        commands: [resumeCommand])
                ]
            }
            throw StepFailure(
                step: step.name, node: node,
                what: "\(lost.localizedDescription); stopped before \(step.name)'s next command on \(node)",
                advice: advice)
        }
    }

    /// How old a reading may be for the lock check before a command to use it instead of reading the lock again:
    /// as old as a reading may be for the step to start from it.
    static var lockReadingLimit: Duration { readingReuseLimit }

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
