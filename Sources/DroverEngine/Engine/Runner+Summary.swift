import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

// What a run ends with: how it ended, the cluster's state and what to do next (rendered by RunSummaryText).
extension Runner {
    func summarize(_ ending: Ending, started: Date, failFast: Bool = false) async -> RunSummary {
        let observation: T.Observation
        if let reading = lastReading, clock.now - reading.at <= Self.readingReuseLimit {
            observation = reading.observation
        } else {
            let fresh = await topology.observe(connection, full: false, checksum: false)
            observation = fresh
        }
        let summaryEnding: RunSummary.Ending
        var failure: StepFailure?
        switch ending {
        case .succeeded:
            // Wall time since the run first started: a resumed run's earlier attempts count.
            summaryEnding = .succeeded(seconds: Date().timeIntervalSince(resuming?.started ?? started))
        case .stopped:
            summaryEnding = .stopped(failFast: failFast)
        case .aborted:
            summaryEnding = .aborted(step: interruptedAt?.step, node: interruptedAt?.node)
        case .failed(let stepFailure):
            failure = stepFailure
            summaryEnding = .failed(step: stepFailure.step, node: stepFailure.node, what: stepFailure.what)
        }
        let leftOff: Bool
        if case .succeeded = ending {
            leftOff = Playbook.parts(playbook.name).first == "upgrade" ? false : failover?.state == "off"
        } else {
            leftOff = failover?.state == "off"
        }
        var summary = RunSummary(
            ending: summaryEnding, stateRows: topology.summaryRows(observation), backup: backupTaken,
            failoverLine: T.hasFailoverSwitch || failover != nil ? topology.failoverLine(failover) : nil,
            failoverLeftOff: leftOff, next: [])
        if case .succeeded = ending { return summary }
        // An upgrade path's playbook is started again by `drover upgrade`, which chooses it.
        // A combined playbook is `drover upgrade --all`.
        let chosen = topology.upgradePath(for: playbook, observation: observation) != nil
        let again =
            (chosen
                ? (Playbook.parts(playbook.name).count > 1 ? "upgrade --all" : "upgrade") : "run \(playbook.name)")
            + " \(inventoryFlag)\(nextOptions.state)\(nextOptions.library)\(chosen ? "" : nextOptions.settings)"
        var steps = [NextStep("Inspect the cluster:", commands: ["drover status \(inventoryFlag)"])]
        steps += failure?.advice ?? []
        if failure == nil {
            steps.append(NextStep("Continue where the run stopped:", commands: [resumeCommand]))
        } else if failure?.step == "backup" && !changesBegan {
            steps.append(
                NextStep(
                    "Nothing was changed. When a backup works, start again (or with --no-backup, without one):",
                    commands: ["drover \(again) --yes --backup"]))
        } else {
            steps.append(NextStep("When the cause is fixed, continue:", commands: [resumeCommand]))
            steps.append(NextStep("Or start again:", commands: ["drover \(again) --yes"]))
        }
        if leftOff { steps.append(topology.failoverRestoreAdvice(inventoryFlag: inventoryFlag + nextOptions.resume)) }
        summary.next = steps
        return summary
    }
}
