import Foundation
import Testing

@testable import DroverReporting

/// A transcript's command record: written by the run's recorder, read back by the HTML report.
@Suite("transcript records")
struct TranscriptRecordTests {
    @Test(arguments: [
        TranscriptRecord(
            node: "be2", command: "chef-backend-ctl upgrade", started: Date(timeIntervalSince1970: 1_800_000_000.125),
            finished: Date(timeIntervalSince1970: 1_800_000_030.5), exitStatus: 0, signal: nil, stdout: "ok\n",
            stderr: "", error: nil),
        TranscriptRecord(
            node: "be3", command: "sleep 600", started: Date(timeIntervalSince1970: 1_800_000_000),
            finished: Date(timeIntervalSince1970: 1_800_000_600), exitStatus: nil, signal: "KILL", stdout: "",
            stderr: "Killed", error: "did not finish within 10 min",
            gaps: ["lost at 2027-01-15T08:00:05Z; re-attached at 2027-01-15T08:00:09Z"]),
    ])
    func aRecordReadsBackFromItsLine(_ record: TranscriptRecord) throws {
        let line = record.json.serialized
        #expect(!line.contains("\n"))
        #expect(TranscriptRecord(jsonLine: line) == record)
        #expect(line.contains("connection_gaps") == !record.gaps.isEmpty)
    }

    @Test func otherLinesAreNotRecords() {
        #expect(TranscriptRecord(jsonLine: "{}") == nil)
        #expect(TranscriptRecord(jsonLine: #"{"node":"be1","command":"x"}"#) == nil)
    }
}
