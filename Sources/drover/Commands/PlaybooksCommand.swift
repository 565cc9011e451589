import ArgumentParser
import DroverEngine

struct PlaybooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "playbooks", abstract: "List the playbooks with their descriptions.")

    func run() async throws {
        throw Operations.listPlaybooks().exitCode
    }
}
