import DroverTestSupport
import Foundation
import SimulatedChefBackend

/// A simulated cluster on disk (no sshd): run any node's tools directly.
struct SimulatedClusterHarness: Sendable {
    let directory: String
    let store: StateStore

    /// be1 leads, all synced at `version`; the `target` package waits in each node's /var/tmp.
    /// `adjust` changes single delays, e.g. to keep a state long enough to be observed on a loaded machine.
    init(
        version: String = "2.3.15", target: String = "2.3.16", scale: Double = 0.02,
        adjust: (inout Delays) -> Void = { _ in }
    ) throws {
        directory = try temporaryDirectory("sim")
        store = StateStore(path: directory + "/state.json")
        let nodes = try (1...3).map { index in
            try Provisioning.node(
                name: "be\(index)", ip: "10.0.0.\(10 + index)", directory: directory, version: version,
                target: target, format: "deb", index: index)
        }
        var delays = Delays(scale: scale)
        adjust(&delays)
        try store.save(SimulatedCluster(nodes: nodes, leader: "be1", delays: delays))
    }

    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a simulated tool as `node` would, with the node's private paths mapped to its host directory.
    /// The simulator blocks while it waits for the cluster, so it runs off Swift's cooperative pool.
    func run(
        _ node: String, _ tool: String, _ arguments: String..., environment: [String: String] = [:]
    ) async -> Result {
        let mapped = arguments.map { argument in
            argument.hasPrefix("/var/tmp/") ? directory + "/nodes/\(node)" + argument : argument
        }
        return await invoke(node, tool, mapped, environment)
    }

    func ctl(_ node: String, _ arguments: String..., environment: [String: String] = [:]) async -> Result {
        await invoke(node, "chef-backend-ctl", arguments, environment)
    }

    func ctlArray(_ arguments: [String]) async -> Result {
        await invoke("be1", "chef-backend-ctl", arguments, [:])
    }

    private func invoke(
        _ node: String, _ tool: String, _ arguments: [String], _ environment: [String: String]
    ) async -> Result {
        let store = self.store
        return
            (try? await Processes.offPool {
                let out = Buffer()
                let err = Buffer()
                let invocation = Invocation(
                    node: node, store: store, environment: environment, out: { out.append($0) }, err: { err.append($0) }
                )
                let status = invocation.run(tool: tool, arguments: arguments)
                return Result(status: status, stdout: out.text, stderr: err.text)
            }) ?? Result(status: -1, stdout: "", stderr: "could not run")
    }

    var cluster: SimulatedCluster { get throws { try store.update { cluster, _ in cluster } } }

    func sentinel(_ node: String, _ path: String) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/nodes/\(node)" + path)
    }

    /// Waits (bounded) until the cluster satisfies `condition`.
    func eventually(_ condition: (SimulatedCluster) -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if condition(try cluster) { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    final class Buffer: @unchecked Sendable {
        private let lock = NSLock()
        private var storage = ""
        func append(_ text: String) { lock.withLock { storage += text } }
        var text: String { lock.withLock { storage } }
    }
}

/// Splits a chef-backend-ctl table into rows of cells (cells are separated by two or more spaces).
func cells(_ table: String) -> [[String]] {
    table.split(separator: "\n").map { line in
        line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
