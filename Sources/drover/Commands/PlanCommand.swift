import ArgumentParser
import DroverEngine

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a playbook would do: discovery (read-only), pre-flight checks and the ordered steps.",
        discussion: "Exit 0 when the run would start, 2 when pre-flight would refuse (the plan and the reasons are still printed).")

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Argument(help: "The playbook (default: upgrade).")
    var playbook = "upgrade"

    @OptionGroup var options: InventoryOptions

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    @Flag(help: "Plan from the inventory alone; contact no node (the leader is shown as unknown).")
    var offline = false

    @Option(help: ArgumentHelp("Also save the plan with a fingerprint of the cluster, for `drover apply`.", valueName: "file"))
    var out: String?

    @OptionGroup var state: StateOptions
    @OptionGroup var parameters: ParameterOptions
    @OptionGroup var playbooks: PlaybookOptions
    @OptionGroup var backup: BackupOptions

    func run() async throws {
        throw await Operations.plan(playbook: playbook, inventoryPath: options.inventory, json: format == .json, offline: offline, out: out,
                                    stateDirectory: state.stateDir, parameters: parameters.parameters, playbooks: playbooks.library,
                                    backup: backup.backup, logger: options.logger).exitCode
    }
}
