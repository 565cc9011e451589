import DroverReporting
import Foundation
import Testing

/// What the summary says of a run's write probe: its windows without a good answer.
struct WriteProbeReportTests {
    static let start = RFC3339.date("2026-12-07T00:00:00Z")!

    static func answers(_ oks: [Bool]) -> [WriteProbeReport.Answer] {
        oks.enumerated().map { index, ok in
            WriteProbeReport.Answer(
                asked: start.addingTimeInterval(Double(index)), answered: start.addingTimeInterval(Double(index) + 0.1),
                ok: ok)
        }
    }

    @Test func aWindowRunsFromTheFirstFailedQuestionToTheNextGoodAnswer() {
        let report = WriteProbeReport(
            probe: "check", answers: Self.answers([true, false, false, true, true, false, true]))
        #expect(report.probes == 7 && report.failed == 3)
        #expect(report.windows.count == 2)
        #expect(report.windows[0].from == Self.start.addingTimeInterval(1))
        #expect(report.windows[0].to == Self.start.addingTimeInterval(3.1) && !report.windows[0].open)
        #expect(abs(report.failedSeconds - (2.1 + 1.1)) < 0.001)
        #expect(
            report.line.hasPrefix("Writes: failed 2 times, 3.2 s in all, longest 2.1 s from 00:00:01 UTC"),
            "\(report.line)")
    }

    @Test func aWindowStillOpenAtTheEndSaysSo() {
        let report = WriteProbeReport(probe: "check", answers: Self.answers([true, false, false]))
        #expect(report.windows.count == 1 && report.windows[0].open)
        #expect(report.line.contains("still failing when the run ended"), "\(report.line)")
    }

    @Test func noFailureAndNoAnswerAreSaid() {
        #expect(
            WriteProbeReport(probe: "check", answers: Self.answers([true, true])).line
                == "Writes: never failed (2 answers from check)")
        #expect(WriteProbeReport(probe: "check", answers: []).line == "Writes: the probe never answered (check)")
    }
}
