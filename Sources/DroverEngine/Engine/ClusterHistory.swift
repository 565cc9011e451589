import DroverCluster
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

/// The runs recorded under one cluster name, told apart by the nodes they were made against.
public struct ClusterHistory: Sendable {
    /// Journals that recorded a GUID of the live cluster, newest first: this cluster's runs.
    public var journals: [Journal]
    /// Journals of the same name recorded against other nodes, or without GUIDs: not this cluster's.
    public var ignored: [Journal]

    /// Splits `all` by whether a journal's recorded GUIDs include one of `liveGUIDs`. GUIDs are random per
    /// node, so one shared GUID means the same cluster, even after another node was replaced. With no
    /// live GUID readable, no journal can be attributed, and none is used.
    /// False when no GUID of the live cluster could be read: then no journal is known to be another cluster's,
    /// only not known to be this one's.
    public var liveGUIDsRead: Bool

    public init(_ all: [Journal], liveGUIDs: [String: String]) {
        let live = Set(liveGUIDs.values)
        liveGUIDsRead = !live.isEmpty
        journals = all.filter { !live.isDisjoint(with: ($0.nodeGUIDs ?? [:]).values) }
        ignored = all.filter { live.isDisjoint(with: ($0.nodeGUIDs ?? [:]).values) }
    }

    /// What to tell the user about the ignored journals; nil when there are none.
    public var note: String? {
        guard !ignored.isEmpty else { return nil }
        let listed = ignored.prefix(3).map(\.runID).joined(separator: ", ") + (ignored.count > 3 ? ", ..." : "")
        guard liveGUIDsRead else {
            return "note: \(ignored.count) recorded run\(ignored.count == 1 ? "" : "s") of cluster name "
                + "'\(ignored[0].cluster)' (\(listed)) not used: no node's GUID could be read (cluster-status), so "
                + "whether they are this cluster's cannot be told"
        }
        return "note: ignoring \(ignored.count) recorded run\(ignored.count == 1 ? "" : "s") of cluster name "
            + "'\(ignored[0].cluster)' (\(listed)): made against other nodes (their GUIDs are not this cluster's) "
            + "or before Drover recorded GUIDs"
    }
}
