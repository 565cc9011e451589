import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

/// What each `drover` command does, given its parsed arguments; returns the exit status.
public enum Operations {
    static func loadInventory(_ path: String) -> Inventory? {
        do {
            return try Inventory.load(path: path)
        } catch {
            Output.stderr("drover: invalid inventory: \(error.localizedDescription)\n")
            return nil
        }
    }

    static func loadPlaybook(_ name: String, from library: PlaybookLibrary) -> Playbook? {
        do {
            return try library.find(name)
        } catch {
            Output.stderr("drover: invalid playbook: \(error.localizedDescription)\n")
            return nil
        }
    }

    /// Prints unreachable nodes; true when every node is connected.
    static func reportUnreachable(_ connection: ClusterConnection) -> Bool {
        for (name, reason) in connection.failures.sorted(by: { $0.key < $1.key }) {
            Output.stderr("drover: \(name): \(reason)\n")
        }
        return connection.failures.isEmpty
    }

    // MARK: plan

    /// `drover plan`: read-only discovery, pre-flight and the ordered steps; `out` also saves it.
    public static func plan(playbook name: String, inventoryPath: String, json: Bool, offline: Bool, out: String? = nil,
                            stateDirectory: String? = nil, parameters: [String: String] = [:], playbooks: PlaybookLibrary = PlaybookLibrary(),
                            logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath), let playbook = loadPlaybook(name, from: playbooks) else { return .usage }
        let bindings: Bindings
        do {
            bindings = Bindings(try PlaybookLibrary.validate(parameters, for: playbook, inventory: inventory), playbook: playbook)
        } catch {
            Output.stderr("drover: \(error.localizedDescription)\n")
            return .usage
        }
        if out != nil && offline {
            Output.stderr("drover: --out needs a plan of the live cluster; drop --offline\n")
            return .usage
        }
        var observation: ClusterObservation?
        if !offline {
            let connection = await ClusterConnection.connect(inventory, logger: logger)
            observation = await Discovery.observe(connection, full: true, checksum: out != nil)
            await connection.close()
        }
        let plan = Plan.make(playbook: playbook, inventory: inventory, observation: observation, bindings: bindings)
        let redactor = Redactor.standard
        Output.stdout(redactor.redact(json ? plan.json.serialized + "\n" : plan.text))
        if let out, let observation {
            let history = StateDirectory(stateDirectory).history(cluster: inventory.cluster, observation: observation)
                let failover = history.journals.first?.failover
            let saved = SavedPlan(playbook: playbook.name, playbookSource: playbook.source, playbookDigest: playbook.digest,
                                  parameters: parameters, inventoryFile: (inventoryPath as NSString).standardizingPath,
                                  inventoryDigest: inventory.digest, cluster: inventory.cluster, created: Date(),
                                  fingerprint: SavedPlan.fingerprint(observation, inventory: inventory, failover: failover), plan: plan.json)
            do {
                try DurableFile.write(Data((redactor.redact(saved.json.serialized) + "\n").utf8), to: out)
                Output.stderr("drover: plan saved to \(out); apply it with: drover apply \(out)\n")
            } catch {
                Output.stderr("drover: \(error.localizedDescription)\n")
                return .usage
            }
        }
        return offline || plan.preflightPassed ? .success : .refused
    }

    /// `drover apply FILE`: runs a saved plan, if the cluster is still as the plan saw it.
    ///
    /// Applying is the approval of the plan, so it never asks to start; `yes` approves its destructive
    /// (`confirm:`) steps too, and `assumeDone` its manual ones, as for `drover run`.
    public static func apply(planPath: String, inventoryOverride: String?, json: Bool, stateDirectory: String?, junit: String?,
                             yes: Bool = false, assumeDone: Bool = false, playbooks: PlaybookLibrary = PlaybookLibrary(),
                             logger: Logger) async -> ExitStatus {
        let saved: SavedPlan
        do {
            saved = try SavedPlan.load(path: planPath)
        } catch {
            Output.stderr("drover: \(error.localizedDescription)\n")
            return .usage
        }
        let inventoryPath = inventoryOverride ?? saved.inventoryFile
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        guard inventory.digest == saved.inventoryDigest else {
            Output.stderr("drover: \(inventoryPath) changed since the plan was made; make a new plan: drover plan --inventory \(inventoryPath) --out \(planPath)\n")
            return .refused
        }
        guard let playbook = saved.resolvePlaybook(in: playbooks), playbook.digest == saved.playbookDigest else {
            Output.stderr("drover: the playbook \(saved.playbook) (\(saved.playbookSource)) is missing or changed since the plan was made; make a new plan: drover plan \(saved.playbook) --inventory \(inventoryPath) --out \(planPath)\n")
            return .refused
        }
        if let refusal = interactionRefusal(playbook, yes: yes, assumeDone: assumeDone, retry: "drover apply \(planPath)") {
            Output.stderr(refusal)
            return .usage
        }
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        let observation = await Discovery.observe(connection, full: true, checksum: true)
        let history = StateDirectory(stateDirectory).history(cluster: inventory.cluster, observation: observation)
        let failover = history.journals.first?.failover
        let changes = SavedPlan.differences(saved.fingerprint, SavedPlan.fingerprint(observation, inventory: inventory, failover: failover))
        guard changes.isEmpty else {
            await connection.close()
            Output.stderr("drover: the cluster changed since the plan was made (\(RFC3339.string(saved.created))); refusing to apply. Changes:\n")
            Output.stderr(changes.joined(separator: "\n") + "\n")
            Output.stderr("drover: nothing was changed. Make a new plan: drover plan --inventory \(inventoryPath) --out \(planPath)\n")
            return .refused
        }
        var request = RunRequest(playbook: playbook.name, inventoryPath: inventoryPath, yes: yes, json: json,
                                 stateDirectory: stateDirectory, junit: junit, assumeDone: assumeDone, parameters: saved.parameters)
        request.planApproved = true
        let status = await execute(request, playbook: playbook, inventory: inventory, connection: connection, resuming: nil)
        await connection.close()
        return status
    }

    // MARK: run

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

        public init(playbook: String, inventoryPath: String, yes: Bool, json: Bool, stateDirectory: String?, junit: String?,
                    assumeDone: Bool = false, parameters: [String: String] = [:]) {
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
        guard let inventory = loadInventory(request.inventoryPath), let playbook = loadPlaybook(request.playbook, from: request.playbooks) else {
            return .usage
        }
        if !request.yes && isatty(0) != 1 {
            Output.stderr("drover: refusing to start without --yes: standard input is not a terminal. Review the steps with `drover plan \(playbook.name) --inventory \(request.inventoryPath)`, then re-run with --yes.\n")
            return .usage
        }
        do {
            _ = try PlaybookLibrary.validate(request.parameters, for: playbook, inventory: inventory)
        } catch {
            Output.stderr("drover: \(error.localizedDescription)\n")
            return .usage
        }
        if let refusal = interactionRefusal(playbook, yes: request.yes, assumeDone: request.assumeDone, retry: nil) {
            Output.stderr(refusal)
            return .usage
        }
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        // Every session is closed before returning: the process must not exit while a session thread
        // is still inside libssh2.
        let status = await execute(request, playbook: playbook, inventory: inventory, connection: connection, resuming: nil)
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
            Output.stderr("drover: refusing to resume without --yes: standard input is not a terminal.\n")
            return .usage
        }
        // Which cluster a journal belongs to is told by its nodes' GUIDs: read them before choosing.
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        let history = state.history(cluster: inventory.cluster, observation: await Discovery.observe(connection, full: false))
        let status = await resume(request, inventory: inventory, history: history, connection: connection)
        await connection.close()
        return status
    }

    /// The part of `resume` that runs with the connection open; the caller closes it.
    private static func resume(_ request: RunRequest, inventory: Inventory, history: ClusterHistory,
                               connection: ClusterConnection) async -> ExitStatus {
        guard let journal = history.journals.first, journal.isUnfinished else {
            Output.stdout(nothingToResume(inventory.cluster))
            return .success
        }
        let done = journal.steps.filter { $0.status == .succeeded || $0.status == .skipped }.map { "\($0.step) on \($0.node)" }
        var found = "Found run \(journal.runID) (\(journal.playbook), started \(RFC3339.string(journal.started)), \(journal.status.rawValue))."
        found += "\n  done: \(done.isEmpty ? "nothing" : done.joined(separator: ", "))"
        if let inFlight = journal.inFlight {
            found += "\n  in flight when it stopped: \(inFlight.step) on \(inFlight.node)"
            found += "\n  first: re-run \(inFlight.step) on \(inFlight.node) from its start (installing the same package and chef-backend-ctl upgrade are safe to repeat), then continue"
        } else {
            found += "\n  first: re-read the cluster, then continue with the remaining steps"
        }
        if let failover = journal.failover { found += "\n  cluster failover was last set \(failover) by this run (step \(journal.failoverStep ?? "?"))" }
        Output.stderr(found + "\n")
        guard journal.targetVersion == inventory.package?.version, Set(journal.steps.map(\.node)).isSubset(of: Set(inventory.backends.map(\.name))) else {
            Output.stderr("drover: cannot resume: the inventory's package or backends differ from those of run \(journal.runID); start a new run instead.\n")
            return .refused
        }
        if journal.inventoryDigest != inventory.digest {
            Output.stderr("drover: note: \(request.inventoryPath) changed since the run started (timeouts or SSH settings may differ).\n")
        }
        guard let playbook = (try? Playbook.load(path: journal.playbookFile)) ?? loadPlaybook(journal.playbook, from: request.playbooks) else {
            return .usage
        }
        var resumed = request
        resumed.parameters = journal.parameters ?? [:]
        return await execute(resumed, playbook: playbook, inventory: inventory, connection: connection, resuming: journal)
    }

    static func nothingToResume(_ cluster: String) -> String {
        "Nothing to resume for cluster \(cluster): its last run finished (see `drover runs`).\n"
    }

    static func execute(_ request: RunRequest, playbook: Playbook, inventory: Inventory, connection: ClusterConnection,
                        resuming: Journal?) async -> ExitStatus {
        let redactor = Redactor.standard
        let console: any Reporter = request.json ? JSONLinesReporter() : HumanReporter()
        let reporter = RecordingReporter(console: console, recorder: nil, redactor: redactor)
        // Uploading changes no cluster state, so it happens before pre-flight and the lock.
        if connection.failures.isEmpty, !(await PackageUpload.run(connection, json: request.json)) {
            Output.stderr("drover: the package could not be placed on every backend; nothing else was changed.\n")
            return .refused
        }
        // run validated these before connecting; a resumed run's come from its journal and may no longer fit.
        let bindings: Bindings
        do {
            bindings = Bindings(try PlaybookLibrary.validate(request.parameters, for: playbook, inventory: inventory), playbook: playbook)
        } catch {
            Output.stderr("drover: \(error.localizedDescription)\n")
            return .usage
        }
        let observation = await Discovery.observe(connection, full: true)
        let plan = Plan.make(playbook: playbook, inventory: inventory, observation: observation, bindings: bindings)
        // Another run's lock is the first reason to refuse: its changes explain whatever pre-flight would find.
        if let holder = plan.lockOwners.first(where: { $0.runID != resuming?.runID }) {
            Output.stderr("drover: the cluster \(inventory.cluster) is locked by \(holder.description) on \(holder.node); nothing was changed.\n")
            Output.stderr("drover: if that run is no longer running, remove its lock: drover unlock --inventory \(request.inventoryPath) --run-id \(holder.runID)\n")
            return .locked
        }
        let checks = resuming.map { Preflight.resume(journal: $0, observation: observation, inventory: inventory) } ?? plan.preflight
        let needsAllNodes = playbook.preflight != "none"
        if !checks.allSatisfy(\.ok) || (needsAllNodes && !connection.failures.isEmpty) {
            if !request.json && resuming == nil { Output.stdout(redactor.redact(plan.text)) }
            for check in checks where !check.ok {
                Output.stderr(redactor.redact("drover: pre-flight failed: \(check.check)\(check.node.map { " on \($0)" } ?? ""): \(check.detail)\(check.fix.map { "; fix: \($0)" } ?? "")\n"))
            }
            reporter.emit(Event("run_finished", ["outcome": "refused", "exit_code": 2,
                                                 "preflight": .array(checks.filter { !$0.ok }.map { .string("\($0.check) \($0.node ?? ""): \($0.detail)") })]))
            Output.stderr("drover: nothing was changed.\n")
            return .refused
        }
        if resuming == nil && plan.nothingToDo {
            if request.json {
                reporter.emit(Event("run_finished", ["outcome": "succeeded", "exit_code": 0, "summary": "nothing to do"]))
            } else {
                Output.stdout("Nothing to do: every node already runs \(inventory.package?.version ?? "the target version").\n")
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
            Output.stderr("drover: the cluster \(inventory.cluster) is locked by \(held.owner.description) on \(held.owner.node); nothing was changed.\n")
            Output.stderr("drover: if that run is no longer running, remove its lock: drover unlock --inventory \(request.inventoryPath) --run-id \(held.owner.runID)\n")
            return .locked
        } catch {
            Output.stderr("drover: cannot take the cluster's lock: \(error.localizedDescription)\n")
            await ClusterLock.release(connection, runID: runID)
            return .refused
        }
        let state = StateDirectory(request.stateDirectory)
        var journal = resuming ?? Journal(
            runID: runID, playbook: playbook.name, playbookFile: playbook.file, cluster: inventory.cluster,
            inventoryFile: (request.inventoryPath as NSString).standardizingPath, inventoryDigest: inventory.digest,
            targetVersion: inventory.package?.version, user: UserAccount.name, workstation: ProcessInfo.processInfo.hostName,
            started: Date(), status: .running)
        journal.parameters = request.parameters
        if journal.nodeGUIDs?.isEmpty ?? true { journal.nodeGUIDs = observation.guids }
        journal.status = .running
        journal.finished = nil
        if journal.path.isEmpty { journal.path = state.runDirectory(cluster: inventory.cluster, runID: runID) + "/journal.json" }
        let recorder: RunRecorder
        do {
            recorder = try await RunRecorder(journal: journal, redactor: redactor)
        } catch {
            Output.stderr("drover: \(error.localizedDescription)\n")
            await ClusterLock.release(connection, runID: runID)
            return .usage
        }
        let recording = RecordingReporter(console: console, recorder: recorder, redactor: redactor)
        let interrupts = InterruptMonitor()
        let runner = Runner(playbook: playbook, inventory: inventory, connection: connection, reporter: recording, runID: runID,
                            recorder: recorder, resuming: resuming, interaction: Interaction(yes: request.yes, assumeDone: request.assumeDone),
                            bindings: bindings, stopRequested: { interrupts.stopRequested })
        let task = Task { await runner.execute(initial: observation) }
        interrupts.start(onFirst: {
            recording.emit(Event("note", ["message": "interrupt received: stopping after the step in flight and its verification"]))
        }, onAbort: { task.cancel() })
        let outcome = await task.value
        interrupts.stop()
        await ClusterLock.release(connection, runID: runID)
        if let junit = request.junit {
            let report = JUnitReport.xml(recorder.current, playbook: playbook)
            do {
                try await BlockingWork.run { try report.write(toFile: junit, atomically: true, encoding: .utf8) }
            } catch {
                Output.stderr("drover: cannot write the JUnit report \(junit): \(error.localizedDescription)\n")
            }
        }
        await recorder.flush()
        return outcome.exitStatus
    }

    /// A run id: UTC time and a random suffix, sortable.
    public static func newRunID() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date()) + "-" + String(UUID().uuidString.prefix(6)).lowercased()
    }

    // MARK: status

    /// `drover status`: each node's role, version and the four services' distributed status.
    public static func status(inventoryPath: String, json: Bool, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        let observation = await Discovery.observe(connection, full: false)
        let locks = await ClusterLock.owners(connection)
        await connection.close()
        let services = ["leaderl", "postgresql", "etcd", "elasticsearch"]
        if json {
            let nodes: [JSONValue] = observation.nodes.map { node in
                .object([
                    "name": .string(node.name), "host": .string(node.host), "reachable": .bool(node.unreachable == nil),
                    "error": .optional(node.unreachable), "role": .optional(observation.role(of: node.name)),
                    "version": .optional(node.installedVersion), "unsynced_sentinel": node.unsyncedSentinel.map { .bool($0) } ?? .null,
                    "services": .object(Dictionary(uniqueKeysWithValues: services.map { ($0, JSONValue.optional(node.status?[$0]?.distributed)) })),
                    "local": .object(Dictionary(uniqueKeysWithValues: services.map { ($0, JSONValue.optional(node.status?[$0]?.localStatus)) })),
                    "read_errors": .array(node.readErrors.map { .string($0) }),
                ])
            }
            let healthy = Predicates.healthy(observation, allowYellow: false).allSatisfy(\.holds)
            Output.stdout(JSONValue.object([
                "cluster": .string(inventory.cluster), "leader": .optional(observation.leader), "healthy": .bool(healthy),
                "cluster_failover": "unknown", "nodes": .array(nodes),
                "locks": .array(locks.map { .object(["node": .string($0.node), "run_id": .string($0.runID), "user": .string($0.user),
                                                     "workstation": .string($0.workstation)]) }),
            ]).serialized + "\n")
        } else {
            var lines = ["Cluster \(inventory.cluster): leader \(observation.leader ?? "none")"]
            for node in observation.nodes {
                guard node.unreachable == nil else {
                    lines.append("\(node.name) (\(node.host)): UNREACHABLE: \(node.unreachable!)")
                    continue
                }
                lines.append("\(node.name) (\(node.host)): \(observation.role(of: node.name) ?? "not listed"), version \(node.installedVersion ?? "unknown")\(node.unsyncedSentinel == true ? ", UNSYNCED sentinel present" : "")")
                for service in services {
                    let row = node.status?[service]
                    lines.append("    \(service.padding(toLength: 14, withPad: " ", startingAt: 0)) \((row?.localStatus ?? "?").padding(toLength: 20, withPad: " ", startingAt: 0)) \(row?.distributed ?? "?")")
                }
                for problem in node.readErrors { lines.append("    ! \(problem)") }
            }
            let failing = Predicates.healthy(observation, allowYellow: false).filter { !$0.holds }
            lines.append(failing.isEmpty ? "Healthy." : "Not healthy: " + failing.map(\.detail).joined(separator: "; "))
            lines.append("Cluster failover: unknown (chef-backend-ctl documents no output that shows it)")
            for owner in locks { lines.append("Lock: \(owner.node) is locked by \(owner.description)") }
            Output.stdout(lines.joined(separator: "\n") + "\n")
        }
        return connection.failures.isEmpty ? .success : .refused
    }

    // MARK: exec

    /// `drover exec`: one command on the chosen nodes in parallel, output prefixed by node.
    public static func exec(inventoryPath: String, nodes: [String], command: String, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        let unknown = nodes.filter { inventory.backend(named: $0) == nil }
        guard unknown.isEmpty else {
            Output.stderr("drover: unknown node \(unknown.joined(separator: ", ")) (inventory \(inventoryPath) has \(inventory.backends.map(\.name).joined(separator: ", ")))\n")
            return .usage
        }
        let chosen = nodes.isEmpty ? inventory.backends.map(\.name) : nodes
        let connection = await ClusterConnection.connect(inventory, only: chosen, logger: logger)
        guard reportUnreachable(connection) else {
            await connection.close()
            return .refused
        }
        let lock = NSLock()
        let width = chosen.map(\.count).max() ?? 0
        let statuses = await withTaskGroup(of: (String, Int32).self) { group in
            for node in chosen {
                group.addTask {
                    let prefix = node.padding(toLength: width, withPad: " ", startingAt: 0)
                    do {
                        let result = try await connection.run(node, command) { line in
                            lock.withLock {
                                if line.stream == .stdout { Output.stdout("\(prefix)| \(line.text)\n") } else { Output.stderr("\(prefix)| \(line.text)\n") }
                            }
                        }
                        if !result.succeeded {
                            lock.withLock { Output.stderr("\(prefix)| exit \(result.exitSignal.map { "signal \($0)" } ?? "status \(result.exitStatus)")\n") }
                        }
                        return (node, result.succeeded ? 0 : max(1, result.exitStatus))
                    } catch {
                        lock.withLock { Output.stderr("\(prefix)| \(error.localizedDescription)\n") }
                        return (node, 255)
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        await connection.close()
        return statuses.values.allSatisfy { $0 == 0 } ? .success : .failedAfterChanges
    }

    // MARK: unlock, runs, show

    /// `drover unlock`: removes a stale lock left by `runID` (after confirmation).
    public static func unlock(inventoryPath: String, runID: String, yes: Bool, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        defer { _ = connection }
        let owners = await ClusterLock.owners(connection)
        let matching = owners.filter { $0.runID == runID }
        guard !matching.isEmpty else {
            let others = owners.map { "\($0.node): \($0.description)" }.joined(separator: "; ")
            Output.stderr("drover: no lock of run \(runID) on \(inventory.cluster)\(others.isEmpty ? " (the cluster is not locked)" : "; locks found: \(others)")\n")
            await connection.close()
            return others.isEmpty ? .success : .usage
        }
        Output.stdout("Lock of \(matching[0].description) on \(matching.map(\.node).joined(separator: ", ")).\n")
        if !yes {
            guard isatty(0) == 1 else {
                Output.stderr("drover: refusing to remove a lock without --yes: standard input is not a terminal.\n")
                await connection.close()
                return .usage
            }
            guard await Terminal.ask("Remove it only if that run is no longer running anywhere. Type the run id to confirm: ") == runID else {
                Output.stdout("Not removed.\n")
                await connection.close()
                return .success
            }
        }
        await ClusterLock.release(connection, runID: runID)
        let left = await ClusterLock.owners(connection).filter { $0.runID == runID }
        await connection.close()
        Output.stdout(left.isEmpty ? "Lock removed.\n" : "Could not remove the lock on \(left.map(\.node).joined(separator: ", ")).\n")
        return left.isEmpty ? .success : .failedAfterChanges
    }

    /// `drover runs`: past runs, newest first.
    public static func runs(stateDirectory: String?, cluster: String?) -> ExitStatus {
        let state = StateDirectory(stateDirectory)
        let journals = cluster.map { state.journals(cluster: $0) } ?? state.allJournals()
        guard !journals.isEmpty else {
            Output.stdout("No runs recorded in \(state.root).\n")
            return .success
        }
        for journal in journals {
            let duration = journal.finished.map { String(format: "%.0fs", $0.timeIntervalSince(journal.started)) } ?? "-"
            Output.stdout("\(journal.runID)  \(journal.cluster)  \(journal.playbook)  \(journal.status.rawValue)  \(RFC3339.string(journal.started))  \(duration)\n")
        }
        return .success
    }

    /// `drover show RUN_ID`: a run's summary and where its transcript is.
    public static func show(runID: String, stateDirectory: String?) -> ExitStatus {
        let state = StateDirectory(stateDirectory)
        guard let journal = state.allJournals().first(where: { $0.runID == runID || $0.runID.hasPrefix(runID) }) else {
            Output.stderr("drover: no run \(runID) in \(state.root); `drover runs` lists them\n")
            return .usage
        }
        var lines = ["Run \(journal.runID): \(journal.playbook) on \(journal.cluster), \(journal.status.rawValue)\(journal.exitCode.map { " (exit \($0))" } ?? "")",
                     "Started \(RFC3339.string(journal.started)) by \(journal.user)@\(journal.workstation)\(journal.finished.map { ", finished \(RFC3339.string($0))" } ?? "")",
                     "Target version: \(journal.targetVersion ?? "-")", "Steps:"]
        for step in journal.steps {
            lines.append("  \(step.index). \(step.step) on \(step.node): \(step.status.rawValue)\(step.reason.map { " (\($0))" } ?? "")")
        }
        if let summary = journal.summary { lines.append(summary) }
        lines.append("Journal: \(journal.path)")
        lines.append("Transcript: \(journal.transcriptPath)")
        lines.append("Events: \(journal.eventsPath)")
        Output.stdout(lines.joined(separator: "\n") + "\n")
        return .success
    }

    // MARK: playbooks

    /// `drover playbooks`: every playbook with where it comes from and its description.
    public static func listPlaybooks(_ library: PlaybookLibrary) -> ExitStatus {
        do {
            let playbooks = try library.all()
            let nameWidth = playbooks.map(\.name.count).max() ?? 0
            let sourceWidth = max(8, playbooks.map(\.source.label.count).max() ?? 0)
            for playbook in playbooks {
                let summary = playbook.description.split(separator: "\n").joined(separator: " ")
                Output.stdout(playbook.name.padding(toLength: nameWidth + 2, withPad: " ", startingAt: 0)
                    + playbook.source.label.padding(toLength: sourceWidth + 2, withPad: " ", startingAt: 0) + summary + "\n")
            }
            return .success
        } catch {
            Output.stderr("drover: invalid playbook: \(error.localizedDescription)\n")
            return .usage
        }
    }

    /// Why a playbook cannot run without a terminal, given `--yes` and `--assume-done`; nil when it can.
    static func interactionRefusal(_ playbook: Playbook, yes: Bool, assumeDone: Bool, retry: String?) -> String? {
        guard isatty(0) != 1 else { return nil }
        if playbook.hasManualSteps && !assumeDone {
            return "drover: \(playbook.name) has manual steps that wait for you; run it on a terminal, or pass --assume-done once they are done (--yes does not skip them).\n"
        }
        if playbook.needsConfirmation && !yes, let retry {
            return "drover: \(playbook.name) has destructive steps that need a typed yes; run it on a terminal, or approve them with \(retry) --yes.\n"
        }
        return nil
    }
}
