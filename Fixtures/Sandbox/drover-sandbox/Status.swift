import ArgumentParser
import DroverSandbox

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the sandbox's servers and the simulated cluster's state.")

    @OptionGroup var options: SandboxOptions

    func run() async throws {
        do {
            print(try options.sandbox.statusReport(), terminator: "")
        } catch {
            throw fail(error)
        }
    }
}
