import DroverReporting
import DroverSSH
import Foundation

/// Who holds a cluster's lock, as its owner file says.
public struct LockOwner: Sendable, Equatable {
    public var node: String
    public var runID: String
    public var user: String
    public var workstation: String
    public var started: Date?

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
        return LockOwner(node: node, runID: runID, user: fields["user"] ?? "?", workstation: fields["host"] ?? "?",
                         started: fields["started"].flatMap(formatter.date))
    }

    /// `run 2026…-ab12cd (alice@laptop, started 2026-…, 12m ago)`.
    public var description: String {
        let age = started.map { " \(Self.age(Date().timeIntervalSince($0))) ago" } ?? ""
        return "run \(runID) (\(user)@\(workstation), started \(started.map(RFC3339.string) ?? "at an unknown time")\(age.isEmpty ? "" : ",\(age)"))"
    }

    static func age(_ seconds: TimeInterval) -> String {
        let value = Int(seconds)
        if value < 120 { return "\(value)s" }
        if value < 7200 { return "\(value / 60)m" }
        return "\(value / 3600)h \(value % 3600 / 60)m"
    }
}

/// The cluster's lock: an atomic `mkdir` of a lock directory on every backend, holding the run id,
/// user, workstation and start time, so two workstations cannot run against one cluster.
public enum ClusterLock {
    public static let directory = "/var/opt/chef-backend/drover.lock"
    public static let readCommand = "cat \(directory)/owner"

    /// The lock is held by another run.
    public struct Held: Error, Sendable {
        public var owner: LockOwner
    }

    static func ownerText(runID: String) -> String {
        let host = ProcessInfo.processInfo.hostName
        return "run_id=\(runID)\nuser=\(UserAccount.name)\nhost=\(host)\nstarted=\(RFC3339.string(Date()))\npid=\(getpid())\n"
    }

    /// Takes the lock on every backend, in inventory order. A lock already held by `runID` (a resumed
    /// run) is taken over. If another run holds it anywhere, the locks taken so far are released.
    public static func acquire(_ connection: ClusterConnection, runID: String) async throws {
        var taken: [String] = []
        let owner = ShellQuote.quote(ownerText(runID: runID))
        for node in connection.inventory.backends.map(\.name) {
            let result = try await connection.run(node, "mkdir \(directory) 2>/dev/null && printf '%s' \(owner) > \(directory)/owner")
            if result.succeeded {
                taken.append(node)
                continue
            }
            let existing = try await connection.run(node, readCommand)
            let holder = LockOwner.parse(existing.stdoutText, node: node)
            if holder?.runID == runID {
                // Our own lock, left by a run that was killed: take it over.
                _ = try await connection.run(node, "printf '%s' \(owner) > \(directory)/owner")
                continue
            }
            for node in taken { _ = try? await connection.run(node, releaseCommand(runID)) }
            throw Held(owner: holder ?? LockOwner(node: node, runID: "unknown", user: "?", workstation: "?", started: nil))
        }
    }

    static func releaseCommand(_ runID: String) -> String {
        "grep -qx \(ShellQuote.quote("run_id=" + runID)) \(directory)/owner 2>/dev/null && rm -rf \(directory); true"
    }

    /// Releases the lock where `runID` holds it.
    public static func release(_ connection: ClusterConnection, runID: String) async {
        for node in connection.connectedNames {
            _ = try? await connection.run(node, releaseCommand(runID), timeout: .seconds(30))
        }
    }

    /// The lock's owner on each node that has one.
    public static func owners(_ connection: ClusterConnection) async -> [LockOwner] {
        var owners: [LockOwner] = []
        for node in connection.connectedNames {
            guard let result = try? await connection.run(node, readCommand, timeout: .seconds(30)), result.succeeded,
                  let owner = LockOwner.parse(result.stdoutText, node: node) else { continue }
            owners.append(owner)
        }
        return owners
    }
}
