import DroverCluster
import DroverInventory
import DroverReporting
import Foundation

/// A kind of high-availability backend the engine operates: how it is read, what pre-flight checks,
/// targets, conditions and waits its playbooks may name, how a wait is evaluated and how a situation is
/// diagnosed. The engine (runner, plans, journals, locks) knows nothing else about it.
///
/// Implementations live in modules of their own (`DroverChefBackend`: the three-node cluster and its frontends;
/// `DroverDRBDPair`: the legacy DRBD/keepalived pair) and are listed in a ``TopologyCatalog``.
///
/// What a topology is sits here; how it is shown to people is ``TopologyPresentation``, which it refines.
public protocol Topology: TopologyPresentation {
    /// The inventory's `topology:` value this type implements.
    static var kind: Inventory.Topology { get }

    init(inventory: Inventory)

    /// What this topology's playbooks may name.
    static var vocabulary: PlaybookVocabulary { get }

    /// The lock directory on each node: beside the product's own state.
    static var lockDirectory: String { get }

    /// Where Drover keeps its lock and each run's records on the inventory's nodes (by default the records
    /// beside the lock on every node).
    static func places(_ inventory: Inventory) -> NodePlaces

    /// Nodes besides the inventory's backends that runs reach over SSH and that hold no lock, in order.
    static func auxiliaryNodes(_ inventory: Inventory) -> [Inventory.Backend]

    /// The cluster-wide failover switch a command sets (`on`/`off`), when the topology has one and the
    /// command sets it; the runner records it in the journal and the report draws a lane for it.
    static func failoverSetting(of command: String) -> String?

    /// True when the topology has a cluster failover switch a run's summary always reports.
    static var hasFailoverSwitch: Bool { get }

    /// Commands (prefixes) that take their node out of the cluster, and the waits that see it back: the
    /// report's out-of-cluster spans.
    static var outOfClusterCommands: [String] { get }
    static var backInClusterWaits: [String] { get }

    /// Reads every node through documented read-only commands; changes nothing. `full` adds what
    /// pre-flight needs (locks, free space, packages), `checksum` the package's SHA-256.
    func observe(_ connection: any NodeTransport, full: Bool, checksum: Bool) async -> Observation

    /// The checks of a pre-flight set (`Playbook.preflight`).
    func preflight(_ set: String, observation: Observation) -> [PreflightCheck]

    /// The pre-conditions of resuming `journal`, a run of `playbook`.
    func resumeChecks(journal: Journal, playbook: Playbook, observation: Observation) -> [PreflightCheck]

    /// The nodes a step targets, from the live state; throws a reason when it cannot tell.
    func nodes(for target: Playbook.Target, observation: Observation) throws -> [String]

    /// The nodes a plan shows for a target (nil: none could be chosen); `nil` observation: an offline plan
    /// (placeholders such as `<leader>`).
    func plannedNodes(for target: Playbook.Target, observation: Observation?) -> [String?]

    /// The node to use instead when the target's node moved since the step was chosen (a new leader).
    func retarget(_ target: Playbook.Target, node: String, observation: Observation) -> String?

    /// Whether a step's condition holds on the live state, and what was seen.
    func holds(
        _ requirement: String, subject: String?, node: String, observation: Observation
    ) -> (holds: Bool, detail: String)

    /// A cheaper reading than ``observe(_:full:checksum:)`` that is enough to evaluate `predicate` on `node`
    /// (the node's own status, say), or nil when the predicate needs every node. A wait polls with it until
    /// the predicate holds, then confirms on full readings.
    func observe(_ connection: any NodeTransport, forWait predicate: String, node: String) async -> Observation?

    /// The criteria of a wait predicate on one reading; the wait ends when all hold.
    func criteria(_ predicate: String, node: String, observation: Observation) -> [Criterion]

    /// Why a step need not run on a node (it is already done), or nil.
    func skipReason(_ step: Playbook.Step, node: String, observation: Observation) -> String?

    /// When whether a step runs on a node is decided only during the run (by what the run's earlier steps
    /// leave behind), the condition in words, for plans; nil when the plan can tell.
    func runCondition(_ step: Playbook.Step, node: String, observation: Observation) -> String?

    /// Placeholder values taken from the live state (`leader`, ...).
    func liveValues(_ observation: Observation?) -> [String: String]

    /// Commands after which a reading of the cluster is still as good as a new one (they read, or change
    /// only what no reading shows); a command is one of them when it is one or starts with one and a space.
    var readingNeutralCommands: [String] { get }

    /// Commands a stopped run must not repeat by itself (text a destructive command contains).
    var unrepeatableCommands: [String] { get }

    /// True when a saved plan's step list would do nothing (every node already done).
    func nothingToDo(_ playbook: Playbook, observation: Observation) -> String?

    /// What a saved plan records of the live state; apply refuses when it differs.
    func fingerprint(_ observation: Observation, failover: String?) -> [String: String]

    /// `drover diagnose`: the situations found, or none when healthy.
    func diagnose(_ observation: Observation, lastRun: Journal?, inventoryPath: String) -> Diagnosis

    /// The upgrade path `playbook` is run on, when it is an upgrade; nil otherwise.
    func upgradePath(for playbook: Playbook, observation: Observation) -> Path?

    /// The command that installs `what` (`install: package`, ...) on `node`, verifying that the package is the
    /// one with `digest` (what the run read before it started) where the inventory gives none; or what the
    /// inventory lacks for it.
    func installCommand(_ what: String, node: String, digest: String?) -> Result<String, InstallUnavailable>

    /// The SHA-256 of the package `what` on `node` in `observation` (read with `checksum`), for its install to
    /// verify; nil when not read.
    func packageDigest(_ what: String, node: String, observation: Observation) -> String?

    /// Where and how a backup is taken before a run's first change; throws a reason when it cannot be now,
    /// nil when the topology has no backup Drover takes.
    func backupCommand(observation: Observation) throws -> BackupCommand?

    /// Pre-flight sets a playbook may name.
    static var preflightSets: [String: [String]] { get }

    /// The inventory's value of a timeout its vocabulary names (`rejoin`); nil for a name it does not have.
    func timeout(named name: String) -> Duration?

    /// The playbooks compiled into drover for this topology: file name and text (`Playbooks/TOPOLOGY/`).
    static var builtInPlaybooks: [(name: String, text: String)] { get }

    /// What a run of `playbook` upgrades to, in words (from the inventory); nil when it says of none.
    func targetVersion(of playbook: Playbook) -> String?

    /// Runs the check a playbook's `check:` action names (one of the vocabulary's `checks`), after the
    /// commands of its step: `answered` is called with each subject's answer as it comes. A failed one stops the
    /// run: the check asks no further subject after it.
    func runCheck(_ name: String, answered: (CheckOutcome) -> Void) async

    /// The check in words, for plans.
    func explainCheck(_ name: String) -> String

    /// True when a run of `playbook` acts on nodes whose state each reading must then add (the transport's
    /// ``NodeTransport/watchAuxiliaries``).
    func watchesOtherNodes(_ playbook: Playbook) -> Bool
}

/// What one subject of a check (``Topology/runCheck(_:answered:)``) answered.
public struct CheckOutcome: Sendable, Equatable {
    /// What was checked, in words (`frontend fe1`).
    public var subject: String
    public var ok: Bool
    /// What it answered.
    public var detail: String
    /// When it failed: what failed, and what to check.
    public var failure: String
    public var advice: String

    public init(subject: String, ok: Bool, detail: String, failure: String, advice: String) {
        self.subject = subject
        self.ok = ok
        self.detail = detail
        self.failure = failure
        self.advice = advice
    }
}

/// Why an `install:` cannot be done: what the inventory lacks, and how to add it.
public struct InstallUnavailable: Error, Sendable {
    public var reason: String
    public var fix: String

    public init(reason: String, fix: String) {
        self.reason = reason
        self.fix = fix
    }
}

/// Why a step's target could not be chosen from the live state (no leader, no single Primary).
public struct TargetError: LocalizedError {
    public var reason: String
    public var errorDescription: String? { reason }

    public init(reason: String) { self.reason = reason }
}

/// What the engine reads from any topology's observation.
public protocol TopologyObservation: Sendable {
    /// Each node's identity, recorded in journals so runs are attributed to the right cluster
    /// (chef-backend GUIDs; a pair's hosts).
    var identities: [String: String] { get }
    /// Drover lock owner files found on the nodes, by node.
    var lockOwnerTexts: [(node: String, text: String)] { get }
    /// The nodes whose lock this reading read (a node among them with no owner text holds no lock).
    var lockReadNodes: [String] { get }
    /// The nodes that were read.
    var answering: [String] { get }
}

/// The names a topology's playbooks may use; checked when a playbook is read.
public struct PlaybookVocabulary: Sendable {
    /// Role targets besides `any`, `all` and `node:NAME` (`leader`, `each-follower`; `primary`, `secondary`).
    public var targets: [String]
    /// The role targets that stand for several nodes (`each-follower`).
    public var multiNodeTargets: [String] = []
    public var waits: [String]
    /// Step conditions; those ending in `:` take an argument (`down:NODE`).
    public var requirements: [String]
    /// Inventory timeouts a wait may name.
    public var timeouts: [String]
    /// Placeholders besides `node`, `node.host` and the playbook's parameters.
    public var placeholders: [String]
    /// What `install:` may name; empty when the topology installs nothing.
    public var installs: [String]
    /// What `skip_if:` may name: guards that skip a step already done.
    public var guards: [String]
    /// What `check:` may name: checks run after a step's commands.
    public var checks: [String]
    /// Targets resolved once, from the cluster as the run found it, and kept (in the journal, for resume)
    /// while the roles they name go away: each maps to the live role target it is read from
    /// (`leader-at-start` → `leader`).
    public var pinnedTargets: [String: String] = [:]

    public init(
        targets: [String], multiNodeTargets: [String] = [], waits: [String], requirements: [String],
        timeouts: [String], placeholders: [String], installs: [String] = [], guards: [String] = [],
        checks: [String] = [], pinnedTargets: [String: String] = [:]
    ) {
        self.targets = targets
        self.multiNodeTargets = multiNodeTargets
        self.waits = waits
        self.requirements = requirements
        self.timeouts = timeouts
        self.placeholders = placeholders
        self.installs = installs
        self.guards = guards
        self.checks = checks
        self.pinnedTargets = pinnedTargets
    }
}

extension Topology {
    /// No focused readings unless the topology has them: every poll reads every node.
    public func observe(_ connection: any NodeTransport, forWait predicate: String, node: String) async -> Observation?
    { nil }

    /// No upgrade paths unless the topology has them.
    public func upgradePath(for playbook: Playbook, observation: Observation) -> Path? { nil }

    public func packageDigest(_ what: String, node: String, observation: Observation) -> String? { nil }

    public func installCommand(
        _ what: String, node: String, digest: String?
    ) -> Result<String, InstallUnavailable> {
        .failure(InstallUnavailable(reason: "a \(Self.kind.rawValue) installs nothing", fix: "remove install: \(what)"))
    }

    /// Every command may change what a reading shows unless the topology says otherwise.
    public var readingNeutralCommands: [String] { [] }

    /// No backups unless the topology has them.
    public func backupCommand(observation: Observation) throws -> BackupCommand? { nil }

    /// Plans can tell every step unless the topology says otherwise.
    public func runCondition(_ step: Playbook.Step, node: String, observation: Observation) -> String? { nil }

    public static func places(_ inventory: Inventory) -> NodePlaces { NodePlaces(lockDirectory: lockDirectory) }

    /// None unless the topology has them.
    public static var builtInPlaybooks: [(name: String, text: String)] { [] }

    /// None unless the topology has them.
    public static func auxiliaryNodes(_ inventory: Inventory) -> [Inventory.Backend] { [] }

    /// No target version unless the topology says.
    public func targetVersion(of playbook: Playbook) -> String? { nil }

    /// No checks unless the topology has them.
    public func runCheck(_ name: String, answered: (CheckOutcome) -> Void) async {}
    public func explainCheck(_ name: String) -> String { name }
    public func watchesOtherNodes(_ playbook: Playbook) -> Bool { false }

    /// No failover switch unless the topology has one.
    public static func failoverSetting(of command: String) -> String? { nil }
    public static var hasFailoverSwitch: Bool { false }

    /// No out-of-cluster spans unless the topology names what takes a node out.
    public static var outOfClusterCommands: [String] { [] }
    public static var backInClusterWaits: [String] { [] }
}

/// A backup command, the node it runs on and the directory its tarball is written to.
public struct BackupCommand: Sendable, Equatable {
    public var node: String
    public var command: String
    public var directory: String

    public init(node: String, command: String, directory: String) {
        self.node = node
        self.command = command
        self.directory = directory
    }
}
