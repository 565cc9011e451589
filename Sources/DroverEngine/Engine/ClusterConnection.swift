import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

/// SSH connections to every backend of an inventory, one session per node for the whole run.
public final class ClusterConnection: Sendable {
    public let inventory: Inventory
    private let clients: [String: SSHClient]
    /// Backends that could not be reached, with why.
    public let failures: [String: String]

    private init(inventory: Inventory, clients: [String: SSHClient], failures: [String: String]) {
        self.inventory = inventory
        self.clients = clients
        self.failures = failures
    }

    /// Connects to every backend (or the named ones) in parallel, verifying host keys.
    public static func connect(_ inventory: Inventory, only names: [String]? = nil, passphrase: PassphraseSource = .environmentOrTerminal(),
                               logger: Logger) async -> ClusterConnection {
        let backends = inventory.backends.filter { names?.contains($0.name) ?? true }
        let byEndpoint = Dictionary(uniqueKeysWithValues: backends.map { (SSHEndpoint(host: $0.host, port: $0.port), $0) })
        let results = await SSHClient.connectAll(Array(byEndpoint.keys), options: { endpoint in
            inventory.sshOptions(for: byEndpoint[endpoint]!, passphrase: passphrase)
        }, logger: logger)
        var clients: [String: SSHClient] = [:]
        var failures: [String: String] = [:]
        for (endpoint, result) in results {
            let name = byEndpoint[endpoint]!.name
            switch result {
            case let .success(client): clients[name] = client
            case let .failure(error): failures[name] = error.localizedDescription
            }
        }
        return ClusterConnection(inventory: inventory, clients: clients, failures: failures)
    }

    public var connectedNames: [String] { inventory.backends.map(\.name).filter { clients[$0] != nil } }

    /// Runs a command on a node (through `sudo -n` when the inventory asks for it).
    public func run(_ node: String, _ command: String, timeout: Duration? = nil,
                    onOutput: (@Sendable (OutputLine) -> Void)? = nil) async throws -> CommandResult {
        guard let client = clients[node] else {
            throw SSHError.closed(host: inventory.backend(named: node)?.host ?? node, port: inventory.backend(named: node)?.port ?? 22)
        }
        let wrapped = inventory.ssh.sudo ? "sudo -n sh -c \(ShellQuote.quote(command))" : command
        var result = try await client.run(wrapped, timeout: timeout ?? inventory.ssh.commandTimeout, onOutput: onOutput)
        result.command = command
        return result
    }

    /// Uploads a local file to a node (temporary name, `mv -f`, SHA-256 verified).
    public func upload(_ node: String, file local: String, to remote: String,
                       progress: (@Sendable (UploadProgress) -> Void)? = nil) async throws -> String {
        guard let client = clients[node] else {
            throw SSHError.closed(host: inventory.backend(named: node)?.host ?? node, port: inventory.backend(named: node)?.port ?? 22)
        }
        return try await client.upload(file: local, to: remote, progress: progress)
    }

    /// Disconnects from every node at once; returns when every session's thread has stopped.
    public func close() async {
        await withTaskGroup(of: Void.self) { group in
            for client in clients.values { group.addTask { await client.close() } }
        }
    }
}
