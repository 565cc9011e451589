import ArgumentParser
import DroverCommands
import DroverEngine

struct UnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Remove a stale cluster lock left by a run that no longer runs (asks for confirmation).",
        discussion:
            "Exit 0 when the lock was removed, was not there, or you declined; 1 when it could not be removed; 64 when other runs' locks are there but not this one's, or without --yes and a terminal."
    )

    @OptionGroup var options: InventoryOptions

    @Option(help: "The run id the lock names (shown when a run is refused with exit 3).")
    var runID: String?

    @Flag(help: "Remove a lock directory that names no run (a drover cut off while it took the lock).")
    var ownerless = false

    @Flag(help: "Remove without asking.")
    var yes = false

    func validate() throws {
        guard (runID == nil) != (!ownerless) else {
            throw ValidationError("give either --run-id RUN_ID or --ownerless (drover diagnose names which)")
        }
        if let runID, runID.isEmpty { throw ValidationError("--run-id needs the run id the lock names") }
    }

    func run() async throws {
        throw await Operations.unlock(
            inventoryPath: options.reference, runID: runID ?? "", yes: yes, logger: options.logger
        )
        .exitCode
    }
}
