import ArgumentParser

struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory",
        abstract: "Look at an inventory as Drover understands it (a Drover inventory, or an Ansible one with --group).",
        subcommands: [InventoryShowCommand.self])
}
