import Testing

@testable import DroverReporting

/// The summary's `Next:` list: words on the numbered line, each command alone on its own line.
@Suite("next steps")
struct NextStepTests {
    @Test func eachCommandIsALineOfItsOwn() {
        let steps = [
            NextStep("Inspect the cluster:", commands: ["drover status --inventory prod.yml"]),
            NextStep("Read be2's logs: /var/log/chef-backend/*/current"),
            NextStep("When the cause is fixed, continue:", commands: ["drover resume --inventory prod.yml"]),
        ]
        #expect(
            NextStep.lines(steps) == [
                "  1. Inspect the cluster:", "       drover status --inventory prod.yml",
                "  2. Read be2's logs: /var/log/chef-backend/*/current", "  3. When the cause is fixed, continue:",
                "       drover resume --inventory prod.yml",
            ])
        let summary =
            "\nFAILED at step x.\n\nNext:\n" + NextStep.lines(steps).joined(separator: "\n") + "\nTranscript: /t\n"
        #expect(NextStep.parse(summary: summary) == steps)
    }
}
