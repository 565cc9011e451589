import Foundation

/// One command of a run's transcript (`transcript.jsonl`): where and what it ran, when, how it ended and what it
/// printed; written by the run's recorder and read back by the HTML report.
public struct TranscriptRecord: Sendable, Equatable {
    public var node: String
    public var command: String
    public var started: Date
    public var finished: Date
    public var exitStatus: Int?
    public var signal: String?
    public var stdout: String
    public var stderr: String
    /// Why Drover could not follow the command to its end, if it could not.
    public var error: String?
    /// Where the connection was lost and the command re-attached (its output is whole: nothing repeated).
    public var gaps: [String]

    public init(
        node: String, command: String, started: Date, finished: Date, exitStatus: Int?, signal: String?,
        stdout: String, stderr: String, error: String?, gaps: [String] = []
    ) {
        (self.node, self.command, self.started, self.finished) = (node, command, started, finished)
        (self.exitStatus, self.signal, self.stdout, self.stderr, self.error, self.gaps) = (
            exitStatus, signal, stdout, stderr, error, gaps
        )
    }

    public var succeeded: Bool { exitStatus == 0 && signal == nil && error == nil }

    /// The record as one JSON object (`connection_gaps` only when there were any).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "node": .string(node), "command": .string(command),
            "started": .string(RFC3339.string(started)), "finished": .string(RFC3339.string(finished)),
            "exit_status": exitStatus.map { .int($0) } ?? .null, "exit_signal": .optional(signal),
            "stdout": .string(stdout), "stderr": .string(stderr), "error": .optional(error),
        ]
        if !gaps.isEmpty { fields["connection_gaps"] = .array(gaps.map { .string($0) }) }
        return .object(fields)
    }

    /// Reads one line of a transcript; nil when it is not a command record.
    public init?(jsonLine: some StringProtocol) {
        guard case .object(let object)? = JSONValue(parsing: String(jsonLine)), let node = object["node"]?.string,
            let command = object["command"]?.string, let started = object["started"]?.string.flatMap(RFC3339.date),
            let finished = object["finished"]?.string.flatMap(RFC3339.date)
        else { return nil }
        var gaps: [String] = []
        if case .array(let values)? = object["connection_gaps"] { gaps = values.compactMap(\.string) }
        self.init(
            node: node, command: command, started: started, finished: finished, exitStatus: object["exit_status"]?.int,
            signal: object["exit_signal"]?.string, stdout: object["stdout"]?.string ?? "",
            stderr: object["stderr"]?.string ?? "", error: object["error"]?.string, gaps: gaps)
    }
}
