import DroverReporting
import DroverTopologies
import Foundation
import Testing

@testable import DroverEngine

/// A run's JUnit report: a test case per step and node; a step a resumed run ran again, one per attempt.
@Suite("JUnit report")
struct JUnitReportTests {
    @Test func aStepRunAgainByAResumedRunIsATestCasePerAttempt() throws {
        var journal = Journal(
            runID: "run-0", playbook: "upgrade", playbookFile: "built-in", cluster: "prod",
            inventoryFile: "/i.yml", inventoryDigest: "", targetVersion: "2.3.16", user: "u", workstation: "w",
            started: Date(timeIntervalSince1970: 0), status: .succeeded)
        let at = Date(timeIntervalSince1970: 0)
        journal.steps = [
            .init(index: 1, step: "block-failover", node: "be1", status: .succeeded, started: at, finished: at),
            .init(
                index: 2, step: "upgrade-follower", node: "be2", status: .failed, started: at, finished: at,
                reason: "exit 1"),
            .init(index: 2, step: "upgrade-follower", node: "be2", status: .succeeded, started: at, finished: at),
        ]
        let playbook = try #require(try PlaybookLibrary(topologies: .drover).builtIn().first { $0.name == "upgrade" })
        let xml = JUnitReport.xml(journal, playbook: playbook)
        #expect(xml.contains(#"name="1. block-failover on be1" "#), "\(xml)")
        #expect(xml.contains(#"name="2. upgrade-follower on be2 (attempt 1)" "#), "\(xml)")
        #expect(xml.contains(#"name="2. upgrade-follower on be2 (attempt 2)" "#), "\(xml)")
        #expect(xml.contains(#"<failure message="exit 1" type="failed">"#))
    }
}
