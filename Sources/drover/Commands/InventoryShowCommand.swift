import ArgumentParser
import DroverCommands
import DroverEngine

struct InventoryShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract:
            "Print how every backend will be reached (host, port, user, keys, known_hosts) and where each value came from.",
        discussion: "Contacts no node. Exit 64 when the inventory is invalid.")

    @OptionGroup var options: InventoryOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        throw Operations.showInventory(inventoryPath: options.reference, json: json).exitCode
    }
}
