import ArgumentParser
import DroverCommands
import DroverEngine

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a playbook against the cluster, verifying every step.",
        discussion:
            "Exit 0 when the run succeeded (or had nothing to do, or you declined); 1 when a step failed after changes began (the summary gives the next commands); 2 when refused before any change; 3 when another run holds the lock; 64 on bad input; 130 when interrupted (drover resume continues)."
    )

    @Argument(help: "The playbook's name (see `drover playbooks`) or a path to a .yml file.")
    var playbook: String

    @OptionGroup var options: FleetOptions
    @OptionGroup var run: RunOptions
    @OptionGroup var parameters: ParameterOptions

    func run() async throws {
        throw try await run.forEachCluster(
            options, command: "run \(playbook)", playbook: playbook, parameters: parameters.parameters
        ) { request, logger in
            await Operations.run(request, logger: logger)
        }.exitCode
    }
}
