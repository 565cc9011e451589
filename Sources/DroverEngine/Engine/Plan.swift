import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
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
    /// The action runs only if this holds when the run reaches it (see ``Topology/runCondition(_:node:observation:)``).
    public var condition: String? = nil
    /// When the step's node is decided only when the run reaches it (the leader, after a failover), in words.
    public var nodeNote: String? = nil

    /// What the action does, in the words every rendering of a plan uses (text, JSON `text`, the HTML report):
    /// `skip (why)`, `wait PREDICATE`, `check WHAT`, `confirm ...`, `manual ...`, or the command.
    public var text: String { PlanActionWords.text(action: action, detail: waitsFor, command: command) }
}

/// A playbook resolved against the discovered cluster.
public struct Plan<T: Topology>: Sendable {
    public var playbook: Playbook
    public var topology: T
    public var inventory: Inventory { topology.inventory }
    public var observation: T.Observation?
    public var preflight: [PreflightCheck]
    public var actions: [PlannedAction]
    /// The upgrade path chosen from live facts, when the playbook is an upgrade.
    public var path: UpgradePath?
    /// The run takes a backup before its first change.
    public var backup = false
    /// What the plan says about downtime (the topology's words), for paths with downtime; nil for the others.
    public var downtime: Downtime?

    public var preflightPassed: Bool { preflight.allSatisfy(\.ok) }

    /// The playbook chosen for an upgrade path; `unavailable` names a path playbook Drover does not have.
    public struct PathPlaybook: Sendable {
        public var playbook: Playbook
        public var unavailable: String?

        public init(playbook: Playbook, unavailable: String? = nil) {
            self.playbook = playbook
            self.unavailable = unavailable
        }
    }

    /// Says in the `path` check that the path's playbook is missing, so the fix is not `drover upgrade` itself.
    public mutating func noteUnavailable(_ name: String?) {
        guard let name, let index = preflight.firstIndex(where: { $0.check == "path" }) else { return }
        preflight[index].fix = topology.unavailablePathFix(playbook: name)
    }

    /// Drover locks found on the nodes (plan takes none, but shows them).
    public var lockOwners: [LockOwner] {
        observation?.lockOwnerTexts.compactMap { LockOwner.parse($0.text, node: $0.node) } ?? []
    }

    /// Why there is nothing to do (every node already at the target version), or nil.
    public var nothingToDoReason: String? { observation.flatMap { topology.nothingToDo(playbook, observation: $0) } }

    /// True when every node already runs the target version.
    public var nothingToDo: Bool { nothingToDoReason != nil }

    /// Builds the plan; `observation` nil plans from the inventory alone (leader unknown).
    public static func make(
        playbook: Playbook, topology: T, observation: T.Observation?, bindings: Bindings = Bindings(),
        backup: Bool = false
    ) -> Plan {
        let inventory = topology.inventory
        var preflight = observation.map { topology.preflight(playbook.preflight ?? "basic", observation: $0) } ?? []
        var actions: [PlannedAction] = []
        if backup {
            do {
                if let observation, let command = try topology.backupCommand(observation: observation) {
                    actions.append(
                        PlannedAction(
                            index: 1, step: "backup", node: command.node, action: "run", command: command.command,
                            waitsFor: nil))
                } else if observation == nil {
                    actions.append(
                        PlannedAction(
                            index: 1, step: "backup", node: "<a follower>", action: "run",
                            command: "(the topology's backup command)", waitsFor: nil))
                } else {
                    preflight.append(
                        PreflightCheck(
                            check: "backup", node: nil, ok: false,
                            detail: "Drover takes no backup of a \(inventory.topology.rawValue)",
                            fix: "drop --backup"))
                }
            } catch {
                preflight.append(
                    PreflightCheck(
                        check: "backup", node: nil, ok: false, detail: error.localizedDescription,
                        fix: "a backup needs a follower; repair the cluster first (drover diagnose)"))
            }
        }
        let live = topology.liveValues(observation)
        var number = actions.isEmpty ? 0 : 1
        for (position, step) in playbook.steps.enumerated() {
            let nodes: [String?]
            if case .node(let name) = step.target {
                nodes = [Runner<T>.renderText(name, node: nil, inventory: inventory, live: live, bindings: bindings)]
            } else {
                nodes = topology.plannedNodes(for: step.target, observation: observation)
            }
            let earlier = Array(playbook.steps[..<position])
            for node in nodes {
                number += 1
                if let observation, let node,
                    let reason = topology.skipReason(step, node: node, observation: observation)
                {
                    actions.append(
                        PlannedAction(
                            index: number, step: step.name, node: node, action: "skip", command: nil, waitsFor: reason))
                    continue
                }
                let condition = observation.flatMap { observation in
                    node.flatMap { topology.runCondition(step, node: $0, observation: observation) }
                }
                let nodeNote = topology.runTimeNode(step, planned: node, after: earlier)
                for action in step.actions {
                    var planned = describe(
                        action, step: step, node: node, topology: topology, live: live, bindings: bindings,
                        index: number)
                    planned.condition = condition
                    planned.nodeNote = nodeNote
                    actions.append(planned)
                }
            }
        }
        let path = observation.flatMap { topology.upgradePath(for: playbook, observation: $0) }
        return Plan(
            playbook: playbook, topology: topology, observation: observation, preflight: preflight, actions: actions,
            path: path, backup: backup,
            downtime: path.flatMap { topology.downtime(for: $0, parameters: bindings.values) })
    }

    static func describe(
        _ action: Playbook.Action, step: Playbook.Step, node: String?, topology: T,
        live: [String: String], bindings: Bindings, index: Int
    ) -> PlannedAction {
        let inventory = topology.inventory
        switch action {
        case .run(let template):
            return PlannedAction(
                index: index, step: step.name, node: node, action: "run",
                command: Runner<T>.render(template, node: node, inventory: inventory, live: live, bindings: bindings),
                waitsFor: nil)
        case .install:
            return PlannedAction(
                index: index, step: step.name, node: node, action: "install",
                command: inventory.package.map(Runner<T>.installCommand) ?? "(no package in the inventory)",
                waitsFor: nil)
        case .wait(let predicate, let timeout):
            return PlannedAction(
                index: index, step: step.name, node: node, action: "wait", command: nil,
                waitsFor:
                    "\(topology.explain(predicate, node: node)) (within \(DurationText.format(Runner<T>.duration(timeout, inventory))))"
            )
        case .confirm(let message):
            return PlannedAction(
                index: index, step: step.name, node: node, action: "confirm", command: nil,
                waitsFor: "operator confirmation: "
                    + Runner<T>.renderText(message, node: node, inventory: inventory, live: live, bindings: bindings))
        case .manual(let instruction):
            return PlannedAction(
                index: index, step: step.name, node: node, action: "manual", command: nil,
                waitsFor: "operator action: "
                    + Runner<T>.renderText(
                        instruction, node: node, inventory: inventory, live: live, bindings: bindings))
        case .check(let name):
            return PlannedAction(
                index: index, step: step.name, node: nil, action: "check", command: nil,
                waitsFor: name == "frontends"
                    ? (inventory.frontends.allSatisfy { $0.statusURL == nil }
                        ? "frontends: not configured (no frontend has a status_url in the inventory), so not checked"
                        : "GET /_status on \(inventory.frontends.filter { $0.statusURL != nil }.map(\.name).joined(separator: ", "))")
                    : name)
        }
    }

    /// The plan as one JSON object (`drover plan --format json`).
    public var json: JSONValue {
        let discovered = observation.map { topology.discovered($0).json } ?? .object([:])
        return .object([
            "playbook": .string(playbook.name),
            "cluster": .string(inventory.cluster),
            "target_version": .optional(inventory.package?.version),
            "offline": .bool(observation == nil),
            "would_start": .bool(observation != nil && preflightPassed),
            "nothing_to_do": .bool(nothingToDo),
            "locks": .array(
                lockOwners.map {
                    .object([
                        "node": .string($0.node), "run_id": .string($0.runID), "user": .string($0.user),
                        "workstation": .string($0.workstation),
                    ])
                }),
            "discovered": discovered,
            "backup": .bool(backup),
            "downtime": downtime.map { downtime in
                var object = downtime.json
                object["text"] = .string(downtime.text)
                return .object(object)
            } ?? .null,
            "path": path.map { path in
                .object([
                    "name": .string(path.kind.rawValue), "playbook": .optional(path.playbook),
                    "reasons": .array(path.reasons.map { .string($0) }), "fix": .optional(path.fix),
                ])
            } ?? .null,
            "preflight": .array(
                preflight.map { check in
                    .object([
                        "check": .string(check.check), "node": .optional(check.node), "ok": .bool(check.ok),
                        "information": .bool(check.information),
                        "detail": .string(check.detail),
                        "fix": .optional(check.fix),
                    ])
                }),
            "steps": .array(
                actions.map { action in
                    .object([
                        "index": .int(action.index), "step": .string(action.step), "node": .optional(action.node),
                        "action": .string(action.action),
                        "command": .optional(action.command), "waits_for": .optional(action.waitsFor),
                        "condition": .optional(action.condition), "text": .string(action.text),
                        "node_note": .optional(action.nodeNote),
                    ])
                }),
        ])
    }

    /// The plan for people.
    public var text: String {
        var lines: [String] = []
        lines.append(
            "Plan: \(playbook.name) on cluster \(inventory.cluster)\(inventory.package.map { " to \($0.version)" } ?? "")"
        )
        if let observation {
            lines += topology.discovered(observation).lines
            let unread = inventory.backends.map(\.name).filter { !observation.answering.contains($0) }
            if !unread.isEmpty {
                lines.append(
                    "Not read: \(unread.joined(separator: ", ")); what the plan shows of \(unread.count == 1 ? "it" : "them") (role, version, services) is unknown, never a reason"
                )
            }
            if let path {
                lines.append("Path: \(path.kind.rawValue)\(path.playbook.map { " (playbook \($0))" } ?? "")")
                lines += path.reasons.map { "  because \($0)" }
                if let fix = path.fix { lines.append("  instead: \(fix)") }
                if let downtime { lines.append(downtime.text) }
                if !backup, downtime != nil {
                    lines.append("!! No backup before this downtime upgrade (--no-backup) !!")
                }
            }
            for owner in lockOwners {
                lines.append("Lock: \(owner.node) is locked by \(owner.description); a run would be refused (exit 3)")
            }
        } else {
            lines.append("Offline plan: nothing was contacted; the leader is unknown until discovery.")
        }
        if !preflight.isEmpty {
            lines.append("Pre-flight:")
            for check in preflight {
                lines.append(
                    "  [\(check.information ? "info" : check.ok ? "ok" : "FAIL")] \(check.check)\(check.node.map { " \($0)" } ?? ""): \(check.detail)\(check.fix.map { "\n         fix: \($0)" } ?? "")"
                )
            }
        }
        if backup {
            lines.append(topology.backupLine(node: actions.first?.node))
        }
        lines.append("Steps:")
        // Numbered by step, as the run numbers them, each step's actions under it, one per line.
        for (position, action) in actions.enumerated() {
            let first = position == 0 || actions[position - 1].index != action.index
            if first {
                let node = action.nodeNote.map { " on \($0)" } ?? action.node.map { " on \($0)" } ?? ""
                // The same reason for the step's next node is said once.
                let previous = actions[..<position].last { $0.step == action.step && $0.action == "skip" }
                let skip =
                    action.action != "skip"
                    ? "" : previous?.waitsFor == action.waitsFor ? ": skip (as above)" : ": \(action.text)"
                lines.append(String(format: "  %2d. %@%@%@", action.index, action.step, node, skip))
                if let condition = action.condition { lines.append("        \(condition):") }
            }
            if action.action != "skip" { lines.append("        \(action.text)") }
        }
        if observation != nil {
            if let reason = nothingToDoReason {
                lines.append("Nothing to do: \(reason).")
            } else {
                lines.append(
                    preflightPassed
                        ? "Pre-flight passed: the run would start."
                        : "Pre-flight failed: the run would be refused (exit 2).")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
