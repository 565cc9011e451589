import ArgumentParser
import DroverCommands
import DroverEngine

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a playbook against the cluster, verifying every step.")

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
