import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation
import Logging

extension Operations {
    /// `drover unlock`: removes a stale lock left by `runID` (after confirmation).
    public static func unlock(inventoryPath: String, runID: String, yes: Bool, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        defer { _ = connection }
        if runID.isEmpty {
            // --ownerless: lock directories that name no run (no confirmation: no run can be holding them).
            let cleared = await ClusterLock.clearOwnerless(connection)
            await connection.close()
            Output.stdout(
                cleared.isEmpty
                    ? "No lock without an owner on \(inventory.cluster).\n"
                    : "Removed the lock without an owner on \(cleared.joined(separator: ", ")).\n")
            return .success
        }
        let owners = await ClusterLock.owners(connection)
        let matching = owners.filter { $0.runID == runID }
        guard !matching.isEmpty else {
            let others = owners.map { "\($0.node): \($0.description)" }.joined(separator: "; ")
            Output.diagnostic(
                "no lock of run \(runID) on \(inventory.cluster)\(others.isEmpty ? " (the cluster is not locked)" : "; locks found: \(others)")"
            )
            await connection.close()
            return others.isEmpty ? .success : .usage
        }
        Output.stdout("Lock of \(matching[0].description) on \(matching.map(\.node).joined(separator: ", ")).\n")
        if !yes {
            guard isatty(0) == 1 else {
                Output.diagnostic("refusing to remove a lock without --yes: standard input is not a terminal.")
                await connection.close()
                return .usage
            }
            guard
                await Terminal.ask(
                    "Remove it only if that run is no longer running anywhere. Type the run id to confirm: ") == runID
            else {
                Output.stdout("Not removed.\n")
                await connection.close()
                return .success
            }
        }
        await ClusterLock.release(connection, runID: runID)
        let left = await ClusterLock.owners(connection).filter { $0.runID == runID }
        await connection.close()
        Output.stdout(
            left.isEmpty
                ? "Lock removed.\n" : "Could not remove the lock on \(left.map(\.node).joined(separator: ", ")).\n")
        return left.isEmpty ? .success : .failedAfterChanges
    }
}
