import ArgumentParser
import DroverSandbox
import Foundation

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write numbered rows to a real sandbox's PostgreSQL and report the ledger (up --real).",
        discussion: """
            A client writes at a steady rate through a multi-host connection to the three backends \
            (target_session_attrs=read-write, as the frontends reach them), records every acknowledged commit, \
            and at the end reads the table back from the primary. It prints one JSON line: writes attempted, \
            acknowledged, acknowledged but lost, failed, and the longest time no write succeeded.
            """)

    @OptionGroup var options: SandboxOptions

    @Option(help: "How long to write (seconds).")
    var seconds = 10.0

    @Option(help: "Writes per second.")
    var rate = 50.0

    func validate() throws {
        guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds takes more than 0, up to a day") }
        guard rate > 0, rate <= 1_000 else { throw ValidationError("--rate takes more than 0, up to 1000") }
    }

    func run() async throws {
        do {
            let ledger = try await options.sandbox.load(seconds: seconds, rate: rate)
            print(ledger)
        } catch {
            throw fail(error)
        }
    }
}
