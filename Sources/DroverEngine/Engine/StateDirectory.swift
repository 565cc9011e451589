import DroverCluster
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

/// Where runs are recorded: `--state-dir`, else `$XDG_STATE_HOME/drover`, else `$HOME/.local/state/drover`.
public struct StateDirectory: Sendable {
    public let root: String

    public init(_ explicit: String?) {
        let environment = ProcessInfo.processInfo.environment
        if let explicit {
            root = UserAccount.expandingTilde(explicit)
        } else if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            // The XDG specification ignores a relative XDG_STATE_HOME.
            root = xdg + "/drover"
        } else {
            root = UserAccount.home + "/.local/state/drover"
        }
    }

    public func clusterDirectory(_ cluster: String) -> String { root + "/" + cluster }
    public func runDirectory(cluster: String, runID: String) -> String { clusterDirectory(cluster) + "/" + runID }

    /// Every journal of a cluster, newest first.
    public func journals(cluster: String) -> [Journal] {
        let directory = clusterDirectory(cluster)
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return runs.sorted(by: >).compactMap { Journal.load(path: directory + "/" + $0 + "/journal.json") }
    }

    /// The cluster's journals, split into those recorded against the live cluster's nodes and the rest
    /// (`note` says which were ignored, for the caller to show).
    public func history(cluster: String, identities: [String: String]) -> ClusterHistory {
        ClusterHistory(journals(cluster: cluster), liveGUIDs: identities)
    }

    /// Every journal of every cluster, newest first.
    public func allJournals() -> [Journal] {
        let clusters = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return clusters.flatMap { journals(cluster: $0) }.sorted { $0.runID > $1.runID }
    }
}
