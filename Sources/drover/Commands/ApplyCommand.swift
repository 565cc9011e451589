import ArgumentParser
import DroverCommands
import DroverEngine

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Run a plan saved with `drover plan --out FILE`, exactly as planned.",
        discussion:
            "Applying is the approval of the plan: it does not ask to start. --yes also approves its destructive steps, as for drover run. The cluster is read again first; if anything the plan observed changed (nodes, leader, versions, package checksums, failover flag, inventory or playbook), nothing is done and the changes are listed (exit 2)."
    )

    @Argument(help: "The saved plan.")
    var plan: String

    @Option(
        name: [.short, .long],
        help: ArgumentHelp(
            "The inventory, when it moved since the plan was made (its content must not have changed).",
            valueName: "file"))
    var inventory: String?

    @OptionGroup var run: RunOptions

    @Flag(help: "Log SSH details to stderr.")
    var verbose = false

    func run() async throws {
        let logger = InventoryOptions.makeLogger(verbose: verbose)
        throw await Operations.apply(
            planPath: plan, inventoryOverride: inventory, json: run.json, stateDirectory: run.state.stateDir,
            junit: run.junit, yes: run.yes, assumeDone: run.assumeDone, playbooks: run.playbooks.library,
            html: run.html, logger: logger
        ).exitCode
    }
}
