import DroverReporting
import DroverTestSupport
import Testing

/// chef-backend-ctl's progress indicators, as captured (Fixtures/Recorded/upgrade-progress.txt), read as the
/// lines a terminal shows.
@Suite struct RecordedProgressTests {
    @Test func theRecordedUpgradeOutputReadsAsText() throws {
        let captured = try Repository.fixture("Recorded/upgrade-progress.txt")
        #expect(captured.contains("\u{1B}[") && captured.contains("\r"), "the sample carries the sequences")
        #expect(
            TerminalText.readableLines(captured)
                == "Upgrading chef-backend from 2.3.15 to 2.3.16\nRestarting services\nWaiting for this node to rejoin the cluster\n"
        )
    }
}
