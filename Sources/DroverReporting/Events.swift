import Foundation

/// Drover's exit codes, the same for every command (README, `drover --help`).
public enum ExitStatus: Int32, Sendable {
    case success = 0
    /// A step failed after changes began; the cluster needs attention.
    case failedAfterChanges = 1
    /// Refused before any change: pre-flight failed, unreachable node, host key problem.
    case refused = 2
    /// Another run holds the cluster's lock.
    case locked = 3
    /// Usage error or invalid input (inventory, playbook, arguments).
    case usage = 64
    case interrupted = 130
}

/// One thing that happened during a run, when, and in which cluster; `--json` prints each documented one as
/// one JSON line.
public struct Event: Sendable, Equatable {
    public var kind: RunEvent
    public var time: Date
    /// The cluster the run belongs to, when the event is printed among other clusters' (a fleet, `--json`).
    public var cluster: String?

    public init(_ kind: RunEvent, time: Date = Date(), cluster: String? = nil) {
        self.kind = kind
        self.time = time
        self.cluster = cluster
    }

    /// The event name (`event` in JSON).
    public var name: String { kind.name }

    /// The event as one JSON object: `time` (RFC 3339), `event`, `cluster` when known, then its fields.
    public var json: JSONValue { JSONRecord.value(self) }

    public var jsonLine: String { json.serialized }

    /// Reads one JSON line written by ``jsonLine``; nil when it is not such an event.
    public init?(jsonLine: some StringProtocol) {
        guard let event = JSONRecord.decode(Event.self, line: jsonLine) else { return nil }
        self = event
    }
}

/// A JSON value for events, plans and status output.
public enum JSONValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral
{
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    public static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }

    /// Compact JSON with sorted keys.
    public var serialized: String {
        switch self {
        case .string(let value): return Self.quote(value)
        case .int(let value): return String(value)
        case .double(let value): return value.isFinite ? String(format: "%.3f", value) : "null"
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array(let values): return "[" + values.map(\.serialized).joined(separator: ",") + "]"
        case .object(let object):
            return "{"
                + object.keys.sorted().map { Self.quote($0) + ":" + object[$0]!.serialized }.joined(separator: ",")
                + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case let c where c.value < 0x20: result += String(format: "\\u%04x", c.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

/// RFC 3339 timestamps with milliseconds, in UTC.
public enum RFC3339 {
    public static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    /// Reads a timestamp with or without fractional seconds.
    public static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

/// Receives a run's events.
public protocol Reporter: Sendable {
    func emit(_ event: Event)
}

/// Prints events as JSON Lines on stdout (and nothing else there): only the documented events.
public final class JSONLinesReporter: Reporter {
    private let lock = NSLock()

    /// Where its events go: the process's stdout, or the sink of the task that made it (a fleet's cluster).
    private let sink: (any OutputSink)?

    /// The cluster every event names (`cluster`), so that the events of several runs can be told apart.
    private let cluster: String?

    public init(cluster: String? = nil) {
        sink = Output.sink
        self.cluster = cluster
    }

    public func emit(_ event: Event) {
        guard event.kind.isDocumented else { return }
        var event = event
        if event.cluster == nil { event.cluster = cluster }
        if let sink { return sink.event(event, rendered: event.jsonLine + "\n") }
        lock.withLock { Output.stdout(event.jsonLine + "\n") }
    }
}

/// Where a task's output goes instead of the process's standard streams: one cluster of a fleet, whose
/// console shows every cluster its own way (a live table, prefixed lines, JSON with `cluster`).
public protocol OutputSink: Sendable {
    /// Text a command prints (`Output.stdout` / `Output.stderr`).
    func write(_ text: String, standardError: Bool)
    /// An event a reporter emits, with the text the reporter would have printed for it.
    func event(_ event: Event, rendered: String)
}

/// Writes to stdout and stderr without buffering surprises between the two.
public enum Output {
    /// The sink of the current task, when it runs one cluster of several (set by the fleet).
    @TaskLocal public static var sink: (any OutputSink)?

    public static func stdout(_ text: String) {
        if let sink { return sink.write(text, standardError: false) }
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    public static func stderr(_ text: String) {
        if let sink { return sink.write(text, standardError: true) }
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// A diagnostic for people, the one way commands report a problem or a note: `drover: MESSAGE` on stderr
    /// (MESSAGE may begin with `note: ` or `warning: `; no trailing newline).
    public static func diagnostic(_ message: String) {
        // Messages quote inventories, nodes and lock owners: no control sequence of theirs reaches the terminal.
        stderr("drover: \(TerminalText.readableLines(message))\n")
    }

    /// The process's own streams, whatever the task's sink (a fleet's console writes there).
    public static func standardStream(_ text: String, standardError: Bool) {
        (standardError ? FileHandle.standardError : FileHandle.standardOutput).write(Data(text.utf8))
    }

    /// True when colour may be used on the given stream: a terminal, NO_COLOR unset, and not one cluster of
    /// a fleet (whose console decides).
    public static func colour(fd: Int32) -> Bool {
        sink == nil && isatty(fd) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }
}
