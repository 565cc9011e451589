import Foundation

/// How a run ended, the cluster's state then and what to do next: what the engine decided, with the
/// topology's words, rendered by ``RunSummaryText``.
public struct RunSummary: Sendable, Equatable {
    public enum Ending: Sendable, Equatable {
        case succeeded(seconds: Double)
        /// At the operator's request, or by `--fail-fast` when another cluster of a fleet failed.
        case stopped(failFast: Bool)
        /// Interrupted twice: during `step` on `node`, when a step was in flight.
        case aborted(step: String?, node: String?)
        case failed(step: String, node: String?, what: String)
    }

    public var ending: Ending
    /// The topology's table of the cluster's state.
    public var stateRows: [String]
    /// The backup taken before the first change, if any.
    public var backup: Journal.Backup?
    /// The topology's line about its failover switch; nil when it has none and the run did not set one.
    public var failoverLine: String?
    /// The switch is left off: the line is a warning.
    public var failoverLeftOff: Bool
    /// What to do next; empty after a success.
    public var next: [NextStep]
    /// What the inventory's write probe saw, when it has one.
    public var writes: WriteProbeReport?

    public init(
        ending: Ending, stateRows: [String], backup: Journal.Backup?, failoverLine: String?, failoverLeftOff: Bool,
        next: [NextStep]
    ) {
        (self.ending, self.stateRows, self.backup) = (ending, stateRows, backup)
        (self.failoverLine, self.failoverLeftOff, self.next) = (failoverLine, failoverLeftOff, next)
    }
}

/// The text a run ends with (the console, the journal's and the `run_finished` event's `summary`).
public enum RunSummaryText {
    public static func render(_ summary: RunSummary) -> String {
        var lines = ["", headline(summary.ending), ""]
        lines += summary.stateRows
        if let backup = summary.backup {
            lines.append("")
            lines.append(
                "Backup: \(backup.node):\(backup.path) (\(ByteText.format(backup.bytes))), taken before any change")
        }
        if let writes = summary.writes {
            lines.append("")
            lines.append(writes.line)
        }
        if let flag = summary.failoverLine {
            lines.append("")
            lines.append(summary.failoverLeftOff ? "!! \(flag); it stays off until you turn it on !!" : flag)
        }
        if !summary.next.isEmpty {
            lines.append("")
            lines.append("Next:")
            lines += NextStep.lines(summary.next)
        }
        return lines.joined(separator: "\n")
    }

    static func headline(_ ending: RunSummary.Ending) -> String {
        switch ending {
        case .succeeded(let seconds):
            return "Succeeded in \(String(format: "%.1f", seconds))s."
        case .stopped(failFast: true):
            return "STOPPED by --fail-fast (another cluster failed) after the step in flight finished and was verified."
        case .stopped(failFast: false):
            return "STOPPED at your request after the step in flight finished and was verified."
        case .aborted(let step, let node):
            guard let step, let node else { return "ABORTED." }
            return "ABORTED during \(step) on \(node); \(node) may be mid-upgrade."
        case .failed(let step, let node, let what):
            return "FAILED at step \(step)\(node.map { " on \($0)" } ?? ""): \(what)"
        }
    }
}

/// Sizes as people read them.
public enum ByteText {
    /// `1.2 MB`, `3.4 KB`, `512 bytes`.
    public static func format(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) bytes" }
        if bytes < 1_048_576 { return String(format: "%.1f KB", Double(bytes) / 1024) }
        return String(format: "%.1f MB", Double(bytes) / 1_048_576)
    }
}
