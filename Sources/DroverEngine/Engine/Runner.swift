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
    let connection: any NodeTransport
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
    var backupTaken: Journal.Backup?
    /// The nodes of pinned targets (`leader-at-start`), resolved once from the cluster as the run found it.
    var pinned: [String: [String]] = [:]
    /// `--inventory FILE` as the next commands print it, shell-quoted so it pastes as printed.
    var inventoryFlag: String { "--inventory \(ShellQuote.quote(inventory.file))" }
    /// The run's own options that the next commands it prints carry again (`--state-dir`, `--playbooks`, `--set`).
    let nextOptions: NextCommandOptions
    /// `drover resume ...` for this run, whole.
    var resumeCommand: String { "drover resume \(inventoryFlag)\(nextOptions.resume)" }
    /// `drover diagnose ...` for this run's cluster and records, whole.
    var diagnoseCommand: String { "drover diagnose \(inventoryFlag)\(nextOptions.state)" }
    var changesBegan = false
    /// What Drover last set the cluster failover flag to, and when (the flag itself cannot be read).
    var failover: (state: String, step: String)?
    /// The node whose step was in flight when the run stopped.
    var interruptedAt: (step: String, node: String)?
    /// This process's attempt at the run (a resumed run is another): the record name of `again` commands.
    let attempt = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36)
    /// How many steps (step and node pairs, the backup included) the run expects, counted from the cluster as
    /// it found it; what the console's `step 3/11` divides by.
    var expectedSteps: Int?
    /// The last full reading of the cluster, while nothing has run since it was taken: the next step starts
    /// from it instead of reading every node again (a wait's confirming poll, a skipped step's reading).
    var lastReading: Reading?
    /// The SHA-256 of each package its installs verify (`package@be2`), as read when the run first started.
    let packageDigests: [String: String]
    /// The cluster's lock as this run holds it: checked before each command a step starts (nil in the engine's
    /// own tests, whose nodes are scripted).
    let lock: ClusterLock.Holding?
    /// The inventory's write probe, asked while the run runs; stopped when it ends, its report in the summary.
    let writeProbe: WriteProbe?
    /// What waits and the age of readings are measured on.
    let clock: any WaitClock

    struct Reading {
        var observation: T.Observation
        var at: ContinuousClock.Instant
    }

    /// How old a reading may be, with nothing run since, for a step to start from it: about what reading
    /// a real cluster takes (every `chef-backend-ctl` call starts a Ruby program).
    static var readingReuseLimit: Duration { .seconds(5) }

    public init(
        playbook: Playbook, topology: T, connection: any NodeTransport, reporter: any Reporter, runID: String,
        recorder: RunRecorder? = nil, resuming: Journal? = nil,
        interaction: Interaction = Interaction(yes: true, assumeDone: false),
        bindings: Bindings = Bindings(), backup: Bool = false, nextOptions: NextCommandOptions = NextCommandOptions(),
        lock: ClusterLock.Holding? = nil, packageDigests: [String: String] = [:], writeProbe: WriteProbe? = nil,
        clock: any WaitClock = SystemWaitClock(), stopRequested: @escaping @Sendable () -> Bool = { false }
    ) {
        self.clock = clock
        self.lock = lock
        self.writeProbe = writeProbe
        self.packageDigests = packageDigests
        self.nextOptions = nextOptions
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
        /// What to do about it, in words with each command on its own line (the summary's `Next:` list).
        var advice: [NextStep]
    }

    // MARK: Running

    /// Runs every step; on failure stops at once and touches no other node.
    public func execute(initial: T.Observation, readAt: ContinuousClock.Instant? = nil) async -> Outcome {
        let started = Date()
        if let readAt { lastReading = Reading(observation: initial, at: readAt) }
        reporter.emit(
            Event(
                .runStarted(
                    runID: runID, playbook: playbook.name, cluster: inventory.cluster,
                    targetVersion: topology.targetVersion(of: playbook))))
        var observation = initial
        // A resumed run numbers on from the steps its earlier attempts finished, so that its step 2 is the
        // plan's (and the first attempt's) step 2.
        var index = finishedEarlier
        if topology.watchesOtherNodes(playbook) { connection.watchAuxiliaries = true }
        do {
            try await pinTargets(initial)
            expectedSteps = finishedEarlier + countSteps(initial)
            if backup && resuming == nil {
                index += 1
                try await takeBackup(index: index, observation: observation)
            }
            // The step the run was changing when it stopped (in flight, or failed) goes first, on its node: a
            // node it left out of the cluster must be back before any other is touched. Its commands' records
            // on the node decide: a running one is followed, a finished one's status used, a failed one rerun.
            if let resuming, let inFlight = resuming.unfinished, let position = position(of: inFlight) {
                let step = playbook.steps[position]
                let untouched = resuming.changedNothing(inFlight)
                var records: LiveWork.StepRecords?
                if !(inFlight.status == .failed || untouched || isRepeatable(step)) {
                    // Not safe to run blindly; safe when its records on the node show each command finished (or
                    // still running, or never started after one that finished): the step re-attaches to them.
                    let actions = step.actions.indices.filter {
                        switch step.actions[$0] {
                        case .run, .install: return !step.again.contains($0 + 1)
                        default: return false
                        }
                    }.map { $0 + 1 }
                    records = await LiveWork.stepRecords(
                        runID: runID, step: step.name, node: inFlight.node, actions: actions, connection: connection)
                    if case .unknown(let why) = records {
                        throw StepFailure(
                            step: step.name, node: inFlight.node,
                            what:
                                "the run stopped in the middle of \(step.name) on \(inFlight.node), which is not safe to repeat: \(why)",
                            advice: [
                                NextStep(
                                    "Check \(inFlight.node) by hand and finish that step (the run's transcript shows what it ran); then see what the cluster needs:",
                                    commands: [diagnoseCommand])
                            ])
                    }
                }
                index += 1
                let why =
                    inFlight.status == .failed
                    ? "which failed when the run stopped"
                    : (untouched
                        ? "which the run stopped before it ran any of its commands"
                        : (records == .resumable
                            ? "whose commands' records on \(inFlight.node) show none to run again (each finished, runs, or never started)"
                            : "which was in flight when the run stopped"))
                reporter.emit(
                    Event(
                        .note(
                            "re-running \(step.name) on \(inFlight.node), \(why)"
                                + (untouched || step.requirements.isEmpty
                                    ? "" : "; its preconditions held when it started, before its own commands ran"))))
                try await run(
                    step, node: inFlight.node, index: index, observation: &observation, position: position,
                    pinned: true,
                    startedEarlier: !untouched)
            }
            for (position, step) in playbook.steps.enumerated() {
                if resumedPast(step, position: position) { continue }
                let nodes = try targets(of: step, observation: &observation)
                for node in nodes {
                    if resumedPast(step, position: position, node: node) { continue }
                    if stopRequested() { throw Stopped() }
                    index += 1
                    try await run(step, node: node, index: index, observation: &observation, position: position)
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

    /// A step of one node (the leader, the primary, ...) that the resumed run finished, or re-ran first as its
    /// step in flight, is done, even if its role has moved to another node since: running it there would undo
    /// it (a second failover).
    func resumedPast(_ step: Playbook.Step, position: Int) -> Bool {
        guard let resuming else { return false }
        // Steps run in the playbook's order: once the run reached a later step, this one was done for every node
        // it had, however its role's nodes have changed since (the old leader is a follower after a failover).
        // Told by the positions the journal recorded, of this very playbook (not by names: `--backup`'s step and
        // a playbook's own `backup`, or two parts of a combined playbook, may share one).
        if positionsApply, resuming.steps.contains(where: { ($0.position ?? -1) > position }) { return true }
        guard isSingleNode(step.target) else { return false }
        return resuming.steps.contains {
            isEntry($0, of: step, at: position) && ($0.status == .succeeded || $0.status == .skipped)
        }
            || resuming.unfinished.map { isEntry($0, of: step, at: position) } == true
    }

    /// Whether a journal entry records `step` (at `position` in the playbook): by position where the journal
    /// records them (the backup before the first step has -1, so a playbook's own `backup` is not it), else by
    /// name.
    func isEntry(_ entry: Journal.Step, of step: Playbook.Step, at position: Int) -> Bool {
        positionsApply ? entry.position == position : entry.step == step.name
    }

    /// The journal's step positions describe this playbook: recorded (journals of earlier versions have none) by
    /// a run of the same playbook text.
    var positionsApply: Bool {
        guard let resuming, resuming.steps.contains(where: { $0.position != nil }) else { return false }
        return resuming.playbookDigest == nil || playbook.digest.isEmpty || resuming.playbookDigest == playbook.digest
    }

    /// Where a journal's step stands in the playbook: its recorded position, else the one step of its name.
    func position(of recorded: Journal.Step) -> Int? {
        if positionsApply, let position = recorded.position, playbook.steps.indices.contains(position),
            playbook.steps[position].name == recorded.step
        {
            return position
        }
        return playbook.steps.firstIndex { $0.name == recorded.step }
    }

    /// A step's node that the resumed run finished, or re-ran first as its step in flight.
    func resumedPast(_ step: Playbook.Step, position: Int, node: String) -> Bool {
        guard let resuming else { return false }
        return resuming.steps.contains {
            isEntry($0, of: step, at: position) && $0.node == node && ($0.status == .succeeded || $0.status == .skipped)
        } || resuming.unfinished.map { isEntry($0, of: step, at: position) && $0.node == node } == true
    }

    /// How many steps the resumed run's earlier attempts finished (succeeded or skipped; the backup counts).
    var finishedEarlier: Int {
        resuming?.steps.filter { $0.status == .succeeded || $0.status == .skipped }.count ?? 0
    }

    /// How many steps the run will take if the cluster stays as `observation` shows it: the loop of ``execute``
    /// without its side effects (a node a role names later may differ; the count is the plan's).
    func countSteps(_ observation: T.Observation) -> Int {
        var count = backup && resuming == nil ? 1 : 0
        if let inFlight = resuming?.unfinished, position(of: inFlight) != nil {
            count += 1
        }
        for (position, step) in playbook.steps.enumerated() where !resumedPast(step, position: position) {
            var nodes: [String]
            if case .role(let role) = step.target, let pinnedNodes = pinned[role] {
                nodes = pinnedNodes
            } else if case .node = step.target {
                nodes = ["node"]
            } else {
                nodes = (try? topology.nodes(for: step.target, observation: observation)) ?? ["unknown"]
            }
            nodes.removeAll { resumedPast(step, position: position, node: $0) }
            count += nodes.count
        }
        return count
    }

    enum Ending {
        case succeeded, stopped, aborted
        case failed(StepFailure)
    }

    func finish(_ ending: Ending, started: Date) async -> Outcome {
        // A cancelled task cannot do more I/O; the summary and records are made outside it.
        // Task-local values do not reach a detached task: read the fleet's reason to stop here.
        let failFast = FleetControl.current?.stopReason == .failFast
        let writes = await Task.detached { [writeProbe] in await writeProbe?.stop() }.value
        if let writes { reporter.emit(Event(.writeProbe(writes))) }
        var ended = await Task.detached { [self] in await self.summarize(ending, started: started, failFast: failFast) }
            .value
        ended.writes = writes
        let summary = RunSummaryText.render(ended)
        let status: ExitStatus
        let outcome: RunEvent.RunOutcome
        switch ending {
        case .succeeded: (status, outcome) = (.success, .succeeded)
        case .stopped, .aborted: (status, outcome) = (.interrupted, .interrupted)
        case .failed: (status, outcome) = (changesBegan ? .failedAfterChanges : .refused, .failed)
        }
        reporter.emit(
            Event(
                .runFinished(
                    outcome: outcome, exitCode: Int(status.rawValue), summary: summary,
                    duration: Date().timeIntervalSince(started), preflight: nil)))
        var journalStatus: Journal.Status =
            outcome == .succeeded ? .succeeded : (outcome == .interrupted ? .interrupted : .failed)
        // A failed backup changed nothing: there is nothing to resume, only a new run to start.
        if case .failed(let failure) = ending, failure.step == "backup", !changesBegan { journalStatus = .refused }
        await recorder?.finished(status: journalStatus, exitCode: status.rawValue, summary: summary)
        return Outcome(exitStatus: status, summary: summary)
    }

    /// Resolves the playbook's pinned targets once (a resumed run keeps its journal's) and records them.
    func pinTargets(_ initial: T.Observation) async throws {
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
                    advice: [NextStep("Check the cluster:", commands: ["drover status \(inventoryFlag)"])])
            }
        }
        if added { await recorder?.pinned(pinned) }
    }

    /// Resolves a step's nodes from a fresh reading of the cluster (the leader is re-read right before).
    func targets(of step: Playbook.Step, observation: inout T.Observation) throws -> [String] {
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
                advice: [NextStep("Check the cluster:", commands: ["drover status \(inventoryFlag)"])])
        }
    }

    /// Runs one step on one node: a fresh reading, its preconditions, its actions, its record.
    ///
    /// `startedEarlier`: the step is resumed after its commands had started; its preconditions held when it
    /// first started, and what its own commands did (a sentinel it removed) must not fail them now.
    func run(
        _ step: Playbook.Step, node: String, index: Int, observation: inout T.Observation, position: Int? = nil,
        pinned: Bool = false, startedEarlier: Bool = false
    ) async throws {
        let stepStarted = Date()
        // A node that could not be reached may be back (a host rebuilt by a manual step before this one).
        await reconnectLost()
        if connection.failures[node] != nil, await connection.reconnect(node) {
            reporter.emit(Event(.note("\(node) is reachable again")))
        }
        // Re-read right before each step (roles and versions may have moved since the plan), unless the last
        // reading was taken after the last action, moments ago.
        if let reading = lastReading, clock.now - reading.at <= Self.readingReuseLimit {
            observation = reading.observation
        } else {
            let fresh = await topology.observe(connection, full: false, checksum: false)
            observation = fresh
            lastReading = Reading(observation: fresh, at: clock.now)
        }
        if !pinned, let moved = topology.retarget(step.target, node: node, observation: observation), moved != node {
            return try await run(step, node: moved, index: index, observation: &observation, position: position)
        }
        reporter.emit(
            Event(
                .stepStarted(
                    index: index, total: expectedSteps, step: step.name, node: node, description: step.description)))
        await recorder?.stepStarted(index: index, step: step.name, node: node, position: position)
        if !pinned, let reason = topology.skipReason(step, node: node, observation: observation) {
            reporter.emit(
                Event(
                    .stepFinished(
                        index: index, step: step.name, node: node, outcome: .skipped, reason: reason, duration: 0)))
            await recorder?.stepFinished(step: step.name, node: node, status: .skipped, reason: reason)
            return
        }
        let live = topology.liveValues(observation)
        do {
            if !startedEarlier { try checkRequirements(step, node: node, observation: observation) }
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
                case .install(let what):
                    switch topology.installCommand(what, node: node, digest: packageDigests["\(what)@\(node)"]) {
                    case .success(let command): commands.append((command, number + 1))
                    case .failure(let missing):
                        throw StepFailure(
                            step: step.name, node: node, what: missing.reason, advice: [NextStep(missing.fix)])
                    }
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
                    try await wait(predicate, node: node, timeout: Self.duration(timeout, topology), step: step)
                case .check(let name):
                    try await check(name, step: step)
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
        } catch is PromptWithdrawn {
            // Nothing of the step ran after its prompt; a resumed run asks again (or, with commands already run
            // in the step, decides as for any step in flight).
            interruptedAt = (step.name, node)
            await stepEnded(
                step, node: node, index: index, started: stepStarted, outcome: .interrupted,
                reason: "interrupted at the operator's prompt; the step's next action did not run")
            throw Stopped()
        } catch let failure as StepFailure {
            await stepEnded(
                step, node: node, index: index, started: stepStarted, outcome: .failed, reason: failure.what)
            throw failure
        } catch {
            interruptedAt = (step.name, node)
            await stepEnded(
                step, node: node, index: index, started: stepStarted, outcome: .interrupted,
                reason: "aborted by a second interrupt")
            throw error
        }
        await stepEnded(step, node: node, index: index, started: stepStarted, outcome: .succeeded, reason: nil)
    }

    /// Says how a step ended, on the console and in the journal.
    func stepEnded(
        _ step: Playbook.Step, node: String, index: Int, started: Date, outcome: RunEvent.StepOutcome, reason: String?
    ) async {
        reporter.emit(
            Event(
                .stepFinished(
                    index: index, step: step.name, node: node, outcome: outcome, reason: reason,
                    duration: Date().timeIntervalSince(started))))
        let status: Journal.Step.Status
        switch outcome {
        case .succeeded: status = .succeeded
        case .failed: status = .failed
        case .skipped: status = .skipped
        case .interrupted: status = .interrupted
        }
        await recorder?.stepFinished(step: step.name, node: node, status: status, reason: reason)
    }

    /// Checks a step's conditions on the live cluster; a failed one refuses the step before it changes anything.
    func checkRequirements(_ step: Playbook.Step, node: String, observation: T.Observation) throws {
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
                    advice: [NextStep("Check the situation again:", commands: [diagnoseCommand])])
            }
        }
    }

}
