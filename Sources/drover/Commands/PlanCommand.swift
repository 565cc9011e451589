import ArgumentParser
import DroverCommands
import DroverEngine

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a playbook would do: discovery (read-only), pre-flight checks and the ordered steps.",
        discussion:
            "Exit 0 when the run would start, 2 when pre-flight would refuse (the plan and the reasons are still printed)."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
        case githubMatrix = "github-matrix"
        case gitlabMatrix = "gitlab-matrix"
    }

    @Argument(help: "The playbook.")
    var playbook = "upgrade"

    @OptionGroup var options: FleetOptions

    @Option(
        help:
            "Output format: text, json, or a CI matrix of the clusters from the inventories alone (github-matrix, gitlab-matrix)."
    )
    var format: Format = .text

    @Flag(help: "Plan from the inventory alone; contact no node (the leader is shown as unknown).")
    var offline = false

    @Option(
        help: ArgumentHelp(
            "Also save the plan with a fingerprint of the cluster, for `drover apply` (several clusters: a directory, one CLUSTER.json each).",
            valueName: "file"))
    var out: String?

    @Flag(
        help: "Plan the frontends' upgrade (the upgrade-frontends playbook), as `drover upgrade --frontends` runs it.")
    var frontends = false

    @Flag(
        help: "Plan the backend cluster's upgrade, then the frontends', in one run, as `drover upgrade --all` runs it.")
    var all = false

    @OptionGroup var state: StateOptions
    @OptionGroup var parameters: ParameterOptions
    @OptionGroup var playbooks: PlaybookOptions
    @OptionGroup var backup: BackupOptions

    func validate() throws {
        guard !(frontends && all) else {
            throw ValidationError("--all already plans the frontends; give one of --frontends and --all")
        }
        guard !(frontends || all) || playbook == "upgrade" else {
            throw ValidationError(
                "--\(all ? "all" : "frontends") chooses the playbook; give it or the playbook \(playbook), not both")
        }
    }

    /// The playbook planned: the argument, or the upgrade that `--frontends` or `--all` name.
    var plannedPlaybook: String { all ? "upgrade+upgrade-frontends" : frontends ? "upgrade-frontends" : playbook }

    func run() async throws {
        let fleet = try options.request(json: format == .json, mode: .buffered, command: "plan")
        switch format {
        case .githubMatrix: throw Operations.matrix(fleet, format: .github).exitCode
        case .gitlabMatrix: throw Operations.matrix(fleet, format: .gitlab).exitCode
        case .text, .json: break
        }
        let (playbook, json, offline, out, stateDirectory) = (
            plannedPlaybook, format == .json, offline, out, state.stateDir
        )
        let (parameters, library, backup, logger) = (
            parameters.parameters, playbooks.library, backup.backup, options.logger
        )
        throw await Operations.fleet(fleet) { path, cluster in
            await Operations.plan(
                playbook: playbook, inventoryPath: path, json: json, offline: offline,
                out: Operations.perClusterFile(out, cluster: cluster, of: fleet, extension: "json"),
                stateDirectory: stateDirectory, parameters: parameters, playbooks: library, backup: backup,
                logger: logger)
        }.exitCode
    }
}
