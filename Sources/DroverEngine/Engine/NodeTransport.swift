import DroverInventory
import DroverSSH
import Foundation

/// How the runner and the topologies reach the nodes: commands (plain, or detached so that they outlive the
/// session), reconnects, and which nodes are unreachable. ``ClusterConnection`` is the SSH one; the engine's
/// tests script one in memory.
public protocol NodeTransport: AnyObject, Sendable {
    var inventory: Inventory { get }

    /// Where Drover keeps its lock and records on the nodes (the topology's places).
    var places: NodePlaces { get }

    /// Nodes that could not be reached, or whose session was lost and is not back, with why.
    var failures: [String: String] { get }

    /// The auxiliary nodes (besides the backends; a Chef cluster's frontends) this transport reached or tried to.
    var auxiliaryNames: [String] { get }

    /// True once a run's playbook acts on auxiliary nodes: each reading then reads them too (a frontend's `/_status`).
    var watchAuxiliaries: Bool { get set }

    /// Runs a command on a node and returns its result; throws when the node cannot be reached.
    func run(
        _ node: String, _ command: String, timeout: Duration?, onOutput: (@Sendable (OutputLine) -> Void)?
    ) async throws -> CommandResult

    /// Runs consecutive node commands of a step on `node`, each started once the one before it succeeded, and
    /// follows them to their end through lost connections (see ``ClusterConnection``'s implementation).
    func runDetached(
        _ node: String, _ commands: [NodeCommand], retryFailed: Bool, timeout: Duration,
        onOutput: @escaping @Sendable (Int, OutputLine) -> Void,
        onConnection: @escaping @Sendable (Int, ConnectionEvent) -> Void,
        onStarted: @escaping @Sendable (Int) -> Void,
        onFinished: @escaping @Sendable (Int, DetachedResult) -> Void
    ) async throws -> [DetachedResult]

    /// Tries again to reach a node that could not be reached; true when it is now connected.
    func reconnect(_ name: String) async -> Bool

    /// How many times a session to `node` has been opened: it changes whenever the node is connected again (the
    /// machine may be another one since: rebuilt, its disk replaced).
    func connectionGeneration(_ node: String) -> Int

    /// Reconnects the nodes whose session was lost, each on its own backoff; returns those back, with how long
    /// they were gone.
    func reconnectLost() async -> [(node: String, after: Duration)]

    /// The inventory's backends that are connected now, in inventory order.
    var connectedNames: [String] { get }

    /// The auxiliary nodes that are connected now.
    var connectedAuxiliaries: [String] { get }

    /// The nodes whose session was lost and is not back yet, with since when.
    var lostNodes: [String: ContinuousClock.Instant] { get }

    /// Copies a local file to a node (a temporary name, then renamed into place) and returns its SHA-256.
    func upload(
        _ node: String, file local: String, to remote: String, progress: (@Sendable (UploadProgress) -> Void)?
    ) async throws -> String
}

extension NodeTransport {
    /// One session for the whole run unless the transport says otherwise.
    public func connectionGeneration(_ node: String) -> Int { 0 }

    /// Every backend that is not among the failures.
    public var connectedNames: [String] { inventory.backends.map(\.name).filter { failures[$0] == nil } }

    /// Every auxiliary node reached that is not among the failures.
    public var connectedAuxiliaries: [String] { auxiliaryNames.filter { failures[$0] == nil } }

    /// None, unless the transport keeps sessions that can be lost.
    public var lostNodes: [String: ContinuousClock.Instant] { [:] }

    /// Copies a file with no progress reports.
    public func upload(_ node: String, file local: String, to remote: String) async throws -> String {
        try await upload(node, file: local, to: remote, progress: nil)
    }

    /// Runs a command with the inventory's command timeout (or `timeout`) and no streaming.
    public func run(_ node: String, _ command: String, timeout: Duration? = nil) async throws -> CommandResult {
        try await run(node, command, timeout: timeout, onOutput: nil)
    }
}
