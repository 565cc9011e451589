import Foundation

/// What happened during a run, one case per event with its typed fields: the single source of the JSON
/// Lines (`--json`, `events.jsonl`), the console, a fleet's table and the HTML report's waits.
///
/// Each case's JSON fields are the documented schema (README, "JSON output"); ``fields`` writes them and
/// ``init(name:fields:)`` reads them back, so a field renamed on one side fails the round-trip tests.
public enum RunEvent: Sendable, Equatable {
    /// How a step ended.
    public enum StepOutcome: String, Sendable, Codable {
        case succeeded, skipped, failed, interrupted
    }

    /// How a run ended.
    public enum RunOutcome: String, Sendable, Codable {
        case succeeded, failed, refused, interrupted
    }

    case runStarted(runID: String, playbook: String, cluster: String, targetVersion: String?)
    /// `total`: how many steps the run expects in all (its plan's count of step and node pairs), when known.
    case stepStarted(index: Int, total: Int?, step: String, node: String, description: String)
    /// One command of a step starts on its node (human output and transcripts only).
    case actionStarted(node: String, step: String, command: String)
    /// A line a command printed (`stream`: `stdout` or `stderr`; human output only).
    case output(node: String, stream: String, line: String)
    case commandFinished(node: String, command: String, exitStatus: Int, duration: Double)
    /// The criteria of a wait that do not hold yet, whenever they change, and how long the wait may still take.
    case waitProgress(node: String, predicate: String, pending: String, timeLeft: Double?)
    /// `detail` says what a wait that held saw (a resync's progress); `pending` what did not hold.
    case waitFinished(node: String, predicate: String, ok: Bool, duration: Double, detail: String?, pending: String?)
    case stepFinished(
        index: Int, step: String, node: String, outcome: StepOutcome, reason: String?, duration: Double)
    /// `preflight` lists the failed checks of a refused run; `duration` is nil when no step ran.
    case runFinished(
        outcome: RunOutcome, exitCode: Int, summary: String?, duration: Double?, preflight: [String]?)
    /// A node command's session was lost; Drover reconnects (the command runs on).
    case connectionLost(node: String, reason: String, message: String)
    /// Connected again after `after` seconds; `commandState` is what the command's record showed (nil after a
    /// reading, when no command was followed).
    case reconnected(node: String, after: Double, commandState: String?, message: String)
    /// An operator is asked to confirm a destructive step on `node` (`confirm:`); `message` is the playbook's.
    case confirmationRequested(node: String, message: String)
    /// A manual step (`manual:`) for the operator on `node`; `assumedDone` when `--assume-done` took it as done.
    case manualStepRequested(node: String, instruction: String, assumedDone: Bool)
    /// The backup taken before the run's first change: where it lies on `node`, and its size.
    case backupWritten(node: String, path: String, bytes: Int)
    /// What one subject of a playbook's `check:` answered (a frontend's `/_status`).
    case checkFinished(check: String, subject: String, ok: Bool, detail: String)
    /// Something a person should read (human output only).
    case note(String)
    /// Several clusters' runs ended (`drover ... --json` over a fleet): one object per cluster.
    case fleetFinished(clusters: [FleetClusterOutcome])
    /// What the inventory's write probe saw during the run (just before `run_finished`).
    case writeProbe(WriteProbeReport)

    /// One cluster of a fleet, as `fleet_finished` lists it.
    public struct FleetClusterOutcome: Sendable, Equatable {
        public var cluster: String
        public var inventory: String
        public var outcome: String
        public var exitCode: Int?
        public var runID: String?

        public init(cluster: String, inventory: String, outcome: String, exitCode: Int?, runID: String?) {
            self.cluster = cluster
            self.inventory = inventory
            self.outcome = outcome
            self.exitCode = exitCode
            self.runID = runID
        }

        var json: JSONValue {
            .object([
                "cluster": .string(cluster), "inventory": .string(inventory), "outcome": .string(outcome),
                "exit_code": exitCode.map { .int($0) } ?? .null, "run_id": .optional(runID),
            ])
        }

        init?(_ value: JSONValue) {
            guard case .object(let object) = value, let cluster = object["cluster"]?.string,
                let inventory = object["inventory"]?.string, let outcome = object["outcome"]?.string
            else { return nil }
            self.init(
                cluster: cluster, inventory: inventory, outcome: outcome, exitCode: object["exit_code"]?.int,
                runID: object["run_id"]?.string)
        }
    }

    /// The events of the documented schema: `--json` prints these and `events.jsonl` records them.
    public static let documentedNames: Set<String> = [
        "run_started", "step_started", "command_finished", "wait_progress", "wait_finished", "step_finished",
        "run_finished", "connection_lost", "reconnected", "write_probe", "confirmation_requested",
        "manual_step_requested", "backup_written", "check_finished",
    ]

    /// True for the events of the documented schema.
    public var isDocumented: Bool { Self.documentedNames.contains(name) }

    /// The event's name in JSON (`event`).
    public var name: String {
        switch self {
        case .runStarted: return "run_started"
        case .stepStarted: return "step_started"
        case .actionStarted: return "action_started"
        case .output: return "output"
        case .commandFinished: return "command_finished"
        case .waitProgress: return "wait_progress"
        case .waitFinished: return "wait_finished"
        case .stepFinished: return "step_finished"
        case .runFinished: return "run_finished"
        case .connectionLost: return "connection_lost"
        case .reconnected: return "reconnected"
        case .confirmationRequested: return "confirmation_requested"
        case .manualStepRequested: return "manual_step_requested"
        case .backupWritten: return "backup_written"
        case .checkFinished: return "check_finished"
        case .note: return "note"
        case .fleetFinished: return "fleet_finished"
        case .writeProbe: return "write_probe"
        }
    }

    /// The node the event is about, if any.
    public var node: String? {
        switch self {
        case .stepStarted(_, _, _, let node, _), .actionStarted(let node, _, _), .output(let node, _, _),
            .commandFinished(let node, _, _, _), .waitProgress(let node, _, _, _),
            .waitFinished(let node, _, _, _, _, _), .stepFinished(_, _, let node, _, _, _),
            .connectionLost(let node, _, _), .reconnected(let node, _, _, _), .confirmationRequested(let node, _),
            .manualStepRequested(let node, _, _), .backupWritten(let node, _, _):
            return node
        case .runStarted, .runFinished, .note, .fleetFinished, .writeProbe, .checkFinished: return nil
        }
    }

    /// The event's JSON fields (without `time`, `event` and `cluster`).
    public var fields: [String: JSONValue] {
        switch self {
        case .runStarted(let runID, let playbook, let cluster, let targetVersion):
            return [
                "run_id": .string(runID), "playbook": .string(playbook), "cluster": .string(cluster),
                "target_version": .optional(targetVersion),
            ]
        case .stepStarted(let index, let total, let step, let node, let description):
            var fields: [String: JSONValue] = [
                "index": .int(index), "step": .string(step), "node": .string(node), "description": .string(description),
            ]
            if let total { fields["total"] = .int(total) }
            return fields
        case .actionStarted(let node, let step, let command):
            return ["node": .string(node), "step": .string(step), "command": .string(command)]
        case .output(let node, let stream, let line):
            return ["node": .string(node), "stream": .string(stream), "line": .string(line)]
        case .commandFinished(let node, let command, let exitStatus, let duration):
            return [
                "node": .string(node), "command": .string(command), "exit_status": .int(exitStatus),
                "duration_s": .double(duration),
            ]
        case .waitProgress(let node, let predicate, let pending, let timeLeft):
            var fields: [String: JSONValue] = [
                "node": .string(node), "predicate": .string(predicate), "pending": .string(pending),
            ]
            if let timeLeft { fields["time_left_s"] = .double(timeLeft) }
            return fields
        case .waitFinished(let node, let predicate, let ok, let duration, let detail, let pending):
            var fields: [String: JSONValue] = [
                "node": .string(node), "predicate": .string(predicate), "ok": .bool(ok),
                "duration_s": .double(duration),
            ]
            if ok { fields["detail"] = .optional(detail) } else if let detail { fields["detail"] = .string(detail) }
            if let pending { fields["pending"] = .string(pending) }
            return fields
        case .stepFinished(let index, let step, let node, let outcome, let reason, let duration):
            var fields: [String: JSONValue] = [
                "index": .int(index), "step": .string(step), "node": .string(node),
                "outcome": .string(outcome.rawValue), "duration_s": .double(duration),
            ]
            if let reason { fields["reason"] = .string(reason) }
            return fields
        case .runFinished(let outcome, let exitCode, let summary, let duration, let preflight):
            var fields: [String: JSONValue] = ["outcome": .string(outcome.rawValue), "exit_code": .int(exitCode)]
            if let summary { fields["summary"] = .string(summary) }
            if let duration { fields["duration_s"] = .double(duration) }
            if let preflight { fields["preflight"] = .array(preflight.map { .string($0) }) }
            return fields
        case .connectionLost(let node, let reason, let message):
            return ["node": .string(node), "reason": .string(reason), "message": .string(message)]
        case .reconnected(let node, let after, let commandState, let message):
            return [
                "node": .string(node), "after_s": .double(after), "command_state": .optional(commandState),
                "message": .string(message),
            ]
        case .confirmationRequested(let node, let message):
            return ["node": .string(node), "message": .string(message)]
        case .manualStepRequested(let node, let instruction, let assumedDone):
            return ["node": .string(node), "instruction": .string(instruction), "assumed_done": .bool(assumedDone)]
        case .backupWritten(let node, let path, let bytes):
            return ["node": .string(node), "path": .string(path), "bytes": .int(bytes)]
        case .checkFinished(let check, let subject, let ok, let detail):
            return ["check": .string(check), "subject": .string(subject), "ok": .bool(ok), "detail": .string(detail)]
        case .note(let message):
            return ["message": .string(message)]
        case .fleetFinished(let clusters):
            return ["clusters": .array(clusters.map(\.json))]
        case .writeProbe(let report):
            return [
                "probe": .string(report.probe), "probes": .int(report.probes), "failed": .int(report.failed),
                "failed_s": .double(report.failedSeconds), "longest_s": .double(report.longest?.seconds ?? 0),
                "windows": .array(
                    report.windows.map {
                        .object([
                            "from": .string(RFC3339.string($0.from)), "to": .string(RFC3339.string($0.to)),
                            "open": .bool($0.open),
                        ])
                    }),
            ]
        }
    }

    /// Reads an event back from its name and JSON fields; nil for an unknown name or a missing field.
    public init?(name: String, fields: [String: JSONValue]) {
        func string(_ key: String) -> String? { fields[key]?.string }
        func number(_ key: String) -> Double? { fields[key]?.double }
        switch name {
        case "run_started":
            guard let runID = string("run_id"), let playbook = string("playbook"), let cluster = string("cluster")
            else { return nil }
            self = .runStarted(
                runID: runID, playbook: playbook, cluster: cluster, targetVersion: string("target_version"))
        case "step_started":
            guard let index = fields["index"]?.int, let step = string("step"), let node = string("node") else {
                return nil
            }
            self = .stepStarted(
                index: index, total: fields["total"]?.int, step: step, node: node,
                description: string("description") ?? "")
        case "action_started":
            guard let node = string("node"), let command = string("command") else { return nil }
            self = .actionStarted(node: node, step: string("step") ?? "", command: command)
        case "output":
            guard let node = string("node"), let line = string("line") else { return nil }
            self = .output(node: node, stream: string("stream") ?? "stdout", line: line)
        case "command_finished":
            guard let node = string("node"), let command = string("command"), let status = fields["exit_status"]?.int
            else { return nil }
            self = .commandFinished(
                node: node, command: command, exitStatus: status, duration: number("duration_s") ?? 0)
        case "wait_progress":
            guard let node = string("node"), let predicate = string("predicate") else { return nil }
            self = .waitProgress(
                node: node, predicate: predicate, pending: string("pending") ?? "", timeLeft: number("time_left_s"))
        case "wait_finished":
            guard let node = string("node"), let predicate = string("predicate") else { return nil }
            self = .waitFinished(
                node: node, predicate: predicate, ok: fields["ok"] == .bool(true), duration: number("duration_s") ?? 0,
                detail: string("detail"), pending: string("pending"))
        case "step_finished":
            guard let index = fields["index"]?.int, let step = string("step"), let node = string("node"),
                let outcome = string("outcome").flatMap(StepOutcome.init(rawValue:))
            else { return nil }
            self = .stepFinished(
                index: index, step: step, node: node, outcome: outcome, reason: string("reason"),
                duration: number("duration_s") ?? 0)
        case "run_finished":
            guard let outcome = string("outcome").flatMap(RunOutcome.init(rawValue:)),
                let exitCode = fields["exit_code"]?.int
            else { return nil }
            var preflight: [String]?
            if case .array(let values)? = fields["preflight"] { preflight = values.compactMap(\.string) }
            self = .runFinished(
                outcome: outcome, exitCode: exitCode, summary: string("summary"), duration: number("duration_s"),
                preflight: preflight)
        case "connection_lost":
            guard let node = string("node") else { return nil }
            self = .connectionLost(node: node, reason: string("reason") ?? "", message: string("message") ?? "")
        case "reconnected":
            guard let node = string("node") else { return nil }
            self = .reconnected(
                node: node, after: number("after_s") ?? 0, commandState: string("command_state"),
                message: string("message") ?? "")
        case "confirmation_requested":
            guard let node = string("node"), let message = string("message") else { return nil }
            self = .confirmationRequested(node: node, message: message)
        case "manual_step_requested":
            guard let node = string("node"), let instruction = string("instruction") else { return nil }
            self = .manualStepRequested(
                node: node, instruction: instruction, assumedDone: fields["assumed_done"]?.bool ?? false)
        case "backup_written":
            guard let node = string("node"), let path = string("path"), let bytes = fields["bytes"]?.int else {
                return nil
            }
            self = .backupWritten(node: node, path: path, bytes: bytes)
        case "check_finished":
            guard let check = string("check"), let subject = string("subject"), let ok = fields["ok"]?.bool else {
                return nil
            }
            self = .checkFinished(check: check, subject: subject, ok: ok, detail: string("detail") ?? "")
        case "note":
            guard let message = string("message") else { return nil }
            self = .note(message)
        case "fleet_finished":
            guard case .array(let values)? = fields["clusters"] else { return nil }
            self = .fleetFinished(clusters: values.compactMap(FleetClusterOutcome.init))
        case "write_probe":
            guard let probe = string("probe"), let probes = fields["probes"]?.int, let failed = fields["failed"]?.int,
                case .array(let values)? = fields["windows"]
            else { return nil }
            let windows = values.compactMap { value -> WriteProbeReport.Window? in
                guard case .object(let window) = value, let from = window["from"]?.string.flatMap(RFC3339.date),
                    let to = window["to"]?.string.flatMap(RFC3339.date)
                else { return nil }
                return WriteProbeReport.Window(from: from, to: to, open: window["open"]?.bool ?? false)
            }
            self = .writeProbe(WriteProbeReport(probe: probe, probes: probes, failed: failed, windows: windows))
        default:
            return nil
        }
    }

    /// The same event with every text passed through `transform` (redaction); numbers, flags and outcomes
    /// are kept.
    public func mapTexts(_ t: (String) -> String) -> RunEvent {
        switch self {
        case .runStarted(let runID, let playbook, let cluster, let targetVersion):
            return .runStarted(
                runID: t(runID), playbook: t(playbook), cluster: t(cluster), targetVersion: targetVersion.map(t))
        case .stepStarted(let index, let total, let step, let node, let description):
            return .stepStarted(index: index, total: total, step: t(step), node: t(node), description: t(description))
        case .actionStarted(let node, let step, let command):
            return .actionStarted(node: t(node), step: t(step), command: t(command))
        case .output(let node, let stream, let line):
            return .output(node: t(node), stream: t(stream), line: t(line))
        case .commandFinished(let node, let command, let exitStatus, let duration):
            return .commandFinished(node: t(node), command: t(command), exitStatus: exitStatus, duration: duration)
        case .waitProgress(let node, let predicate, let pending, let timeLeft):
            return .waitProgress(node: t(node), predicate: t(predicate), pending: t(pending), timeLeft: timeLeft)
        case .waitFinished(let node, let predicate, let ok, let duration, let detail, let pending):
            return .waitFinished(
                node: t(node), predicate: t(predicate), ok: ok, duration: duration, detail: detail.map(t),
                pending: pending.map(t))
        case .stepFinished(let index, let step, let node, let outcome, let reason, let duration):
            return .stepFinished(
                index: index, step: t(step), node: t(node), outcome: outcome, reason: reason.map(t), duration: duration)
        case .runFinished(let outcome, let exitCode, let summary, let duration, let preflight):
            return .runFinished(
                outcome: outcome, exitCode: exitCode, summary: summary.map(t), duration: duration,
                preflight: preflight?.map(t))
        case .connectionLost(let node, let reason, let message):
            return .connectionLost(node: t(node), reason: t(reason), message: t(message))
        case .reconnected(let node, let after, let commandState, let message):
            return .reconnected(node: t(node), after: after, commandState: commandState.map(t), message: t(message))
        case .confirmationRequested(let node, let message):
            return .confirmationRequested(node: t(node), message: t(message))
        case .manualStepRequested(let node, let instruction, let assumedDone):
            return .manualStepRequested(node: t(node), instruction: t(instruction), assumedDone: assumedDone)
        case .backupWritten(let node, let path, let bytes):
            return .backupWritten(node: t(node), path: t(path), bytes: bytes)
        case .checkFinished(let check, let subject, let ok, let detail):
            return .checkFinished(check: t(check), subject: t(subject), ok: ok, detail: t(detail))
        case .note(let message):
            return .note(t(message))
        case .fleetFinished(let clusters):
            return .fleetFinished(
                clusters: clusters.map {
                    FleetClusterOutcome(
                        cluster: t($0.cluster), inventory: t($0.inventory), outcome: t($0.outcome),
                        exitCode: $0.exitCode,
                        runID: $0.runID.map(t))
                })
        case .writeProbe(var report):
            report.probe = t(report.probe)
            return .writeProbe(report)
        }
    }
}

extension JSONValue {
    /// The text of a `.string`.
    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// An `.int`, or a `.double` with no fraction.
    public var int: Int? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value: return Int(value)
        default: return nil
        }
    }

    /// The elements of an `.array`.
    public var array: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// The value of a `.bool`.
    public var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// A number, whole or not.
    public var double: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }
}
