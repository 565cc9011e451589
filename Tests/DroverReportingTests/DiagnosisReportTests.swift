import DroverCluster
import Testing

@testable import DroverReporting

/// `drover diagnose`'s text: the safe reading first, and every command alone on its line.
@Suite("diagnosis text")
struct DiagnosisReportTests {
    @Test func commandsStandAloneAfterTheirWords() {
        let situation = Situation(
            id: "node-down", summary: "be3 does not answer", evidence: ["be3: connection refused"],
            command: "drover run replace-failed-node --inventory p.yml --set replacement=be3",
            advice: "Wait for the transition, then check again:", first: "If be3 is only restarting, wait:",
            firstCommand: "drover status --inventory p.yml", commandCondition: "be3 is lost for good",
            adviceCommands: ["drover diagnose --inventory p.yml"])
        let diagnosis = Diagnosis(readable: true, situations: [situation], healthyText: "healthy")
        #expect(
            DiagnosisReport.text(diagnosis) == """
                Situation: node-down: be3 does not answer
                  Evidence:
                    - be3: connection refused
                  First: If be3 is only restarting, wait:
                      drover status --inventory p.yml
                  Only if be3 is lost for good, run:
                      drover run replace-failed-node --inventory p.yml --set replacement=be3
                  Note: Wait for the transition, then check again:
                      drover diagnose --inventory p.yml

                """)
        let json = DiagnosisReport.json(diagnosis, cluster: "prod")
        #expect(json.contains(#""advice_commands":["drover diagnose --inventory p.yml"]"#))
    }
}
