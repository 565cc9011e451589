import Foundation

/// A run's durable record: written by the engine (temporary file, fsync, rename) after every step, so that a run
/// killed at any point can be resumed; read by `resume`, `runs`, `show`, diagnosis and the HTML report, which
/// shows it as it is (``RunReportData/journal``).
public struct Journal: Codable, Sendable {
    /// A backup tarball as read back from the node that wrote it.
    public struct Backup: Codable, Sendable, Equatable {
        public var node: String
        public var path: String
        public var bytes: Int
        public var taken: Date

        public init(node: String, path: String, bytes: Int, taken: Date) {
            (self.node, self.path, self.bytes, self.taken) = (node, path, bytes, taken)
        }
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
        /// Whether any command of the step was started on its node: false until the first one is (written before
        /// it starts), so a step stopped at its prompt is known to have changed nothing; nil in journals of
        /// earlier versions, where it is unknown.
        public var commandsStarted: Bool?
        /// The step's place in the playbook (from 0), which tells apart steps of one name (`--backup`'s and a
        /// playbook's own `backup`); -1 for the backup taken before the first step; nil in earlier journals.
        public var position: Int?

        public init(
            index: Int, step: String, node: String, status: Status, started: Date, finished: Date? = nil,
            reason: String? = nil, commandsStarted: Bool? = nil
        ) {
            (self.index, self.step, self.node, self.status) = (index, step, node, status)
            (self.started, self.finished, self.reason) = (started, finished, reason)
            self.commandsStarted = commandsStarted
        }

        enum CodingKeys: String, CodingKey {
            case index, step, node, status, started, finished, reason
            case commandsStarted = "commands_started"
            case position
        }

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
    /// The SHA-256 of each package its installs verify, as read when the run first started (`package@be2`,
    /// `frontend-package@fe1`): a resumed run installs only those, whatever lies at the path since.
    public var packageDigests: [String: String]? = nil
    /// The backup taken before the run's first change, if one was.
    public var backup: Backup? = nil
    /// The nodes of the playbook's pinned targets (`leader-at-start`), as the run first found them.
    public var pinnedTargets: [String: [String]]? = nil
    /// The SHA-256 of the playbook's text (nil in journals of earlier versions).
    public var playbookDigest: String? = nil
    /// The inventory's topology (nil in journals of earlier versions, which were all Chef Backend clusters or
    /// read as such).
    public var topology: String? = nil
    /// The drover process that runs (or last ran) it, on `workstation`: whether a journal saying `running` is
    /// still being written (nil in journals of earlier versions).
    public var pid: Int32? = nil
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
        case packageDigests = "package_digests"
        case topology
        case pid
    }

    public var directory: String { (path as NSString).deletingLastPathComponent }
    public var transcriptPath: String { directory + "/transcript.jsonl" }
    /// The plan the run started from (`drover plan --format json`'s object, redacted).
    public var planPath: String { directory + "/plan.json" }
    public var eventsPath: String { directory + "/events.jsonl" }

    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    public static let decoder: JSONDecoder = {
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

    /// True while the run can be resumed: it is running, or stopped before it finished.
    public var isUnfinished: Bool { [.running, .interrupted, .failed].contains(status) }

    /// True when no attempt of the run started a command of `step` on its node (each stopped at its prompt, or
    /// before its first command): running it again from its start repeats nothing. Unknown (false) in journals
    /// of earlier versions.
    public func changedNothing(_ step: Step) -> Bool {
        steps.filter { $0.step == step.step && $0.node == step.node }.allSatisfy { $0.commandsStarted == false }
    }

    /// The step this run was changing when it stopped: in flight, or the last one, failed. Its node is
    /// this run's unfinished business, not an undisturbed node that went bad.
    public var unfinished: Step? {
        guard let last = steps.last, [.started, .interrupted, .failed].contains(last.status) else { return nil }
        return last
    }

    /// True when `step`, listed right after `previous`, starts a resumed attempt: a resumed run numbers on
    /// from the steps done before it, so its first step repeats a number.
    public static func startsResumedAttempt(_ step: Step, after previous: Step?) -> Bool {
        previous.map { step.index <= $0.index } ?? false
    }
}
