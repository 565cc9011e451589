import ArgumentParser
import DroverCommands
import DroverEngine

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print a run's summary and where its transcript is.")

    @Argument(help: "The run id (or a unique prefix of it).")
    var runID: String

    @OptionGroup var state: StateOptions

    @Option(
        help: ArgumentHelp(
            "Write the run's report for people instead: one self-contained HTML file.", valueName: "file"))
    var html: String?

    func run() async throws {
        throw Operations.show(runID: runID, stateDirectory: state.stateDir, html: html).exitCode
    }
}
