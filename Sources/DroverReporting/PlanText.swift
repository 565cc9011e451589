import Foundation

/// A plan for people (`drover plan`, and what a run prints before it asks to start).
public enum PlanText {
    public static func render(_ plan: PlanDocument) -> String {
        var lines = ["Plan: \(plan.playbook) on cluster \(plan.cluster)\(plan.targetVersion.map { " to \($0)" } ?? "")"]
        if plan.observed {
            lines += plan.discoveredLines
            if !plan.notRead.isEmpty {
                let them = plan.notRead.count == 1 ? "it" : "them"
                lines.append(
                    "Not read: \(plan.notRead.joined(separator: ", ")); what the plan shows of \(them) (role, version, services) is unknown, never a reason"
                )
            }
            if let path = plan.path { lines += pathLines(path, plan: plan) }
            for owner in plan.locks {
                lines.append("Lock: \(owner.node) is locked by \(owner.description); a run would be refused (exit 3)")
            }
        } else {
            lines.append(plan.offlineNote)
        }
        if !plan.preflight.isEmpty {
            lines.append("Pre-flight:")
            lines += plan.preflight.map(checkLine)
        }
        if let backupLine = plan.backupLine { lines.append(backupLine) }
        if plan.observed, plan.path?.name == "unknown" {
            // An unread node leaves the path open: these are the planned playbook's steps, not a promise.
            lines.append(
                "Steps of \(plan.playbook) (the path is unknown until every node is read; a run may take others):")
        } else {
            lines.append("Steps:")
        }
        lines += stepLines(plan.actions)
        if plan.observed {
            if let reason = plan.nothingToDo {
                lines.append("Nothing to do: \(reason).")
            } else {
                lines.append(
                    plan.preflightPassed
                        ? "Pre-flight passed: the run would start."
                        : "Pre-flight failed: the run would be refused (exit 2).")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func pathLines(_ path: PlanDocument.Path, plan: PlanDocument) -> [String] {
        var lines = ["Path: \(path.name)\(path.playbook.map { " (playbook \($0))" } ?? "")"]
        lines += path.reasons.map { "  because \($0)" }
        if let fix = path.fix { lines.append("  instead: \(fix)") }
        if let downtime = plan.downtime {
            lines.append(downtime.text)
            if !plan.backup { lines.append("!! No backup before this downtime upgrade (--no-backup) !!") }
        }
        return lines
    }

    /// `[ok]`, `[FAIL]` or `[info]`, the check, and its fix on a line of its own.
    static func checkLine(_ check: PreflightCheck) -> String {
        let mark = check.information ? "info" : check.ok ? "ok" : "FAIL"
        let node = check.node.map { " \($0)" } ?? ""
        // A detail of several lines (an SSH error with its command) stays inside its item.
        let detail = check.detail.replacingOccurrences(of: "\n", with: "\n         ")
        return "  [\(mark)] \(check.check)\(node): \(detail)\(check.fix.map { "\n         fix: \($0)" } ?? "")"
    }

    /// Numbered by step, as the run numbers them, each step's actions under it, one per line; the same skip
    /// reason for a step's next node is said once.
    static func stepLines(_ actions: [PlannedAction]) -> [String] {
        var lines: [String] = []
        for (position, action) in actions.enumerated() {
            let first = position == 0 || actions[position - 1].index != action.index
            if first {
                let node = action.nodeNote.map { " on \($0)" } ?? action.node.map { " on \($0)" } ?? ""
                let previous = actions[..<position].last { $0.step == action.step && $0.action == "skip" }
                let skip =
                    action.action != "skip"
                    ? "" : previous?.waitsFor == action.waitsFor ? ": skip (as above)" : ": \(action.text)"
                lines.append(String(format: "  %2d. %@%@%@", action.index, action.step, node, skip))
                if let condition = action.condition { lines.append("        \(condition):") }
            }
            if action.action != "skip" { lines.append("        \(action.text)") }
        }
        return lines
    }
}
