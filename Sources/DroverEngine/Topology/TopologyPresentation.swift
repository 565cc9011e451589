import DroverCluster
import DroverInventory
import DroverReporting
import Foundation

/// How a topology is shown to people: plans, the end of a run, `drover status`. What it is and does is
/// ``Topology``, which refines this.
public protocol TopologyPresentation: Sendable {
    associatedtype Observation: TopologyObservation
    /// The upgrade paths the topology chooses between (``Topology/upgradePath(for:observation:)``).
    associatedtype Path: UpgradeRoute = NoUpgradeRoute

    var inventory: Inventory { get }

    /// A wait predicate in words, for plans.
    func explain(_ predicate: String, node: String?) -> String

    /// The table of the summary at the end of a run.
    func summaryRows(_ observation: Observation) -> [String]

    /// Where to look when a command failed on a node.
    func logAdvice(node: String) -> String

    /// The plan's "Discovered" lines and JSON.
    func discovered(_ observation: Observation) -> (lines: [String], json: JSONValue)

    /// `drover status`: the text, the JSON object and the exit status.
    func status(_ observation: Observation, locks: [LockOwner]) -> (text: String, json: JSONValue, exit: ExitStatus)

    /// The summary's line about the failover switch, given what this run last set it to (nil: not changed).
    func failoverLine(_ setting: (state: String, step: String)?) -> String

    /// What to run to turn the failover switch back on instead of finishing the run (`inventoryFlag`: the
    /// `--inventory` option, quoted).
    func failoverRestoreAdvice(inventoryFlag: String) -> NextStep

    /// What an offline plan (nothing contacted) says it cannot know yet.
    var offlinePlanNote: String { get }

    /// The node an offline plan's backup step names, before discovery says which one it is.
    var backupNodeBeforeDiscovery: String { get }

    /// The plan's line about the backup taken before the first change, on `node`.
    func backupLine(node: String?) -> String

    /// What a wait for `predicate` that timed out after `timeout` may mean, before the node's logs (a
    /// promotion that takes minutes); empty when the logs say it all.
    func waitTimeoutAdvice(predicate: String, timeout: Duration) -> [NextStep]

    /// When a step's node is decided only when the run reaches it, what the plan says instead of the node it
    /// read now (`planned`), given the steps before it; nil when the plan can name it.
    func runTimeNode(_ step: Playbook.Step, planned: String?, after earlier: [Playbook.Step]) -> String?

    /// The fix a plan gives when the upgrade path's playbook is one Drover does not have.
    func unavailablePathFix(playbook: String) -> String

    /// What a plan says about the downtime of `path` (`parameters`: the playbook's bound values,
    /// `params.NAME`), or nil when the path has none.
    func downtime(for path: Path, parameters: [String: String]) -> Downtime?
}

extension TopologyPresentation {
    public func failoverLine(_ setting: (state: String, step: String)?) -> String {
        setting.map { "cluster failover: \($0.state.uppercased()) (last set by Drover in step \($0.step))" }
            ?? "cluster failover: not changed by this run"
    }

    public func failoverRestoreAdvice(inventoryFlag: String) -> NextStep {
        NextStep("To stop here instead, turn failover back on (see the playbook that turned it off)")
    }

    public var offlinePlanNote: String {
        "Offline plan: nothing was contacted; which node plays which part is unknown until discovery."
    }

    public var backupNodeBeforeDiscovery: String { "<a node>" }

    public func backupLine(node: String?) -> String {
        "Backup: on \(node ?? "a node") before any change; the run stops, nothing changed, if it fails or is empty"
    }

    public func downtime(for path: Path, parameters: [String: String]) -> Downtime? { nil }

    public func runTimeNode(_ step: Playbook.Step, planned: String?, after earlier: [Playbook.Step]) -> String? { nil }

    public func unavailablePathFix(playbook: String) -> String {
        "Drover has no playbook \(playbook) for this path yet; follow the documented procedure for this upgrade by hand"
    }

    public func waitTimeoutAdvice(predicate: String, timeout: Duration) -> [NextStep] { [] }
}
