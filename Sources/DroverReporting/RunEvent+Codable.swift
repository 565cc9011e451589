import Foundation

/// A run event's JSON: its documented fields (README, "JSON output"), written and read by the same type. The
/// event's name (`event`) is read here and written by ``Event``, beside `time` and `cluster`.
extension RunEvent: Codable {
    /// A field of some event.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }

        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }

        static let event = Key("event")
    }

    public func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: Key.self)
        /// Writes a field; `nil` as JSON null.
        func put<T: Encodable>(_ name: String, _ value: T) throws { try fields.encode(value, forKey: Key(name)) }
        /// Writes a field only when there is a value.
        func some<T: Encodable>(_ name: String, _ value: T?) throws {
            if let value { try fields.encode(value, forKey: Key(name)) }
        }
        switch self {
        case .runStarted(let runID, let playbook, let cluster, let targetVersion):
            try put("run_id", runID)
            try put("playbook", playbook)
            try put("cluster", cluster)
            try put("target_version", targetVersion)
        case .stepStarted(let index, let total, let step, let node, let description):
            try put("index", index)
            try some("total", total)
            try put("step", step)
            try put("node", node)
            try put("description", description)
        case .actionStarted(let node, let step, let command):
            try put("node", node)
            try put("step", step)
            try put("command", command)
        case .output(let node, let stream, let line):
            try put("node", node)
            try put("stream", stream)
            try put("line", line)
        case .commandFinished(let node, let command, let exitStatus, let duration):
            try put("node", node)
            try put("command", command)
            try put("exit_status", exitStatus)
            try put("duration_s", duration)
        case .waitProgress(let node, let predicate, let pending, let timeLeft):
            try put("node", node)
            try put("predicate", predicate)
            try put("pending", pending)
            try some("time_left_s", timeLeft)
        case .waitFinished(let node, let predicate, let ok, let duration, let detail, let pending):
            try put("node", node)
            try put("predicate", predicate)
            try put("ok", ok)
            try put("duration_s", duration)
            // A wait that held always says what it saw (null when nothing); one that did not, only when it can.
            if ok { try put("detail", detail) } else { try some("detail", detail) }
            try some("pending", pending)
        case .stepFinished(let index, let step, let node, let outcome, let reason, let duration):
            try put("index", index)
            try put("step", step)
            try put("node", node)
            try put("outcome", outcome)
            try put("duration_s", duration)
            try some("reason", reason)
        case .runFinished(let outcome, let exitCode, let summary, let duration, let preflight):
            try put("outcome", outcome)
            try put("exit_code", exitCode)
            try some("summary", summary)
            try some("duration_s", duration)
            try some("preflight", preflight)
        case .connectionLost(let node, let reason, let message):
            try put("node", node)
            try put("reason", reason)
            try put("message", message)
        case .reconnected(let node, let after, let commandState, let message):
            try put("node", node)
            try put("after_s", after)
            try put("command_state", commandState)
            try put("message", message)
        case .confirmationRequested(let node, let message):
            try put("node", node)
            try put("message", message)
        case .manualStepRequested(let node, let instruction, let assumedDone):
            try put("node", node)
            try put("instruction", instruction)
            try put("assumed_done", assumedDone)
        case .backupWritten(let node, let path, let bytes):
            try put("node", node)
            try put("path", path)
            try put("bytes", bytes)
        case .checkFinished(let check, let subject, let ok, let detail):
            try put("check", check)
            try put("subject", subject)
            try put("ok", ok)
            try put("detail", detail)
        case .note(let message):
            try put("message", message)
        case .fleetFinished(let clusters):
            try put("clusters", clusters)
        case .writeProbe(let report):
            try put("probe", report.probe)
            try put("probes", report.probes)
            try put("failed", report.failed)
            try put("failed_s", report.failedSeconds)
            try put("longest_s", report.longest?.seconds ?? 0)
            try put("windows", report.windows)
        }
    }

    /// Reads the event named by the object's `event`; a missing required field or an unknown name throws.
    public init(from decoder: any Decoder) throws {
        let fields = try decoder.container(keyedBy: Key.self)
        func get<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
            try fields.decode(T.self, forKey: Key(name))
        }
        func maybe<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T? {
            try fields.decodeIfPresent(T.self, forKey: Key(name))
        }
        let name = try fields.decode(String.self, forKey: .event)
        switch name {
        case "run_started":
            self = .runStarted(
                runID: try get("run_id"), playbook: try get("playbook"), cluster: try get("cluster"),
                targetVersion: try maybe("target_version"))
        case "step_started":
            self = .stepStarted(
                index: try get("index"), total: try maybe("total"), step: try get("step"), node: try get("node"),
                description: try maybe("description") ?? "")
        case "action_started":
            self = .actionStarted(node: try get("node"), step: try maybe("step") ?? "", command: try get("command"))
        case "output":
            self = .output(node: try get("node"), stream: try maybe("stream") ?? "stdout", line: try get("line"))
        case "command_finished":
            self = .commandFinished(
                node: try get("node"), command: try get("command"), exitStatus: try get("exit_status"),
                duration: try maybe("duration_s") ?? 0)
        case "wait_progress":
            self = .waitProgress(
                node: try get("node"), predicate: try get("predicate"), pending: try maybe("pending") ?? "",
                timeLeft: try maybe("time_left_s"))
        case "wait_finished":
            self = .waitFinished(
                node: try get("node"), predicate: try get("predicate"), ok: try maybe("ok") ?? false,
                duration: try maybe("duration_s") ?? 0, detail: try maybe("detail"), pending: try maybe("pending"))
        case "step_finished":
            self = .stepFinished(
                index: try get("index"), step: try get("step"), node: try get("node"), outcome: try get("outcome"),
                reason: try maybe("reason"), duration: try maybe("duration_s") ?? 0)
        case "run_finished":
            self = .runFinished(
                outcome: try get("outcome"), exitCode: try get("exit_code"), summary: try maybe("summary"),
                duration: try maybe("duration_s"), preflight: try maybe("preflight"))
        case "connection_lost":
            self = .connectionLost(
                node: try get("node"), reason: try maybe("reason") ?? "", message: try maybe("message") ?? "")
        case "reconnected":
            self = .reconnected(
                node: try get("node"), after: try maybe("after_s") ?? 0, commandState: try maybe("command_state"),
                message: try maybe("message") ?? "")
        case "confirmation_requested":
            self = .confirmationRequested(node: try get("node"), message: try get("message"))
        case "manual_step_requested":
            self = .manualStepRequested(
                node: try get("node"), instruction: try get("instruction"),
                assumedDone: try maybe("assumed_done") ?? false)
        case "backup_written":
            self = .backupWritten(node: try get("node"), path: try get("path"), bytes: try get("bytes"))
        case "check_finished":
            self = .checkFinished(
                check: try get("check"), subject: try get("subject"), ok: try get("ok"),
                detail: try maybe("detail") ?? "")
        case "note":
            self = .note(try get("message"))
        case "fleet_finished":
            self = .fleetFinished(clusters: try get("clusters"))
        case "write_probe":
            self = .writeProbe(
                WriteProbeReport(
                    probe: try get("probe"), probes: try get("probes"), failed: try get("failed"),
                    windows: try get("windows")))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .event, in: fields, debugDescription: "'\(name)' is not an event Drover writes")
        }
    }
}

extension Event: Codable {
    enum Key: String, CodingKey { case time, event, cluster }

    /// `time` (RFC 3339), `event`, `cluster` when known (a run's own `cluster` field wins), then its fields.
    public func encode(to encoder: any Encoder) throws {
        try kind.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(time, forKey: .time)
        try container.encode(name, forKey: .event)
        if case .runStarted = kind {
            // Its own `cluster` field is written already.
        } else if let cluster {
            try container.encode(cluster, forKey: .cluster)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.init(
            try RunEvent(from: decoder), time: try container.decode(Date.self, forKey: .time),
            cluster: try container.decodeIfPresent(String.self, forKey: .cluster))
    }
}
