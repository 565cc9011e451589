import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// The cluster's lock: an atomic `mkdir` of a lock directory on every backend, holding the run id,
/// user, workstation and start time, so two workstations cannot run against one cluster.
public enum ClusterLock {
    /// The lock directory on a node: beside the product's own state.
    public static func directory(for inventory: Inventory) -> String {
        TopologyRegistry.type(of: inventory.topology).lockDirectory
    }

    /// Where a run's node commands keep their records on each node (beside the lock): each command's output,
    /// exit status, pid and lock. Readable by root (the SSH user) only; kept 30 days.
    public static func recordsDirectory(for inventory: Inventory, runID: String) -> String {
        recordsRoot(for: inventory) + "/" + runID
    }

    /// The same for one node: a Chef Infra Server frontend keeps them beside its own state,
    /// `/var/opt/opscode/drover-runs/RUN_ID`.
    public static func recordsDirectory(for inventory: Inventory, node: String, runID: String) -> String {
        guard inventory.backend(named: node) == nil, inventory.frontends.contains(where: { $0.name == node }) else {
            return recordsDirectory(for: inventory, runID: runID)
        }
        return frontendRecordsRoot + "/" + runID
    }

    /// Where frontends keep node command records.
    public static let frontendRecordsRoot = "/var/opt/opscode/drover-runs"

    /// The parent of every run's records: `drover-runs` beside the lock directory.
    public static func recordsRoot(for inventory: Inventory) -> String {
        recordsRoot(besideLock: directory(for: inventory))
    }

    static func recordsRoot(besideLock directory: String) -> String {
        (directory as NSString).deletingLastPathComponent + "/drover-runs"
    }

    /// How long node command records are kept: older runs' records are removed when a lock is released.
    public static let recordsKeptDays = 30

    /// Prints the owner file of the lock in `directory`.
    public static func readCommand(_ directory: String) -> String { "cat \(directory)/owner" }

    /// The lock is held by another run.
    public struct Held: Error, Sendable {
        public var owner: LockOwner
    }

    /// The lock directory cannot be created on a node for another reason than being held: its parent is
    /// missing, the file system is read-only, permission is denied.
    public struct Unusable: LocalizedError, Sendable {
        public var node: String
        public var directory: String
        public var cause: String

        public var errorDescription: String? {
            "cannot take the cluster lock on \(node): cannot create \(directory): \(cause). "
                + "Fix that on \(node) (does \((directory as NSString).deletingLastPathComponent) exist, and may the SSH user write it? "
                + "ssh.sudo: true runs commands as root), then run again; nothing was changed"
        }
    }

    static func ownerText(runID: String) -> String {
        let host = ProcessInfo.processInfo.hostName
        return
            "run_id=\(runID)\nuser=\(UserAccount.name)\nhost=\(host)\nstarted=\(RFC3339.string(Date()))\npid=\(getpid())\n"
    }

    /// Takes the lock on every backend: the first in inventory order, then the others together. A lock
    /// already held by `runID` (a resumed run) is taken over. If another run holds it anywhere, the locks
    /// taken are released.
    ///
    /// A new run (`newRun`) also creates its records directory on each node it locks, so that a resume can
    /// tell a command that never started (its directory there, no record of it) from records gone (the
    /// directory pruned or the node rebuilt). A resumed run never creates it.
    public static func acquire(_ connection: ClusterConnection, runID: String, newRun: Bool = false) async throws {
        let owner = ShellQuote.quote(ownerText(runID: runID))
        let directory = directory(for: connection.inventory)
        // Never through a symbolic link planted at the records root (the node script refuses such a root too).
        let records =
            newRun
            ? "[ -L \(ShellQuote.quote(recordsRoot(for: connection.inventory))) ] || "
                + "(umask 077; mkdir -p \(ShellQuote.quote(recordsDirectory(for: connection.inventory, runID: runID)))) 2>/dev/null; "
            : ""
        // Nodes that cannot be reached cannot be locked (runbooks that start with a node down). The first node
        // decides between two runs that start together (each takes it first); the others are taken at once.
        let nodes = connection.connectedNames
        guard let first = nodes.first else { return }
        /// Takes the lock on one node: nil when taken (or already ours), else who holds it. One command: it
        /// creates the directory, or shows who holds it, or says why it cannot be created.
        @Sendable func take(_ node: String) async throws -> LockOwner? {
            let quoted = ShellQuote.quote(directory)
            // The lock and its owner in one step: a directory made beside it with the owner file in it, renamed
            // into place (a connection lost half-way leaves no lock without an owner). rename(2) fails when the
            // lock is there with an owner, and replaces an empty one (a lock an older drover left ownerless).
            let script =
                "umask 077; t=\(quoted).new.$$; if ! e=$(mkdir \"$t\" 2>&1); then echo \"drover-lock-error $e\"; "
                + "elif printf '%s' \(owner) > \"$t/owner\" && mv -T \"$t\" \(quoted) 2>/dev/null; then \(records)echo drover-lock-taken; "
                + "else rm -rf \"$t\"; if [ -d \(quoted) ]; then echo drover-lock-held; cat \(quoted)/owner 2>/dev/null; "
                + "else echo \"drover-lock-error cannot rename $t into place\"; fi; fi"
            let result = try await connection.run(node, script)
            let text = result.stdoutText
            if text.hasPrefix("drover-lock-taken") { return nil }
            if text.hasPrefix("drover-lock-error") || !text.hasPrefix("drover-lock-held") {
                let cause =
                    text.hasPrefix("drover-lock-error")
                    ? String(text.dropFirst("drover-lock-error".count)).trimmingCharacters(in: .whitespacesAndNewlines)
                    : (result.stderrText + text).trimmingCharacters(in: .whitespacesAndNewlines)
                throw Unusable(
                    node: node, directory: directory, cause: cause.isEmpty ? "exit status \(result.exitStatus)" : cause)
            }
            let ownerText = String(text.dropFirst("drover-lock-held".count))
            let holder = LockOwner.parse(ownerText, node: node)
            let ours = holder?.runID == runID
            let otherDroverRuns = ours && holder?.pid != getpid() ? await stillRuns(holder!) : false
            if ours && !otherDroverRuns {
                // Our own run's lock, left by its drover that was killed: take it over (never from a drover of
                // this run that still runs here: two would drive one cluster).
                _ = try await connection.run(node, "printf '%s' \(owner) > \(quoted)/owner")
                return nil
            }
            return holder ?? LockOwner.ownerless(node: node)
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

    /// True when `owner`'s drover still runs on this workstation (a /proc read, off the cooperative pool).
    static func stillRuns(_ owner: LockOwner) async -> Bool {
        let (pid, workstation) = (owner.pid, owner.workstation)
        return (try? await BlockingWork.run { LiveWork.processAlive(pid: pid, workstation: workstation) }) == true
    }

    static func releaseCommand(_ runID: String, directory: String) -> String {
        // Shell built-ins to read the owner; the old records are pruned in the background, so the release is
        // one process (`rm`) on the run's way out.
        "while IFS= read -r l; do [ \"$l\" != \(ShellQuote.quote("run_id=" + runID)) ] || { rm -rf \(directory); break; }; "
            + "done 2>/dev/null < \(directory)/owner; " + pruneCommand(recordsRoot(besideLock: directory))
    }

    /// Removes, in the background, the runs' records in `root` older than ``recordsKeptDays``.
    static func pruneCommand(_ root: String) -> String {
        "find \(ShellQuote.quote(root)) -mindepth 1 -maxdepth 1 -type d -mtime +\(recordsKeptDays) -exec rm -rf {} + "
            + "< /dev/null > /dev/null 2>&1 & true"
    }

    /// Releases the lock where `runID` holds it, and prunes old records there and on the connected frontends
    /// (which hold no lock but keep the records of their commands).
    public static func release(_ connection: ClusterConnection, runID: String) async {
        // A node whose session was lost is connected to again, so that its lock is not left behind.
        for node in connection.lostNodes.keys.sorted() { _ = await connection.reconnect(node) }
        let directory = directory(for: connection.inventory)
        await withTaskGroup(of: Void.self) { group in
            for node in connection.connectedNames {
                group.addTask {
                    _ = try? await connection.run(
                        node, releaseCommand(runID, directory: directory), timeout: .seconds(30))
                }
            }
            for frontend in connection.connectedFrontends {
                group.addTask {
                    _ = try? await connection.run(frontend, pruneCommand(frontendRecordsRoot), timeout: .seconds(30))
                }
            }
        }
    }

    /// The lock's owner on each node that has one (``LockOwner/ownerless(node:)`` for a lock directory whose
    /// owner file is missing or unreadable).
    public static func owners(_ connection: ClusterConnection) async -> [LockOwner] {
        var owners: [LockOwner] = []
        let directory = directory(for: connection.inventory)
        let read = readCommand(directory) + " 2>/dev/null; [ -d \(directory) ] && echo && echo drover-lock-present"
        for node in connection.connectedNames {
            guard let result = try? await connection.run(node, read, timeout: .seconds(30)), result.succeeded,
                result.stdoutText.contains("drover-lock-present")
            else { continue }
            owners.append(LockOwner.parse(result.stdoutText, node: node) ?? LockOwner.ownerless(node: node))
        }
        return owners
    }

    /// Removes, on every node, a lock directory that has no owner file; returns the nodes where one was.
    public static func clearOwnerless(_ connection: ClusterConnection) async -> [String] {
        let directory = ShellQuote.quote(directory(for: connection.inventory))
        let script =
            "if [ -d \(directory) ] && ! grep -qs '^run_id=' \(directory)/owner; then rm -rf \(directory) && echo cleared; fi"
        var cleared: [String] = []
        for node in connection.connectedNames {
            if let result = try? await connection.run(node, script, timeout: .seconds(30)),
                result.stdoutText.contains("cleared")
            {
                cleared.append(node)
            }
        }
        return cleared
    }
}
