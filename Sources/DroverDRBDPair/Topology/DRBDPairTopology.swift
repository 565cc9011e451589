import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

extension PairObservation: TopologyObservation {
    /// A pair has no node GUIDs: its nodes are known by their hosts.
    public var identities: [String: String] {
        Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, "drbd-pair host \($0.host)") })
    }
    public var lockOwnerTexts: [(node: String, text: String)] {
        nodes.compactMap { node in node.lockOwner.map { (node.name, $0) } }
    }
    public var answering: [String] { nodes.filter(\.reachable).map(\.name) }
    public var lockReadNodes: [String] { nodes.filter { $0.reachable && $0.lockRead }.map(\.name) }
}

/// The legacy Chef Server HA pair: two backends, DRBD replicating `/var/opt/opscode/drbd/data` and
/// keepalived moving the VIP. Reading: ``PairDiscovery``; situations: ``PairSituations``; waits and
/// conditions: ``PairWaits``, ``PairConditions``.
public struct DRBDPairTopology: Topology {
    public let inventory: Inventory

    public init(inventory: Inventory) { self.inventory = inventory }

    public static let kind = Inventory.Topology.drbdPair

    /// Its playbooks, compiled in from `Playbooks/drbd-pair/`.
    public static var builtInPlaybooks: [(name: String, text: String)] { BuiltInPlaybookFiles.files }

    /// `transition` and `sync`, from the inventory's `timeouts:`.
    public func timeout(named name: String) -> Duration? {
        switch name {
        case "transition": return inventory.timeouts.transition
        case "sync": return inventory.timeouts.sync
        default: return nil
        }
    }

    /// The frontends that have `host`: `drover exec` reaches them as it does a Chef Backend cluster's.
    public static func auxiliaryNodes(_ inventory: Inventory) -> [Inventory.Backend] { inventory.sshFrontends }

    /// Beside Chef Server's own state (the pair has no chef-backend directory).
    public static let lockDirectory = "/var/opt/opscode/drover.lock"

    public static let vocabulary = PlaybookVocabulary(
        targets: ["primary", "secondary", "primary-at-start"],
        waits: PairWaits.Predicate.allCases.map(\.rawValue),
        requirements: PairConditions.Requirement.allCases.map(\.rawValue),
        timeouts: ["transition", "sync"],
        placeholders: ["ctl", "resource", "primary", "primary.host", "secondary"],
        pinnedTargets: ["primary-at-start": "primary"])

    public static let preflightSets: [String: [String]] = [
        "pair-healthy": ["reachable", "drbd", "situation"],
        "basic": ["reachable"],
        "none": [],
    ]

    public func observe(_ connection: any NodeTransport, full: Bool, checksum: Bool) async -> PairObservation {
        await PairDiscovery.observe(connection, full: full)
    }

    func situation(_ observation: PairObservation) -> Situation? {
        PairSituations.decide(observation, inventory: inventory, inventoryPath: inventory.file)
    }

    public func preflight(_ set: String, observation: PairObservation) -> [PreflightCheck] {
        let wanted = Self.preflightSets[set] ?? []
        // Every playbook, whatever its set (`none` included): one machine listed twice would be read and
        // changed as if it were both nodes.
        var checks = identityChecks(observation)
        if wanted.contains("reachable") {
            for node in observation.nodes {
                checks.append(
                    PreflightCheck(
                        check: "reachable", node: node.name, ok: node.reachable,
                        detail: node.unreachable ?? "connected, host key verified",
                        fix: node.reachable
                            ? nil : "make \(node.name) reachable over SSH (the error says how), then retry"))
            }
        }
        if wanted.contains("drbd") {
            for node in observation.nodes where node.reachable {
                let ok = node.device != nil && node.haStatus != nil
                checks.append(
                    PreflightCheck(
                        check: "drbd", node: node.name, ok: ok,
                        detail: ok
                            ? "/proc/drbd, drbdadm role and ha-status read" : node.readErrors.joined(separator: "; "),
                        fix: ok
                            ? nil : "check DRBD \(inventory.drbd.resource) and \(inventory.drbd.ctl) on \(node.name)"))
            }
        }
        if wanted.contains("situation") {
            let found = situation(observation)
            let ok = found?.id == PairSituations.ID.healthy.rawValue
            checks.append(
                PreflightCheck(
                    check: "pair", node: nil, ok: ok, detail: found.map { "\($0.id): \($0.summary)" } ?? "cannot tell",
                    fix: ok
                        ? nil
                        : "the pair must be healthy first: drover diagnose --inventory \(ShellQuote.quote(inventory.file))"
                ))
        }
        return checks
    }

    /// One failed `identity` check per inventory node that leads to a machine another node leads to.
    func identityChecks(_ observation: PairObservation) -> [PreflightCheck] {
        observation.identityMismatches.map { mismatch in
            let line = inventory.backends.first { $0.name == mismatch.node }?.line
            return PreflightCheck(
                check: "identity", node: mismatch.node, ok: false, detail: mismatch.detail,
                fix:
                    "correct host: for \(mismatch.node) in \(inventory.file)\(line.map { ":\($0)" } ?? "") (or its ssh_config HostName), then run drover status --inventory \(ShellQuote.quote(inventory.file))"
            )
        }
    }

    /// Resumed pair runbooks re-check each step's own conditions (the pair is rarely healthy mid-run), after
    /// which machine each node is.
    public func resumeChecks(journal: Journal, playbook: Playbook, observation: PairObservation) -> [PreflightCheck] {
        identityChecks(observation)
    }

    public func nodes(for target: Playbook.Target, observation: PairObservation) throws -> [String] {
        switch target {
        case .all: return inventory.backends.map(\.name)
        case .node(let name): return [name]
        case .any:
            guard let node = observation.primary ?? observation.answering.first else {
                throw TargetError(reason: "no node answers")
            }
            return [node]
        case .role("secondary"):
            guard let secondary = observation.secondary else {
                throw TargetError(reason: "no secondary: \(observation.primaries.count) nodes are DRBD Primary")
            }
            return [secondary]
        case .role:
            guard let primary = observation.primary else {
                throw TargetError(reason: "no single DRBD Primary (\(observation.primaries.count) nodes are Primary)")
            }
            return [primary]
        }
    }

    public func plannedNodes(for target: Playbook.Target, observation: PairObservation?) -> [String?] {
        guard let observation else {
            switch target {
            case .all: return inventory.backends.map(\.name)
            case .node(let name): return [name]
            case .any: return ["<any node>"]
            case .role(let role): return ["<\(role)>"]
            }
        }
        guard let chosen = try? nodes(for: target, observation: observation) else { return [nil] }
        return chosen.map { Optional($0) }
    }

    /// A role target is chosen from the reading right before its step (the previous step may have moved it).
    public func retarget(_ target: Playbook.Target, node: String, observation: PairObservation) -> String? {
        guard case .role(let role) = target, Self.vocabulary.pinnedTargets[role] == nil else { return nil }
        return (try? nodes(for: target, observation: observation))?.first
    }

    public func holds(
        _ requirement: String, subject: String?, node: String, observation: PairObservation
    ) -> (holds: Bool, detail: String) {
        PairConditions.holds(requirement, node: subject ?? node, observation: observation)
    }

    public func criteria(_ predicate: String, node: String, observation: PairObservation) -> [Criterion] {
        PairWaits.criteria(predicate, node: node, observation: observation) { situation(observation) }
    }

    public func explain(_ predicate: String, node: String?) -> String { PairWaits.explain(predicate, node: node) }

    public func skipReason(_ step: Playbook.Step, node: String, observation: PairObservation) -> String? { nil }

    public func liveValues(_ observation: PairObservation?) -> [String: String] {
        let primary = observation?.primary
        return [
            "ctl": inventory.drbd.ctl, "resource": inventory.drbd.resource,
            "primary": primary ?? "", "primary.host": primary.flatMap { inventory.backend(named: $0)?.host } ?? "",
            "secondary": observation?.secondary ?? "",
        ]
    }

    public func summaryRows(_ observation: PairObservation) -> [String] {
        PairStatusReport(
            cluster: inventory.cluster, resource: inventory.drbd.resource, observation: observation,
            situation: situation(observation), locks: []
        ).nodeLines
    }

    public func logAdvice(node: String) -> String {
        "on \(node): \(inventory.drbd.ctl) ha-status; cat /proc/drbd; /var/log/opscode/keepalived/cluster.log"
    }

    public var unrepeatableCommands: [String] { ["wipe-md", "create-md", "--force"] }

    public func discovered(_ observation: PairObservation) -> (lines: [String], json: JSONValue) {
        let found = situation(observation)
        let report = PairStatusReport(
            cluster: inventory.cluster, resource: inventory.drbd.resource, observation: observation, situation: found,
            locks: [])
        let lines =
            ["Discovered: primary \(observation.primary ?? "none"); situation \(found?.id ?? "unknown")"]
            + report.nodeLines
        return (
            lines,
            .object([
                "primary": .optional(observation.primary), "situation": .optional(found?.id), "nodes": report.nodesJSON,
            ])
        )
    }

    public func nothingToDo(_ playbook: Playbook, observation: PairObservation) -> String? { nil }

    public func fingerprint(_ observation: PairObservation, failover: String?) -> [String: String] {
        var result = ["primary": observation.primary ?? "none", "situation": situation(observation)?.id ?? "unknown"]
        for node in observation.nodes {
            result["node.\(node.name).reachable"] = node.reachable ? "yes" : "no"
            result["node.\(node.name).role"] = node.drbdRole ?? "unknown"
            result["node.\(node.name).disk"] = node.device?.disk ?? "unknown"
            result["node.\(node.name).connection"] = node.device?.connection ?? "unknown"
        }
        return result
    }

    public func status(
        _ observation: PairObservation, locks: [LockOwner]
    ) -> (text: String, json: JSONValue, exit: ExitStatus) {
        let report = PairStatusReport(
            cluster: inventory.cluster, resource: inventory.drbd.resource, observation: observation,
            situation: situation(observation), locks: locks)
        return (report.text, report.json, observation.nodes.allSatisfy(\.reachable) ? .success : .refused)
    }

    public func diagnose(_ observation: PairObservation, lastRun: Journal?, inventoryPath: String) -> Diagnosis {
        let found = PairSituations.decide(observation, inventory: inventory, inventoryPath: inventoryPath)
        let unreadable =
            "Cannot tell: the DRBD state of neither node could be read.\n"
            + observation.nodes.map { "  \($0.name): \($0.unreachable ?? $0.readErrors.joined(separator: "; "))" }
            .joined(separator: "\n") + "\n"
        let healthy = found?.id == PairSituations.ID.healthy.rawValue
        return Diagnosis(
            readable: found != nil, situations: healthy ? [] : [found].compactMap { $0 },
            healthyText: "Healthy: \(found?.summary ?? ""). Nothing to do.\n"
                + (found?.advice.map { "Note: \($0)\n" } ?? ""), unreadableText: unreadable,
            extra: ["topology": "drbd-pair", "situation": .optional(found?.id)])
    }
}
