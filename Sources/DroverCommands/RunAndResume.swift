import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
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
        public var playbooks = PlaybookLibrary(topologies: .drover)
        /// The run applies a saved plan: starting it needs no further approval.
        public var planApproved = false
        /// `--backup` (true), `--no-backup` (false), or neither: the inventory's `package.backup`, on for the
        /// downtime paths.
        public var backup: Bool?
        /// `--html FILE`: the run's report for people, written when it ends.
        public var html: String?

        /// The options the commands this run prints carry again.
        public var nextOptions: NextCommandOptions {
            NextCommandOptions(
                stateDirectory: stateDirectory.map(Self.absolute), playbooks: playbooks.directory.map(Self.absolute),
                parameters: parameters)
        }

        /// A directory as given, made absolute: the printed commands (JSON and HTML reports too) are pasted from
        /// anywhere.
        static func absolute(_ path: String) -> String {
            path.hasPrefix("/") || path.hasPrefix("~") ? path : URL(fileURLWithPath: path).standardizedFileURL.path
        }

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
        let connection = await ClusterConnection.connect(inventory, auxiliaries: true, logger: logger)
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
        let recorded = state.journals(cluster: inventory.cluster)
        if recorded.contains(where: \.isUnfinished) && !request.yes && isatty(0) != 1 {
            Output.diagnostic("refusing to resume without --yes: standard input is not a terminal.")
            return .usage
        }
        // Which cluster a journal belongs to is told by its nodes' GUIDs: read them before choosing. With nothing
        // to resume, the reading tells whether the cluster is done all the same.
        let connection = await ClusterConnection.connect(inventory, auxiliaries: true, logger: logger)
        let status = await withTopology(inventory) { topology in
            await resume(request, topology: topology, state: state, recorded: recorded, connection: connection)
        }
        await connection.close()
        return status
    }

    /// Chooses the run to resume from a reading of the cluster and resumes it, or says there is none.
    private static func resume<T: Topology>(
        _ request: RunRequest, topology: T, state: StateDirectory, recorded: [Journal], connection: ClusterConnection
    ) async -> ExitStatus {
        let observation = await topology.observe(connection, full: false, checksum: false)
        let history =
            recorded.isEmpty
            ? ClusterHistory([], liveGUIDs: [:])
            : Operations.history(state, cluster: topology.inventory.cluster, identities: observation.identities)
        if history.journals.isEmpty, !history.liveGUIDsRead, let unfinished = recorded.first(where: \.isUnfinished) {
            // Nothing attributed only because nothing could be read: say so, never "nothing to resume".
            Output.diagnostic(
                "run \(unfinished.runID) (\(unfinished.playbook)) of cluster \(unfinished.cluster) is unfinished, but no node's GUID could be read (cluster-status) to tell that it is this cluster's run; nothing was resumed. When the nodes answer, resume again; what can be read now: \(NextCommandOptions(stateDirectory: request.stateDirectory).carried("drover diagnose --inventory \(ShellQuote.quote(request.inventoryPath))"))"
            )
            return .refused
        }
        guard let journal = history.journals.first, journal.isUnfinished else {
            // A lock held by a run that left no journal here: killed before its first step (so it changed
            // nothing), or run from another state directory or workstation. Never "finished".
            let recordedIDs = Set(recorded.map(\.runID))
            if let lock = await ClusterLock.owners(connection).first(where: { !recordedIDs.contains($0.runID) }) {
                let advice = await LockAdvice(
                    lock, cluster: topology.inventory.cluster, inventoryPath: request.inventoryPath,
                    stateDirectory: request.stateDirectory)
                Output.diagnostic(
                    "nothing to resume here, but the cluster is locked\(lock.isOwnerless ? ":" : " by") \(advice.what). "
                        + "No journal of that run is in \(state.clusterDirectory(topology.inventory.cluster)); nothing was changed."
                )
                Output.stderr(advice.text)
                return .refused
            }
            return nothingToResume(
                request, cluster: topology.inventory.cluster, state: state, history: history,
                diagnosis: topology.diagnose(
                    observation, lastRun: history.journals.first, inventoryPath: request.inventoryPath))
        }
        // The run may still be going on, or another resume of it: two drovers would drive one cluster (resume
        // takes its own run's lock over). The run's directory lock on this workstation settles it at once.
        let holder: Int32?
        do {
            holder = try await RunDirectoryLock.takeOffPool((journal.path as NSString).deletingLastPathComponent)
        } catch {
            Output.diagnostic(error.localizedDescription)
            return .refused
        }
        if let holder {
            Output.diagnostic(
                "run \(journal.runID) is still running: drover, pid \(holder), on this workstation; nothing was changed. Let it finish, or stop it there (Ctrl-C, or kill -TERM \(holder)), then resume."
            )
            return .locked
        }
        if journal.status == .running, await LiveWork.processAliveOffPool(journal) == true {
            Output.diagnostic(
                "run \(journal.runID) is still running: drover, pid \(journal.pid ?? 0), on this workstation; nothing was changed. Let it finish, or stop it there (Ctrl-C, or kill -TERM \(journal.pid ?? 0)), then resume."
            )
            return .locked
        }
        return await resume(request, topology: topology, journal: journal, connection: connection)
    }

    /// The part of `resume` that runs with the connection open; the caller closes it.
    private static func resume<T: Topology>(
        _ request: RunRequest, topology: T, journal: Journal,
        connection: ClusterConnection
    ) async -> ExitStatus {
        let inventory = topology.inventory
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
            let playbook = (try? Playbook.load(path: journal.playbookFile, topologies: .drover))
                ?? loadPlaybook(journal.playbook, from: request.playbooks, for: inventory)
        else {
            return .usage
        }
        var resumed = request
        resumed.parameters = journal.parameters ?? [:]
        return await execute(resumed, playbook: playbook, topology: topology, connection: connection, resuming: journal)
    }

    /// Says where `resume` looked and what it found there (never that a run finished when none is recorded), and
    /// whether the cluster, as read now, is done: it exits 0 only when it is; otherwise 2, with what is wrong and
    /// `diagnose` (a run recorded under another `--state-dir`, or a workstation's records lost, leave work undone
    /// that no record here shows).
    static func nothingToResume(
        _ request: RunRequest, cluster: String, state: StateDirectory, history: ClusterHistory, diagnosis: Diagnosis
    ) -> ExitStatus {
        let options = NextCommandOptions(stateDirectory: request.stateDirectory)
        var found: String
        if let newest = history.journals.first {
            found =
                "its last run in \(state.clusterDirectory(newest.cluster)), \(newest.runID) (\(newest.playbook)), "
                + "\(newest.status == .succeeded ? "succeeded" : "changed nothing (\(newest.status.rawValue))")"
                + (newest.finished.map { " at \(RFC3339.string($0))" } ?? "")
        } else {
            found =
                "no run of it is recorded in \(state.clusterDirectory(cluster))"
                + (history.ignored.isEmpty ? "" : " (only runs of another cluster of that name)")
                + "; a run started with --state-dir is resumed with the same --state-dir"
        }
        let diagnose = options.carried("drover diagnose --inventory \(ShellQuote.quote(request.inventoryPath))")
        guard diagnosis.readable, diagnosis.situations.isEmpty else {
            let what =
                diagnosis.readable
                ? diagnosis.situations.map { "    \($0.summary)" }.joined(separator: "\n")
                : "    the cluster could not be read: \(diagnosis.unreadableText)"
            Output.diagnostic(
                "nothing to resume for cluster \(cluster): \(found).\n  But the cluster is not done:\n\(what)\n  What to do:\n    \(diagnose)"
            )
            return .refused
        }
        Output.stdout(
            "Nothing to resume for cluster \(cluster): \(found). The cluster reads healthy.\n"
                + "  See its runs: \(options.carried("drover runs --cluster \(ShellQuote.quote(cluster))"))\n")
        return .success
    }

    /// A run id: UTC time and a random suffix, sortable.
    public static func newRunID() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date()) + "-" + String(UUID().uuidString.prefix(6)).lowercased()
    }
}
