import ArgumentParser
import DroverEngine

struct UpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Rolling upgrade of the cluster to the inventory's package (the same as `drover run upgrade`).")

    @OptionGroup var options: FleetOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        let fleet = try options.request(json: run.json, mode: .live, command: "upgrade", yes: run.yes)
        let request = run.request(playbook: "upgrade", inventory: "")
        let logger = options.logger
        throw await Operations.fleet(fleet) { path, cluster in
            await Operations.run(request.forCluster(path, cluster, of: fleet), logger: logger)
        }.exitCode
    }
}
