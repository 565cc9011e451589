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

    @Test(arguments: [
        (
            "Check the cluster: drover status --inventory 'my prod.yml'",
            NextStep("Check the cluster:", commands: ["drover status --inventory 'my prod.yml'"])
        ),
        (
            "When it is reachable, continue (a command still running there is waited for): drover resume --inventory p.yml",
            NextStep(
                "When it is reachable, continue (a command still running there is waited for):",
                commands: ["drover resume --inventory p.yml"])
        ),
        (
            "Read be2's logs: /var/log/chef-backend/*/current",
            NextStep("Read be2's logs: /var/log/chef-backend/*/current")
        ),
    ])
    func adviceBecomesWordsAndACommand(_ advice: String, _ step: NextStep) {
        #expect(NextStep(advice: advice) == step)
    }
}
