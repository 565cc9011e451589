import Foundation
import Testing

@testable import DroverReporting

/// A plan and a run's summary rendered from their typed models: golden text, in one place.
@Suite("plan and summary text")
struct PlanAndSummaryTextTests {
    static func document(observed: Bool = true) -> PlanDocument {
        PlanDocument(
            playbook: "upgrade", cluster: "prod", targetVersion: "3.1.1", observed: observed,
            offlineNote: "Offline plan: nothing was contacted.", discoveredLines: ["Discovered: be1 leads"],
            discoveredJSON: .object([:]), notRead: ["be3"],
            path: .init(
                name: "unknown", playbook: nil, reasons: ["be3's version was not read"], fix: "make be3 readable"),
            downtime: Downtime(text: "Downtime: every node"), backup: false, backupLine: nil, locks: [],
            preflight: [
                PreflightCheck(
                    check: "reachable", node: "be3", ok: false,
                    detail: "refused; remove the entry with:\n  ssh-keygen -R h",
                    fix: "start sshd"),
                .information("cluster-failover", "not readable"),
            ],
            actions: [
                PlannedAction(
                    index: 1, step: "block-failover", node: "be1", action: "run", command: "x off", waitsFor: nil),
                PlannedAction(
                    index: 2, step: "upgrade-follower", node: "be2", action: "skip", command: nil, waitsFor: "done"),
                PlannedAction(
                    index: 3, step: "upgrade-follower", node: "be3", action: "skip", command: nil, waitsFor: "done"),
                PlannedAction(
                    index: 4, step: "verify", node: "be1", action: "wait", command: nil, waitsFor: "all healthy",
                    condition: "only if be1 is a follower then", nodeNote: "the leader at that time"),
            ],
            nothingToDo: nil)
    }

    @Test func planText() {
        #expect(
            PlanText.render(Self.document()) == """
                Plan: upgrade on cluster prod to 3.1.1
                Discovered: be1 leads
                Not read: be3; what the plan shows of it (role, version, services) is unknown, never a reason
                Path: unknown
                  because be3's version was not read
                  instead: make be3 readable
                Downtime: every node
                !! No backup before this downtime upgrade (--no-backup) !!
                Pre-flight:
                  [FAIL] reachable be3: refused; remove the entry with:
                           ssh-keygen -R h
                         fix: start sshd
                  [info] cluster-failover: not readable
                Steps of upgrade (the path is unknown until every node is read; a run may take others):
                   1. block-failover on be1
                        x off
                   2. upgrade-follower on be2: skip (done)
                   3. upgrade-follower on be3: skip (as above)
                   4. verify on the leader at that time
                        only if be1 is a follower then:
                        wait all healthy
                Pre-flight failed: the run would be refused (exit 2).

                """)
    }

    @Test func offlinePlanSaysSoAndJudgesNothing() {
        let text = PlanText.render(Self.document(observed: false))
        #expect(text.contains("Offline plan: nothing was contacted."))
        #expect(!text.contains("Discovered") && !text.contains("Pre-flight failed"))
        let json = Self.document(observed: false).json
        guard case .object(let object) = json else {
            Issue.record("not an object")
            return
        }
        #expect(object["offline"] == .bool(true) && object["would_start"] == .bool(false))
    }

    @Test func failedRunSummary() {
        let summary = RunSummary(
            ending: .failed(step: "upgrade-follower", node: "be2", what: "exited with status 1"),
            stateRows: ["be1 leader 2.3.16"],
            backup: Journal.Backup(node: "be2", path: "/b.tgz", bytes: 2048, taken: Date(timeIntervalSince1970: 0)),
            failoverLine: "cluster failover: OFF", failoverLeftOff: true,
            next: [NextStep("Continue:", commands: ["drover resume --inventory p.yml"])])
        #expect(
            RunSummaryText.render(summary) == """

                FAILED at step upgrade-follower on be2: exited with status 1

                be1 leader 2.3.16

                Backup: be2:/b.tgz (2.0 KB), taken before any change

                !! cluster failover: OFF; it stays off until you turn it on !!

                Next:
                  1. Continue:
                       drover resume --inventory p.yml
                """)
    }

    @Test(arguments: [
        (RunSummary.Ending.succeeded(seconds: 12.34), "Succeeded in 12.3s."),
        (.stopped(failFast: false), "STOPPED at your request after the step in flight finished and was verified."),
        (.aborted(step: "upgrade", node: "be2"), "ABORTED during upgrade on be2; be2 may be mid-upgrade."),
        (.aborted(step: nil, node: nil), "ABORTED."),
    ])
    func headlines(ending: RunSummary.Ending, headline: String) {
        #expect(RunSummaryText.headline(ending) == headline)
    }

    @Test(arguments: [(512, "512 bytes"), (2048, "2.0 KB"), (3_145_728, "3.0 MB")])
    func byteText(bytes: Int, text: String) {
        #expect(ByteText.format(bytes) == text)
    }
}
