import ArgumentParser
import DroverCommands
import DroverEngine

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runs", abstract: "List past runs, newest first.")

    @OptionGroup var state: StateOptions

    @Option(help: "Only this cluster's runs.")
    var cluster: String?

    func run() async throws {
        throw Operations.runs(stateDirectory: state.stateDir, cluster: cluster).exitCode
    }
}
