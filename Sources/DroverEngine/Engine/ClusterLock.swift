import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// The cluster's lock: an atomic `mkdir` of a lock directory on every backend, holding the run id,
/// user, workstation and start time, so two workstations cannot run against one cluster.
public enum ClusterLock {
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

    /// The lock could not be held on enough of the backends (too few of them reachable).
    public struct NoMajority: LocalizedError, Sendable {
        public var held: [String]
        public var unreachable: [String]
        public var required: Int

        public var errorDescription: String? {
            "cannot hold the cluster lock on a majority of the backends (\(required) of \(held.count + unreachable.count)): "
                + (held.isEmpty
                    ? "no backend could be locked" : "it could be taken on \(held.joined(separator: ", ")) only")
                + ", and \(unreachable.joined(separator: ", ")) cannot be reached. A second workstation that reaches them "
                + "could take it too. Make them reachable (drover diagnose says why they are not), then run again; "
                + "a runbook made for lost nodes (pre-flight none) starts with fewer. Nothing was changed"
        }
    }

    /// How long a lock command may take on a node (a half-open session must not stall a run for the command
    /// timeout).
    static let commandTimeout: Duration = .seconds(30)

    /// How many backends make a majority of `inventory`'s.
    public static func majority(of inventory: Inventory) -> Int { inventory.backends.count / 2 + 1 }

    /// Takes the lock on every connected backend: the first in inventory order, then the others together. A
    /// lock already held by `runID` (a resumed run) is taken over only when its drover is gone. If another run
    /// holds it anywhere, fewer than `minimum` backends could be locked or a node cannot take it, the locks this
    /// call created are removed again (those taken over from an earlier attempt of the run stay, for its resume).
    ///
    /// A new run (`newRun`) also creates its records directory on each node it locks, so that a resume can
    /// tell a command that never started (its directory there, no record of it) from records gone (the
    /// directory pruned or the node rebuilt). A resumed run never creates it.
    ///
    /// Returns the lock as held, to be checked before each change and taken on nodes as they reconnect.
    ///
    /// `tolerateUnusable`: a node where the lock cannot be created (a replacement host not provisioned yet) is
    /// left unlocked instead of refusing the run, for runbooks made for lost nodes; it is taken there at the
    /// first change that reaches it (which it must hold before anything changes it).
    public static func acquire(
        _ connection: any NodeTransport, runID: String, newRun: Bool = false, minimum: Int = 1,
        tolerateUnusable: Bool = false
    ) async throws -> Holding {
        let holding = Holding(
            runID: runID, directory: connection.places.lockDirectory,
            records: newRun ? connection.places.recordsDirectory(runID: runID) : nil,
            ownerText: ownerText(runID: runID), minimum: minimum)
        do {
            // Nodes that cannot be reached cannot be locked (runbooks that start with a node down). The first node
            // decides between two runs that start together (each takes it first); the others are taken at once.
            let nodes = Holding.connectedBackends(connection)
            guard let first = nodes.first else {
                throw NoMajority(held: [], unreachable: connection.inventory.backends.map(\.name), required: minimum)
            }
            do {
                if let holder = try await holding.take(first, on: connection) { throw Held(owner: holder) }
            } catch let error as Unusable where tolerateUnusable {
                _ = error
            }
            // Every take is waited for, failed or not: one cut short would leave a lock nobody knows of.
            let others = await withTaskGroup(of: (String, Result<LockOwner?, any Error>).self) { group in
                for node in nodes.dropFirst() {
                    group.addTask {
                        // Awaited into a local first: a tuple formed across an await is miscompiled
                        // (swiftlang/swift#91911).
                        let result: Result<LockOwner?, any Error>
                        do { result = .success(try await holding.take(node, on: connection)) } catch {
                            result = .failure(error)
                        }
                        return (node, result)
                    }
                }
                var found: [(String, Result<LockOwner?, any Error>)] = []
                for await result in group { found.append(result) }
                return found.sorted { $0.0 < $1.0 }
            }
            for (_, result) in others {
                if case .success(let holder?) = result { throw Held(owner: holder) }
            }
            for (_, result) in others {
                if case .failure(let error) = result, !(tolerateUnusable && error is Unusable) { throw error }
            }
            let taken = holding.nodes
            guard taken.count >= minimum else {
                throw NoMajority(
                    held: connection.inventory.backends.map(\.name).filter { taken.contains($0) },
                    unreachable: connection.inventory.backends.map(\.name).filter { !taken.contains($0) },
                    required: minimum)
            }
            holding.markAcquired()
            return holding
        } catch {
            await withTaskGroup(of: Void.self) { group in
                for node in holding.created {
                    group.addTask {
                        _ = try? await connection.run(
                            node, releaseCommand(exactOwner: holding.ownerText, directory: holding.directory),
                            timeout: commandTimeout)
                    }
                }
            }
            throw error
        }
    }

    /// True when `owner`'s drover still runs on this workstation (a /proc read, off the cooperative pool).
    static func stillRuns(_ owner: LockOwner) async -> Bool {
        let (pid, workstation) = (owner.pid, owner.workstation)
        return (try? await BlockingWork.run { LiveWork.processAlive(pid: pid, workstation: workstation) }) == true
    }

    /// Removes the lock in `directory` only where its owner file is `owner`, byte for byte (this drover's: never
    /// the lock another drover of the same run has taken over since).
    static func releaseCommand(exactOwner owner: String, directory: String) -> String {
        let expected = owner.hasSuffix("\n") ? String(owner.dropLast()) : owner
        return
            "[ \"$(cat \(ShellQuote.quote(directory))/owner 2>/dev/null)\" != \(ShellQuote.quote(expected)) ] || rm -rf \(ShellQuote.quote(directory)); "
            + pruneCommand(NodePlaces.recordsRoot(besideLock: directory)) + "; " + staleTakesCommand(directory)
    }

    static func releaseCommand(_ runID: String, directory: String) -> String {
        // Shell built-ins to read the owner; the old records are pruned in the background, so the release is
        // one process (`rm`) on the run's way out.
        "while IFS= read -r l; do [ \"$l\" != \(ShellQuote.quote("run_id=" + runID)) ] || { rm -rf \(directory); break; }; "
            + "done 2>/dev/null < \(directory)/owner; " + pruneCommand(NodePlaces.recordsRoot(besideLock: directory))
            + "; " + staleTakesCommand(directory)
    }

    /// Removes, in the background, what a take cut off half-way left beside the lock (`drover.lock.new.PID`
    /// directories over an hour old: a take lasts a moment), and package copies an install cut off left in
    /// /var/tmp (`drover-install.*` over a day old).
    static func staleTakesCommand(_ directory: String) -> String {
        let parent = ShellQuote.quote((directory as NSString).deletingLastPathComponent)
        let pattern = ShellQuote.quote((directory as NSString).lastPathComponent + ".new.*")
        return "{ find \(parent) -mindepth 1 -maxdepth 1 -type d -name \(pattern) -mmin +60 -exec rm -rf {} +; "
            + "find /var/tmp -mindepth 1 -maxdepth 1 -type d -name 'drover-install.*' -mmin +1440 -exec rm -rf {} +; } "
            + "< /dev/null > /dev/null 2>&1 & true"
    }

    /// Removes, in the background, the runs' records in `root` older than ``recordsKeptDays``.
    static func pruneCommand(_ root: String) -> String {
        "find \(ShellQuote.quote(root)) -mindepth 1 -maxdepth 1 -type d -mtime +\(recordsKeptDays) -exec rm -rf {} + "
            + "< /dev/null > /dev/null 2>&1 & true"
    }

    /// Releases the lock where this drover holds it (its owner file unchanged), and prunes old records there and
    /// on the connected auxiliary nodes (a cluster's frontends).
    /// `onlyCreated`: only where this drover created it (a run refused before its first step keeps the lock it
    /// took over from an earlier attempt of its run, for that run's resume).
    public static func release(_ connection: any NodeTransport, holding: Holding, onlyCreated: Bool = false) async {
        let command = releaseCommand(exactOwner: holding.ownerText, directory: holding.directory)
        guard onlyCreated else { return await release(connection, command: command) }
        await withTaskGroup(of: Void.self) { group in
            for node in holding.created {
                group.addTask { _ = try? await connection.run(node, command, timeout: commandTimeout) }
            }
        }
    }

    /// Releases the lock where `runID` holds it (`drover unlock`), and prunes old records there and on the
    /// connected auxiliary nodes (which hold no lock but keep the records of their commands).
    public static func release(_ connection: any NodeTransport, runID: String) async {
        await release(connection, command: releaseCommand(runID, directory: connection.places.lockDirectory))
    }

    private static func release(_ connection: any NodeTransport, command: String) async {
        // A node whose session was lost is connected to again, so that its lock is not left behind.
        for node in connection.lostNodes.keys.sorted() { _ = await connection.reconnect(node) }
        await withTaskGroup(of: Void.self) { group in
            for node in connection.connectedNames {
                group.addTask {
                    _ = try? await connection.run(node, command, timeout: commandTimeout)
                }
            }
            // The auxiliary nodes hold no lock but keep the records of their commands: pruned where they keep them.
            for node in connection.connectedAuxiliaries {
                let root = connection.places.recordsRoot(node: node)
                group.addTask {
                    _ = try? await connection.run(node, pruneCommand(root), timeout: .seconds(30))
                }
            }
        }
    }

    /// The lock's owner on each node that has one (``LockOwner/ownerless(node:)`` for a lock directory whose
    /// owner file is missing or unreadable).
    public static func owners(_ connection: any NodeTransport) async -> [LockOwner] {
        var owners: [LockOwner] = []
        let directory = connection.places.lockDirectory
        let read = readCommand(directory) + " 2>/dev/null; [ -d \(directory) ] && echo && echo drover-lock-present"
        for node in connection.connectedNames {
            guard let result = try? await connection.run(node, read, timeout: .seconds(30)), result.succeeded,
                result.stdoutText.contains("drover-lock-present")
            else { continue }
            owners.append(LockOwner.parse(result.stdoutText, node: node) ?? LockOwner.ownerless(node: node))
        }
        return owners
    }

    /// Removes, on every node, a lock directory whose owner file names no run (missing, empty, or with no run id
    /// Drover could have written: what ``LockOwner/parse(_:node:)`` reports as ownerless); returns the nodes where
    /// one was.
    public static func clearOwnerless(_ connection: any NodeTransport) async -> [String] {
        let directory = ShellQuote.quote(connection.places.lockDirectory)
        let script =
            "if [ -d \(directory) ] && ! grep -Eqs '^run_id=[A-Za-z0-9-]{1,64}$' \(directory)/owner; then rm -rf \(directory) && echo cleared; fi"
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
