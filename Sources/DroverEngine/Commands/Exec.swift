import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

extension Operations {
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
}
