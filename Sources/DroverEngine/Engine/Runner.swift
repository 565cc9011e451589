import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// Values for a playbook's placeholders: validated `--set` parameters (`params.NAME`, `params.NAME.host`);
/// `raw` holds flag texts the playbook defines, rendered unquoted.
public struct Bindings: Sendable {
    public var values: [String: String] = [:]
    public var raw: [String: String] = [:]

    public init() {}

    public init(_ validated: [String: String], playbook: Playbook) {
        let flags = Set(playbook.parameters.filter { $0.kind == .flag }.map { "params.\($0.name)" })
        values = validated.filter { !flags.contains($0.key) }
        raw = validated.filter { flags.contains($0.key) }
    }
}

/// Executes a playbook against a connected cluster, verifying every outcome by polling state, and
/// stopping at the first failure with a summary of the cluster's state and the next commands.
public final class Runner<T: Topology>: @unchecked Sendable {
    // Confined to the task that calls `execute`; @unchecked only because the reporter and connection
    // it holds are shared with output callbacks that never touch its mutable state.
    let playbook: Playbook
    let topology: T
    let inventory: Inventory
    let connection: ClusterConnection
    let reporter: any Reporter
    public let runID: String
    let recorder: RunRecorder?
    let stopRequested: @Sendable () -> Bool
    /// The journal of the run being resumed: its finished steps are skipped, its step in flight re-run.
    let resuming: Journal?
    let interaction: Interaction
    let bindings: Bindings
    /// Take a backup before the first change (a fresh run only; a resumed run keeps its journal's).
    let backup: Bool
    private var backupTaken: Journal.Backup?
    /// The nodes of pinned targets (`leader-at-start`), resolved once from the cluster as the run found it.
    private var pinned: [String: [String]] = [:]
    /// `--inventory FILE` as the next commands print it, shell-quoted so it pastes as printed.
    private var inventoryFlag: String { "--inventory \(ShellQuote.quote(inventory.file))" }
    private var changesBegan = false
    /// What Drover last set the cluster failover flag to, and when (the flag itself cannot be read).
    private var failover: (state: String, step: String)?
    /// The node whose step was in flight when the run stopped.
    private var interruptedAt: (step: String, node: String)?
    /// The last full reading of the cluster, while nothing has run since it was taken: the next step starts
    /// from it instead of reading every node again (a wait's confirming poll, a skipped step's reading).
    private var lastReading: Reading?

    struct Reading {
        var observation: T.Observation
        var at: ContinuousClock.Instant
    }

    /// How old a reading may be, with nothing run since, for a step to start from it: about what reading
    /// a real cluster takes (every `chef-backend-ctl` call starts a Ruby program).
    static var readingReuseLimit: Duration { .seconds(5) }

    public init(
        playbook: Playbook, topology: T, connection: ClusterConnection, reporter: any Reporter, runID: String,
        recorder: RunRecorder? = nil, resuming: Journal? = nil,
        interaction: Interaction = Interaction(yes: true, assumeDone: false),
        bindings: Bindings = Bindings(), backup: Bool = false, stopRequested: @escaping @Sendable () -> Bool = { false }
    ) {
        self.interaction = interaction
        self.backup = backup
        self.backupTaken = resuming?.backup
        self.bindings = bindings
        self.playbook = playbook
        self.topology = topology
        self.inventory = topology.inventory
        self.connection = connection
        self.reporter = reporter
        self.runID = runID
        self.recorder = recorder
        self.resuming = resuming
        self.stopRequested = stopRequested
        if let state = resuming?.failover, let step = resuming?.failoverStep { failover = (state, step) }
    }

    /// Steps that may be repeated when a run stopped in the middle of them: everything the upgrade does
    /// (installing the same package again, `chef-backend-ctl upgrade`, the failover switches, waits).
    /// Destructive commands (the topology's list) are not.
    func isRepeatable(_ step: Playbook.Step) -> Bool {
        if step.repeatable { return true }
        let unsafe = topology.unrepeatableCommands
        return !step.actions.contains { action in
            if case .run(let template) = action { return unsafe.contains { template.contains($0) } }
            return false
        }
    }

    /// True for a target that is one node: not `all`, nor a role of several nodes (`each-follower`).
    func isSingleNode(_ target: Playbook.Target) -> Bool {
        switch target {
        case .all: return false
        case .role(let role): return !T.vocabulary.multiNodeTargets.contains(role)
        case .any, .node: return true
        }
    }

    struct Stopped: Error {}

    /// The outcome of a run.
    public struct Outcome: Sendable {
        public var exitStatus: ExitStatus
        public var summary: String
    }

    struct StepFailure: Error {
        var step: String
        var node: String?
        var what: String
        var advice: [String]
    }

    // MARK: Templates

    /// The values placeholders stand for: the node, the live values of the topology (`leader`, ...) and
    /// the parameters.
    static func values(
        node: String?, inventory: Inventory, live: [String: String], bindings: Bindings
    ) -> [String: String] {
        bindings.values.merging(live) { $1 }.merging([
            "node": node ?? "",
            "node.host": node.flatMap { inventory.sshEndpoint(named: $0)?.host } ?? "",
        ]) { $1 }
    }

    /// Fills a command template; every value is shell-quoted.
    static func render(
        _ template: String, node: String?, inventory: Inventory, live: [String: String], bindings: Bindings = Bindings()
    ) -> String {
        Template.render(
            template, values: values(node: node, inventory: inventory, live: live, bindings: bindings),
            raw: bindings.raw,
            quote: ShellQuote.quote)
    }

    /// Fills a message for people to read (values as they are).
    static func renderText(
        _ template: String, node: String?, inventory: Inventory, live: [String: String], bindings: Bindings = Bindings()
    ) -> String {
        Template.render(
            template, values: values(node: node, inventory: inventory, live: live, bindings: bindings),
            raw: bindings.raw
        ) { $0 }
    }

    static func installCommand(_ package: Inventory.Package) -> String {
        package.format == .deb
            ? "dpkg -i \(ShellQuote.quote(package.path))" : "yum install -y \(ShellQuote.quote(package.path))"
    }

    static func duration(_ spec: Playbook.TimeoutSpec, _ inventory: Inventory) -> Duration {
        switch spec {
        case .fixed(let value): return value
        case .named("failover"): return inventory.timeouts.failover
        case .named("transition"): return inventory.timeouts.transition
        case .named("sync"): return inventory.timeouts.sync
        case .named("command"): return inventory.ssh.commandTimeout
        default: return inventory.timeouts.rejoin
        }
    }

    // MARK: Running

    /// Runs every step; on failure stops at once and touches no other node.
    public func execute(initial: T.Observation, readAt: ContinuousClock.Instant? = nil) async -> Outcome {
        let started = Date()
        if let readAt { lastReading = Reading(observation: initial, at: readAt) }
        reporter.emit(
            Event(
                "run_started",
                [
                    "run_id": .string(runID), "playbook": .string(playbook.name),
                    "cluster": .string(inventory.cluster), "target_version": .optional(inventory.package?.version),
                ]))
        var observation = initial
        var index = 0
        if playbook.steps.contains(where: {
            if case .role(let role) = $0.target { return role.hasSuffix("frontend") } else { return false }
        }) {
            connection.watchFrontends = true
        }
        do {
            try await pinTargets(initial)
            if backup && resuming == nil {
                index += 1
                try await takeBackup(index: index, observation: observation)
            }
            // The step the run was changing when it stopped (in flight, or failed) goes first, on its node: a
            // node it left out of the cluster must be back before any other is touched. Its commands' records
            // on the node decide: a running one is followed, a finished one's status used, a failed one rerun.
            if let inFlight = resuming?.unfinished, let step = playbook.steps.first(where: { $0.name == inFlight.step })
            {
                guard inFlight.status == .failed || isRepeatable(step) else {
                    throw StepFailure(
                        step: step.name, node: inFlight.node,
                        what:
                            "the run stopped in the middle of \(step.name) on \(inFlight.node), which is not safe to repeat",
                        advice: ["Check \(inFlight.node) by hand and finish that step, then start a new run"])
                }
                index += 1
                let why =
                    inFlight.status == .failed
                    ? "which failed when the run stopped" : "which was in flight when the run stopped"
                reporter.emit(
                    Event("note", ["message": .string("re-running \(step.name) on \(inFlight.node), \(why)")]))
                try await run(step, node: inFlight.node, index: index, observation: &observation, pinned: true)
            }
            for step in playbook.steps {
                // A step of one node (the leader, the primary, ...) that the resumed run finished, or just
                // re-ran as its step in flight, is done, even if its role has moved to another node since:
                // running it there would undo it (a second failover).
                if let resuming, isSingleNode(step.target),
                    resuming.steps.contains(where: {
                        $0.step == step.name && ($0.status == .succeeded || $0.status == .skipped)
                    })
                        || resuming.unfinished?.step == step.name
                {
                    continue
                }
                let nodes = try targets(of: step, observation: &observation)
                for node in nodes {
                    if resuming?.isDone(step: step.name, node: node) == true
                        || (resuming?.unfinished?.step == step.name && resuming?.unfinished?.node == node)
                    {
                        continue
                    }
                    if stopRequested() { throw Stopped() }
                    index += 1
                    try await run(step, node: node, index: index, observation: &observation)
                }
            }
        } catch let failure as StepFailure {
            return await finish(.failed(failure), started: started)
        } catch is Stopped {
            return await finish(.stopped, started: started)
        } catch is CancellationError {
            return await finish(.aborted, started: started)
        } catch {
            return await finish(
                .failed(StepFailure(step: "run", node: nil, what: error.localizedDescription, advice: [])),
                started: started)
        }
        return await finish(.succeeded, started: started)
    }

    enum Ending {
        case succeeded, stopped, aborted
        case failed(StepFailure)
    }

    private func finish(_ ending: Ending, started: Date) async -> Outcome {
        // A cancelled task cannot do more I/O; the summary and records are made outside it.
        // Task-local values do not reach a detached task: read the fleet's reason to stop here.
        let failFast = FleetControl.current?.stopReason == .failFast
        let summary = await Task.detached { [self] in await self.summarize(ending, started: started, failFast: failFast)
        }.value
        let status: ExitStatus
        let outcome: String
        switch ending {
        case .succeeded: (status, outcome) = (.success, "succeeded")
        case .stopped, .aborted: (status, outcome) = (.interrupted, "interrupted")
        case .failed: (status, outcome) = (changesBegan ? .failedAfterChanges : .refused, "failed")
        }
        reporter.emit(
            Event(
                "run_finished",
                [
                    "outcome": .string(outcome), "exit_code": .int(Int(status.rawValue)), "summary": .string(summary),
                    "duration_s": .double(Date().timeIntervalSince(started)),
                ]))
        var journalStatus: Journal.Status =
            outcome == "succeeded" ? .succeeded : (outcome == "interrupted" ? .interrupted : .failed)
        // A failed backup changed nothing: there is nothing to resume, only a new run to start.
        if case .failed(let failure) = ending, failure.step == "backup", !changesBegan { journalStatus = .refused }
        await recorder?.finished(status: journalStatus, exitCode: status.rawValue, summary: summary)
        return Outcome(exitStatus: status, summary: summary)
    }

    /// Resolves the playbook's pinned targets once (a resumed run keeps its journal's) and records them.
    private func pinTargets(_ initial: T.Observation) async throws {
        pinned = resuming?.pinnedTargets ?? [:]
        var added = false
        for step in playbook.steps {
            guard case .role(let role) = step.target, let live = T.vocabulary.pinnedTargets[role], pinned[role] == nil
            else { continue }
            do {
                pinned[role] = try topology.nodes(for: .role(live), observation: initial)
                added = true
            } catch {
                throw StepFailure(
                    step: step.name, node: nil, what: "cannot tell \(role): \(error.localizedDescription)",
                    advice: ["Check the cluster: drover status \(inventoryFlag)"])
            }
        }
        if added { await recorder?.pinned(pinned) }
    }

    /// Resolves a step's nodes from a fresh reading of the cluster (the leader is re-read right before).
    private func targets(of step: Playbook.Step, observation: inout T.Observation) throws -> [String] {
        if case .role(let role) = step.target, let nodes = pinned[role] { return nodes }
        if case .node(let name) = step.target {
            return [
                Self.renderText(
                    name, node: nil, inventory: inventory, live: topology.liveValues(observation), bindings: bindings)
            ]
        }
        do {
            return try topology.nodes(for: step.target, observation: observation)
        } catch {
            throw StepFailure(
                step: step.name, node: nil, what: error.localizedDescription,
                advice: ["Check the cluster: drover status \(inventoryFlag)"])
        }
    }

    private func run(
        _ step: Playbook.Step, node: String, index: Int, observation: inout T.Observation, pinned: Bool = false
    ) async throws {
        let stepStarted = Date()
        // A node that could not be reached may be back (a host rebuilt by a manual step before this one).
        await reconnectLost()
        if connection.failures[node] != nil, await connection.reconnect(node) {
            reporter.emit(Event("note", ["message": .string("\(node) is reachable again")]))
        }
        // Re-read right before each step (roles and versions may have moved since the plan), unless the last
        // reading was taken after the last action, moments ago.
        if let reading = lastReading, ContinuousClock.now - reading.at <= Self.readingReuseLimit {
            observation = reading.observation
        } else {
            let fresh = await topology.observe(connection, full: false, checksum: false)
            observation = fresh
            lastReading = Reading(observation: fresh, at: .now)
        }
        if !pinned, let moved = topology.retarget(step.target, node: node, observation: observation), moved != node {
            return try await run(step, node: moved, index: index, observation: &observation)
        }
        reporter.emit(
            Event(
                "step_started",
                [
                    "index": .int(index), "step": .string(step.name), "node": .string(node),
                    "description": .string(step.description),
                ]))
        await recorder?.stepStarted(index: index, step: step.name, node: node)
        if !pinned, let reason = topology.skipReason(step, node: node, observation: observation) {
            reporter.emit(
                Event(
                    "step_finished",
                    [
                        "index": .int(index), "step": .string(step.name), "node": .string(node),
                        "outcome": "skipped", "reason": .string(reason), "duration_s": .double(0),
                    ]))
            await recorder?.stepFinished(step: step.name, node: node, status: .skipped, reason: reason)
            return
        }
        let live = topology.liveValues(observation)
        do {
            try checkRequirements(step, node: node, observation: observation)
            var commands: [(command: String, action: Int)] = []
            for (number, action) in step.actions.enumerated() {
                // A person may change the cluster (or let time pass) at a prompt: read again after it. Commands
                // decide for themselves (runCommands), a wait leaves its own last reading, a check reads only.
                switch action {
                case .confirm, .manual: lastReading = nil
                case .run, .install, .wait, .check: break
                }
                switch action {
                case .run(let template):
                    commands.append(
                        (
                            Self.render(template, node: node, inventory: inventory, live: live, bindings: bindings),
                            number + 1
                        ))
                case .install:
                    guard let package = inventory.package else {
                        throw StepFailure(
                            step: step.name, node: node, what: "the inventory has no package",
                            advice: ["Add package.path to \(inventory.file)"])
                    }
                    commands.append((Self.installCommand(package), number + 1))
                default:
                    break
                }
                // Consecutive commands run as one SSH command, each started once the one before it succeeded.
                if !commands.isEmpty {
                    let next = step.actions.indices.contains(number + 1) ? step.actions[number + 1] : nil
                    switch next {
                    case .run?, .install?: continue
                    default:
                        try await runCommands(commands, on: node, step: step)
                        commands = []
                    }
                }
                switch action {
                case .run, .install: break
                case .wait(let predicate, let timeout):
                    try await wait(predicate, node: node, timeout: Self.duration(timeout, inventory), step: step)
                case .check:
                    try await checkFrontends(step: step)
                case .confirm(let message):
                    try await confirm(
                        Self.renderText(message, node: node, inventory: inventory, live: live, bindings: bindings),
                        step: step, node: node)
                case .manual(let instruction):
                    try await manual(
                        Self.renderText(instruction, node: node, inventory: inventory, live: live, bindings: bindings),
                        step: step, node: node)
                }
            }
        } catch let failure as StepFailure {
            reporter.emit(
                Event(
                    "step_finished",
                    [
                        "index": .int(index), "step": .string(step.name), "node": .string(node), "outcome": "failed",
                        "reason": .string(failure.what), "duration_s": .double(Date().timeIntervalSince(stepStarted)),
                    ]))
            await recorder?.stepFinished(step: step.name, node: node, status: .failed, reason: failure.what)
            throw failure
        } catch {
            interruptedAt = (step.name, node)
            reporter.emit(
                Event(
                    "step_finished",
                    [
                        "index": .int(index), "step": .string(step.name), "node": .string(node),
                        "outcome": "interrupted",
                        "reason": "aborted by a second interrupt",
                        "duration_s": .double(Date().timeIntervalSince(stepStarted)),
                    ]))
            await recorder?.stepFinished(
                step: step.name, node: node, status: .interrupted, reason: "aborted by a second interrupt")
            throw error
        }
        reporter.emit(
            Event(
                "step_finished",
                [
                    "index": .int(index), "step": .string(step.name), "node": .string(node), "outcome": "succeeded",
                    "duration_s": .double(Date().timeIntervalSince(stepStarted)),
                ]))
        await recorder?.stepFinished(step: step.name, node: node, status: .succeeded, reason: nil)
    }

    /// The backup before any change: the topology's backup command on its node, the new tarball read back
    /// (path and size) and recorded; a failed or empty backup stops the run with nothing changed.
    private func takeBackup(index: Int, observation: T.Observation) async throws {
        let name = "backup"
        let command: BackupCommand
        do {
            guard let found = try topology.backupCommand(observation: observation) else {
                throw StepFailure(
                    step: name, node: nil, what: "Drover takes no backup of a \(inventory.topology.rawValue)",
                    advice: [])
            }
            command = found
        } catch let error as TargetError {
            throw StepFailure(
                step: name, node: nil, what: error.reason, advice: ["Check the cluster: drover status \(inventoryFlag)"]
            )
        }
        let node = command.node
        let step = Playbook.Step(
            name: name,
            description:
                "Take a backup with \(command.command) on \(node) before any change; its tarball's path and size are recorded.",
            target: .node(node), actions: [.run(template: command.command)], line: 0)
        let started = Date()
        reporter.emit(
            Event(
                "step_started",
                [
                    "index": .int(index), "step": .string(name), "node": .string(node),
                    "description": .string(step.description),
                ]))
        await recorder?.stepStarted(index: index, step: name, node: node)
        let list =
            "find \(ShellQuote.quote(command.directory)) -maxdepth 1 -type f -printf '%s %p\\n' 2>/dev/null; true"
        func tarballs() async throws -> [String: Int] {
            let result = try await connection.run(node, list)
            var files: [String: Int] = [:]
            for line in result.stdoutText.split(separator: "\n") {
                let fields = line.split(separator: " ", maxSplits: 1)
                if fields.count == 2, let bytes = Int(fields[0]) { files[String(fields[1])] = bytes }
            }
            return files
        }
        do {
            let before = try await tarballs()
            try await runCommand(command.command, on: node, step: step, action: 1, changes: false)
            let after = try await tarballs()
            let new = after.filter { before[$0.key] != $0.value }.sorted { $0.key > $1.key }
            guard let written = new.first else {
                throw StepFailure(
                    step: name, node: node,
                    what: "`\(command.command)` on \(node) exited 0 but wrote no file in \(command.directory)",
                    advice: [topology.logAdvice(node: node)])
            }
            guard written.value > 0 else {
                throw StepFailure(
                    step: name, node: node, what: "the backup \(written.key) on \(node) is empty (0 bytes)",
                    advice: [topology.logAdvice(node: node)])
            }
            let record = Journal.Backup(node: node, path: written.key, bytes: written.value, taken: Date())
            backupTaken = record
            await recorder?.backupTaken(record)
            reporter.emit(
                Event("note", ["message": .string("backup: \(node):\(written.key) (\(Self.byteText(written.value)))")]))
        } catch let failure as StepFailure {
            reporter.emit(
                Event(
                    "step_finished",
                    [
                        "index": .int(index), "step": .string(name), "node": .string(node), "outcome": "failed",
                        "reason": .string(failure.what), "duration_s": .double(Date().timeIntervalSince(started)),
                    ]))
            await recorder?.stepFinished(step: name, node: node, status: .failed, reason: failure.what)
            throw failure
        } catch {
            let what = "\(node): \(error.localizedDescription)"
            reporter.emit(
                Event(
                    "step_finished",
                    [
                        "index": .int(index), "step": .string(name), "node": .string(node), "outcome": "failed",
                        "reason": .string(what), "duration_s": .double(Date().timeIntervalSince(started)),
                    ]))
            await recorder?.stepFinished(step: name, node: node, status: .failed, reason: what)
            throw StepFailure(step: name, node: node, what: what, advice: [])
        }
        reporter.emit(
            Event(
                "step_finished",
                [
                    "index": .int(index), "step": .string(name), "node": .string(node), "outcome": "succeeded",
                    "duration_s": .double(Date().timeIntervalSince(started)),
                ]))
        await recorder?.stepFinished(
            step: name, node: node, status: .succeeded, reason: backupTaken.map { "\($0.path) (\($0.bytes) bytes)" })
    }

    /// `1.2 MB`, `512 bytes`.
    static func byteText(_ bytes: Int) -> String {
        bytes < 1024
            ? "\(bytes) bytes"
            : bytes < 1_048_576
                ? String(format: "%.1f KB", Double(bytes) / 1024) : String(format: "%.1f MB", Double(bytes) / 1_048_576)
    }

    /// Checks a step's conditions on the live cluster; a failed one refuses the step before it changes anything.
    private func checkRequirements(_ step: Playbook.Step, node: String, observation: T.Observation) throws {
        for condition in step.requirements {
            let subject = condition.argument.map {
                Self.renderText(
                    $0, node: node, inventory: inventory, live: topology.liveValues(observation), bindings: bindings)
            }
            let (holds, detail) = topology.holds(
                condition.requirement, subject: subject, node: node, observation: observation)
            guard holds else {
                throw StepFailure(
                    step: step.name, node: node,
                    what:
                        "precondition \(condition.requirement)\(condition.argument.map { ":\($0)" } ?? "") does not hold (\(detail)); the step was not run",
                    advice: ["Check the situation again: drover diagnose \(inventoryFlag)"])
            }
        }
    }

    /// Runs one command of a step (`action`: its number in the step) detached on the node, so that it outlives
    /// the SSH session; `changes` false for one that changes no cluster state (a backup).
    private func runCommand(
        _ command: String, on node: String, step: Playbook.Step, action: Int, changes: Bool = true
    ) async throws {
        try await runCommands([(command, action)], on: node, step: step, changes: changes)
    }

    /// Runs consecutive commands of a step (`action`: each one's number in the step) detached on the node, as
    /// one SSH command: each starts once the one before it succeeded, and each has its own record, events
    /// and transcript entry.
    private func runCommands(
        _ commands: [(command: String, action: Int)], on node: String, step: Playbook.Step,
        changes: Bool = true
    ) async throws {
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
            NodeCommand(
                directory: records, name: NodeCommand.recordName(step: step.name, node: node, action: $0.action),
                command: $0.command)
        }
        // A resumed run re-running a step that failed starts its failed command again; anything else re-attaches.
        let retryFailed =
            resuming?.steps.contains { $0.step == step.name && $0.node == node && $0.status == .failed } ?? false
        let startedAt = Locked(commands.map { _ in Date() })
        @Sendable func started(_ index: Int) {
            startedAt.withLock { $0[index] = Date() }
            reporter.emit(
                Event(
                    "action_started",
                    ["node": .string(node), "command": .string(texts[index]), "step": .string(step.name)]))
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
                    "command_finished",
                    [
                        "node": .string(node), "command": .string(texts[index]),
                        "exit_status": .int(Int(result.exitStatus)),
                        "duration_s": .double(result.duration.secondsValue),
                    ]))
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
                            "output",
                            [
                                "node": .string(node), "stream": .string(line.stream.rawValue),
                                "line": .string(line.text),
                            ]))
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
                    "Check that \(node) is reachable, then see what the command left behind: drover status \(inventoryFlag)",
                    "When it is reachable, continue (a command still running there is waited for, not run again): drover resume \(inventoryFlag)",
                ])
        }
        for (index, detached) in results.enumerated() {
            let result = detached.result
            let command = texts[index]
            guard result.succeeded else {
                let tail = result.stderrText.split(separator: "\n").suffix(5).joined(separator: "\n    ")
                throw StepFailure(
                    step: step.name, node: node,
                    what:
                        "`\(command)` on \(node) exited \(result.exitSignal.map { "by signal \($0)" } ?? "with status \(result.exitStatus)")\(tail.isEmpty ? "" : ":\n    \(tail)")",
                    advice: [topology.logAdvice(node: node)])
            }
            for state in ["off", "on"] where command.contains("set-cluster-failover \(state)") {
                failover = (state, step.name)
                await recorder?.failoverSet(state, step: step.name)
            }
        }
    }

    /// Connects again to the nodes whose session was lost (during a reading, say), each on its own backoff,
    /// and says which are back.
    private func reconnectLost() async {
        for (node, after) in await connection.reconnectLost() {
            reporter.emit(
                Event(
                    "reconnected",
                    [
                        "node": .string(node), "after_s": .double(after.secondsValue), "command_state": .null,
                        "message": .string(Self.reconnectedText(node, after)),
                    ]))
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
                    "connection_lost",
                    [
                        "node": .string(node), "reason": .string(reason),
                        "message": .string(
                            "\(node): connection lost (\(reason)); reconnecting, `\(command)` runs on there"),
                    ]))
        case .reattached(let after, let state):
            let what =
                state == .finished
                ? "`\(command)` had finished"
                : (state == .started ? "`\(command)` had not started; started it" : "`\(command)` kept running")
            reporter.emit(
                Event(
                    "reconnected",
                    [
                        "node": .string(node), "after_s": .double(after.secondsValue),
                        "command_state": .string(state.rawValue),
                        "message": .string(Self.reconnectedText(node, after) + "; " + what),
                    ]))
        case .found(let state):
            let what =
                state == .finished
                ? "had already finished on \(node) before this run attached; its recorded status is used, it is not run again"
                : "is still running on \(node) (started before this run attached); following it, not starting it again"
            reporter.emit(Event("note", ["message": .string("`\(command)` \(what)")]))
        }
    }

    /// Polls until the predicate holds for `stable_polls` consecutive readings, the last of them a full
    /// reading of every node, or the timeout passes. The polls before the confirming ones read only what
    /// the predicate needs (the topology's focused reading); the first poll starts at once.
    private func wait(_ predicate: String, node: String, timeout: Duration, step: Playbook.Step) async throws {
        let started = ContinuousClock.now
        let deadline = started + timeout
        let stablePolls = inventory.timeouts.stablePolls
        var consecutive = 0
        var lastPending = ""
        // A full reading taken moments ago with nothing run since (the previous wait's last) is the first poll.
        var carried = lastReading.flatMap { ContinuousClock.now - $0.at <= Self.readingReuseLimit ? $0 : nil }
        while true {
            // Sessions lost while waiting are made again (each on its backoff), and a node being rebuilt while
            // the run waits for it is connected to as soon as it answers.
            await reconnectLost()
            if connection.failures[node] != nil, await connection.reconnect(node) {
                reporter.emit(Event("note", ["message": .string("\(node) is reachable again")]))
            }
            var pollStarted = ContinuousClock.now
            // Confirming: the reading that may end the wait reads every node.
            let confirming = consecutive >= max(1, stablePolls - 1)
            let focused =
                confirming || carried != nil ? nil : await topology.observe(connection, forWait: predicate, node: node)
            let full = focused == nil
            // Only a reading taken in this wait may end it.
            var taken = true
            let observation: T.Observation
            if let focused {
                observation = focused
            } else if let reading = carried {
                observation = reading.observation
                pollStarted = reading.at
                carried = nil
                taken = false
            } else {
                let everyNode = await topology.observe(connection, full: false, checksum: false)
                observation = everyNode
            }
            let criteria = topology.criteria(predicate, node: node, observation: observation)
            let pending = criteria.filter { !$0.holds }.map(\.detail).joined(separator: "; ")
            if pending.isEmpty {
                consecutive += 1
                if full && taken && consecutive >= stablePolls {
                    lastReading = Reading(observation: observation, at: .now)
                    // Criteria named "note" always hold; they say what was seen (a resync's progress).
                    let notes = criteria.filter { $0.name == "note" }.map(\.detail).joined(separator: "; ")
                    reporter.emit(
                        Event(
                            "wait_finished",
                            [
                                "node": .string(node), "predicate": .string(predicate), "ok": true,
                                "duration_s": .double((ContinuousClock.now - started).secondsValue),
                                "detail": notes.isEmpty ? .null : .string(notes),
                            ]))
                    return
                }
            } else {
                consecutive = 0
                if pending != lastPending {
                    reporter.emit(
                        Event(
                            "wait_progress",
                            ["node": .string(node), "predicate": .string(predicate), "pending": .string(pending)]))
                    lastPending = pending
                }
            }
            if ContinuousClock.now >= deadline {
                reporter.emit(
                    Event(
                        "wait_finished",
                        [
                            "node": .string(node), "predicate": .string(predicate), "ok": false,
                            "duration_s": .double((ContinuousClock.now - started).secondsValue),
                            "pending": .string(pending),
                        ]))
                throw StepFailure(
                    step: step.name, node: node,
                    what:
                        "\(predicate) did not hold on \(node) within \(DurationText.format(timeout)): \(pending.isEmpty ? "not stable for \(stablePolls) polls" : pending)",
                    advice: ["See why on \(node): \(topology.logAdvice(node: node))"])
            }
            // Polls start every poll_interval (the reading's own time counts).
            try await Task.sleep(until: pollStarted + inventory.timeouts.pollInterval, clock: .continuous)
        }
    }

    private func confirm(_ message: String, step: Playbook.Step, node: String) async throws {
        reporter.emit(Event("note", ["message": .string("\(node): \(message)")]))
        if interaction.yes { return }
        let answer = await interaction.ask("Destructive step \(step.name) on \(node). Type yes to go ahead: ")
        guard answer == "yes" else {
            throw StepFailure(
                step: step.name, node: node, what: "not confirmed by the operator; nothing more was done", advice: [])
        }
    }

    private func manual(_ instruction: String, step: Playbook.Step, node: String) async throws {
        reporter.emit(Event("note", ["message": .string("MANUAL (\(node)): \(instruction)")]))
        if interaction.assumeDone {
            reporter.emit(Event("note", ["message": "assumed done (--assume-done)"]))
            return
        }
        let answer = await interaction.ask("When it is done, type done (or abort): ")
        guard answer == "done" else {
            throw StepFailure(
                step: step.name, node: node, what: "the operator did not confirm the manual step", advice: [])
        }
    }

    private func checkFrontends(step: Playbook.Step) async throws {
        for frontend in inventory.frontends {
            guard let url = frontend.statusURL else { continue }
            let result = await FrontendStatus.check(url)
            reporter.emit(Event("note", ["message": .string("frontend \(frontend.name): \(result.detail)")]))
            guard result.ok else {
                throw StepFailure(
                    step: step.name, node: nil, what: "frontend \(frontend.name) \(url): \(result.detail)",
                    advice: [
                        "The backends are upgraded; check the frontend: chef-server-ctl status on \(frontend.name)"
                    ])
            }
        }
    }

    // MARK: Summary

    private func summarize(_ ending: Ending, started: Date, failFast: Bool = false) async -> String {
        let observation: T.Observation
        if let reading = lastReading, ContinuousClock.now - reading.at <= Self.readingReuseLimit {
            observation = reading.observation
        } else {
            let fresh = await topology.observe(connection, full: false, checksum: false)
            observation = fresh
        }
        var lines: [String] = [""]
        var failure: StepFailure?
        switch ending {
        case .succeeded:
            lines.append("Succeeded in \(String(format: "%.1f", Date().timeIntervalSince(started)))s.")
        case .stopped where failFast:
            lines.append(
                "STOPPED by --fail-fast (another cluster failed) after the step in flight finished and was verified.")
        case .stopped:
            lines.append("STOPPED at your request after the step in flight finished and was verified.")
        case .aborted:
            let at = interruptedAt.map { " during \($0.step) on \($0.node); \($0.node) may be mid-upgrade" } ?? ""
            lines.append("ABORTED\(at).")
        case .failed(let stepFailure):
            failure = stepFailure
            lines.append(
                "FAILED at step \(stepFailure.step)\(stepFailure.node.map { " on \($0)" } ?? ""): \(stepFailure.what)")
        }
        lines.append("")
        lines += topology.summaryRows(observation)
        if let backup = backupTaken {
            lines.append("")
            lines.append(
                "Backup: \(backup.node):\(backup.path) (\(Self.byteText(backup.bytes))), taken before any change")
        }
        let flag =
            failover.map { "cluster failover: \($0.state.uppercased()) (last set by Drover in step \($0.step))" }
            ?? "cluster failover: not changed by this run"
        let leftOff: Bool
        if case .succeeded = ending {
            leftOff = playbook.name == "upgrade" ? false : failover?.state == "off"
        } else {
            leftOff = failover?.state == "off"
        }
        if inventory.topology == .chefBackend || failover != nil {
            lines.append("")
            lines.append(leftOff ? "!! \(flag); it stays off until you turn it on !!" : flag)
        }
        if case .succeeded = ending {
            return lines.joined(separator: "\n")
        }
        let leaderHost =
            topology.liveValues(observation)["leader.host"].flatMap { $0.isEmpty ? nil : $0 } ?? "<a healthy node>"
        // An upgrade path's playbook is started again by `drover upgrade`, which chooses it.
        let again =
            topology.upgradePath(for: playbook, observation: observation) != nil ? "upgrade" : "run \(playbook.name)"
        lines.append("")
        lines.append("Next:")
        var steps = ["Inspect the cluster: drover status \(inventoryFlag)"] + (failure?.advice ?? [])
        if failure == nil {
            steps.append("Continue where the run stopped: drover resume \(inventoryFlag)")
        } else if failure?.step == "backup" && !changesBegan {
            steps.append(
                "Nothing was changed. When a backup works, start again: drover \(again) \(inventoryFlag) --yes --backup (or --no-backup to go on without one)"
            )
        } else {
            steps.append(
                "When the cause is fixed, continue: drover resume \(inventoryFlag) (or start again: drover \(again) \(inventoryFlag) --yes)"
            )
        }
        if leftOff {
            steps.append(
                "To stop here instead, turn failover back on: ssh root@\(leaderHost) chef-backend-ctl set-cluster-failover on"
            )
        }
        for (number, step) in steps.enumerated() { lines.append("  \(number + 1). \(step)") }
        if let recorder { lines.append("Transcript: \(recorder.current.directory)") }
        return lines.joined(separator: "\n")
    }
}

extension Duration {
    public var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
