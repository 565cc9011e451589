import ArgumentParser
import DroverSandbox

struct Heal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Clear a node's faults; an unreachable node comes back and re-syncs.")

    @OptionGroup var options: SandboxOptions

    @Argument(help: "The node: be1, be2 or be3.")
    var node: String

    func run() async throws {
        do {
            try await options.sandbox.heal(node)
            print("\(node): healed")
        } catch {
            throw fail(error)
        }
    }
}
