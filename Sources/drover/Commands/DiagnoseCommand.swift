import ArgumentParser
import DroverEngine

struct DiagnoseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Name what is wrong with the cluster (or DRBD pair), with the evidence and the command to run.",
        discussion: "Exit 0 when healthy, 1 when something needs action, 2 when it could not read enough to tell.")

    @OptionGroup var options: InventoryOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    @OptionGroup var state: StateOptions

    func run() async throws {
        throw await Operations.diagnose(inventoryPath: options.inventory, json: json, stateDirectory: state.stateDir, logger: options.logger).exitCode
    }
}
