import Foundation

/// Who holds a cluster's lock, as its owner file says.
public struct LockOwner: Sendable, Equatable {
    public var node: String
    public var runID: String
    public var user: String
    public var workstation: String
    public var started: Date?

    public init(node: String, runID: String, user: String, workstation: String, started: Date?) {
        self.node = node
        self.runID = runID
        self.user = user
        self.workstation = workstation
        self.started = started
    }

    /// Parses the `key=value` lines of the owner file.
    public static func parse(_ text: String, node: String) -> LockOwner? {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        guard let runID = fields["run_id"] else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return LockOwner(
            node: node, runID: runID, user: fields["user"] ?? "?", workstation: fields["host"] ?? "?",
            started: fields["started"].flatMap(formatter.date))
    }

    /// `run 2026…-ab12cd (alice@laptop, started 2026-…, 12m ago)`.
    public var description: String {
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
