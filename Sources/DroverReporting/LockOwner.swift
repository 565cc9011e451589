import Foundation

/// Who holds a cluster's lock, as its owner file says.
public struct LockOwner: Sendable, Equatable {
    public var node: String
    public var runID: String
    public var user: String
    public var workstation: String
    public var started: Date?
    /// The process id of the drover that holds it, on `workstation`.
    public var pid: Int32?

    public init(node: String, runID: String, user: String, workstation: String, started: Date?, pid: Int32? = nil) {
        self.node = node
        self.runID = runID
        self.user = user
        self.workstation = workstation
        self.started = started
        self.pid = pid
    }

    /// A lock directory with no owner in it (a drover cut off between creating it and naming itself).
    public static func ownerless(node: String) -> LockOwner {
        LockOwner(node: node, runID: "", user: "?", workstation: "?", started: nil)
    }

    public var isOwnerless: Bool { runID.isEmpty }

    /// Parses the `key=value` lines of the owner file.
    public static func parse(_ text: String, node: String) -> LockOwner? {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        // What another drover wrote is shown, never obeyed: no control sequence reaches the terminal, and a run
        // id is only what Drover makes one of.
        guard let runID = fields["run_id"], !runID.isEmpty, runID.count <= 64,
            runID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func field(_ key: String) -> String {
            fields[key].map { TerminalText.readable(String($0.prefix(256))) } ?? "?"
        }
        return LockOwner(
            node: node, runID: runID, user: field("user"), workstation: field("host"),
            started: fields["started"].flatMap(formatter.date), pid: fields["pid"].flatMap { Int32($0) })
    }

    /// `run 2026…-ab12cd (alice@laptop, started 2026-…, 12m ago)`.
    public var description: String {
        if isOwnerless { return "a lock without an owner (a drover cut off while taking it)" }
        let age = started.map { " \(Self.age(Date().timeIntervalSince($0))) ago" } ?? ""
        return
            "run \(runID) (\(user)@\(workstation), started \(started.map(RFC3339.string) ?? "at an unknown time")\(age.isEmpty ? "" : ",\(age)"))"
    }

    static func age(_ seconds: TimeInterval) -> String {
        let value = Int(seconds)
        if value < 120 { return "\(value)s" }
        if value < 7200 { return "\(value / 60)m" }
        return "\(value / 3600)h \(value % 3600 / 60)m"
    }
}

extension LockOwner {
    /// Locks as a JSON array of `node`, `run_id`, `user`, `workstation`.
    public static func json(_ locks: [LockOwner]) -> JSONValue {
        .array(
            locks.map {
                .object([
                    "node": .string($0.node), "run_id": .string($0.runID), "user": .string($0.user),
                    "workstation": .string($0.workstation),
                ])
            })
    }
}
