import ArgumentParser
import DroverCommands
import DroverEngine

struct UpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Rolling upgrade of the cluster to the inventory's package (the same as `drover run upgrade`).",
        discussion:
            "Exit 0 when the run succeeded (or had nothing to do, or you declined); 1 when a step failed after changes began (the summary gives the next commands); 2 when refused before any change; 3 when another run holds the lock; 64 on bad input; 130 when interrupted (drover resume continues)."
    )

    @OptionGroup var options: FleetOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        throw try await run.forEachCluster(options, command: "upgrade", playbook: "upgrade") { request, logger in
            await Operations.run(request, logger: logger)
        }.exitCode
    }
}
