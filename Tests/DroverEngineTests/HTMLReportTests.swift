import DroverReporting
import Foundation
import Testing

/// The run report's HTML, from a run's records.
@Suite struct HTMLReportTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func run(status: String = "failed", command: String = "chef-backend-ctl upgrade") -> RunReportData {
        let at = { (seconds: Double) in start.addingTimeInterval(seconds) }
        var journal = Journal(
            runID: "20270115T080000Z-abc123", playbook: "upgrade", playbookFile: "built-in:upgrade.yml",
            cluster: "prod <eu>", inventoryFile: "/etc/drover/prod.yml", inventoryDigest: "cd34",
            targetVersion: "2.3.16", user: "ops", workstation: "laptop", started: start,
            status: Journal.Status(rawValue: status) ?? .failed)
        journal.playbookDigest = "ab12"
        journal.finished = at(30)
        journal.exitCode = status == "failed" ? 1 : 0
        journal.parameters = [:]
        journal.summary =
            "\nFAILED at step upgrade-follower on be2: exit 1\n\nNext:\n  1. Inspect the cluster:\n       drover status --inventory prod.yml\n  2. Continue:\n       drover resume --inventory prod.yml\n"
        journal.steps = [
            .init(
                index: 1, step: "upgrade-follower", node: "be2",
                status: Journal.Step.Status(rawValue: status) ?? .failed,
                started: at(1), finished: at(20), reason: nil)
        ]
        return RunReportData(
            journal: journal,
            nodes: ["be1", "be2", "be3"],
            commands: [
                .init(
                    node: "be2", command: command, started: at(2), finished: at(10), exitStatus: 1, signal: nil,
                    stdout: "<script>alert(1)</script>", stderr: "ERROR & more", error: nil),
                .init(
                    node: "be1", command: "chef-backend-ctl set-cluster-failover off", started: at(1),
                    finished: at(1.2), exitStatus: 0,
                    signal: nil, stdout: "", stderr: "", error: nil),
            ],
            waits: [
                .init(
                    node: "be2", predicate: "rejoined", started: at(10), finished: at(20), ok: false,
                    pending: ["role waiting_for_leader"])
            ],
            outOfCluster: [.init(lane: "be2", from: at(2), to: at(30), closed: false)],
            failoverOff: [.init(lane: "failover", from: at(1.2), to: at(30), closed: false)],
            preflight: [.object(["check": "disk", "node": "be1", "ok": true, "detail": "12288 MB free"])],
            plannedSteps: [
                .object([
                    "index": 1, "step": "upgrade-follower", "node": "be2", "action": "run", "command": "dpkg -i x.deb",
                ])
            ])
    }

    /// The style sheet and the timeline's key are compiled in from `Sources/DroverReporting/Assets`.
    @Test func theStyleSheetAndLegendAreCompiledIn() {
        let html = HTMLReport.render(Self.run())
        #expect(html.contains("<style>body{font:14px") && html.contains("footer{color:#7a8591"))
        #expect(html.contains("<p class=\"legend\">") && html.contains("(hover for details)</p>"))
        #expect(html.contains("cluster failover off") && !html.contains("<!--failover-->"))
    }

    @Test func everythingFromTheRunIsEscaped() {
        let html = HTMLReport.render(Self.run())
        #expect(!html.contains("<script>") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("prod &lt;eu&gt;") && html.contains("ERROR &amp; more"))
    }

    @Test func itIsSelfContained() {
        let html = HTMLReport.render(Self.run())
        #expect(
            !html.contains("src=") && !html.contains("href=") && !html.contains("@import") && !html.contains("url("))
        #expect(html.components(separatedBy: "http").count == 2, "only the SVG namespace names a URL")
    }

    @Test func theOutcomeItsNextCommandsAndTheTimelineAreThere() {
        let html = HTMLReport.render(Self.run())
        #expect(html.contains("data-outcome=\"failed\"") && html.contains("FAILED at step upgrade-follower on be2"))
        #expect(html.contains("<li>Continue:<br><code>drover resume --inventory prod.yml</code></li>"))
        for lane in ["failover", "be1", "be2", "be3"] {
            #expect(html.contains("data-lane=\"\(lane)\""), "lane \(lane)")
        }
        #expect(html.contains("class=\"out-window\" data-node=\"be2\"") && html.contains("not back when the run ended"))
        #expect(html.contains("class=\"failover-off\"") && html.contains("still off when the run ended"))
        #expect(html.contains("wait rejoined on be2: did not hold") && html.contains("role waiting_for_leader"))
    }

    @Test func aSucceededRunHasNoNextSection() {
        var run = Self.run(status: "succeeded")
        run.journal.summary = "\nSucceeded in 30.0s.\n"
        let html = HTMLReport.render(run)
        #expect(html.contains("<header class=\"outcome succeeded\"") && !html.contains("<h2>Next</h2>"))
    }

    @Test func aRunThatNeverSwitchesFailoverHasNoFailoverLane() {
        var run = Self.run(status: "succeeded")
        run.commands.removeAll { $0.command.contains("set-cluster-failover") }
        run.failoverOff = []
        let html = HTMLReport.render(run)
        #expect(
            !html.contains("data-lane=\"failover\"") && !html.contains("cluster failover off"),
            "a DRBD pair has no failover switch")
        #expect(html.contains("data-lane=\"be1\""))
    }

    @Test func thePlansActionsReadAsThePlanSaysThem() {
        var run = Self.run()
        run.plannedSteps = [
            .object([
                "index": 2, "step": "upgrade-follower", "node": "be3", "action": "skip",
                "waits_for": "already at 2.3.16", "text": "skip (already at 2.3.16)",
            ]),
            .object([
                "index": 9, "step": "verify", "action": "check",
                "waits_for":
                    "frontends: not configured (no frontend has a status_url in the inventory), so not checked",
            ]),
            .object(["index": 3, "step": "upgrade-follower", "node": "be2", "action": "wait", "waits_for": "rejoined"]),
        ]
        let html = HTMLReport.render(run)
        #expect(html.contains("<td>skip (already at 2.3.16)</td>"))
        #expect(
            html.contains(
                "<td>check frontends: not configured (no frontend has a status_url in the inventory), so not checked</td>"
            ))
        #expect(html.contains("<td>wait rejoined</td>"), "a plan saved before plans carried text reads the same")
        #expect(!html.contains("wait: already") && !html.contains("wait: frontends"))
    }

    @Test func theHeaderHasTheErrorTheStateTheWarningAndTheNextCommands() throws {
        var run = Self.run()
        run.journal.summary = """

            FAILED at step upgrade-follower on be2: `chef-backend-ctl upgrade` on be2 exited with status 1:
                ERROR: upgrade failed: leaderl did not start

              node      role                version
              be1       leader              2.3.15
              be2       waiting_for_leader  2.3.16

            !! cluster failover: OFF (last set by Drover in step block-failover); it stays off until you turn it on !!

            Next:
              1. When the cause is fixed, continue:
                   drover resume --inventory prod.yml
            """
        let html = HTMLReport.render(run)
        let header = try #require(html.range(of: "</header>")).lowerBound
        let top = String(html[..<header])
        #expect(
            top.contains(
                "<p class=\"headline\">FAILED at step upgrade-follower on be2: `chef-backend-ctl upgrade` on be2 exited with status 1:</p>"
            ))
        #expect(top.contains("<pre class=\"error\">ERROR: upgrade failed: leaderl did not start</pre>"))
        #expect(
            top.contains("<pre class=\"state\">  node      role")
                && top.contains("be2       waiting_for_leader  2.3.16"))
        #expect(top.contains("<p class=\"warning\">!! cluster failover: OFF"))
        #expect(
            top.contains(
                "<li>When the cause is fixed, continue:<br><code>drover resume --inventory prod.yml</code></li>"))
    }
}
