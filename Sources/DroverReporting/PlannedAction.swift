import Foundation

/// One concrete entry of a plan: what will be done on which node.
public struct PlannedAction: Sendable, Equatable {
    /// The step's number, as the run numbers it (`step 3/11`); a step's actions share it.
    public var index: Int
    public var step: String
    public var node: String?
    /// `run`, `install`, `wait`, `check` or `skip`.
    public var action: String
    public var command: String?
    public var waitsFor: String?
    /// The action runs only if this holds when the run reaches it (the topology's run condition).
    public var condition: String? = nil
    /// When the step's node is decided only when the run reaches it (the leader, after a failover), in words.
    public var nodeNote: String? = nil

    public init(
        index: Int, step: String, node: String?, action: String, command: String?, waitsFor: String?,
        condition: String? = nil, nodeNote: String? = nil
    ) {
        (self.index, self.step, self.node, self.action) = (index, step, node, action)
        (self.command, self.waitsFor, self.condition, self.nodeNote) = (command, waitsFor, condition, nodeNote)
    }

    /// What the action does, in the words every rendering of a plan uses (text, JSON `text`, the HTML report):
    /// `skip (why)`, `wait PREDICATE`, `check WHAT`, `confirm ...`, `manual ...`, or the command.
    public var text: String { PlanActionWords.text(action: action, detail: waitsFor, command: command) }
}
