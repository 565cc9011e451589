import ArgumentParser
import DroverCommands
import DroverEngine

struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run one command on the chosen nodes (all by default) in parallel; output is prefixed by node.",
        discussion: "Exit 0 only if every node's command exited 0.")

    @OptionGroup var options: InventoryOptions

    @Option(help: "A node to run on: a backend, or a frontend with host (repeatable; default: every backend).")
    var node: [String] = []

    @Flag(
        help:
            "Run the command detached on each node, so that it outlives the SSH session (a lost connection or a killed drover does not stop it); drover follows it, reconnecting when the connection is lost. Its output and exit status are recorded on the node beside the lock."
    )
    var detach = false

    @Argument(parsing: .captureForPassthrough, help: "The command, after --.")
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else {
            throw ValidationError("give the command after --, e.g. drover exec -i inv.yml -- chef-backend-ctl status")
        }
    }

    func run() async throws {
        let words = command.first == "--" ? Array(command.dropFirst()) : command
        throw await Operations.exec(
            inventoryPath: options.reference, nodes: node, command: words.joined(separator: " "),
            detach: detach, logger: options.logger
        ).exitCode
    }
}
