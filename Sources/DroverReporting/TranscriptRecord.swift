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
    public var json: JSONValue { JSONRecord.value(self) }

    /// Reads one line of a transcript; nil when it is not a command record.
    public init?(jsonLine: some StringProtocol) {
        guard let record = JSONRecord.decode(Self.self, line: jsonLine) else { return nil }
        self = record
    }
}

extension TranscriptRecord: Codable {
    enum CodingKeys: String, CodingKey {
        case node, command, started, finished, stdout, stderr, error
        case exitStatus = "exit_status"
        case signal = "exit_signal"
        case gaps = "connection_gaps"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            node: try container.decode(String.self, forKey: .node),
            command: try container.decode(String.self, forKey: .command),
            started: try container.decode(Date.self, forKey: .started),
            finished: try container.decode(Date.self, forKey: .finished),
            exitStatus: try container.decodeIfPresent(Int.self, forKey: .exitStatus),
            signal: try container.decodeIfPresent(String.self, forKey: .signal),
            stdout: try container.decodeIfPresent(String.self, forKey: .stdout) ?? "",
            stderr: try container.decodeIfPresent(String.self, forKey: .stderr) ?? "",
            error: try container.decodeIfPresent(String.self, forKey: .error),
            gaps: try container.decodeIfPresent([String].self, forKey: .gaps) ?? [])
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(node, forKey: .node)
        try container.encode(command, forKey: .command)
        try container.encode(started, forKey: .started)
        try container.encode(finished, forKey: .finished)
        try container.encode(exitStatus, forKey: .exitStatus)
        try container.encode(signal, forKey: .signal)
        try container.encode(stdout, forKey: .stdout)
        try container.encode(stderr, forKey: .stderr)
        try container.encode(error, forKey: .error)
        if !gaps.isEmpty { try container.encode(gaps, forKey: .gaps) }
    }
}
