import ArgumentParser
import DroverEngine

struct UpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Rolling upgrade of the cluster to the inventory's package (the same as `drover run upgrade`).")

    @OptionGroup var options: InventoryOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        let request = run.request(playbook: "upgrade", inventory: options.inventory)
        throw await Operations.run(request, logger: options.logger).exitCode
    }
}
