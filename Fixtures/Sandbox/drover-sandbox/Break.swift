import ArgumentParser
import DroverSandbox

struct Break: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "break",
        abstract: "Inject a fault into a node.",
        discussion:
            "Faults: \(Sandbox.faultNames.joined(separator: ", ")). In a drbd-pair sandbox: \(PairSandbox.faultNames.joined(separator: ", "))."
    )

    @OptionGroup var options: SandboxOptions

    @Argument(help: "The node: be1, be2 or be3.")
    var node: String

    @Argument(help: "The fault to inject.")
    var fault: String

    @Argument(help: "The fault's values (drbd-both-secondary OOS1 OOS2).")
    var values: [String] = []

    func run() async throws {
        do {
            try await options.sandbox.breakNode(node, fault: fault, values: values)
            print("\(node): \(fault)")
        } catch {
            throw fail(error)
        }
    }
}
