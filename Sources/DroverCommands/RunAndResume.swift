import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

extension Operations {
    /// What `drover run`, `drover upgrade` and `drover resume` were asked to do.
    public struct RunRequest: Sendable {
        public var playbook: String
        public var inventoryPath: String
        public var yes: Bool
        public var json: Bool
        public var stateDirectory: String?
        public var junit: String?
        public var assumeDone = false
        /// `--set NAME=VALUE` values for the playbook's parameters.
        public var parameters: [String: String] = [:]
        /// Where playbooks are found (`--playbooks DIR`, `$DROVER_PLAYBOOKS`, the built-ins).
        public var playbooks = PlaybookLibrary()
        /// The run applies a saved plan: starting it needs no further approval.
        public var planApproved = false
        /// `--backup` (true), `--no-backup` (false), or neither: the inventory's `package.backup`, on for the
        /// downtime paths.
        public var backup: Bool?
        /// `--html FILE`: the run's report for people, written when it ends.
        public var html: String?

        public init(
            playbook: String, inventoryPath: String, yes: Bool, json: Bool, stateDirectory: String?, junit: String?,
            assumeDone: Bool = false, parameters: [String: String] = [:]
        ) {
            self.assumeDone = assumeDone
            self.parameters = parameters
            self.playbook = playbook
            self.inventoryPath = inventoryPath
            self.yes = yes
            self.json = json
            self.stateDirectory = stateDirectory
            self.junit = junit
        }
    }

    /// `drover run` and `drover upgrade`.
    public static func run(_ request: RunRequest, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(request.inventoryPath),
            let playbook = loadPlaybook(request.playbook, from: request.playbooks, for: inventory)
        else {
            return .usage
        }
        if !request.yes && isatty(0) != 1 {
            Output.diagnostic(
                "refusing to start without --yes: standard input is not a terminal. Review the steps with `drover plan \(playbook.name) --inventory \(ShellQuote.quote(request.inventoryPath))`, then re-run with --yes."
            )
            return .usage
        }
        do {
            _ = try PlaybookLibrary.validate(request.parameters, for: playbook, inventory: inventory)
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            return .usage
        }
        if let refusal = interactionRefusal(playbook, yes: request.yes, assumeDone: request.assumeDone, retry: nil) {
            Output.diagnostic(refusal)
            return .usage
        }
        let connection = await ClusterConnection.connect(inventory, frontends: true, logger: logger)
        // Every session is closed before returning: the process must not exit while a session thread
        // is still inside libssh2.
        let status = await withTopology(inventory) { topology in
            await execute(request, playbook: playbook, topology: topology, connection: connection, resuming: nil)
        }
        await connection.close()
        return status
    }

    /// `drover resume`: continues the cluster's last unfinished run, if it was made against these nodes.
    public static func resume(_ request: RunRequest, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(request.inventoryPath) else { return .usage }
        let state = StateDirectory(request.stateDirectory)
        guard state.journals(cluster: inventory.cluster).contains(where: \.isUnfinished) else {
            Output.stdout(nothingToResume(inventory.cluster))
            return .success
        }
        if !request.yes && isatty(0) != 1 {
            Output.diagnostic("refusing to resume without --yes: standard input is not a terminal.")
            return .usage
        }
        // Which cluster a journal belongs to is told by its nodes' GUIDs: read them before choosing.
        let connection = await ClusterConnection.connect(inventory, frontends: true, logger: logger)
        let status = await withTopology(inventory) { topology in
            let observation = await topology.observe(connection, full: false, checksum: false)
            let history = Operations.history(state, cluster: inventory.cluster, identities: observation.identities)
            return await resume(request, topology: topology, history: history, connection: connection)
        }
        await connection.close()
        return status
    }

    /// The part of `resume` that runs with the connection open; the caller closes it.
    private static func resume<T: Topology>(
        _ request: RunRequest, topology: T, history: ClusterHistory,
        connection: ClusterConnection
    ) async -> ExitStatus {
        let inventory = topology.inventory
        guard let journal = history.journals.first, journal.isUnfinished else {
            Output.stdout(nothingToResume(inventory.cluster))
            return .success
        }
        let done = journal.steps.filter { $0.status == .succeeded || $0.status == .skipped }.map {
            "\($0.step) on \($0.node)"
        }
        var found =
            "Found run \(journal.runID) (\(journal.playbook), started \(RFC3339.string(journal.started)), \(journal.status.rawValue))."
        found += "\n  done: \(done.isEmpty ? "nothing" : done.joined(separator: ", "))"
        if let inFlight = journal.unfinished {
            found +=
                "\n  \(inFlight.status == .failed ? "failed" : "in flight") when it stopped: \(inFlight.step) on \(inFlight.node)"
            found +=
                "\n  first: re-run \(inFlight.step) on \(inFlight.node) from its start: each command's record on the node decides "
                + "(still running: waited for; finished: its status used; never started or failed: run), then continue"
        } else {
            found += "\n  first: re-read the cluster, then continue with the remaining steps"
        }
        if let failover = journal.failover {
            found += "\n  cluster failover was last set \(failover) by this run (step \(journal.failoverStep ?? "?"))"
        }
        Output.stderr(found + "\n")
        guard journal.targetVersion == inventory.package?.version,
            Set(journal.steps.map(\.node)).isSubset(
                of: Set(inventory.backends.map(\.name) + inventory.sshFrontends.map(\.name)))
        else {
            Output.diagnostic(
                "cannot resume: the inventory's package or backends differ from those of run \(journal.runID); start a new run instead."
            )
            return .refused
        }
        if journal.inventoryDigest != inventory.digest {
            Output.diagnostic(
                "note: \(request.inventoryPath) changed since the run started (timeouts or SSH settings may differ)."
            )
        }
        guard
            let playbook = (try? Playbook.load(path: journal.playbookFile))
                ?? loadPlaybook(journal.playbook, from: request.playbooks, for: inventory)
        else {
            return .usage
        }
        var resumed = request
        resumed.parameters = journal.parameters ?? [:]
        return await execute(resumed, playbook: playbook, topology: topology, connection: connection, resuming: journal)
    }

    static func nothingToResume(_ cluster: String) -> String {
        "Nothing to resume for cluster \(cluster): its last run finished (see `drover runs`).\n"
    }

    static func execute<T: Topology>(
        _ request: RunRequest, playbook: Playbook, topology: T, connection: ClusterConnection,
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
        // run validated these before connecting; a resumed run's come from its journal and may no longer fit.
        let bindings: Bindings
        do {
            bindings = Bindings(
                try PlaybookLibrary.validate(request.parameters, for: playbook, inventory: inventory),
                playbook: playbook)
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            return .usage
        }
        let observation = await topology.observe(connection, full: true, checksum: false)
        let observedAt = ContinuousClock.now
        // A fresh `upgrade` runs the playbook of the path the live facts call for; a resumed run keeps its own.
        let chosen =
            resuming == nil
            ? choosingPath(playbook, topology: topology, observation: observation, library: request.playbooks)
            : Plan<T>.PathPlaybook(playbook: playbook, unavailable: nil)
        let playbook = chosen.playbook
        let backup =
            resuming == nil
            && backupWanted(request.backup, playbook: playbook, topology: topology, observation: observation)
        var plan = Plan.make(
            playbook: playbook, topology: topology, observation: observation, bindings: bindings, backup: backup)
        plan.noteUnavailable(chosen.unavailable)
        // Another run's lock is the first reason to refuse: its changes explain whatever pre-flight would find.
        if let holder = plan.lockOwners.first(where: { $0.runID != resuming?.runID }) {
            Output.diagnostic(
                "the cluster \(inventory.cluster) is locked by \(holder.description) on \(holder.node); nothing was changed."
            )
            Output.diagnostic(
                "if that run is no longer running, remove its lock: drover unlock --inventory \(ShellQuote.quote(request.inventoryPath)) --run-id \(holder.runID)"
            )
            return .locked
        }
        let checks = resuming.map { topology.resumeChecks(journal: $0, observation: observation) } ?? plan.preflight
        let needsAllNodes = playbook.preflight != "none"
        if !checks.allSatisfy(\.ok) || (needsAllNodes && !connection.backendFailures.isEmpty) {
            if !request.json && resuming == nil { Output.stdout(redactor.redact(plan.text)) }
            for check in checks where !check.ok {
                Output.diagnostic(
                    redactor.redact(
                        "pre-flight failed: \(check.check)\(check.node.map { " on \($0)" } ?? ""): \(check.detail)\(check.fix.map { "; fix: \($0)" } ?? "")"
                    ))
            }
            reporter.emit(
                Event(
                    .runFinished(
                        outcome: .refused, exitCode: 2, summary: nil, duration: nil,
                        preflight: checks.filter { !$0.ok }.map { "\($0.check) \($0.node ?? ""): \($0.detail)" })))
            Output.diagnostic("nothing was changed.")
            return .refused
        }
        if resuming == nil && plan.nothingToDo {
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
        if resuming == nil && !request.yes && !request.planApproved {
            Output.stdout(redactor.redact(plan.text))
            guard await Terminal.ask("Type yes to start the run: ") == "yes" else {
                Output.stdout("Not started; nothing was changed.\n")
                return .success
            }
        }
        let runID = resuming?.runID ?? newRunID()
        do {
            try await ClusterLock.acquire(connection, runID: runID)
        } catch let held as ClusterLock.Held {
            Output.diagnostic(
                "the cluster \(inventory.cluster) is locked by \(held.owner.description) on \(held.owner.node); nothing was changed."
            )
            Output.diagnostic(
                "if that run is no longer running, remove its lock: drover unlock --inventory \(ShellQuote.quote(request.inventoryPath)) --run-id \(held.owner.runID)"
            )
            return .locked
        } catch let unusable as ClusterLock.Unusable {
            Output.diagnostic("\(unusable.localizedDescription)")
            await ClusterLock.release(connection, runID: runID)
            return .refused
        } catch {
            Output.diagnostic("cannot take the cluster's lock: \(error.localizedDescription)")
            await ClusterLock.release(connection, runID: runID)
            return .refused
        }
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
        journal.topology = inventory.topology
        if journal.playbookDigest == nil && !playbook.digest.isEmpty { journal.playbookDigest = playbook.digest }
        if journal.nodeGUIDs?.isEmpty ?? true { journal.nodeGUIDs = observation.identities }
        journal.status = .running
        journal.finished = nil
        if journal.path.isEmpty {
            journal.path = state.runDirectory(cluster: inventory.cluster, runID: runID) + "/journal.json"
        }
        let recorder: RunRecorder
        do {
            recorder = try await RunRecorder(journal: journal, redactor: redactor)
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            await ClusterLock.release(connection, runID: runID)
            return .usage
        }
        await recorder.savePlan(redactor.redact(plan.json.serialized))
        let recording = RecordingReporter(console: console, recorder: recorder, redactor: redactor)
        // One cluster of a fleet: the fleet watches the interrupts (and --fail-fast) for all of its clusters.
        let fleet = FleetControl.current
        let interrupts = InterruptMonitor()
        let runner = Runner(
            playbook: playbook, topology: topology, connection: connection, reporter: recording, runID: runID,
            recorder: recorder, resuming: resuming,
            interaction: Interaction(yes: request.yes, assumeDone: request.assumeDone, ask: Terminal.ask),
            bindings: bindings, backup: backup, stopRequested: { fleet?.stopRequested ?? interrupts.stopRequested })
        let task = Task { await runner.execute(initial: observation, readAt: observedAt) }
        if let fleet {
            fleet.onAbort { task.cancel() }
        } else {
            interrupts.start(
                onFirst: {
                    recording.emit(
                        Event(.note("interrupt received: stopping after the step in flight and its verification")))
                }, onAbort: { task.cancel() })
        }
        let outcome = await task.value
        if fleet == nil { interrupts.stop() }
        await ClusterLock.release(connection, runID: runID)
        if let junit = request.junit {
            let report = JUnitReport.xml(recorder.current, playbook: playbook)
            do {
                try await BlockingWork.run {
                    // `--junit reports/CLUSTER.xml` in a CI job: the directory need not exist yet.
                    let directory = (junit as NSString).deletingLastPathComponent
                    if !directory.isEmpty {
                        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    }
                    try report.write(toFile: junit, atomically: true, encoding: .utf8)
                }
            } catch {
                Output.diagnostic("cannot write the JUnit report \(junit): \(error.localizedDescription)")
            }
        }
        await recorder.flush()
        if let html = request.html {
            let journal = recorder.current
            do {
                try await BlockingWork.run { try RunReport.write(journal, to: html) }
                Output.diagnostic("the run's report: \(html)")
            } catch {
                Output.diagnostic("cannot write the report \(html): \(error.localizedDescription)")
            }
        }
        return outcome.exitStatus
    }

    /// A run id: UTC time and a random suffix, sortable.
    public static func newRunID() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date()) + "-" + String(UUID().uuidString.prefix(6)).lowercased()
    }
}
