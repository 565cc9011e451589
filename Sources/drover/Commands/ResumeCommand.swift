import ArgumentParser
import DroverCommands
import DroverEngine

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue the cluster's interrupted run: re-read the cluster, re-check, skip what is done, go on.",
        discussion:
            "The step that was in flight is re-run from its start when that is safe (installing the same package and chef-backend-ctl upgrade are). With nothing to resume, says so and exits 0."
    )

    @OptionGroup var options: FleetOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        throw try await run.forEachCluster(options, command: "resume", playbook: "") { request, logger in
            await Operations.resume(request, logger: logger)
        }.exitCode
    }
}
