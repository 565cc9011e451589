import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// The cluster's lock: an atomic `mkdir` of a lock directory on every backend, holding the run id,
/// user, workstation and start time, so two workstations cannot run against one cluster.
public enum ClusterLock {
    /// The lock directory on a node: beside the product's own state.
    public static func directory(for inventory: Inventory) -> String {
        switch inventory.topology {
        case .chefBackend: return "/var/opt/chef-backend/drover.lock"
        case .drbdPair: return "/var/opt/opscode/drover.lock"
        }
    }

    /// Prints the owner file of the lock in `directory`.
    public static func readCommand(_ directory: String) -> String { "cat \(directory)/owner" }

    /// The lock is held by another run.
    public struct Held: Error, Sendable {
        public var owner: LockOwner
    }

    static func ownerText(runID: String) -> String {
        let host = ProcessInfo.processInfo.hostName
        return "run_id=\(runID)\nuser=\(UserAccount.name)\nhost=\(host)\nstarted=\(RFC3339.string(Date()))\npid=\(getpid())\n"
    }

    /// Takes the lock on every backend: the first in inventory order, then the others together. A lock
    /// already held by `runID` (a resumed run) is taken over. If another run holds it anywhere, the locks
    /// taken are released.
    public static func acquire(_ connection: ClusterConnection, runID: String) async throws {
        let owner = ShellQuote.quote(ownerText(runID: runID))
        let directory = directory(for: connection.inventory)
        let readCommand = readCommand(directory)
        // Nodes that cannot be reached cannot be locked (runbooks that start with a node down). The first node
        // decides between two runs that start together (each takes it first); the others are taken at once.
        let nodes = connection.connectedNames
        guard let first = nodes.first else { return }
        /// Takes the lock on one node: nil when taken (or already ours), else who holds it.
        @Sendable func take(_ node: String) async throws -> LockOwner? {
            let result = try await connection.run(node, "mkdir \(directory) 2>/dev/null && printf '%s' \(owner) > \(directory)/owner")
            if result.succeeded { return nil }
            let existing = try await connection.run(node, readCommand)
            let holder = LockOwner.parse(existing.stdoutText, node: node)
            if holder?.runID == runID {
                // Our own lock, left by a run that was killed: take it over.
                _ = try await connection.run(node, "printf '%s' \(owner) > \(directory)/owner")
                return nil
            }
            return holder ?? LockOwner(node: node, runID: "unknown", user: "?", workstation: "?", started: nil)
        }
        if let holder = try await take(first) { throw Held(owner: holder) }
        let others = try await withThrowingTaskGroup(of: (String, LockOwner?).self) { group in
            for node in nodes.dropFirst() {
                group.addTask {
                    // Awaited into a local first: a tuple formed across an await is miscompiled (swiftlang/swift#91911).
                    let holder = try await take(node)
                    return (node, holder)
                }
            }
            var found: [(String, LockOwner?)] = []
            for try await result in group { found.append(result) }
            return found
        }
        if let holder = others.compactMap(\.1).first {
            let taken = [first] + others.filter { $0.1 == nil }.map(\.0)
            for node in taken { _ = try? await connection.run(node, releaseCommand(runID, directory: directory)) }
            throw Held(owner: holder)
        }
    }

    static func releaseCommand(_ runID: String, directory: String) -> String {
        "grep -qx \(ShellQuote.quote("run_id=" + runID)) \(directory)/owner 2>/dev/null && rm -rf \(directory); true"
    }

    /// Releases the lock where `runID` holds it.
    public static func release(_ connection: ClusterConnection, runID: String) async {
        let directory = directory(for: connection.inventory)
        await withTaskGroup(of: Void.self) { group in
            for node in connection.connectedNames {
                group.addTask { _ = try? await connection.run(node, releaseCommand(runID, directory: directory), timeout: .seconds(30)) }
            }
        }
    }

    /// The lock's owner on each node that has one.
    public static func owners(_ connection: ClusterConnection) async -> [LockOwner] {
        var owners: [LockOwner] = []
        let readCommand = readCommand(directory(for: connection.inventory))
        for node in connection.connectedNames {
            guard let result = try? await connection.run(node, readCommand, timeout: .seconds(30)), result.succeeded,
                  let owner = LockOwner.parse(result.stdoutText, node: node) else { continue }
            owners.append(owner)
        }
        return owners
    }
}
