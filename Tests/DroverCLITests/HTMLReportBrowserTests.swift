import DroverTestSupport
import Foundation
import Testing

/// Debian's chromium (make test installs it).
let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}
let needsBrowser = Testing.ConditionTrait.enabled(
    if: chromium != nil, "needs chromium (make test installs it: apt-get install chromium)")

/// The HTML report of a real run, rendered by a real browser (headless Chromium): a screenshot and the DOM
/// it built.
@Suite("the HTML run report in a browser", needsSandbox, needsBrowser, .timeLimit(.minutes(4 * TestTime.factor)))
struct HTMLReportBrowserTests {
    struct Rendered {
        var dom: String
        var screenshotBytes: Int
    }

    /// Renders `html` with headless Chromium: its DOM, and a screenshot next to the file.
    static func render(_ html: String) async throws -> Rendered {
        let browser = try #require(chromium)
        let profile = try temporaryDirectory("chromium")
        let screenshot = (html as NSString).deletingPathExtension + ".png"
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=\(profile)",
            "--window-size=1280,2000",
        ]
        let environment = ["HOME": profile, "PATH": "/usr/bin:/bin"]
        let shot = try await Processes.offPool {
            try Processes.run(
                browser, flags + ["--screenshot=\(screenshot)", "file://\(html)"], environment: environment,
                timeout: .seconds(90))
        }
        #expect(shot.status == 0, "chromium --screenshot: \(shot.stderr.suffix(800))")
        let dom = try await Processes.offPool {
            try Processes.run(
                browser, flags + ["--dump-dom", "file://\(html)"], environment: environment, timeout: .seconds(90))
        }
        #expect(dom.status == 0, "chromium --dump-dom: \(dom.stderr.suffix(800))")
        let size = (try? FileManager.default.attributesOfItem(atPath: screenshot)[.size] as? Int) ?? 0
        return Rendered(dom: dom.stdout, screenshotBytes: size)
    }

    @Test func aSucceededUpgradeShowsItsOutcomeAndALanePerNode() async throws {
        try await SandboxCluster.with { cluster in
            let html = cluster.scratch("report.html")
            let run = try await cluster.drover(["upgrade", "--yes", "--html", html])
            #expect(run.status == 0, "\(run.stderr)")
            let rendered = try await Self.render(html)
            #expect(rendered.screenshotBytes > 20_000, "a screenshot of a drawn page")
            let dom = rendered.dom
            #expect(dom.contains("data-outcome=\"succeeded\"") && dom.contains("SUCCEEDED"))
            for lane in ["failover", "be1", "be2", "be3"] {
                #expect(dom.contains("data-lane=\"\(lane)\""), "the \(lane) lane")
            }
            for node in ["be1", "be2", "be3"] {
                #expect(
                    dom.contains("class=\"out-window\" data-node=\"\(node)\""), "when \(node) was out of the cluster")
                #expect(dom.contains("class=\"wait\" data-node=\"\(node)\""), "\(node)'s waits")
            }
            #expect(dom.contains("class=\"failover-off\""))
            #expect(
                dom.components(separatedBy: "<details class=\"command succeeded\"").count > 10, "every command, folded")
            #expect(dom.contains("<section id=\"pre-flight\">") && dom.contains("<section id=\"final-state\">"))

            // The same report later, from the run's records.
            let runID = try #require(StateReader.runID(in: cluster.stateDirectory))
            let again = cluster.scratch("again.html")
            let show = try await DroverBinary.run(
                ["show", String(runID), "--html", again], environment: cluster.environment)
            #expect(show.status == 0 && FileManager.default.fileExists(atPath: again), "\(show.stderr)")
        }
    }

    @Test func aFailedUpgradeShowsWhatFailedAndTheNextCommand() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "upgrade-fails")
            let html = cluster.scratch("failed.html")
            let run = try await cluster.drover(["upgrade", "--yes", "--html", html])
            #expect(run.status == 1)
            let dom = try await Self.render(html).dom
            #expect(dom.contains("data-outcome=\"failed\"") && dom.contains("FAILED at step upgrade-follower on be3"))
            #expect(dom.contains("drover resume --inventory"), "the next command")
            // The header alone says what failed, with its error, the cluster's state and the failover warning.
            let header = String(dom[..<(dom.range(of: "</header>")?.lowerBound ?? dom.endIndex)])
            #expect(header.contains("ERROR: upgrade failed"), "the error, in the header")
            #expect(header.contains("waiting_for_leader"), "the cluster's state, in the header")
            #expect(header.contains("!! cluster failover: OFF"), "the warning, in the header")
            // The plan's table: the leader's steps after the failover run on the leader at that time, and a
            // frontend check without status_url reads as not configured, not as a failure.
            #expect(dom.contains("the leader at that time (be1 leads now; another node leads after upgrade-leader)"))
            #expect(dom.contains("check frontends: not configured (no frontend has a status_url in the inventory)"))
            // A skipped step reads as the text plan says it, never as a wait.
            #expect(dom.contains("skip (only a 2.x → 3.x upgrade can leave Elasticsearch half-upgraded)"), "\(dom)")
            #expect(!dom.contains("wait: only a 2.x"))
            #expect(
                dom.contains("class=\"command\" data-node=\"be3\"") && dom.contains("fill=\"#c62828\""),
                "be3's failed command, in red")
            #expect(dom.contains("not back when the run ended") && dom.contains("still off when the run ended"))
        }
    }
}
