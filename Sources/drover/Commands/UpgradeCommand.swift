import ArgumentParser
import DroverCommands
import DroverEngine

struct UpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract:
            "Rolling upgrade of the cluster to the inventory's package (the same as `drover run upgrade`); with --frontends, the frontends to its frontend_package.",
        discussion:
            "Exit 0 when the run succeeded (or had nothing to do, or you declined); 1 when a step failed after changes began (the summary gives the next commands); 2 when refused before any change; 3 when another run holds the lock; 64 on bad input; 130 when interrupted (drover resume continues)."
    )

    @OptionGroup var options: FleetOptions
    @OptionGroup var run: RunOptions

    @Flag(
        help:
            "Upgrade the Chef Infra Server frontends instead (the upgrade-frontends playbook): the first one, its migration level copied to the others, then each other one, one at a time."
    )
    var frontends = false

    @Flag(
        help:
            "Upgrade the backend cluster (the path the live facts call for), then the frontends, in one run: one lock, one journal, one report."
    )
    var all = false

    func validate() throws {
        guard !(frontends && all) else {
            throw ValidationError("--all already upgrades the frontends; give one of --frontends and --all")
        }
    }

    func run() async throws {
        let playbook = all ? "upgrade+upgrade-frontends" : frontends ? "upgrade-frontends" : "upgrade"
        throw try await run.forEachCluster(options, command: "upgrade", playbook: playbook) { request, logger in
            await Operations.run(request, logger: logger)
        }.exitCode
    }
}
