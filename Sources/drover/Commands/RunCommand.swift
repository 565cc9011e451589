import ArgumentParser
import DroverEngine

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a playbook against the cluster, verifying every step.")

    @Argument(help: "The playbook's name (see `drover playbooks`) or a path to a .yml file.")
    var playbook: String

    @OptionGroup var options: InventoryOptions
    @OptionGroup var run: RunOptions
    @OptionGroup var parameters: ParameterOptions

    func run() async throws {
        let request = run.request(playbook: playbook, inventory: options.inventory, parameters: parameters.parameters)
        throw await Operations.run(request, logger: options.logger).exitCode
    }
}
