import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import Foundation
import Logging

extension Operations {
    /// `drover diagnose`: names the situation, its evidence and the command to run.
    public static func diagnose(
        inventoryPath: String, json: Bool, stateDirectory: String?, logger: Logger
    ) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        // The frontends with host are read too: whether each serves, its services, its release.
        let connection = await ClusterConnection.connect(inventory, frontends: true, logger: logger)
        connection.watchFrontends = !inventory.sshFrontends.isEmpty
        let diagnosis = await withTopology(inventory) { topology in
            await diagnose(
                topology, connection: connection, stateDirectory: stateDirectory, inventoryPath: inventoryPath)
        }
        Output.stdout(
            json ? DiagnosisReport.json(diagnosis, cluster: inventory.cluster) : DiagnosisReport.text(diagnosis))
        return diagnosis.exitStatus
    }

    private static func diagnose<T: Topology>(
        _ topology: T, connection: ClusterConnection, stateDirectory: String?,
        inventoryPath: String
    ) async -> Diagnosis {
        let observation = await topology.observe(connection, full: false, checksum: false)
        await connection.close()
        let history = Operations.history(
            StateDirectory(stateDirectory),
            cluster: topology.inventory.cluster, identities: observation.identities)
        var diagnosis = topology.diagnose(observation, lastRun: history.journals.first, inventoryPath: inventoryPath)
        // What it prints to run next reads the same records: `--state-dir` goes with it.
        let options = NextCommandOptions(stateDirectory: stateDirectory)
        for index in diagnosis.situations.indices {
            diagnosis.situations[index].command = diagnosis.situations[index].command.map(options.carried)
            diagnosis.situations[index].firstCommand = diagnosis.situations[index].firstCommand.map(options.carried)
            diagnosis.situations[index].adviceCommands = diagnosis.situations[index].adviceCommands.map(options.carried)
        }
        return diagnosis
    }
}
