import DroverTestSupport
import Foundation
import Testing

/// A plan says what the run will do, numbered as the run numbers it: the same steps, the same numbers, on the
/// same nodes, except where the node is decided only when the run gets there, which the plan says.
@Suite("the plan matches the run", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct PlanMatchesRunTests {
    @Test func thePlansStepsAreTheRunsAcrossAFailover() async throws {
        try await SandboxCluster.with { cluster in
            let planned = try await cluster.drover(["plan", "--format", "json"])
            #expect(planned.status == 0, "\(planned.stderr)")
            let plan = try #require(try JSONSerialization.jsonObject(with: Data(planned.stdout.utf8)) as? [String: Any])
            let actions = try #require(plan["steps"] as? [[String: Any]])
            // One entry per step number: its name, node and what the plan says of a node decided later.
            var steps: [Int: (step: String, node: String?, note: String?)] = [:]
            for action in actions {
                let index = try #require(action["index"] as? Int)
                steps[index] = (
                    action["step"] as? String ?? "", action["node"] as? String, action["node_note"] as? String
                )
            }

            // A step skipped on several nodes for the same reason says it once.
            let text = try await cluster.drover(["plan"]).stdout
            #expect(
                text.contains(
                    "finish-elasticsearch-upgrade on be1: skip (only a 2.x → 3.x upgrade can leave Elasticsearch half-upgraded)"
                ), "\(text)")
            #expect(text.contains("finish-elasticsearch-upgrade on be2: skip (as above)"), "\(text)")

            let run = try await cluster.drover(["upgrade", "--yes", "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            let started = run.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.filter { $0["event"] as? String == "step_started" }
            #expect(started.map { $0["index"] as? Int } == Array(1...steps.count).map { $0 }, "every planned step ran")
            var moved = 0
            for event in started {
                let index = try #require(event["index"] as? Int)
                let plannedStep = try #require(steps[index], "step \(index) was planned")
                #expect(event["step"] as? String == plannedStep.step, "step \(index)")
                #expect(event["total"] as? Int == steps.count, "the run expects the plan's count")
                let node = event["node"] as? String
                if let note = plannedStep.note {
                    // The leader's steps after the failover: the plan says so, and the run went elsewhere.
                    #expect(note.contains("another node leads after upgrade-leader"), "\(note)")
                    #expect(node != plannedStep.node, "step \(index) \(plannedStep.step)")
                    moved += 1
                } else {
                    #expect(
                        node == plannedStep.node,
                        "step \(index) \(plannedStep.step): planned \(plannedStep.node ?? "-")")
                }
            }
            #expect(moved == 3, "block-failover-again, enable-failover and verify run on the new leader")

            // The text plan says it in the same words.
            let offline = try await cluster.drover(["plan", "--offline"])
            #expect(
                offline.stdout.contains(
                    "  10. enable-failover on the leader at that time (another node leads after upgrade-leader)"),
                "\(offline.stdout)")
        }
    }
}
