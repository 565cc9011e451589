import ArgumentParser
import DroverEngine

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each node's role, version and the services' distributed status (a DRBD pair: DRBD, keepalived, VIP, ha-status).")

    @OptionGroup var options: InventoryOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        throw await Operations.status(inventoryPath: options.inventory, json: json, logger: options.logger).exitCode
    }
}
