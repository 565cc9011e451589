import DroverTestSupport
import Foundation
import Testing

/// The inventory's write probe (`probe:`): asked while a run runs; the summary, the JSON events and the HTML
/// report say when writes failed.
@Suite("the write probe", needsSandbox, .timeLimit(.minutes(4 * TestTime.factor)))
struct WriteProbeTests {
    /// Adds `probe:` to the test's inventory (before its `timeouts:`).
    static func addProbe(_ cluster: SandboxCluster, _ block: String) async throws {
        try await Processes.offPool {
            let text = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            let at = try #require(text.range(of: "timeouts:"))
            try (text[..<at.lowerBound] + block + text[at.lowerBound...]).write(
                toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
        }
    }

    @Test func aWindowWithoutWritesIsInTheSummaryTheEventsAndTheTimeline() async throws {
        try await SandboxCluster.with { cluster in
            // Writes "fail" while the gate file exists: a command run without a shell by Drover (sh is the probe).
            let gate = cluster.scratch("writes-fail")
            try await Self.addProbe(
                cluster,
                "probe:\n  command: [/bin/sh, -c, 'test ! -e \"$0\"', \(gate)]\n  interval: 100ms\n  timeout: 1s\n")
            let html = cluster.scratch("report.html")
            let run = try cluster.start(["upgrade", "--yes", "--json", "--html", html])
            #expect(try await cluster.waitFor("upgrade-follower", in: run.stdout), "the run reached a follower")
            _ = try await Processes.offPool { FileManager.default.createFile(atPath: gate, contents: nil) }
            try await Task.sleep(for: .seconds(1.5))
            try await Processes.offPool { try FileManager.default.removeItem(atPath: gate) }
            #expect(await run.child.exitStatus() == 0)
            let lines = try await Processes.offPool { try String(contentsOfFile: run.stdout, encoding: .utf8) }
                .split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
            let names = lines.compactMap { $0["event"] as? String }
            let probe = try #require(lines.first { $0["event"] as? String == "write_probe" }, "\(names)")
            #expect(names.firstIndex(of: "write_probe")! < names.firstIndex(of: "run_finished")!, "before run_finished")
            let windows = probe["windows"] as? [[String: Any]] ?? []
            #expect(windows.count == 1 && windows.first?["open"] as? Bool == false, "\(probe)")
            let failed = probe["failed_s"] as? Double ?? 0
            #expect(failed >= 1 && failed < 10, "about the 1.5 s the gate existed: \(probe)")
            #expect((probe["probes"] as? Int ?? 0) > (probe["failed"] as? Int ?? 0))
            let summary = lines.first { $0["event"] as? String == "run_finished" }?["summary"] as? String ?? ""
            #expect(summary.contains("Writes: failed once, "), "\(summary)")
            let report = try await Processes.offPool { try String(contentsOfFile: html, encoding: .utf8) }
            #expect(report.contains("data-lane=\"writes\"") && report.contains("class=\"writes-failed\""))
            #expect(report.contains("Writes: failed once"), "the summary in the report")
        }
    }

    @Test func aProbeThatIsNotThereFailsEveryAnswerAndTheRunGoesOn() async throws {
        try await SandboxCluster.with { cluster in
            try await Self.addProbe(cluster, "probe:\n  command: [/nonexistent/write-check]\n  interval: 200ms\n")
            let run = try await cluster.drover(["upgrade", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(
                run.stdout.contains("Writes: failed once, ")
                    && run.stdout.contains("still failing when the run ended"), "\(run.stdout)")
        }
    }
}
