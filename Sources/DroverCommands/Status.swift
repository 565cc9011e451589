import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation
import Logging

extension Operations {
    /// `drover status`: the topology's reading of every node (read-only), as text or one JSON object.
    public static func status(inventoryPath: String, json: Bool, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        // The frontends reached over SSH (those with host) are read too: release, /_status, services.
        let connection = await ClusterConnection.connect(inventory, auxiliaries: true, logger: logger)
        connection.watchAuxiliaries = !connection.auxiliaryNames.isEmpty
        let (report, locked) = await withTopology(inventory) { topology in
            await status(topology, connection: connection)
        }
        await connection.close()
        Output.stdout(json ? report.json.serialized + "\n" : report.text)
        // Unhealthy, or locked (a run under way, or one killed that left its lock): diagnose says which, and what
        // continues or clears it.
        var unhealthy = false
        if case .object(let fields) = report.json { unhealthy = fields["healthy"] == .bool(false) }
        if !json, locked || unhealthy {
            Output.stdout(
                "Why, and what to do:\n    drover diagnose --inventory \(ShellQuote.quote(inventoryPath))\n")
        }
        return report.exit
    }

    private static func status<T: Topology>(
        _ topology: T, connection: ClusterConnection
    ) async -> (report: (text: String, json: JSONValue, exit: ExitStatus), locked: Bool) {
        let observation = await topology.observe(connection, full: false, checksum: false)
        let locks = await ClusterLock.owners(connection)
        return (topology.status(observation, locks: locks), !locks.isEmpty)
    }
}
