import Foundation

/// A plan as it is shown: what the engine resolved (steps, pre-flight, path, locks) and the topology's words
/// for it, with nothing left to compute. Rendered for people by ``PlanText`` and for programs by ``json``.
public struct PlanDocument: Sendable, Equatable {
    /// The upgrade path a plan shows.
    public struct Path: Sendable, Equatable {
        public var name: String
        public var playbook: String?
        public var reasons: [String]
        public var fix: String?

        public init(name: String, playbook: String?, reasons: [String], fix: String?) {
            (self.name, self.playbook, self.reasons, self.fix) = (name, playbook, reasons, fix)
        }
    }

    public var playbook: String
    public var cluster: String
    public var targetVersion: String?
    /// False for an offline plan: nothing was contacted.
    public var observed: Bool
    /// What an offline plan says it cannot know (the topology's words).
    public var offlineNote: String
    /// The topology's "Discovered" lines, and the same as JSON.
    public var discoveredLines: [String]
    public var discoveredJSON: JSONValue
    /// Nodes that did not answer: what the plan shows of them is unknown.
    public var notRead: [String]
    public var path: Path?
    public var downtime: Downtime?
    public var backup: Bool
    /// The topology's line about the backup, when the run takes one.
    public var backupLine: String?
    public var locks: [LockOwner]
    public var preflight: [PreflightCheck]
    public var actions: [PlannedAction]
    /// Why there is nothing to do, or nil.
    public var nothingToDo: String?

    public init(
        playbook: String, cluster: String, targetVersion: String?, observed: Bool, offlineNote: String,
        discoveredLines: [String], discoveredJSON: JSONValue, notRead: [String], path: Path?, downtime: Downtime?,
        backup: Bool, backupLine: String?, locks: [LockOwner], preflight: [PreflightCheck], actions: [PlannedAction],
        nothingToDo: String?
    ) {
        (self.playbook, self.cluster, self.targetVersion, self.observed) = (playbook, cluster, targetVersion, observed)
        (self.offlineNote, self.discoveredLines, self.discoveredJSON) = (offlineNote, discoveredLines, discoveredJSON)
        (self.notRead, self.path, self.downtime, self.backup) = (notRead, path, downtime, backup)
        (self.backupLine, self.locks, self.preflight, self.actions) = (backupLine, locks, preflight, actions)
        self.nothingToDo = nothingToDo
    }

    public var preflightPassed: Bool { preflight.allSatisfy(\.ok) }

    /// The plan as one JSON object (`drover plan --format json`, saved plans, a run's `plan.json`).
    public var json: JSONValue {
        .object([
            "playbook": .string(playbook),
            "cluster": .string(cluster),
            "target_version": .optional(targetVersion),
            "offline": .bool(!observed),
            "would_start": .bool(observed && preflightPassed),
            "nothing_to_do": .bool(nothingToDo != nil),
            "locks": .array(
                locks.map {
                    .object([
                        "node": .string($0.node), "run_id": .string($0.runID), "user": .string($0.user),
                        "workstation": .string($0.workstation),
                    ])
                }),
            "discovered": discoveredJSON,
            "backup": .bool(backup),
            "downtime": downtime.map { downtime in
                var object = downtime.json
                object["text"] = .string(downtime.text)
                return .object(object)
            } ?? .null,
            "path": path.map { path in
                .object([
                    "name": .string(path.name), "playbook": .optional(path.playbook),
                    "reasons": .array(path.reasons.map { .string($0) }), "fix": .optional(path.fix),
                ])
            } ?? .null,
            "preflight": .array(
                preflight.map { check in
                    .object([
                        "check": .string(check.check), "node": .optional(check.node), "ok": .bool(check.ok),
                        "information": .bool(check.information), "detail": .string(check.detail),
                        "fix": .optional(check.fix),
                    ])
                }),
            "steps": .array(
                actions.map { action in
                    .object([
                        "index": .int(action.index), "step": .string(action.step), "node": .optional(action.node),
                        "action": .string(action.action), "command": .optional(action.command),
                        "waits_for": .optional(action.waitsFor), "condition": .optional(action.condition),
                        "text": .string(action.text), "node_note": .optional(action.nodeNote),
                    ])
                }),
        ])
    }
}
