import DroverInventory
import DroverSSH
import Foundation

@testable import DroverChefBackend
@testable import DroverEngine

/// Nodes whose every command is answered by a test's function, recording each command, reconnect and upload in
/// order: what the lock and the package upload do, tested without sshd.
final class AnsweringTransport: NodeTransport, @unchecked Sendable {
    struct State {
        var log: [String] = []
        var lost: Set<String>
        var unreachable: Set<String>
    }
    struct Refused: Error {}

    let inventory: Inventory
    let places: NodePlaces
    let auxiliaryNames: [String]
    /// A node's answer to a command: exit status and standard output.
    let answer: @Sendable (_ node: String, _ command: String) -> (status: Int32, stdout: String)
    /// Nodes whose uploads fail.
    let failingUploads: Set<String>
    let state: Locked<State>

    init(
        inventory: Inventory, frontends: [String] = [], lost: Set<String> = [], unreachable: Set<String> = [],
        failingUploads: Set<String> = [], places: NodePlaces? = nil,
        answer: @escaping @Sendable (_ node: String, _ command: String) -> (status: Int32, stdout: String) = { _, _ in
            (0, "")
        }
    ) {
        self.inventory = inventory
        self.places = places ?? ChefBackendTopology.places(inventory)
        self.auxiliaryNames = frontends
        self.answer = answer
        self.failingUploads = failingUploads
        self.state = Locked(State(lost: lost, unreachable: unreachable))
    }

    /// Everything done, as `node: command`, `node: reconnect` or `node: upload LOCAL -> REMOTE`.
    var log: [String] { state.withLock { $0.log } }

    var failures: [String: String] {
        state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.lost.union(state.unreachable).map { ($0, "gone (answering)") })
        }
    }
    var lostNodes: [String: ContinuousClock.Instant] {
        state.withLock { state in Dictionary(uniqueKeysWithValues: state.lost.map { ($0, ContinuousClock.now) }) }
    }
    var watchAuxiliaries: Bool {
        get { false }
        set {}
    }

    func run(
        _ node: String, _ command: String, timeout: Duration?, onOutput: (@Sendable (OutputLine) -> Void)?
    ) async throws -> CommandResult {
        try state.withLock { state in
            guard !state.lost.contains(node), !state.unreachable.contains(node) else {
                throw SSHError.closed(host: node, port: 22)
            }
            state.log.append("\(node): \(command)")
        }
        let (status, stdout) = answer(node, command)
        return CommandResult(
            command: command, stdout: Data(stdout.utf8), stderr: Data(), exitStatus: status, exitSignal: nil,
            duration: .zero)
    }

    func runDetached(
        _ node: String, _ commands: [NodeCommand], retryFailed: Bool, timeout: Duration,
        onOutput: @escaping @Sendable (Int, OutputLine) -> Void,
        onConnection: @escaping @Sendable (Int, ConnectionEvent) -> Void,
        onStarted: @escaping @Sendable (Int) -> Void,
        onFinished: @escaping @Sendable (Int, DetachedResult) -> Void
    ) async throws -> [DetachedResult] { throw Refused() }

    func reconnect(_ name: String) async -> Bool {
        state.withLock { state in
            state.log.append("\(name): reconnect")
            guard !state.unreachable.contains(name) else { return false }
            state.lost.remove(name)
            return true
        }
    }

    func reconnectLost() async -> [(node: String, after: Duration)] { [] }

    func upload(
        _ node: String, file local: String, to remote: String, progress: (@Sendable (UploadProgress) -> Void)?
    ) async throws -> String {
        try state.withLock { state in
            guard !state.lost.contains(node), !state.unreachable.contains(node) else {
                throw SSHError.closed(host: node, port: 22)
            }
            state.log.append("\(node): upload \(local) -> \(remote)")
        }
        guard !failingUploads.contains(node) else { throw Refused() }
        return try Digest.sha256Hex(ofFile: local)
    }
}
