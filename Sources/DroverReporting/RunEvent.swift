import Foundation

/// What happened during a run, one case per event with its typed fields: the single source of the JSON
/// Lines (`--json`, `events.jsonl`), the console, a fleet's table and the HTML report's waits.
///
/// Each case's JSON fields are the documented schema (README, "JSON output"), written and read back by its
/// `Codable` conformance (`RunEvent+Codable.swift`), so a field renamed on one side fails the round-trip tests.
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
    public struct FleetClusterOutcome: Sendable, Equatable, Codable {
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

        enum CodingKeys: String, CodingKey {
            case cluster, inventory, outcome
            case exitCode = "exit_code"
            case runID = "run_id"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(cluster, forKey: .cluster)
            try container.encode(inventory, forKey: .inventory)
            try container.encode(outcome, forKey: .outcome)
            try container.encode(exitCode, forKey: .exitCode)
            try container.encode(runID, forKey: .runID)
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
