import Foundation

/// Prints a run for people: one line per step as it starts and ends with elapsed time, remote output
/// prefixed by node, and while waiting the criteria that do not hold yet, whenever they change.
public final class HumanReporter: Reporter {
    private let lock = NSLock()
    private let started: Date
    /// The steps already described; touched only under `lock` (render runs there).
    private let described = Described()

    private final class Described: @unchecked Sendable {
        var steps: Set<String> = []
        /// Each step's last skip reason.
        var skipped: [String: String] = [:]
    }
    private let bold: String, red: String, green: String, reset: String

    /// Where its lines go: the process's stdout, or the sink of the task that made it (a fleet's cluster).
    private let sink: (any OutputSink)?

    /// `started`: when the run began (the console's times count from there).
    public init(colour: Bool = Output.colour(fd: 1), started: Date = Date()) {
        self.started = started
        sink = Output.sink
        bold = colour ? "\u{1B}[1m" : ""
        red = colour ? "\u{1B}[31m" : ""
        green = colour ? "\u{1B}[32m" : ""
        reset = colour ? "\u{1B}[0m" : ""
    }

    private func stamp(_ date: Date) -> String { String(format: "[%6.1fs]", date.timeIntervalSince(started)) }

    public func emit(_ event: Event) {
        if let sink { return sink.event(event, rendered: lock.withLock { render(event) }) }
        lock.withLock { Output.stdout(render(event)) }
    }

    func render(_ event: Event) -> String {
        let at = stamp(event.time)
        func seconds(_ value: Double) -> String { String(format: "%.1f", value) }
        switch event.kind {
        case .runStarted(let runID, let playbook, let cluster, let targetVersion):
            return
                "\(bold)drover: \(playbook) on cluster \(cluster)\(targetVersion.flatMap { $0.isEmpty ? nil : " to \($0)" } ?? "") (run \(runID))\(reset)\n"
        case .stepStarted(let index, let total, let step, let node, let description):
            let number = total.map { "\(index)/\(max($0, index))" } ?? "\(index)"
            // A step of several nodes is described once, at its first node.
            let words = described.steps.insert(step).inserted ? ": \(description)" : ""
            return "\(at) \(bold)step \(number) \(step)\(node.isEmpty ? "" : " on \(node)")\(reset)\(words)\n"
        case .actionStarted(let node, _, let command):
            return "\(at)   \(node)$ \(command)\n"
        case .output(let node, _, let line):
            return "           \(node)| \(line)\n"
        case .commandFinished(let node, _, let status, _):
            return status == 0 ? "" : "\(at)   \(red)\(node): exit status \(status)\(reset)\n"
        case .waitProgress(let node, let predicate, let pending, let timeLeft):
            let left = timeLeft.map { "; \(ReportDuration.text($0)) left" } ?? ""
            return "\(at)   waiting for \(predicate) on \(node): \(pending)\(left)\n"
        case .waitFinished(_, let predicate, let ok, let duration, let detail, _):
            let detail = detail ?? ""
            return
                "\(at)   \(ok ? green : red)\(predicate) \(ok ? "holds" : "did not hold") after \(seconds(duration))s\(detail.isEmpty ? "" : " (\(detail))")\(reset)\n"
        case .stepFinished(let index, let step, _, let outcome, let reason, let duration):
            let colour = outcome == .failed ? red : green
            // A step skipped on several nodes for the same reason says it once.
            var reason = reason ?? ""
            if outcome == .skipped, !reason.isEmpty {
                if described.skipped[step] == reason { reason = "as above" } else { described.skipped[step] = reason }
            }
            return
                "\(at) \(colour)step \(index) \(step) \(outcome.rawValue)\(reason.isEmpty ? "" : ": \(reason)")\(reset) (\(seconds(duration))s)\n"
        case .runFinished(_, _, let summary, _, _):
            return (summary ?? "") + "\n"
        case .confirmationRequested(let node, let message):
            return "\(at) \(node): \(message)\n"
        case .manualStepRequested(let node, let instruction, let assumedDone):
            return "\(at) MANUAL (\(node)): \(instruction)\n"
                + (assumedDone ? "\(at) assumed done (--assume-done)\n" : "")
        case .backupWritten(let node, let path, let bytes):
            return "\(at) backup: \(node):\(path) (\(ByteText.format(bytes)))\n"
        case .checkFinished(_, let subject, _, let detail):
            return "\(at) \(subject): \(detail)\n"
        case .note(let message):
            return "\(at) \(message)\n"
        case .writeProbe:
            // The summary carries its line.
            return ""
        case .connectionLost(_, _, let message):
            return "\(at)   \(red)\(message)\(reset)\n"
        case .reconnected(_, _, _, let message):
            return "\(at)   \(green)\(message)\(reset)\n"
        case .fleetFinished:
            return ""
        }
    }
}
