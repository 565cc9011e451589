import ArgumentParser
import DroverSandbox

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop every server the sandbox started (by pid) and remove its files.")

    @OptionGroup var options: SandboxOptions

    func run() async throws {
        do {
            try await options.sandbox.down()
            print("Sandbox in \(options.sandbox.directory) stopped and removed.")
        } catch {
            throw fail(error)
        }
    }
}
