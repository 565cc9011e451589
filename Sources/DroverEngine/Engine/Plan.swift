import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// A playbook resolved against the discovered cluster.
public struct Plan<T: Topology>: Sendable {
    public var playbook: Playbook
    public var topology: T
    public var inventory: Inventory { topology.inventory }
    public var observation: T.Observation?
    public var preflight: [PreflightCheck]
    public var actions: [PlannedAction]
    /// The upgrade path chosen from live facts, when the playbook is an upgrade.
    public var path: T.Path?
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

    /// The first action that would act on a backend that cannot be reached, unless a manual step comes first (the
    /// operator may bring the machine back, or build it anew, before the run reaches it) or the first action on
    /// that node waits for it (to come back).
    static func firstStranded(
        _ actions: [PlannedAction], inventory: Inventory, observation: T.Observation
    ) -> PlannedAction? {
        var unreachable = Set(inventory.backends.map(\.name)).subtracting(observation.answering)
        for action in actions {
            if action.action == "manual" { return nil }
            guard action.action != "skip", let node = action.node, unreachable.contains(node) else { continue }
            guard action.action == "wait" else { return action }
            unreachable.remove(node)
        }
        return nil
    }

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
                            index: 1, step: "backup", node: topology.backupNodeBeforeDiscovery, action: "run",
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
                        fix: "repair the cluster first (drover diagnose), or drop --backup"))
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
                        action, step: step, node: node, topology: topology, observation: observation, live: live,
                        bindings: bindings, index: number)
                    planned.condition = condition
                    planned.nodeNote = nodeNote
                    actions.append(planned)
                }
            }
        }
        if let observation, let stranded = firstStranded(actions, inventory: inventory, observation: observation),
            // Said once: a node already failing reachable, or identity (a wrong host), needs no second cause.
            !preflight.contains(where: {
                ["reachable", "identity"].contains($0.check) && $0.node == stranded.node && !$0.ok
            })
        {
            preflight.append(
                PreflightCheck(
                    check: "target-reachable", node: stranded.node, ok: false,
                    detail:
                        "step \(stranded.index) (\(stranded.step)) acts on \(stranded.node ?? "?"), which cannot be reached",
                    fix:
                        "bring \(stranded.node ?? "it") back, or correct its host: in \(inventory.file), then run again (drover diagnose --inventory \(ShellQuote.quote(inventory.file)) says what is wrong)"
                ))
        }
        let path = observation.flatMap { topology.upgradePath(for: playbook, observation: $0) }
        return Plan(
            playbook: playbook, topology: topology, observation: observation, preflight: preflight, actions: actions,
            path: path, backup: backup,
            downtime: path.flatMap { topology.downtime(for: $0, parameters: bindings.values) })
    }

    static func describe(
        _ action: Playbook.Action, step: Playbook.Step, node: String?, topology: T, observation: T.Observation?,
        live: [String: String], bindings: Bindings, index: Int
    ) -> PlannedAction {
        let inventory = topology.inventory
        switch action {
        case .run(let template):
            return PlannedAction(
                index: index, step: step.name, node: node, action: "run",
                command: Runner<T>.render(template, node: node, inventory: inventory, live: live, bindings: bindings),
                waitsFor: nil)
        case .install(let what):
            let command: String
            let digest = node.flatMap { node in
                observation.flatMap { topology.packageDigest(what, node: node, observation: $0) }
            }
            switch topology.installCommand(what, node: node ?? "", digest: digest) {
            case .success(let install): command = install
            case .failure(let missing): command = "(\(missing.reason))"
            }
            return PlannedAction(
                index: index, step: step.name, node: node, action: "install", command: command, waitsFor: nil)
        case .wait(let predicate, let timeout):
            return PlannedAction(
                index: index, step: step.name, node: node, action: "wait", command: nil,
                waitsFor:
                    "\(topology.explain(predicate, node: node)) (within \(DurationText.format(Runner<T>.duration(timeout, topology))))"
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
                waitsFor: topology.explainCheck(name))
        }
    }

    /// The plan as it is shown, with the topology's words (rendered by ``PlanText`` and ``PlanDocument/json``).
    public var document: PlanDocument {
        PlanDocument(
            playbook: playbook.name, cluster: inventory.cluster, targetVersion: topology.targetVersion(of: playbook),
            observed: observation != nil, offlineNote: topology.offlinePlanNote,
            discoveredLines: observation.map { topology.discovered($0).lines } ?? [],
            discoveredJSON: observation.map { topology.discovered($0).json } ?? .object([:]),
            notRead: observation.map { observation in
                inventory.backends.map(\.name).filter { !observation.answering.contains($0) }
            } ?? [],
            path: path.map {
                PlanDocument.Path(name: $0.name, playbook: $0.playbook, reasons: $0.reasons, fix: $0.fix)
            },
            downtime: downtime, backup: backup,
            backupLine: backup ? topology.backupLine(node: actions.first?.node) : nil,
            locks: lockOwners, preflight: preflight, actions: actions, nothingToDo: nothingToDoReason)
    }
}
