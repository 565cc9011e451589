import ArgumentParser
import DroverEngine

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a run's summary and where its transcript is.")

    @Argument(help: "The run id (or a unique prefix of it).")
    var runID: String

    @OptionGroup var state: StateOptions

    func run() async throws {
        throw Operations.show(runID: runID, stateDirectory: state.stateDir).exitCode
    }
}
