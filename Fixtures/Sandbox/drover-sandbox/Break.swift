import ArgumentParser
import DroverSandbox
import SimulatedChefBackend

struct Break: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "break",
        abstract: "Inject a fault into a node.",
        discussion:
            """
            Faults of a backend (be1, be2, be3): \(Sandbox.faultNames.joined(separator: ", ")).
            Faults of a backend's real data layer (with up --real): \(Sandbox.realFaults.keys.sorted().joined(separator: ", ")) (kill -9 of its PostgreSQL, its replay paused, its etcd member stopped).
            Faults of a frontend (fe1, fe2, fe3, with --frontends N): \(FrontendFault.allCases.map(\.rawValue).joined(separator: ", ")).
            In a drbd-pair sandbox (be1, be2): \(PairSandbox.faultNames.joined(separator: ", ")).
            heal NODE clears a node's faults.
            """
    )

    @OptionGroup var options: SandboxOptions

    @Argument(help: "The node: a backend (be1, be2, be3) or a frontend (fe1, ...).")
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
