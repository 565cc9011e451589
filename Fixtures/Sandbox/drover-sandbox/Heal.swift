import ArgumentParser
import DroverSandbox

struct Heal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Clear a node's faults; an unreachable node comes back and re-syncs.")

    @OptionGroup var options: SandboxOptions

    @Argument(help: "The node: be1, be2 or be3.")
    var node: String

    @Flag(help: "Bring the node back as a newly installed machine that is not part of the cluster.")
    var fresh = false

    func run() async throws {
        do {
            try await options.sandbox.heal(node, fresh: fresh)
            print("\(node): healed")
        } catch {
            throw fail(error)
        }
    }
}
