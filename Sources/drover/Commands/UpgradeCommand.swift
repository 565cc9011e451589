import ArgumentParser
import DroverCommands
import DroverEngine

struct UpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Rolling upgrade of the cluster to the inventory's package (the same as `drover run upgrade`).")

    @OptionGroup var options: FleetOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        throw try await run.forEachCluster(options, command: "upgrade", playbook: "upgrade") { request, logger in
            await Operations.run(request, logger: logger)
        }.exitCode
    }
}
