import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation
import Logging

extension Operations {
    /// `drover exec`: one command on the chosen nodes in parallel, output prefixed by node. Attached (it ends
    /// with its session) unless `detach`: then it runs as a node command that outlives the session, recorded
    /// beside the lock under `exec-...`, and a lost connection is reconnected and the command re-attached.
    public static func exec(
        inventoryPath: String, nodes: [String], command: String, detach: Bool = false,
        logger: Logger
    ) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        // The backends, and the frontends with host (reached over SSH as the frontend upgrade reaches them).
        let known = inventory.backends.map(\.name) + inventory.sshFrontends.map(\.name)
        let unknown = nodes.filter { !known.contains($0) }
        guard unknown.isEmpty else {
            let frontendsWithoutHost = inventory.frontends.filter { $0.ssh == nil }.map(\.name).filter(unknown.contains)
            Output.diagnostic(
                "unknown node \(unknown.joined(separator: ", ")) (inventory \(inventoryPath) has \(known.joined(separator: ", ")))"
                    + (frontendsWithoutHost.isEmpty
                        ? "" : "; a frontend is reached over SSH only with host: add host to its frontends: entry")
            )
            return .usage
        }
        let chosen = nodes.isEmpty ? inventory.backends.map(\.name) : nodes
        let connection = await ClusterConnection.connect(
            inventory, only: chosen, auxiliaries: chosen.contains { inventory.backend(named: $0) == nil },
            logger: logger)
        guard reportUnreachable(connection) else {
            await connection.close()
            return .refused
        }
        let lock = NSLock()
        // Its output is redacted as a run's is: what nodes print may hold secrets.
        let redactor = Redactor.standard
        let streams = Redactor.StreamState()
        let width = chosen.map(\.count).max() ?? 0
        let runID = "exec-" + newRunID()
        let statuses = await withTaskGroup(of: (String, Int32).self) { group in
            for node in chosen {
                group.addTask {
                    let prefix = node.padding(toLength: width, withPad: " ", startingAt: 0)
                    @Sendable func show(_ line: OutputLine) {
                        let text = streams.redact(
                            TerminalText.readable(line.text), stream: "\(node) \(line.stream)", with: redactor)
                        lock.withLock {
                            if line.stream == .stdout {
                                Output.stdout("\(prefix)| \(text)\n")
                            } else {
                                Output.stderr("\(prefix)| \(text)\n")
                            }
                        }
                    }
                    do {
                        let result: CommandResult
                        if detach {
                            let nodeCommand = NodeCommand(
                                directory: connection.places.recordsDirectory(node: node, runID: runID),
                                name: NodeCommand.recordName(step: "exec", node: node, action: 1),
                                command: command)
                            result = try await connection.runDetached(
                                node, nodeCommand, retryFailed: false, timeout: inventory.ssh.commandTimeout,
                                onOutput: show,
                                onConnection: { event in
                                    switch event {
                                    case .lost(let reason):
                                        lock.withLock {
                                            Output.stderr(
                                                "\(prefix)| connection lost (\(reason)); reconnecting, the command runs on\n"
                                            )
                                        }
                                    case .reattached(let after, _):
                                        lock.withLock {
                                            Output.stderr(
                                                "\(prefix)| reconnected after \(Int(after.secondsValue.rounded())) s\n")
                                        }
                                    case .found: break
                                    }
                                }
                            ).result
                        } else {
                            result = try await connection.run(node, command, onOutput: show)
                        }
                        if !result.succeeded {
                            lock.withLock {
                                Output.stderr(
                                    "\(prefix)| exit \(result.exitSignal.map { "signal \($0)" } ?? "status \(result.exitStatus)")\n"
                                )
                            }
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
