import DroverTestSupport
import Foundation
import Testing

/// A node that cannot be reached is said once, with its cause and fix; what depends on it is not evaluated,
/// instead of failing again with a wrong fix.
@Suite("root causes, not cascades", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct RootCauseTests {
    @Test func aNodeDownAtPreflightIsSaidOnce() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "unreachable")
            let inventory = "--inventory \(cluster.inventoryPath)"

            let plan = try await cluster.drover(["plan"])
            #expect(plan.status == 2, "\(plan.stdout)\(plan.stderr)")
            let text = plan.stdout
            #expect(text.contains("  [FAIL] reachable be3: "), "\(text)")
            #expect(text.contains("fix: make be3 reachable over SSH (the error says how), then retry"))
            #expect(text.contains("Not read: be3; what the plan shows of it (role, version, services) is unknown"))
            #expect(
                text.contains(
                    "  [info] roles: not evaluated: be3 could not be reached (see reachable above; drover diagnose \(inventory))"
                ),
                "\(text)")
            #expect(text.contains("  [info] path: not evaluated: the installed version of be3 could not be read"))
            #expect(text.contains("Path: unknown"))
            #expect(!text.contains("every node already runs"), "an unread version is never a reason")
            let failed = text.split(separator: "\n").filter { $0.contains("[FAIL]") }
            #expect(failed.count == 1, "one root cause, no cascade: \(failed)")
            #expect(!text.contains("missing from the cluster: be3") && !text.contains("1 followers"))

            let run = try await cluster.drover(["upgrade", "--yes"])
            #expect(run.status == 2)
            let stderr = run.stderr
            #expect(stderr.contains("drover: pre-flight failed: reachable on be3: "), "\(stderr)")
            #expect(
                stderr.contains("\n  fix: make be3 reachable over SSH (the error says how), then retry\n"),
                "the fix on its own line")
            #expect(!stderr.contains("; fix:"))
            #expect(
                stderr.contains(
                    "drover: why a node cannot be reached or read, and what to do: drover diagnose \(inventory)\n"))
            #expect(!stderr.contains("pre-flight failed: membership") && !stderr.contains("pre-flight failed: roles"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty, "nothing changed")
        }
    }
}
