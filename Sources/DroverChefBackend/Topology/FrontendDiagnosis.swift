import DroverCluster
import DroverEngine
import DroverReporting
import Foundation

/// Names what is wrong with the frontends read over SSH (those with `host`): one that cannot be reached, one
/// that does not serve, and releases mixed by an upgrade that stopped half-way.
enum FrontendDiagnosis {
    static func situations(
        _ frontends: [FrontendObservation], inventoryArgument: String, lastRun: Journal?
    ) -> [Situation] {
        var result: [Situation] = []
        let serving = frontends.filter(\.serving).map(\.name)
        let others =
            serving.isEmpty
            ? "no other frontend serves: the API is down"
            : "\(serving.joined(separator: ", ")) serve\(serving.count == 1 ? "s" : "") the API meanwhile"
        for frontend in frontends {
            if let unreachable = frontend.unreachable {
                result.append(
                    Situation(
                        id: "frontend-unreachable", summary: "frontend \(frontend.name) cannot be reached",
                        evidence: ["\(frontend.name): \(unreachable)"], command: nil,
                        advice: "Bring \(frontend.name) back (\(others)), then check again:",
                        adviceCommands: ["drover status \(inventoryArgument)"]))
                continue
            }
            guard !frontend.serving else { continue }
            // The frontend a stopped run was upgrading: resuming it finishes the upgrade (once the cause is fixed).
            if let lastRun, lastRun.isUnfinished, let step = lastRun.unfinished, step.node == frontend.name {
                result.append(
                    Situation(
                        id: "frontend-upgrade-interrupted",
                        summary: "frontend \(frontend.name) does not serve: run \(lastRun.runID) stopped upgrading it",
                        evidence: [
                            "run \(lastRun.runID) is \(lastRun.status.rawValue) in step \(step.step) on \(frontend.name)",
                            "\(frontend.name): \(frontend.statusText)",
                        ],
                        command: "drover resume \(inventoryArgument)",
                        advice:
                            "\(others). Fix the cause first: \(frontend.name)'s logs (chef-server-ctl tail, \(FrontendPaths.logs))."
                    ))
                continue
            }
            var evidence = [
                frontend.status == nil
                    ? "\(frontend.name): \(frontend.statusText)" : "\(frontend.name) /_status: \(frontend.statusText)"
            ]
            let stopped = frontend.stoppedServices
            if !stopped.isEmpty {
                evidence.append("\(frontend.name) chef-server-ctl status: stopped \(stopped.joined(separator: ", "))")
                result.append(
                    Situation(
                        id: "frontend-not-serving",
                        summary: "frontend \(frontend.name) does not serve: services are stopped",
                        evidence: evidence,
                        command: "drover exec \(inventoryArgument) --node \(frontend.name) -- chef-server-ctl start",
                        advice:
                            "\(others). If they do not stay up, read \(frontend.name)'s logs (chef-server-ctl tail, \(FrontendPaths.logs))."
                    ))
            } else {
                // Every service runs, yet /_status is not pong: an upstream (often the backends) fails.
                result.append(
                    Situation(
                        id: "frontend-not-serving",
                        summary: "frontend \(frontend.name) does not serve, though its services run",
                        evidence: evidence, command: nil,
                        advice:
                            "\(others). A failing upstream in /_status points at what it depends on: check the backends, then \(frontend.name)'s logs (chef-server-ctl tail):",
                        adviceCommands: ["drover status \(inventoryArgument)"]))
            }
        }
        let releases = Set(frontends.compactMap(\.version))
        if releases.count > 1, !result.contains(where: { $0.id == "frontend-upgrade-interrupted" }) {
            // A frontend upgrade stopped half-way: finish it in Chef's order (the same playbook picks up).
            let unfinished =
                lastRun.map { $0.isUnfinished && Playbook.parts($0.playbook).contains("upgrade-frontends") } ?? false
            result.append(
                Situation(
                    id: "frontend-versions-mixed",
                    summary: "the frontends run different releases: a frontend upgrade stopped half-way",
                    evidence: frontends.map { "\($0.name): chef-server-core \($0.version ?? "unknown")" }
                        + (unfinished ? ["run \(lastRun!.runID) is \(lastRun!.status.rawValue)"] : []),
                    command: unfinished
                        ? "drover resume \(inventoryArgument)" : "drover upgrade \(inventoryArgument) --frontends",
                    advice: nil))
        }
        return result
    }
}
