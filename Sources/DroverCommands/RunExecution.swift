import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation

/// A run from a connected cluster to its records, in the order it happens: the package placed, the
/// parameters bound, the cluster read and planned, the refusals (another run's lock, pre-flight), the
/// operator's approval, the lock, the journal, the run itself under the interrupt monitor, and its reports.
extension Operations {
    static func execute<T: Topology>(
        _ request: RunRequest, playbook requested: Playbook, topology: T, connection: ClusterConnection,
        resuming: Journal?
    ) async -> ExitStatus {
        let inventory = topology.inventory
        let redactor = Redactor.standard
        let console: any Reporter = request.json ? JSONLinesReporter(cluster: inventory.cluster) : HumanReporter()
        let reporter = RecordingReporter(console: console, recorder: nil, redactor: redactor)
        // Uploading changes no cluster state, so it happens before pre-flight and the lock.
        if connection.backendFailures.isEmpty, !(await uploadPackage(connection, json: request.json)) {
            Output.diagnostic("the package could not be placed on every backend; nothing else was changed.")
            return .refused
        }
        guard let bindings = bindings(request, playbook: requested, inventory: inventory) else { return .usage }
        // An install verifies the package against the digest read here, on each node, before anything changed.
        let observation = await topology.observe(
            connection, full: true, checksum: !requested.installs.isEmpty)
        let observedAt = ContinuousClock.now
        let (plan, backup) = makePlan(
            request, playbook: requested, topology: topology, observation: observation, bindings: bindings,
            resuming: resuming)
        let playbook = plan.playbook
        if let refused = await refusal(
            request, plan: plan, topology: topology, observation: observation, connection: connection,
            resuming: resuming, reporter: reporter)
        {
            return refused
        }
        if let ended = await approval(request, plan: plan, resuming: resuming, reporter: reporter) { return ended }
        let runID = resuming?.runID ?? newRunID()
        // What each install verifies: the digests read when the run first started (a resume keeps them).
        let digests =
            resuming?.packageDigests
            ?? Self.packageDigests(playbook: playbook, topology: topology, observation: observation)
        let held: ClusterLock.Holding
        switch await lock(connection, runID: runID, newRun: resuming == nil, playbook: playbook, request: request) {
        case .success(let holding): held = holding
        case .failure(let refused): return refused.status
        }
        guard
            let recorder = await openRecords(
                request, playbook: playbook, inventory: inventory, runID: runID, observation: observation,
                resuming: resuming, digests: digests, redactor: redactor)
        else {
            // Only the locks this drover created: those it took over from an earlier attempt stay for its resume.
            await ClusterLock.release(connection, holding: held, onlyCreated: true)
            return .usage
        }
        await recorder.savePlan(redactor.redact(plan.document.json.serialized))
        let recording = RecordingReporter(console: console, recorder: recorder, redactor: redactor)
        // One cluster of a fleet: the fleet watches the interrupts (and --fail-fast) for all of its clusters.
        let fleet = FleetControl.current
        let interrupts = InterruptMonitor()
        let stopRequested: @Sendable () -> Bool = { fleet?.stopRequested ?? interrupts.stopRequested }
        // An interrupt at a prompt withdraws the question: the step runs nothing and the run stops (Runner.confirm).
        let interaction = Interaction(
            yes: request.yes, assumeDone: request.assumeDone,
            ask: { await Terminal.ask($0, cancelled: stopRequested) })
        // The inventory's write probe, asked from here until the run's summary.
        let probe = inventory.probe.map(WriteProbe.init)
        probe?.start()
        let runner = Runner(
            playbook: playbook, topology: topology, connection: connection, reporter: recording, runID: runID,
            recorder: recorder, resuming: resuming, interaction: interaction, bindings: bindings, backup: backup,
            nextOptions: request.nextOptions, lock: held, packageDigests: digests, writeProbe: probe,
            stopRequested: stopRequested)
        let outcome = await runUnderInterrupts(
            runner, initial: observation, readAt: observedAt, interrupts: interrupts, reporter: recording)
        _ = await probe?.stop()
        await ClusterLock.release(connection, holding: held)
        let written = await writeReports(request, recorder: recorder, playbook: playbook)
        sayWhereItIs(recorder.current, written: written, json: request.json, options: request.nextOptions)
        return outcome.exitStatus
    }

    /// The run's last lines: its id, how to see it again, and the files it wrote (on stderr with `--json`, whose
    /// stdout is events only).
    private static func sayWhereItIs(
        _ journal: Journal, written: [(what: String, path: String)], json: Bool, options: NextCommandOptions
    ) {
        var lines = ["Run \(journal.runID); see it again: drover show \(journal.runID)\(options.state)"]
        let files = [("journal", journal.path), ("transcript", journal.transcriptPath)] + written
        let width = files.map(\.0.count).max() ?? 0
        lines += files.map { "  \(($0.0 + ":").padding(toLength: width + 1, withPad: " ", startingAt: 0)) \($0.1)" }
        let text = lines.joined(separator: "\n") + "\n"
        if json { Output.stderr(text) } else { Output.stdout(text) }
    }

    /// The playbook's parameters, bound: `run` validated them before connecting, but a resumed run's come from
    /// its journal and may no longer fit.
    private static func bindings(_ request: RunRequest, playbook: Playbook, inventory: Inventory) -> Bindings? {
        do {
            return Bindings(
                try PlaybookLibrary.validate(request.parameters, for: playbook, inventory: inventory),
                playbook: playbook)
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            return nil
        }
    }

    /// The plan of the run, and whether it takes a backup first. A fresh `upgrade` runs the playbook of the path
    /// the live facts call for; a resumed run keeps its own (and its journal's backup).
    private static func makePlan<T: Topology>(
        _ request: RunRequest, playbook: Playbook, topology: T, observation: T.Observation, bindings: Bindings,
        resuming: Journal?
    ) -> (Plan<T>, backup: Bool) {
        let chosen =
            resuming == nil
            ? choosingPath(playbook, topology: topology, observation: observation, library: request.playbooks)
            : Plan<T>.PathPlaybook(playbook: playbook, unavailable: nil)
        let backup =
            resuming == nil
            && backupWanted(request.backup, playbook: chosen.playbook, topology: topology, observation: observation)
        var plan = Plan.make(
            playbook: chosen.playbook, topology: topology, observation: observation, bindings: bindings, backup: backup)
        plan.noteUnavailable(chosen.unavailable)
        return (plan, backup)
    }

    /// Why the run must not start, said, with its exit status; nil when it may. Another run's lock is the first
    /// reason: its changes explain whatever pre-flight would find.
    private static func refusal<T: Topology>(
        _ request: RunRequest, plan: Plan<T>, topology: T, observation: T.Observation, connection: ClusterConnection,
        resuming: Journal?, reporter: any Reporter
    ) async -> ExitStatus? {
        let inventory = topology.inventory
        if let holder = plan.lockOwners.first(where: { $0.runID != resuming?.runID }) {
            await sayLocked(inventory: inventory, owner: holder, request: request)
            return .locked
        }
        let checks =
            resuming.map { topology.resumeChecks(journal: $0, playbook: plan.playbook, observation: observation) }
            ?? plan.preflight
        let needsAllNodes = plan.playbook.preflight != "none"
        guard !checks.allSatisfy(\.ok) || (needsAllNodes && !connection.backendFailures.isEmpty) else { return nil }
        let redactor = Redactor.standard
        if !request.json && resuming == nil { Output.stdout(redactor.redact(PlanText.render(plan.document))) }
        for check in checks where !check.ok {
            // The fix on a line of its own: a detail may end with a command (ssh-keygen -R ...).
            Output.diagnostic(
                redactor.redact(
                    "pre-flight failed: \(check.check)\(check.node.map { " on \($0)" } ?? ""): "
                        + check.detail.replacingOccurrences(of: "\n", with: "\n    ")
                        + (check.fix.map { "\n  fix: \($0)" } ?? "")))
        }
        if !connection.backendFailures.isEmpty {
            Output.diagnostic(
                "why a node cannot be reached or read, and what to do: drover diagnose --inventory \(ShellQuote.quote(request.inventoryPath))\(request.nextOptions.state)"
            )
        }
        reporter.emit(
            Event(
                .runFinished(
                    outcome: .refused, exitCode: 2, summary: nil, duration: nil,
                    preflight: checks.filter { !$0.ok }.map { "\($0.check) \($0.node ?? ""): \($0.detail)" })))
        Output.diagnostic("nothing was changed.")
        return .refused
    }

    /// Ends the run before it starts when there is nothing to do, or when the operator does not approve the
    /// plan (a fresh run without `--yes` or a saved plan); nil when it goes ahead.
    private static func approval<T: Topology>(
        _ request: RunRequest, plan: Plan<T>, resuming: Journal?, reporter: any Reporter
    ) async -> ExitStatus? {
        /// Words for the person at the terminal: stdout, or stderr when stdout carries JSON Lines.
        func say(_ text: String) { request.json ? Output.stderr(text) : Output.stdout(text) }
        if let resuming {
            // At a terminal, as a fresh run asks (without one, resume needs --yes): what it found is said above.
            guard !request.yes else { return nil }
            guard await Terminal.ask("Continue run \(resuming.runID)? Type yes to continue the run: ") == "yes" else {
                say("Not resumed; nothing was changed.\n")
                return .success
            }
            return nil
        }
        if plan.nothingToDo {
            if request.json {
                reporter.emit(
                    Event(
                        .runFinished(
                            outcome: .succeeded, exitCode: 0, summary: "nothing to do", duration: nil, preflight: nil)))
            } else {
                Output.stdout("Nothing to do: \(plan.nothingToDoReason ?? "every node is done").\n")
            }
            return .success
        }
        if !request.yes && !request.planApproved {
            say(Redactor.standard.redact(PlanText.render(plan.document)))
            guard await Terminal.ask("Type yes to start the run: ") == "yes" else {
                say("Not started; nothing was changed.\n")
                return .success
            }
        }
        return nil
    }

    /// The SHA-256 of every package `playbook` installs, on every node, as `observation` read them (`package@be2`).
    private static func packageDigests<T: Topology>(
        playbook: Playbook, topology: T, observation: T.Observation
    ) -> [String: String] {
        let nodes = topology.inventory.backends.map(\.name) + topology.inventory.frontends.map(\.name)
        var digests: [String: String] = [:]
        for what in playbook.installs {
            for node in nodes {
                if let digest = topology.packageDigest(what, node: node, observation: observation) {
                    digests["\(what)@\(node)"] = digest
                }
            }
        }
        return digests
    }

    /// An exit status, as an error: why the lock was not taken (said already).
    struct Refused: Error {
        var status: ExitStatus
    }

    /// Takes the cluster's lock for `runID` on a majority of the backends (or on those reachable, for a runbook
    /// made for lost nodes, saying so); on failure says why and returns the exit status.
    private static func lock(
        _ connection: ClusterConnection, runID: String, newRun: Bool, playbook: Playbook, request: RunRequest
    ) async -> Result<ClusterLock.Holding, Refused> {
        let inventory = connection.inventory
        let majority = ClusterLock.majority(of: inventory)
        let lostNodesRunbook = playbook.preflight == "none"
        do {
            let holding = try await ClusterLock.acquire(
                connection, runID: runID, newRun: newRun, minimum: lostNodesRunbook ? 1 : majority,
                tolerateUnusable: lostNodesRunbook)
            if holding.nodes.count < majority {
                let missing = inventory.backends.map(\.name).filter { !holding.nodes.contains($0) }
                Output.diagnostic(
                    "warning: the cluster lock is held on \(holding.nodes.count) of \(inventory.backends.count) backends: "
                        + "\(missing.joined(separator: ", ")) cannot be reached or locked yet. A second workstation that "
                        + "reaches only them could take it too; it is taken there as they become reachable.")
            }
            return .success(holding)
        } catch let held as ClusterLock.Held {
            await sayLocked(inventory: inventory, owner: held.owner, request: request)
            return .failure(Refused(status: .locked))
        } catch let error as ClusterLock.NoMajority {
            Output.diagnostic("\(error.localizedDescription)")
            return .failure(Refused(status: .refused))
        } catch let unusable as ClusterLock.Unusable {
            Output.diagnostic("\(unusable.localizedDescription)")
        } catch {
            Output.diagnostic("cannot take the cluster's lock: \(error.localizedDescription)")
        }
        // The locks it created were removed again by acquire; one taken over from an earlier attempt stays.
        return .failure(Refused(status: .refused))
    }

    private static func sayLocked(inventory: Inventory, owner: LockOwner, request: RunRequest) async {
        let advice = await LockAdvice(
            owner, cluster: inventory.cluster, inventoryPath: request.inventoryPath,
            stateDirectory: request.stateDirectory)
        Output.diagnostic(
            "the cluster \(inventory.cluster) is locked\(owner.isOwnerless ? ":" : " by") \(advice.what); nothing was changed."
        )
        Output.stderr(advice.text)
    }

    /// The run's journal (a resumed run's own, continued) and the recorder that keeps it and the transcript.
    private static func openRecords(
        _ request: RunRequest, playbook: Playbook, inventory: Inventory, runID: String,
        observation: some TopologyObservation, resuming: Journal?, digests: [String: String], redactor: Redactor
    ) async -> RunRecorder? {
        let state = StateDirectory(request.stateDirectory)
        var journal =
            resuming
            ?? Journal(
                runID: runID, playbook: playbook.name, playbookFile: playbook.file, cluster: inventory.cluster,
                inventoryFile: (request.inventoryPath as NSString).standardizingPath, inventoryDigest: inventory.digest,
                targetVersion: inventory.package?.version, user: UserAccount.name,
                workstation: ProcessInfo.processInfo.hostName,
                started: Date(), status: .running)
        journal.parameters = request.parameters
        journal.topology = inventory.topology.rawValue
        if journal.playbookDigest == nil && !playbook.digest.isEmpty { journal.playbookDigest = playbook.digest }
        if journal.nodeGUIDs?.isEmpty ?? true { journal.nodeGUIDs = observation.identities }
        if journal.packageDigests == nil && !digests.isEmpty { journal.packageDigests = digests }
        journal.status = .running
        journal.finished = nil
        // A resumed run is another process (on another workstation, perhaps): whose it is now.
        journal.pid = getpid()
        journal.workstation = ProcessInfo.processInfo.hostName
        if journal.path.isEmpty {
            journal.path = state.runDirectory(cluster: inventory.cluster, runID: runID) + "/journal.json"
        }
        do {
            // Held until this drover exits: a resume of this run while it runs is refused at once.
            if let holder = try await RunDirectoryLock.takeOffPool((journal.path as NSString).deletingLastPathComponent)
            {
                Output.diagnostic(
                    "run \(journal.runID) is driven by another drover, pid \(holder), on this workstation; nothing was changed"
                )
                return nil
            }
            return try await RunRecorder(journal: journal, redactor: redactor)
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            return nil
        }
    }

    /// Runs `runner` in its own task: a first interrupt asks it to stop after the step in flight, a second
    /// cancels it (in a fleet, the fleet does both).
    private static func runUnderInterrupts<T: Topology>(
        _ runner: Runner<T>, initial: T.Observation, readAt: ContinuousClock.Instant, interrupts: InterruptMonitor,
        reporter: any Reporter
    ) async -> Runner<T>.Outcome {
        let task = Task { await runner.execute(initial: initial, readAt: readAt) }
        if let fleet = FleetControl.current {
            fleet.onAbort { task.cancel() }
            return await task.value
        }
        interrupts.start(
            onFirst: {
                reporter.emit(
                    Event(.note("interrupt received: stopping after the step in flight and its verification")))
            }, onAbort: { task.cancel() })
        let outcome = await task.value
        interrupts.stop()
        return outcome
    }

    /// The JUnit and HTML reports the request asked for, once every record is written; returns those written.
    private static func writeReports(
        _ request: RunRequest, recorder: RunRecorder, playbook: Playbook
    ) async -> [(what: String, path: String)] {
        var written: [(what: String, path: String)] = []
        if let junit = request.junit {
            let report = JUnitReport.xml(recorder.current, playbook: playbook)
            do {
                try await BlockingWork.run {
                    // `--junit reports/CLUSTER.xml` in a CI job: the directory need not exist yet.
                    let directory = (junit as NSString).deletingLastPathComponent
                    if !directory.isEmpty {
                        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    }
                    try DurableFile.write(Data(report.utf8), to: junit)
                }
                written.append(("JUnit", junit))
            } catch {
                Output.diagnostic("cannot write the JUnit report \(junit): \(error.localizedDescription)")
            }
        }
        await recorder.flush()
        if let html = request.html {
            let journal = recorder.current
            do {
                try await BlockingWork.run { try RunReport.write(journal, to: html, topologies: .drover) }
                written.append(("report", html))
            } catch {
                Output.diagnostic("cannot write the report \(html): \(error.localizedDescription)")
            }
        }
        return written
    }
}
