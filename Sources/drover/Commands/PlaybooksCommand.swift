import ArgumentParser
import DroverCommands
import DroverEngine
import DroverTopologies

struct PlaybooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "playbooks",
        abstract:
            "List the playbooks: name, where each comes from (built-in or a file), its topology and what it does.",
        discussion:
            "The built-in playbooks are compiled into drover. A directory given with --playbooks or $DROVER_PLAYBOOKS (several separated by ':') adds playbooks or overrides built-in ones by name; --playbooks wins, then $DROVER_PLAYBOOKS in order."
    )

    @OptionGroup var playbooks: PlaybookOptions

    @Option(help: "Only the playbooks of this topology: \(Self.topologies.joined(separator: " or ")).")
    var topology: String?

    /// The topologies Drover knows, from its one list of them.
    static var topologies: [String] { TopologyCatalog.drover.all.map { $0.kind.rawValue } }

    func validate() throws {
        if let topology, !Self.topologies.contains(topology) {
            throw ValidationError(
                "--topology must be \(Self.topologies.joined(separator: " or ")), not \(topology)")
        }
    }

    func run() async throws {
        throw Operations.listPlaybooks(playbooks.library, topology: topology).exitCode
    }
}
