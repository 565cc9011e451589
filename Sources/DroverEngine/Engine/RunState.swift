import DroverCluster
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

/// Where runs are recorded: `--state-dir`, else `$XDG_STATE_HOME/drover`, else `$HOME/.local/state/drover`.
public struct StateDirectory: Sendable {
    public let root: String

    public init(_ explicit: String?) {
        let environment = ProcessInfo.processInfo.environment
        if let explicit {
            root = UserAccount.expandingTilde(explicit)
        } else if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            // The XDG specification ignores a relative XDG_STATE_HOME.
            root = xdg + "/drover"
        } else {
            root = UserAccount.home + "/.local/state/drover"
        }
    }

    public func clusterDirectory(_ cluster: String) -> String { root + "/" + cluster }
    public func runDirectory(cluster: String, runID: String) -> String { clusterDirectory(cluster) + "/" + runID }

    /// Every journal of a cluster, newest first.
    public func journals(cluster: String) -> [Journal] {
        let directory = clusterDirectory(cluster)
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return runs.sorted(by: >).compactMap { Journal.load(path: directory + "/" + $0 + "/journal.json") }
    }

    /// The cluster's journals, split into those recorded against the live cluster's nodes and the rest
    /// (`note` says which were ignored, for the caller to show).
    public func history(cluster: String, identities: [String: String]) -> ClusterHistory {
        ClusterHistory(journals(cluster: cluster), liveGUIDs: identities)
    }

    /// Every journal of every cluster, newest first.
    public func allJournals() -> [Journal] {
        let clusters = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return clusters.flatMap { journals(cluster: $0) }.sorted { $0.runID > $1.runID }
    }
}

/// A run's durable record: written (temporary file, fsync, rename) after every step, so that a run
/// killed at any point can be resumed.
public struct Journal: Codable, Sendable {
    /// A backup tarball as read back from the node that wrote it.
    public struct Backup: Codable, Sendable, Equatable {
        public var node: String
        public var path: String
        public var bytes: Int
        public var taken: Date
    }

    public enum Status: String, Codable, Sendable { case running, succeeded, failed, interrupted, refused }

    public struct Step: Codable, Sendable, Equatable {
        public enum Status: String, Codable, Sendable { case started, succeeded, skipped, failed, interrupted }
        public var index: Int
        public var step: String
        public var node: String
        public var status: Status
        public var started: Date
        public var finished: Date?
        public var reason: String?
    }

    public var runID: String
    public var playbook: String
    public var playbookFile: String
    public var cluster: String
    public var inventoryFile: String
    public var inventoryDigest: String
    public var targetVersion: String?
    public var user: String
    public var workstation: String
    public var started: Date
    public var finished: Date?
    public var status: Status
    public var exitCode: Int32?
    /// What Drover last set the cluster failover flag to (`on`/`off`), and in which step.
    public var failover: String?
    public var failoverStep: String?
    public var steps: [Step] = []
    public var summary: String?
    /// The run this one resumed, if any.
    public var resumedFrom: String?
    /// The playbook's `--set` values, as given.
    public var parameters: [String: String]? = nil
    /// Each node's GUID (cluster-status) when the run started: which cluster the run was made against,
    /// since two inventories may give different clusters the same `cluster:` name.
    public var nodeGUIDs: [String: String]? = nil
    /// The backup taken before the run's first change, if one was.
    public var backup: Backup? = nil
    /// The nodes of the playbook's pinned targets (`leader-at-start`), as the run first found them.
    public var pinnedTargets: [String: [String]]? = nil
    /// The SHA-256 of the playbook's text (nil in journals of earlier versions).
    public var playbookDigest: String? = nil
    /// Where the journal lives (not encoded).
    public var path: String = ""

    public init(
        runID: String, playbook: String, playbookFile: String, cluster: String, inventoryFile: String,
        inventoryDigest: String, targetVersion: String?, user: String, workstation: String, started: Date,
        status: Status
    ) {
        self.runID = runID
        self.playbook = playbook
        self.playbookFile = playbookFile
        self.cluster = cluster
        self.inventoryFile = inventoryFile
        self.inventoryDigest = inventoryDigest
        self.targetVersion = targetVersion
        self.user = user
        self.workstation = workstation
        self.started = started
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id"
        case playbook
        case playbookFile = "playbook_file"
        case cluster
        case inventoryFile = "inventory_file"
        case inventoryDigest = "inventory_digest"
        case targetVersion = "target_version"
        case user, workstation, started, finished
        case status
        case exitCode = "exit_code"
        case failover
        case failoverStep = "failover_step"
        case steps, summary
        case resumedFrom = "resumed_from"
        case parameters
        case backup
        case pinnedTargets = "pinned_targets"
        case playbookDigest = "playbook_digest"
        case nodeGUIDs = "node_guids"
    }

    public var directory: String { (path as NSString).deletingLastPathComponent }
    public var transcriptPath: String { directory + "/transcript.jsonl" }
    /// The plan the run started from (`drover plan --format json`'s object, redacted).
    public var planPath: String { directory + "/plan.json" }
    public var eventsPath: String { directory + "/events.jsonl" }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    public static func load(path: String) -> Journal? {
        guard let data = FileManager.default.contents(atPath: path),
            var journal = try? decoder.decode(Journal.self, from: data)
        else { return nil }
        journal.path = path
        return journal
    }

    /// Writes the journal durably: temporary file, fsync, rename, fsync of the directory.
    public func save() throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try DurableFile.write(try Self.encoder.encode(self), to: path)
    }

    /// True while the run can be resumed: it is running, or stopped before it finished.
    public var isUnfinished: Bool { [.running, .interrupted, .failed].contains(status) }

    /// The step this run was changing when it stopped: in flight, or the last one, failed. Its node is
    /// this run's unfinished business, not an undisturbed node that went bad.
    public var unfinished: Step? {
        guard let last = steps.last, [.started, .interrupted, .failed].contains(last.status) else { return nil }
        return last
    }

    public func isDone(step: String, node: String) -> Bool {
        steps.contains { $0.step == step && $0.node == node && ($0.status == .succeeded || $0.status == .skipped) }
    }
}

/// The runs recorded under one cluster name, told apart by the nodes they were made against.
public struct ClusterHistory: Sendable {
    /// Journals that recorded a GUID of the live cluster, newest first: this cluster's runs.
    public var journals: [Journal]
    /// Journals of the same name recorded against other nodes, or without GUIDs: not this cluster's.
    public var ignored: [Journal]

    /// Splits `all` by whether a journal's recorded GUIDs include one of `liveGUIDs`. GUIDs are random per
    /// node, so one shared GUID means the same cluster, even after another node was replaced. With no
    /// live GUID readable, no journal can be attributed, and none is used.
    public init(_ all: [Journal], liveGUIDs: [String: String]) {
        let live = Set(liveGUIDs.values)
        journals = all.filter { !live.isDisjoint(with: ($0.nodeGUIDs ?? [:]).values) }
        ignored = all.filter { live.isDisjoint(with: ($0.nodeGUIDs ?? [:]).values) }
    }

    /// What to tell the user about the ignored journals; nil when there are none.
    public var note: String? {
        guard !ignored.isEmpty else { return nil }
        let listed = ignored.prefix(3).map(\.runID).joined(separator: ", ") + (ignored.count > 3 ? ", ..." : "")
        return "drover: note: ignoring \(ignored.count) recorded run\(ignored.count == 1 ? "" : "s") of cluster name "
            + "'\(ignored[0].cluster)' (\(listed)): made against other nodes (their GUIDs are not this cluster's) "
            + "or before Drover recorded GUIDs\n"
    }
}

/// Crash-safe file writes.
public enum DurableFile {
    public static func write(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RunStateError.unwritable(path, String(cString: strerror(errno))) }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            throw RunStateError.unwritable(path, String(cString: strerror(errno)))
        }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    /// Appends one line with a single O_APPEND write. Not fsync'd: a killed run loses nothing written
    /// (the kernel has it), and transcripts are written per command, on the run's path; the journal is
    /// what must survive a machine crash, and it is written with ``write(_:to:)``.
    public static func append(_ line: String, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        var bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

public enum RunStateError: LocalizedError {
    case unwritable(String, String)

    public var errorDescription: String? {
        switch self {
        case .unwritable(let path, let reason): return "cannot write \(path): \(reason); choose another --state-dir"
        }
    }
}

/// Records a run: its journal after every step, every command with its output (redacted) in the
/// transcript, and every event in events.jsonl.
///
/// Every write happens in order on one serial dispatch queue, never on Swift's cooperative pool (a
/// journal save fsyncs). Journal updates are awaited, so each is durable before the run goes on;
/// transcript and event lines are queued, and ``flush()`` waits for them. The queues are the process's
/// few: a fleet's clusters take turns on them, so their records take at most that many threads, not one
/// per cluster, and one cluster's fsync does not hold up every other's.
public final class RunRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var journal: Journal
    private static let writers = (0..<4).map { DispatchQueue(label: "drover.run-recorder.\($0)") }
    private static let nextWriter = Mutex(0)
    private let writer: DispatchQueue = RunRecorder.nextWriter.withLock { next in
        defer { next = (next + 1) % RunRecorder.writers.count }
        return RunRecorder.writers[next]
    }
    public let redactor: Redactor

    /// Starts recording: the journal is written before this returns.
    public init(journal: Journal, redactor: Redactor) async throws {
        self.journal = journal
        self.redactor = redactor
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer.async { continuation.resume(with: Result { try journal.save() }) }
        }
    }

    public var current: Journal { lock.withLock { journal } }

    /// Changes the journal and returns once the change is on disk.
    func update(_ body: (inout Journal) -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.withLock {
                body(&journal)
                let snapshot = journal
                writer.async {
                    try? snapshot.save()
                    continuation.resume()
                }
            }
        }
    }

    /// Returns once every queued transcript and event line is written.
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            writer.async { continuation.resume() }
        }
    }

    func stepStarted(index: Int, step: String, node: String) async {
        await update {
            $0.steps.append(Journal.Step(index: index, step: step, node: node, status: .started, started: Date()))
        }
    }

    func stepFinished(step: String, node: String, status: Journal.Step.Status, reason: String?) async {
        await update { journal in
            guard let position = journal.steps.lastIndex(where: { $0.step == step && $0.node == node }) else { return }
            journal.steps[position].status = status
            journal.steps[position].finished = Date()
            journal.steps[position].reason = reason.map(redactor.redact)
        }
    }

    /// Keeps the plan the run starts from beside its journal (once: a resumed run keeps the first).
    public func savePlan(_ text: String) async {
        let path = current.planPath
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            writer.async {
                if !FileManager.default.fileExists(atPath: path) { try? DurableFile.write(Data(text.utf8), to: path) }
                continuation.resume()
            }
        }
    }

    func pinned(_ targets: [String: [String]]) async {
        await update { $0.pinnedTargets = targets }
    }

    func backupTaken(_ backup: Journal.Backup) async {
        await update { $0.backup = backup }
    }

    func failoverSet(_ state: String, step: String) async {
        await update {
            $0.failover = state
            $0.failoverStep = step
        }
    }

    func finished(status: Journal.Status, exitCode: Int32, summary: String) async {
        await update {
            $0.status = status
            $0.exitCode = exitCode
            $0.finished = Date()
            $0.summary = redactor.redact(summary)
        }
    }

    /// One command of the transcript: node, command, start and end, exit status, stdout and stderr.
    func command(
        node: String, command: String, started: Date, finished: Date, exitStatus: Int32?, signal: String?,
        stdout: String, stderr: String, error: String?, gaps: [String] = []
    ) {
        var fields: [String: JSONValue] = [
            "node": .string(node), "command": .string(redactor.redact(command)),
            "started": .string(RFC3339.string(started)), "finished": .string(RFC3339.string(finished)),
            "exit_status": exitStatus.map { .int(Int($0)) } ?? .null, "exit_signal": .optional(signal),
            "stdout": .string(redactor.redact(stdout)), "stderr": .string(redactor.redact(stderr)),
            "error": .optional(error.map(redactor.redact)),
        ]
        // Where the connection was lost and the command re-attached (its output is whole: nothing repeated).
        if !gaps.isEmpty { fields["connection_gaps"] = .array(gaps.map { .string($0) }) }
        let record = JSONValue.object(fields)
        let path = current.transcriptPath
        writer.async { DurableFile.append(record.serialized, to: path) }
    }

    func event(_ event: Event) {
        guard JSONLinesReporter.documented.contains(event.name) else { return }
        let line = redactor.redact(event.jsonLine)
        let path = current.eventsPath
        writer.async { DurableFile.append(line, to: path) }
    }
}

/// Sends events to the console (redacted) and to the run's records.
public final class RecordingReporter: Reporter {
    let console: any Reporter
    let recorder: RunRecorder?
    let redactor: Redactor

    public init(console: any Reporter, recorder: RunRecorder?, redactor: Redactor) {
        self.console = console
        self.recorder = recorder
        self.redactor = redactor
    }

    public func emit(_ event: Event) {
        var clean = event
        clean.fields = event.fields.mapValues { value in
            if case .string(let text) = value { return .string(redactor.redact(text)) }
            return value
        }
        console.emit(clean)
        recorder?.event(clean)
    }
}
