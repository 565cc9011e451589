import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

@testable import DroverChefBackend
@testable import DroverEngine

/// An in-memory cluster for the runner's tests: nodes with a version, one leader, nodes out of the cluster for a
/// few readings after an upgrade, and a log of every command in the order the runner ran them. No SSH.
///
/// What its commands do: `upgrade` sets the node to the target version and takes it out of the cluster for
/// `rejoinReadings` readings; `failover` (on the leader) makes the first other node the leader and upgrades
/// the old one; `fail` exits 1; any other command succeeds and changes nothing.
final class ScriptedTransport: NodeTransport, @unchecked Sendable {
    struct State {
        var leader: String
        var versions: [String: String]
        /// Readings left before a node is back in the cluster.
        var out: [String: Int] = [:]
        var unreachable: Set<String> = []
        var commands: [(node: String, command: String)] = []
        var readings = 0
    }

    let inventory: Inventory
    let places = NodePlaces(lockDirectory: ScriptedTopology.lockDirectory)
    let state: Locked<State>
    let target: String
    let rejoinReadings: Int
    /// Called before each command runs (a test's hook: stop the run, lose a node).
    let beforeCommand: @Sendable (String, String) -> Void

    init(
        inventory: Inventory, leader: String, versions: [String: String], rejoinReadings: Int = 2,
        beforeCommand: @escaping @Sendable (String, String) -> Void = { _, _ in }
    ) {
        self.inventory = inventory
        self.state = Locked(State(leader: leader, versions: versions))
        self.target = inventory.package?.version ?? "2"
        self.rejoinReadings = rejoinReadings
        self.beforeCommand = beforeCommand
    }

    var failures: [String: String] {
        state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.unreachable.map { ($0, "unreachable (scripted)") })
        }
    }
    var auxiliaryNames: [String] { [] }
    var watchAuxiliaries: Bool {
        get { watching.withLock { $0 } }
        set { watching.withLock { $0 = newValue } }
    }
    private let watching = Locked(false)

    /// The commands run, as `node: command`.
    var log: [String] { state.withLock { $0.commands.map { "\($0.node): \($0.command)" } } }

    /// One reading of every node: each reading brings a node out of the cluster one step closer to back.
    func read() -> ScriptedObservation {
        state.withLock { state in
            state.readings += 1
            let observation = ScriptedObservation(
                leader: state.leader, versions: state.versions, out: Set(state.out.keys),
                unreachable: state.unreachable, nodes: inventory.backends.map(\.name))
            for (node, left) in state.out { state.out[node] = left <= 1 ? nil : left - 1 }
            return observation
        }
    }

    func run(
        _ node: String, _ command: String, timeout: Duration?, onOutput: (@Sendable (OutputLine) -> Void)?
    ) async throws -> CommandResult {
        let status = try execute(node, command)
        return CommandResult(
            command: command, stdout: Data(), stderr: Data(), exitStatus: status, exitSignal: nil, duration: .zero)
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
            let status = try execute(node, command.command)
            let stderr = status == 0 ? "" : "boom\n"
            if !stderr.isEmpty { onOutput(index, OutputLine(stream: .stderr, text: "boom")) }
            let result = DetachedResult(
                result: CommandResult(
                    command: command.command, stdout: Data(), stderr: Data(stderr.utf8), exitStatus: status,
                    exitSignal: nil,
                    duration: .milliseconds(1)),
                gaps: [])
            onFinished(index, result)
            results.append(result)
            if status != 0 { break }
        }
        return results
    }

    func reconnect(_ name: String) async -> Bool { state.withLock { !$0.unreachable.contains(name) } }
    func reconnectLost() async -> [(node: String, after: Duration)] { [] }

    struct NoFiles: Error {}

    /// Scripted nodes take no files.
    func upload(
        _ node: String, file local: String, to remote: String, progress: (@Sendable (UploadProgress) -> Void)?
    ) async throws -> String { throw NoFiles() }

    private func execute(_ node: String, _ command: String) throws -> Int32 {
        beforeCommand(node, command)
        return try state.withLock { state in
            guard !state.unreachable.contains(node) else {
                throw SSHError.closed(host: node, port: 22)
            }
            state.commands.append((node, command))
            switch command {
            case "upgrade":
                state.versions[node] = target
                state.out[node] = rejoinReadings
            case "failover":
                guard node == state.leader else { return 1 }
                state.leader = state.versions.keys.sorted().first { $0 != node } ?? node
                state.versions[node] = target
                state.out[node] = rejoinReadings
            case "fail":
                return 1
            default:
                break
            }
            return 0
        }
    }
}

/// What the scripted topology reads.
struct ScriptedObservation: TopologyObservation {
    var leader: String
    var versions: [String: String]
    var out: Set<String>
    var unreachable: Set<String>
    var nodes: [String]

    var identities: [String: String] { Dictionary(uniqueKeysWithValues: nodes.map { ($0, "guid-\($0)") }) }
    var lockOwnerTexts: [(node: String, text: String)] { [] }
    var lockReadNodes: [String] { [] }
    var answering: [String] { nodes.filter { !unreachable.contains($0) } }
}

/// A topology that reads a ``ScriptedTransport``; it speaks the chef-backend vocabulary (`leader`,
/// `each-follower`, `rejoined`) so that playbooks parse as they do for a cluster.
struct ScriptedTopology: Topology {
    let inventory: Inventory

    init(inventory: Inventory) { self.inventory = inventory }

    static let kind = Inventory.Topology.chefBackend
    static let vocabulary = ChefBackendTopology.vocabulary
    static let lockDirectory = "/scripted/drover.lock"
    static let preflightSets: [String: [String]] = [:]
    static let hasFailoverSwitch = true
    static func failoverSetting(of command: String) -> String? {
        ["off", "on"].first { command == "set-failover \($0)" }
    }

    func observe(_ connection: any NodeTransport, full: Bool, checksum: Bool) async -> ScriptedObservation {
        (connection as! ScriptedTransport).read()
    }

    func timeout(named name: String) -> Duration? {
        ["rejoin": inventory.timeouts.rejoin, "failover": inventory.timeouts.failover][name]
    }

    func preflight(_ set: String, observation: ScriptedObservation) -> [PreflightCheck] { [] }
    func resumeChecks(journal: Journal, playbook: Playbook, observation: ScriptedObservation) -> [PreflightCheck] {
        []
    }

    func nodes(for target: Playbook.Target, observation: ScriptedObservation) throws -> [String] {
        switch target {
        case .role("leader"): return [observation.leader]
        case .role("each-follower"): return observation.nodes.filter { $0 != observation.leader }
        case .all: return observation.nodes
        case .any: return [observation.nodes[0]]
        case .node(let name): return [name]
        case .role(let role): throw TargetError(reason: "no \(role) in a scripted cluster")
        }
    }

    func plannedNodes(for target: Playbook.Target, observation: ScriptedObservation?) -> [String?] {
        guard let observation, let nodes = try? nodes(for: target, observation: observation) else { return [nil] }
        return nodes
    }

    func retarget(_ target: Playbook.Target, node: String, observation: ScriptedObservation) -> String? {
        target == .role("leader") && observation.leader != node ? observation.leader : nil
    }

    func holds(
        _ requirement: String, subject: String?, node: String, observation: ScriptedObservation
    ) -> (holds: Bool, detail: String) { (true, "") }

    func criteria(_ predicate: String, node: String, observation: ScriptedObservation) -> [Criterion] {
        [Criterion(predicate, !observation.out.contains(node), "\(node) is out of the cluster")]
    }

    func skipReason(_ step: Playbook.Step, node: String, observation: ScriptedObservation) -> String? {
        guard step.skipIf == "at-target-version", let target = inventory.package?.version,
            observation.versions[node] == target
        else { return nil }
        return "already at \(target)"
    }

    func liveValues(_ observation: ScriptedObservation?) -> [String: String] {
        ["leader": observation?.leader ?? "<leader>", "leader.host": observation?.leader ?? ""]
    }

    var unrepeatableCommands: [String] { ["destroy"] }
    func nothingToDo(_ playbook: Playbook, observation: ScriptedObservation) -> String? { nil }
    func fingerprint(_ observation: ScriptedObservation, failover: String?) -> [String: String] { [:] }

    func diagnose(_ observation: ScriptedObservation, lastRun: Journal?, inventoryPath: String) -> Diagnosis {
        Diagnosis(readable: true, situations: [], healthyText: "scripted")
    }

    // How it is shown.
    func explain(_ predicate: String, node: String?) -> String { predicate }
    func summaryRows(_ observation: ScriptedObservation) -> [String] {
        observation.nodes.map {
            "\($0) \($0 == observation.leader ? "leader" : "follower") \(observation.versions[$0] ?? "?")"
        }
    }
    func logAdvice(node: String) -> String { "Read \(node)'s scripted log" }
    func discovered(_ observation: ScriptedObservation) -> (lines: [String], json: JSONValue) { ([], .null) }
    func status(
        _ observation: ScriptedObservation, locks: [LockOwner]
    ) -> (text: String, json: JSONValue, exit: ExitStatus) { ("", .null, .success) }
}

/// Collects a run's events.
final class CollectingReporter: Reporter, @unchecked Sendable {
    private let events = Locked<[Event]>([])

    func emit(_ event: Event) { events.withLock { $0.append(event) } }

    var all: [RunEvent] { events.withLock { $0.map(\.kind) } }

    /// `step node outcome` for every finished step, in order.
    var steps: [String] {
        all.compactMap {
            if case .stepFinished(_, let step, let node, let outcome, _, _) = $0 {
                return "\(step) \(node) \(outcome.rawValue)"
            }
            return nil
        }
    }
}
