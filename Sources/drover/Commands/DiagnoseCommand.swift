import ArgumentParser
import DroverCommands
import DroverEngine

struct DiagnoseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Name what is wrong with the cluster (or DRBD pair), with the evidence and the command to run.",
        discussion: "Exit 0 when healthy, 1 when something needs action, 2 when it could not read enough to tell.")

    @OptionGroup var options: FleetOptions

    @Flag(help: "Print one JSON object (one line per cluster).")
    var json = false

    @OptionGroup var state: StateOptions

    func run() async throws {
        let fleet = try options.request(json: json, mode: .buffered, command: "diagnose")
        let (json, stateDirectory, logger) = (json, state.stateDir, options.logger)
        throw await Operations.fleet(fleet) { path, _ in
            await Operations.diagnose(inventoryPath: path, json: json, stateDirectory: stateDirectory, logger: logger)
        }.exitCode
    }
}
