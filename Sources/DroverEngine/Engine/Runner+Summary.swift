import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

// The text a run ends with: what happened, the cluster's state and what to do next.
extension Runner {
    func summarize(_ ending: Ending, started: Date, failFast: Bool = false) async -> String {
        let observation: T.Observation
        if let reading = lastReading, ContinuousClock.now - reading.at <= Self.readingReuseLimit {
            observation = reading.observation
        } else {
            let fresh = await topology.observe(connection, full: false, checksum: false)
            observation = fresh
        }
        var lines: [String] = [""]
        var failure: StepFailure?
        switch ending {
        case .succeeded:
            lines.append("Succeeded in \(String(format: "%.1f", Date().timeIntervalSince(started)))s.")
        case .stopped where failFast:
            lines.append(
                "STOPPED by --fail-fast (another cluster failed) after the step in flight finished and was verified.")
        case .stopped:
            lines.append("STOPPED at your request after the step in flight finished and was verified.")
        case .aborted:
            let at = interruptedAt.map { " during \($0.step) on \($0.node); \($0.node) may be mid-upgrade" } ?? ""
            lines.append("ABORTED\(at).")
        case .failed(let stepFailure):
            failure = stepFailure
            lines.append(
                "FAILED at step \(stepFailure.step)\(stepFailure.node.map { " on \($0)" } ?? ""): \(stepFailure.what)")
        }
        lines.append("")
        lines += topology.summaryRows(observation)
        if let backup = backupTaken {
            lines.append("")
            lines.append(
                "Backup: \(backup.node):\(backup.path) (\(Self.byteText(backup.bytes))), taken before any change")
        }
        let flag = topology.failoverLine(failover)
        let leftOff: Bool
        if case .succeeded = ending {
            leftOff = playbook.name == "upgrade" ? false : failover?.state == "off"
        } else {
            leftOff = failover?.state == "off"
        }
        if T.hasFailoverSwitch || failover != nil {
            lines.append("")
            lines.append(leftOff ? "!! \(flag); it stays off until you turn it on !!" : flag)
        }
        if case .succeeded = ending {
            return lines.joined(separator: "\n")
        }
        // An upgrade path's playbook is started again by `drover upgrade`, which chooses it.
        let again =
            topology.upgradePath(for: playbook, observation: observation) != nil ? "upgrade" : "run \(playbook.name)"
        lines.append("")
        lines.append("Next:")
        var steps = [NextStep("Inspect the cluster:", commands: ["drover status \(inventoryFlag)"])]
        steps += failure?.advice ?? []
        if failure == nil {
            steps.append(NextStep("Continue where the run stopped:", commands: ["drover resume \(inventoryFlag)"]))
        } else if failure?.step == "backup" && !changesBegan {
            steps.append(
                NextStep(
                    "Nothing was changed. When a backup works, start again (or with --no-backup, without one):",
                    commands: ["drover \(again) \(inventoryFlag) --yes --backup"]))
        } else {
            steps.append(NextStep("When the cause is fixed, continue:", commands: ["drover resume \(inventoryFlag)"]))
            steps.append(NextStep("Or start again:", commands: ["drover \(again) \(inventoryFlag) --yes"]))
        }
        if leftOff { steps.append(topology.failoverRestoreAdvice(inventoryFlag: inventoryFlag)) }
        lines += NextStep.lines(steps)
        return lines.joined(separator: "\n")
    }
}
