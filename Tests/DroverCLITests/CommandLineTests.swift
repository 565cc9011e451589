import DroverTestSupport
import Foundation
import Testing

@Suite("drover command line, run as a binary")
struct CommandLineTests {
    @Test func printsVersion() async throws {
        let output = try await DroverBinary.run(["--version"])
        #expect(output.status == 0)
        #expect(output.stdout.trimmingCharacters(in: .whitespacesAndNewlines).range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil)
    }

    @Test func helpListsExitCodesAndKeyAdvice() async throws {
        let output = try await DroverBinary.run(["--help"])
        #expect(output.status == 0)
        for code in ["0    success", "1    a step failed", "2    refused before any change", "3    another run holds",
                     "64   usage error", "130  interrupted"] {
            #expect(output.stdout.contains(code), "help lists exit code line: \(code)")
        }
        #expect(output.stdout.contains("ed25519"))
    }

    @Test func unknownArgumentIsAUsageError() async throws {
        let output = try await DroverBinary.run(["--no-such-flag"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("--no-such-flag"))
        #expect(output.stdout.isEmpty, "diagnostics go to stderr")
    }
}
