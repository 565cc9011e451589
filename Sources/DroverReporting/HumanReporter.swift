import Foundation

/// Prints a run for people: one line per step as it starts and ends with elapsed time, remote output
/// prefixed by node, and while waiting the criteria that do not hold yet, whenever they change.
public final class HumanReporter: Reporter {
    private let lock = NSLock()
    private let started = Date()
    private let bold: String, red: String, green: String, reset: String

    /// Where its lines go: the process's stdout, or the sink of the task that made it (a fleet's cluster).
    private let sink: (any OutputSink)?

    public init(colour: Bool = Output.colour(fd: 1)) {
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

    func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text)?: return text
        case .int(let number)?: return String(number)
        case .double(let number)?: return String(format: "%.1f", number)
        case .bool(let flag)?: return flag ? "yes" : "no"
        default: return ""
        }
    }

    func render(_ event: Event) -> String {
        let at = stamp(event.time)
        switch event.name {
        case "run_started":
            return
                "\(bold)drover: \(text(event["playbook"])) on cluster \(text(event["cluster"]))\(text(event["target_version"]).isEmpty ? "" : " to \(text(event["target_version"]))") (run \(text(event["run_id"])))\(reset)\n"
        case "step_started":
            let node = text(event["node"])
            return
                "\(at) \(bold)step \(text(event["index"])) \(text(event["step"]))\(node.isEmpty ? "" : " on \(node)")\(reset): \(text(event["description"]))\n"
        case "action_started":
            return "\(at)   \(text(event["node"]))$ \(text(event["command"]))\n"
        case "output":
            return "           \(text(event["node"]))| \(text(event["line"]))\n"
        case "command_finished":
            let status = text(event["exit_status"])
            return status == "0" ? "" : "\(at)   \(red)\(text(event["node"])): exit status \(status)\(reset)\n"
        case "wait_progress":
            return
                "\(at)   waiting for \(text(event["predicate"]))\(event["node"].map { " on \(text($0))" } ?? ""): \(text(event["pending"]))\n"
        case "wait_finished":
            let ok = event["ok"] == .bool(true)
            let detail = text(event["detail"])
            return
                "\(at)   \(ok ? green : red)\(text(event["predicate"])) \(ok ? "holds" : "did not hold") after \(text(event["duration_s"]))s\(detail.isEmpty ? "" : " (\(detail))")\(reset)\n"
        case "step_finished":
            let outcome = text(event["outcome"])
            let colour = outcome == "failed" ? red : green
            let reason = text(event["reason"])
            return
                "\(at) \(colour)step \(text(event["index"])) \(text(event["step"])) \(outcome)\(reason.isEmpty ? "" : ": \(reason)")\(reset) (\(text(event["duration_s"]))s)\n"
        case "run_finished":
            return text(event["summary"]) + "\n"
        case "note":
            return "\(at) \(text(event["message"]))\n"
        case "connection_lost":
            return "\(at)   \(red)\(text(event["message"]))\(reset)\n"
        case "reconnected":
            return "\(at)   \(green)\(text(event["message"]))\(reset)\n"
        default:
            return ""
        }
    }
}
