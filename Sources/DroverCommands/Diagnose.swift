import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverTopologies
import Foundation
import Logging

extension Operations {
    /// `drover diagnose`: names the situation, its evidence and the command to run.
    public static func diagnose(
        inventoryPath: String, json: Bool, stateDirectory: String?, logger: Logger
    ) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        // The frontends with host are read too: whether each serves, its services, its release.
        let connection = await ClusterConnection.connect(inventory, auxiliaries: true, logger: logger)
        connection.watchAuxiliaries = !connection.auxiliaryNames.isEmpty
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
        // A full reading: the locks held on the nodes too.
        let observation = await topology.observe(connection, full: true, checksum: false)
        let history = Operations.history(
            StateDirectory(stateDirectory),
            cluster: topology.inventory.cluster, identities: observation.identities)
        let lastRun = history.journals.first
        // The commands of the last run's unfinished step that still run on their node, read from their records.
        var running: [LiveWork.Command] = []
        if let lastRun, lastRun.isUnfinished {
            running = await LiveWork.runningCommands(lastRun, connection: connection)
        }
        // The locks held, a lock without an owner among them, each with what clears it.
        let locks = await ClusterLock.owners(connection)
        await connection.close()
        var advice: [String: LockAdvice] = [:]
        for lock in locks where advice[lock.runID] == nil {
            advice[lock.runID] = await LockAdvice(
                lock, cluster: topology.inventory.cluster, inventoryPath: inventoryPath, stateDirectory: stateDirectory)
        }
        var diagnosis = topology.diagnose(observation, lastRun: lastRun, inventoryPath: inventoryPath)
        // What it prints to run next reads the same records: `--state-dir` goes with it.
        let options = NextCommandOptions(stateDirectory: stateDirectory)
        var runAlive: Bool?
        if let lastRun, lastRun.status == .running { runAlive = await LiveWork.processAliveOffPool(lastRun) }
        let live = LiveWorkSituations.situations(
            lastRun: lastRun, runAlive: runAlive, running: running,
            locks: locks, lockAdvice: advice, inventoryPath: inventoryPath)
        // While a command of the run still runs, the cluster is in motion: what it shows is not a verdict (a node
        // mid-upgrade is not an interrupted upgrade). Otherwise live work is said first, then the situations.
        diagnosis.situations = running.isEmpty ? live + diagnosis.situations : live
        for index in diagnosis.situations.indices {
            diagnosis.situations[index].command = diagnosis.situations[index].command.map(options.carried)
            diagnosis.situations[index].firstCommand = diagnosis.situations[index].firstCommand.map(options.carried)
            diagnosis.situations[index].adviceCommands = diagnosis.situations[index].adviceCommands.map(options.carried)
        }
        return diagnosis
    }
}
