import Foundation

/// An upgrade path a topology chooses from live facts: what a plan shows of it, and which playbook carries
/// it out. Each topology has its own type (``TopologyPresentation/Path``); the engine knows only this.
public protocol UpgradeRoute: Sendable, Equatable {
    /// The path's name in plans and their JSON (`rolling`, `refused`, `unknown`).
    var name: String { get }
    /// The playbook that carries the path out; nil when there is none (a refusal, an unknown path).
    var playbook: String? { get }
    /// Why this path: the facts it was chosen from.
    var reasons: [String] { get }
    /// For a refusal: what to do instead.
    var fix: String? { get }
    /// True when the path takes every node down, so a run takes a backup first unless told not to.
    var takesEveryNodeDown: Bool { get }
}

/// The path type of a topology that chooses no upgrade path.
public enum NoUpgradeRoute: UpgradeRoute {
    public var name: String { switch self {} }
    public var playbook: String? { switch self {} }
    public var reasons: [String] { switch self {} }
    public var fix: String? { switch self {} }
    public var takesEveryNodeDown: Bool { switch self {} }
}
