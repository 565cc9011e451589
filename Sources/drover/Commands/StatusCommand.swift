import ArgumentParser
import DroverCommands
import DroverEngine

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Show each node's role, version and the services' distributed status (a DRBD pair: DRBD, keepalived, VIP, ha-status), and each frontend's release and whether it serves.",
        discussion:
            "Exit 0 when every node was read (healthy or not: the table says), 2 when a node (a backend, or a frontend with host) could not be reached or read."
    )

    @OptionGroup var options: FleetOptions

    @Flag(help: "Print one JSON object (one line per cluster).")
    var json = false

    func run() async throws {
        let fleet = try options.request(json: json, mode: .buffered, command: "status")
        let (json, logger) = (json, options.logger)
        throw await Operations.fleet(fleet) { path, _ in
            await Operations.status(inventoryPath: path, json: json, logger: logger)
        }.exitCode
    }
}
