import ArgumentParser
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
        let fleet = try options.request(json: run.json, mode: .live, command: "run \(playbook)", yes: run.yes)
        let request = run.request(playbook: playbook, inventory: "", parameters: parameters.parameters)
        let logger = options.logger
        throw await Operations.fleet(fleet) { path, cluster in
            await Operations.run(request.forCluster(path, cluster, of: fleet), logger: logger)
        }.exitCode
    }
}
