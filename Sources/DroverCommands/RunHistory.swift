import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation
import Logging

extension Operations {
    /// `drover runs`: past runs, newest first.
    public static func runs(stateDirectory: String?, cluster: String?) -> ExitStatus {
        let state = StateDirectory(stateDirectory)
        let journals = cluster.map { state.journals(cluster: $0) } ?? state.allJournals()
        guard !journals.isEmpty else {
            let others = cluster == nil ? [] : Array(Set(state.allJournals().map(\.cluster))).sorted()
            Output.stdout(
                "No runs\(cluster.map { " of cluster \($0)" } ?? "") recorded in \(state.root)"
                    + (others.isEmpty
                        ? ".\n"
                        : "; it has runs of \(others.map(TerminalText.readable).joined(separator: ", ")) (drover runs).\n")
            )
            return .success
        }
        let rows = journals.map { journal in
            [
                journal.runID, journal.cluster, journal.playbook, journal.status.rawValue,
                RFC3339.string(journal.started),
                journal.finished.map { String(format: "%.0fs", $0.timeIntervalSince(journal.started)) } ?? "-",
            ]
        }
        Output.stdout(
            TextTable(header: ["RUN ID", "CLUSTER", "PLAYBOOK", "STATUS", "STARTED", "DURATION"], rows: rows).text)
        return .success
    }

    /// `drover show RUN_ID`: a run's summary and where its transcript is; with `html`, its report for people.
    public static func show(runID: String, stateDirectory: String?, html: String? = nil) -> ExitStatus {
        let state = StateDirectory(stateDirectory)
        guard let journal = state.allJournals().first(where: { $0.runID == runID || $0.runID.hasPrefix(runID) }) else {
            Output.diagnostic("no run \(runID) in \(state.root); `drover runs` lists them")
            return .usage
        }
        if let html {
            do {
                try RunReport.write(journal, to: html, topologies: .drover)
            } catch {
                Output.diagnostic("cannot write the report \(html): \(error.localizedDescription)")
                return .usage
            }
            Output.stdout("Report of run \(journal.runID): \(html)\n")
            return .success
        }
        var lines = [
            "Run \(journal.runID): \(journal.playbook) on \(journal.cluster), \(journal.status.rawValue)\(journal.exitCode.map { " (exit \($0))" } ?? "")",
            "Started \(RFC3339.string(journal.started)) by \(journal.user)@\(journal.workstation)\(journal.finished.map { ", finished \(RFC3339.string($0))" } ?? "")",
            "Target version: \(journal.targetVersion ?? "-")", "Steps:",
        ]
        var previous: Journal.Step?
        for step in journal.steps {
            if Journal.startsResumedAttempt(step, after: previous) { lines.append("  resumed:") }
            // A reason said for the step just above is said once.
            let reason = step.reason.map {
                previous?.step == step.step && previous?.reason == $0 ? "as above" : $0
            }
            lines.append(
                "  \(step.index). \(step.step) on \(step.node): \(step.status.rawValue)\(reason.map { " (\($0))" } ?? "")"
            )
            previous = step
        }
        if let summary = journal.summary { lines.append(summary) }
        lines.append("Journal: \(journal.path)")
        lines.append("Transcript: \(journal.transcriptPath)")
        lines.append("Events: \(journal.eventsPath)")
        Output.stdout(lines.joined(separator: "\n") + "\n")
        return .success
    }
}
