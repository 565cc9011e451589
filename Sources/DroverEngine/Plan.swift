import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// One concrete entry of a plan: what will be done on which node.
public struct PlannedAction: Sendable, Equatable {
    public var index: Int
    public var step: String
    public var node: String?
    /// `run`, `install`, `wait`, `check` or `skip`.
    public var action: String
    public var command: String?
    public var waitsFor: String?
}

/// A playbook resolved against the discovered cluster.
public struct Plan: Sendable {
    public var playbook: Playbook
    public var inventory: Inventory
    public var observation: ClusterObservation?
    public var preflight: [PreflightCheck]
    public var actions: [PlannedAction]

    public var preflightPassed: Bool { preflight.allSatisfy(\.ok) }

    /// Drover locks found on the nodes (plan takes none, but shows them).
    public var lockOwners: [LockOwner] {
        observation?.nodes.compactMap { node in node.lockOwner.flatMap { LockOwner.parse($0, node: node.name) } } ?? []
    }

    /// True when every node already runs the target version.
    public var nothingToDo: Bool {
        guard let package = inventory.package, let observation, playbook.steps.contains(where: { $0.skipIf == .atTargetVersion }) else { return false }
        return observation.nodes.allSatisfy { $0.installedVersion == package.version }
    }

    /// Builds the plan; `observation` nil plans from the inventory alone (leader unknown).
    public static func make(playbook: Playbook, inventory: Inventory, observation: ClusterObservation?, bindings: Bindings = Bindings()) -> Plan {
        let preflight = observation.map { Preflight.run(playbook.preflight ?? "basic", observation: $0, inventory: inventory) } ?? []
        var actions: [PlannedAction] = []
        let leader = observation?.leader
        let followers = observation?.followers.sorted() ?? []
        for step in playbook.steps {
            let nodes: [String?]
            switch step.target {
            case .leader: nodes = [leader ?? (observation == nil ? "<leader>" : nil)]
            case .any: nodes = [leader ?? observation?.nodes.first { $0.unreachable == nil }?.name ?? "<any node>"]
            case .eachFollower: nodes = observation == nil ? ["<follower 1>", "<follower 2>"] : followers
            case .all: nodes = inventory.backends.map(\.name)
            case let .node(name): nodes = [Runner.renderText(name, node: nil, inventory: inventory, leader: leader, bindings: bindings)]
            }
            for node in nodes {
                if step.skipIf == .atTargetVersion, let node, let package = inventory.package,
                   observation?.node(node)?.installedVersion == package.version {
                    actions.append(PlannedAction(index: actions.count + 1, step: step.name, node: node, action: "skip",
                                                 command: nil, waitsFor: "already at \(package.version)"))
                    continue
                }
                for action in step.actions {
                    actions.append(describe(action, step: step, node: node, inventory: inventory, leader: leader, bindings: bindings, index: actions.count + 1))
                }
            }
        }
        return Plan(playbook: playbook, inventory: inventory, observation: observation, preflight: preflight, actions: actions)
    }

    static func describe(_ action: Playbook.Action, step: Playbook.Step, node: String?, inventory: Inventory,
                         leader: String?, bindings: Bindings, index: Int) -> PlannedAction {
        switch action {
        case let .run(template):
            return PlannedAction(index: index, step: step.name, node: node, action: "run",
                                 command: Runner.render(template, node: node, inventory: inventory, leader: leader, bindings: bindings), waitsFor: nil)
        case .install:
            return PlannedAction(index: index, step: step.name, node: node, action: "install",
                                 command: inventory.package.map(Runner.installCommand) ?? "(no package in the inventory)", waitsFor: nil)
        case let .wait(predicate, timeout):
            return PlannedAction(index: index, step: step.name, node: node, action: "wait", command: nil,
                                 waitsFor: "\(Runner.explain(predicate, node: node)) (within \(DurationText.format(Runner.duration(timeout, inventory))))")
        case let .confirm(message):
            return PlannedAction(index: index, step: step.name, node: node, action: "confirm", command: nil,
                                 waitsFor: "operator confirmation: " + Runner.renderText(message, node: node, inventory: inventory, leader: leader, bindings: bindings))
        case let .manual(instruction):
            return PlannedAction(index: index, step: step.name, node: node, action: "manual", command: nil,
                                 waitsFor: "operator action: " + Runner.renderText(instruction, node: node, inventory: inventory, leader: leader, bindings: bindings))
        case let .check(name):
            return PlannedAction(index: index, step: step.name, node: nil, action: "check", command: nil,
                                 waitsFor: name == "frontends" ? (inventory.frontends.isEmpty ? "no frontends in the inventory" : "GET /_status on \(inventory.frontends.map(\.name).joined(separator: ", "))") : name)
        }
    }

    /// The plan as one JSON object (`drover plan --format json`).
    public var json: JSONValue {
        var discovered: [String: JSONValue] = ["leader": .optional(observation?.leader), "followers": .array((observation?.followers.sorted() ?? []).map { .string($0) })]
        discovered["versions"] = .object((observation?.versions ?? [:]).mapValues { .string($0) })
        return .object([
            "playbook": .string(playbook.name),
            "cluster": .string(inventory.cluster),
            "target_version": .optional(inventory.package?.version),
            "offline": .bool(observation == nil),
            "would_start": .bool(observation != nil && preflightPassed),
            "nothing_to_do": .bool(nothingToDo),
            "locks": .array(lockOwners.map { .object(["node": .string($0.node), "run_id": .string($0.runID), "user": .string($0.user),
                                                      "workstation": .string($0.workstation)]) }),
            "discovered": .object(discovered),
            "preflight": .array(preflight.map { check in
                .object(["check": .string(check.check), "node": .optional(check.node), "ok": .bool(check.ok), "detail": .string(check.detail),
                         "fix": .optional(check.fix)])
            }),
            "steps": .array(actions.map { action in
                .object(["index": .int(action.index), "step": .string(action.step), "node": .optional(action.node), "action": .string(action.action),
                         "command": .optional(action.command), "waits_for": .optional(action.waitsFor)])
            }),
        ])
    }

    /// The plan for people.
    public var text: String {
        var lines: [String] = []
        lines.append("Plan: \(playbook.name) on cluster \(inventory.cluster)\(inventory.package.map { " to \($0.version)" } ?? "")")
        if let observation {
            lines.append("Discovered: leader \(observation.leader ?? "none"); followers \(observation.followers.sorted().joined(separator: ", "))")
            for node in observation.nodes {
                lines.append("  \(node.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(node.host.padding(toLength: 16, withPad: " ", startingAt: 0)) \((observation.role(of: node.name) ?? (node.unreachable == nil ? "?" : "unreachable")).padding(toLength: 20, withPad: " ", startingAt: 0)) \(node.installedVersion ?? "?")")
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
                lines.append("  [\(check.ok ? "ok" : "FAIL")] \(check.check)\(check.node.map { " \($0)" } ?? ""): \(check.detail)\(check.fix.map { "\n         fix: \($0)" } ?? "")")
            }
        }
        lines.append("Steps:")
        for action in actions {
            let target = action.node.map { "\($0): " } ?? ""
            switch action.action {
            case "skip": lines.append(String(format: "  %2d. %@ %@skip (%@)", action.index, action.step, target, action.waitsFor ?? ""))
            case "wait", "check", "confirm", "manual": lines.append(String(format: "  %2d. %@ %@%@ %@", action.index, action.step, target, action.action, action.waitsFor ?? ""))
            default: lines.append(String(format: "  %2d. %@ %@%@", action.index, action.step, target, action.command ?? ""))
            }
        }
        if observation != nil {
            if nothingToDo {
                lines.append("Nothing to do: every node already runs \(inventory.package?.version ?? "the target version").")
            } else {
                lines.append(preflightPassed ? "Pre-flight passed: the run would start." : "Pre-flight failed: the run would be refused (exit 2).")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
