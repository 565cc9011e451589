import Foundation

/// Where Drover keeps its own state on the nodes, as the topology places it: the lock directory (beside the
/// product's own state) and, under a `drover-runs` directory, each run's node-command records.
public struct NodePlaces: Sendable, Equatable {
    /// The lock directory on every node the lock is taken on.
    public var lockDirectory: String
    /// Nodes that keep their records under another parent than the one beside the lock, by node.
    public var recordsRoots: [String: String]

    public init(lockDirectory: String, recordsRoots: [String: String] = [:]) {
        self.lockDirectory = lockDirectory
        self.recordsRoots = recordsRoots
    }

    /// The parent of every run's records beside the lock: `drover-runs` beside the lock directory.
    public var recordsRoot: String { Self.recordsRoot(besideLock: lockDirectory) }

    /// The parent of every run's records on `node`.
    public func recordsRoot(node: String) -> String { recordsRoots[node] ?? recordsRoot }

    /// Where a run's node commands keep their records on `node`: each command's output, exit status, pid and
    /// lock. Readable by root (the SSH user) only; kept 30 days.
    public func recordsDirectory(node: String, runID: String) -> String { recordsRoot(node: node) + "/" + runID }

    /// The same beside the lock.
    public func recordsDirectory(runID: String) -> String { recordsRoot + "/" + runID }

    /// `drover-runs` beside `directory`.
    static func recordsRoot(besideLock directory: String) -> String {
        (directory as NSString).deletingLastPathComponent + "/drover-runs"
    }
}
