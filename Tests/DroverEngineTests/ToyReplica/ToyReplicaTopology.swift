import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// A third topology, for the tests only: a two-node primary and replica, in memory. It proves the seam: this
/// file and one catalog line (``ToyReplica/catalog``) are all it takes for plans, runs, resume, the journal,
/// JSON Lines, JUnit and the HTML report. It imports the engine as any topology module does (no `@testable`).
///
/// Its commands: `update` brings the node to the inventory's version and leaves it out of sync for
/// `resyncReadings` readings; `hand-over` on the primary makes the other node primary, and the old one a replica
/// out of sync as after an update; `fail` exits 1.
enum ToyReplica {
    /// The catalog a drover with this topology would list it in: the one registry line.
    static let catalog = TopologyCatalog([ToyReplicaTopology.self])

    /// A two-node inventory (the inventory's `drbd-pair` form: two backends, no package).
    static let inventoryText = """
        cluster: toy
        topology: drbd-pair
        backends:
          - { name: n1, host: 10.9.0.1 }
          - { name: n2, host: 10.9.0.2 }
        timeouts:
          transition: 60s
          poll_interval: 1s
          stable_polls: 1
        """

    static let playbookText = """
        name: toy-switchover
        description: Updates the replica, hands over to it, then updates the old primary.
        topology: drbd-pair
        steps:
          - name: update-replica
            target: replica
            skip_if: updated
            actions:
              - run: update
              - wait: in-sync
                timeout: transition
          - name: hand-over
            target: primary
            actions:
              - run: hand-over
              - wait: in-sync
                timeout: transition
          - name: update-old-primary
            target: replica
            skip_if: updated
            actions:
              - run: update
              - wait: in-sync
                timeout: transition
        """
}

/// What the toy reads: who is primary, which nodes are updated, which are out of sync.
struct ToyObservation: TopologyObservation {
    var primary: String
    var updated: Set<String>
    var outOfSync: Set<String>
    var nodes: [String]

    var replica: String? { nodes.first { $0 != primary } }
    var identities: [String: String] { Dictionary(uniqueKeysWithValues: nodes.map { ($0, "toy-\($0)") }) }
    var lockOwnerTexts: [(node: String, text: String)] { [] }
    var lockReadNodes: [String] { [] }
    var answering: [String] { nodes }
}

struct ToyReplicaTopology: Topology {
    let inventory: Inventory

    init(inventory: Inventory) { self.inventory = inventory }

    static let kind = Inventory.Topology.drbdPair
    static let vocabulary = PlaybookVocabulary(
        targets: ["primary", "replica"], waits: ["in-sync"], requirements: [], timeouts: ["transition"],
        placeholders: ["primary"], guards: ["updated"])
    static let lockDirectory = "/toy/drover.lock"
    static let builtInPlaybooks = [(name: "toy-switchover.yml", text: ToyReplica.playbookText)]
    static let preflightSets: [String: [String]] = ["basic": ["both-in-sync"]]

    func observe(_ connection: any NodeTransport, full: Bool, checksum: Bool) async -> ToyObservation {
        (connection as! ToyReplicaTransport).read()
    }

    func timeout(named name: String) -> Duration? { name == "transition" ? inventory.timeouts.transition : nil }

    func preflight(_ set: String, observation: ToyObservation) -> [PreflightCheck] {
        [
            PreflightCheck(
                check: "both-in-sync", node: nil, ok: observation.outOfSync.isEmpty,
                detail: observation.outOfSync.isEmpty ? "both nodes in sync" : "a node is out of sync",
                fix: "wait for the resync")
        ]
    }

    func resumeChecks(journal: Journal, playbook: Playbook, observation: ToyObservation) -> [PreflightCheck] {
        preflight("basic", observation: observation)
    }

    func nodes(for target: Playbook.Target, observation: ToyObservation) throws -> [String] {
        switch target {
        case .role("primary"): return [observation.primary]
        case .role("replica"):
            guard let replica = observation.replica else { throw TargetError(reason: "no replica") }
            return [replica]
        case .all: return observation.nodes
        case .any: return [observation.primary]
        case .node(let name): return [name]
        case .role(let role): throw TargetError(reason: "no \(role) in a toy pair")
        }
    }

    func plannedNodes(for target: Playbook.Target, observation: ToyObservation?) -> [String?] {
        guard let observation else { return [nil] }
        return (try? nodes(for: target, observation: observation)) ?? [nil]
    }

    /// A role's node is the one that plays it now: after a hand-over, `replica` is the old primary.
    func retarget(_ target: Playbook.Target, node: String, observation: ToyObservation) -> String? {
        guard case .role = target, let now = try? nodes(for: target, observation: observation).first, now != node
        else { return nil }
        return now
    }

    func holds(
        _ requirement: String, subject: String?, node: String, observation: ToyObservation
    ) -> (holds: Bool, detail: String) { (true, "") }

    func criteria(_ predicate: String, node: String, observation: ToyObservation) -> [Criterion] {
        [Criterion("in-sync", !observation.outOfSync.contains(node), "\(node) resyncing")]
    }

    func skipReason(_ step: Playbook.Step, node: String, observation: ToyObservation) -> String? {
        step.skipIf == "updated" && observation.updated.contains(node) ? "\(node) is already updated" : nil
    }

    func liveValues(_ observation: ToyObservation?) -> [String: String] {
        ["primary": observation?.primary ?? "<primary>"]
    }

    var unrepeatableCommands: [String] { [] }

    func nothingToDo(_ playbook: Playbook, observation: ToyObservation) -> String? {
        observation.updated.count == observation.nodes.count ? "both nodes are updated" : nil
    }

    func fingerprint(_ observation: ToyObservation, failover: String?) -> [String: String] {
        ["primary": observation.primary]
    }

    func diagnose(_ observation: ToyObservation, lastRun: Journal?, inventoryPath: String) -> Diagnosis {
        Diagnosis(readable: true, situations: [], healthyText: "the toy pair is healthy")
    }

    func explain(_ predicate: String, node: String?) -> String { "\(node ?? "the node") back in sync" }

    func summaryRows(_ observation: ToyObservation) -> [String] {
        observation.nodes.map {
            "\($0)  \($0 == observation.primary ? "primary" : "replica")  \(observation.updated.contains($0) ? "updated" : "old")"
        }
    }

    func logAdvice(node: String) -> String { "read the toy log on \(node)" }

    func discovered(_ observation: ToyObservation) -> (lines: [String], json: JSONValue) {
        (["primary: \(observation.primary)"], .object(["primary": .string(observation.primary)]))
    }

    func status(_ observation: ToyObservation, locks: [LockOwner]) -> (text: String, json: JSONValue, exit: ExitStatus)
    {
        (summaryRows(observation).joined(separator: "\n"), .null, .success)
    }
}

/// The toy pair's two nodes in memory, with a log of every command in order.
final class ToyReplicaTransport: NodeTransport, Sendable {
    struct State {
        var primary = "n1"
        var updated: Set<String> = []
        var outOfSync: [String: Int] = [:]
        var log: [String] = []
    }

    let inventory: Inventory
    let places = NodePlaces(lockDirectory: ToyReplicaTopology.lockDirectory)
    let state = Locked(State())
    let resyncReadings: Int
    /// Called before each command (a test's hook: ask the run to stop).
    let beforeCommand: @Sendable (String, String) -> Void

    init(
        inventory: Inventory, resyncReadings: Int = 2,
        beforeCommand: @escaping @Sendable (String, String) -> Void = { _, _ in }
    ) {
        self.inventory = inventory
        self.resyncReadings = resyncReadings
        self.beforeCommand = beforeCommand
    }

    var failures: [String: String] { [:] }
    var auxiliaryNames: [String] { [] }
    var watchAuxiliaries: Bool {
        get { false }
        set {}
    }
    var log: [String] { state.withLock { $0.log } }

    /// One reading: each brings an out-of-sync node one reading closer to in sync.
    func read() -> ToyObservation {
        state.withLock { state in
            let observation = ToyObservation(
                primary: state.primary, updated: state.updated, outOfSync: Set(state.outOfSync.keys),
                nodes: inventory.backends.map(\.name))
            for (node, left) in state.outOfSync { state.outOfSync[node] = left <= 1 ? nil : left - 1 }
            return observation
        }
    }

    func run(
        _ node: String, _ command: String, timeout: Duration?, onOutput: (@Sendable (OutputLine) -> Void)?
    ) async throws -> CommandResult {
        CommandResult(
            command: command, stdout: Data(), stderr: Data(), exitStatus: execute(node, command), exitSignal: nil,
            duration: .zero)
    }

    func runDetached(
        _ node: String, _ commands: [NodeCommand], retryFailed: Bool, timeout: Duration,
        onOutput: @escaping @Sendable (Int, OutputLine) -> Void,
        onConnection: @escaping @Sendable (Int, ConnectionEvent) -> Void,
        onStarted: @escaping @Sendable (Int) -> Void,
        onFinished: @escaping @Sendable (Int, DetachedResult) -> Void
    ) async throws -> [DetachedResult] {
        var results: [DetachedResult] = []
        for (index, command) in commands.enumerated() {
            if index > 0 { onStarted(index) }
            let status = execute(node, command.command)
            onOutput(index, OutputLine(stream: .stdout, text: "\(command.command) on \(node): \(status)"))
            let result = DetachedResult(
                result: CommandResult(
                    command: command.command, stdout: Data("\(command.command) on \(node): \(status)\n".utf8),
                    stderr: Data(), exitStatus: status, exitSignal: nil, duration: .milliseconds(1)),
                gaps: [])
            onFinished(index, result)
            results.append(result)
            if status != 0 { break }
        }
        return results
    }

    func reconnect(_ name: String) async -> Bool { true }
    func reconnectLost() async -> [(node: String, after: Duration)] { [] }

    struct NoFiles: Error {}

    func upload(
        _ node: String, file local: String, to remote: String, progress: (@Sendable (UploadProgress) -> Void)?
    ) async throws -> String { throw NoFiles() }

    private func execute(_ node: String, _ command: String) -> Int32 {
        beforeCommand(node, command)
        return state.withLock { state in
            state.log.append("\(node): \(command)")
            switch command {
            case "update":
                state.updated.insert(node)
                state.outOfSync[node] = resyncReadings
            case "hand-over":
                guard node == state.primary else { return 1 }
                state.primary = inventory.backends.map(\.name).first { $0 != node } ?? node
                state.outOfSync[node] = resyncReadings
            case "fail":
                return 1
            default:
                break
            }
            return 0
        }
    }
}
