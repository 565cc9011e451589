import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

/// Names what is wrong with a cluster from one read of every backend, following Chef's failure-recovery
/// guide.
public enum ClusterDiagnosis {
    public static func situations(
        _ observation: ClusterObservation, inventory: Inventory, inventoryPath: String,
        lastRun: Journal?
    ) -> [Situation] {
        backendSituations(observation, inventory: inventory, inventoryPath: inventoryPath, lastRun: lastRun)
            + FrontendDiagnosis.situations(
                observation.frontends, inventoryArgument: "--inventory \(ShellQuote.quote(inventoryPath))",
                lastRun: lastRun)
    }

    /// When the last run failed (rather than being interrupted), what failed, to fix before continuing it: resuming
    /// re-runs the failed step, which fails again while its cause stands.
    static func failureToFixFirst(_ lastRun: Journal?) -> (first: String, command: String)? {
        guard let run = lastRun, run.status == .failed, let step = run.steps.last(where: { $0.status == .failed })
        else { return nil }
        let reason = (step.reason ?? "see the run").split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        .joined(separator: " ")
        return (
            "run \(run.runID) failed at \(step.step) on \(step.node): \(reason). Fix that cause first (the run's commands and output, and the node's logs); see the run:",
            "drover show \(run.runID)"
        )
    }

    /// The backends' situations, from Chef's failure-recovery guide.
    static func backendSituations(
        _ observation: ClusterObservation, inventory: Inventory, inventoryPath: String,
        lastRun: Journal?
    ) -> [Situation] {
        var result: [Situation] = []
        let inventoryArgument = "--inventory \(ShellQuote.quote(inventoryPath))"
        // Who a node is comes before any verdict on it: an inventory entry that reaches another machine (or none,
        // while the cluster sees its namesake healthy elsewhere) is an inventory error, not a dead node.
        let mismatches = observation.identityMismatches
        if !mismatches.isEmpty {
            let lines = mismatches.map { mismatch in
                inventory.backends.first { $0.name == mismatch.node }.map { "\(inventoryPath):\($0.line)" }
                    ?? inventoryPath
            }
            result.append(
                Situation(
                    id: "inventory-mismatch",
                    summary:
                        "the inventory does not name the machines the cluster knows: \(mismatches.map(\.node).joined(separator: ", "))",
                    evidence: mismatches.map(\.detail)
                        + (observation.members.isEmpty
                            ? []
                            : [
                                "cluster-status lists "
                                    + observation.members.map { "\($0.name) \($0.ip) \($0.role)" }.joined(
                                        separator: ", ")
                            ]),
                    command: nil,
                    advice:
                        "Correct host: for \(mismatches.map(\.node).joined(separator: ", ")) (\(Array(Set(lines)).sorted().joined(separator: ", ")), or the ssh_config HostName it takes) to the address the cluster lists. Until then every playbook refuses at pre-flight and nothing is changed; no node is down for this. Then check again:",
                    adviceCommands: ["drover status \(inventoryArgument)"]))
        }
        let mismatched = Set(mismatches.map(\.node))
        // A node the cluster still lists as leader or follower is up, whatever Drover could reach: its
        // unreachability is between this workstation and it, never a reason to replace it.
        let unreachable = observation.nodes.filter {
            $0.unreachable != nil && !mismatched.contains($0.name) && !observation.listedUp($0.name)
        }
        let reachable = observation.nodes.filter { $0.unreachable == nil }
        for node in observation.nodes
        where node.unreachable != nil && !mismatched.contains(node.name) && observation.listedUp(node.name) {
            result.append(
                Situation(
                    id: "unreachable-from-here",
                    summary:
                        "\(node.name) cannot be reached from here, but the cluster lists it as \(observation.role(of: node.name) ?? "a member"): it is up",
                    evidence: ["\(node.name): \(node.unreachable!)"],
                    command: nil,
                    advice:
                        "The problem is between this workstation and \(node.name) (SSH, its host key, a firewall, the VPN): the error above says which. Nothing in the cluster needs repair for it; fix the connection, then check again:",
                    adviceCommands: ["drover status \(inventoryArgument)"]))
        }
        // A node that answers but is not part of a cluster: a new or rebuilt machine, or the inventory names
        // the wrong one. Its own readings say nothing about the cluster.
        for node in reachable where node.notInCluster != nil {
            result.append(
                Situation(
                    id: "not-in-cluster",
                    summary: "\(node.name) is not part of a cluster: its chef-backend-ctl cluster-status exits 1",
                    evidence: ["\(node.name): cluster-status exited 1: \(node.notInCluster!)"]
                        + reachable.filter { $0.name != node.name }.compactMap { other in
                            other.members.map {
                                "\(other.name) sees the cluster as \($0.map { "\($0.name) \($0.role)" }.joined(separator: ", "))"
                            }
                        },
                    command:
                        "drover run replace-failed-node \(inventoryArgument) --set failed=\(node.name) --set replacement=\(node.name)",
                    advice:
                        "set failed= to the member it replaces as cluster-status names it; the playbook takes a backup, removes that member and joins \(node.name).",
                    first:
                        "check that the inventory's host for \(node.name) is the machine you mean (a cluster member answers cluster-status); if it is not, fix the inventory and run:",
                    firstCommand: "drover status \(inventoryArgument)",
                    commandCondition: "\(node.name) is a new or rebuilt machine that should take its place"))
        }
        if unreachable.count >= 2 {
            let survivor = reachable.first?.name ?? "SURVIVOR"
            result.append(
                Situation(
                    id: "quorum-lost",
                    summary: "two nodes lost: the cluster has no quorum (leader election needs two of three nodes)",
                    evidence: unreachable.map { "\($0.name) unreachable: \($0.unreachable!)" },
                    command:
                        "drover run quorum-loss-recovery \(inventoryArgument) --set survivor=\(survivor) --set new1=\(unreachable[0].name) --set new2=\(unreachable[1].name)",
                    advice:
                        "Only when the lost nodes will not return: \(survivor) must hold the most recent data, and the new machines (new1, new2: their inventory entries) must be installed first."
                ))
            return result
        }
        if let down = unreachable.first {
            result.append(
                Situation(
                    id: "node-unreachable", summary: "one node is down or unreachable: \(down.name)",
                    evidence: ["\(down.name): \(down.unreachable!)"]
                        + reachable.compactMap { node in
                            node.status?["leaderl"].map { "\(node.name) sees leaderl \($0.distributed)" }
                        },
                    command:
                        "drover run replace-failed-node \(inventoryArgument) --set failed=\(down.name) --set replacement=\(down.name)",
                    advice:
                        "set replacement= to the new machine's inventory entry; the playbook takes a backup and runs remove-node \(down.name), which cannot be undone.",
                    first:
                        "if \(down.name) is down for a while (a reboot, a network cut, maintenance), wait and bring it back; do nothing else: it reconnects and syncs from the leader by itself. Tell when it is back (it answers, and is a follower again):",
                    firstCommand: "drover status \(inventoryArgument)",
                    commandCondition: "\(down.name) is lost for good"
                ))
        }
        guard !reachable.isEmpty, reachable.contains(where: { $0.members != nil || $0.status != nil }) else {
            return result
        }

        let leader = observation.leader
        // An upgrade that died half-way (the target installed, services down): running it again is Chef's way on.
        let newest = observation.versions.values.max { compareVersions($0, $1) == .orderedAscending }
        let target = inventory.package?.version ?? newest
        let interrupted = target.map { observation.interruptedUpgrades(target: $0) } ?? []
        if let target {
            for name in interrupted {
                let unfinished = lastRun.flatMap { $0.isUnfinished && $0.unfinished?.node == name ? $0 : nil }
                let command =
                    unfinished != nil
                    ? "drover resume \(inventoryArgument)"
                    : (inventory.package?.version == target
                        ? "drover upgrade \(inventoryArgument)"
                        : "drover exec \(inventoryArgument) --node \(name) -- chef-backend-ctl upgrade")
                let failure = unfinished == nil ? nil : Self.failureToFixFirst(lastRun)
                result.append(
                    Situation(
                        id: "upgrade-interrupted",
                        summary:
                            "upgrade interrupted on \(name): \(target) is installed but the node is out of the cluster with its services down",
                        evidence: observation.interruptedEvidence(name, target: target)
                            + (unfinished.map { ["run \($0.runID) stopped in step \($0.unfinished!.step) on \(name)"] }
                                ?? []),
                        command: command,
                        advice:
                            "Running chef-backend-ctl upgrade on \(name) again is the recovery: Chef documents that upgrade makes the changes needed to start the new services and verifies the rejoin. Drover does that first and touches no other node while \(name) is down.",
                        first: failure?.first, firstCommand: failure?.command,
                        commandCondition: failure == nil ? nil : "that cause is fixed"
                    ))
            }
        }
        let deposed = reachable.filter { $0.noStartPgsqlSentinel == true }
        if leader == nil, let node = deposed.first {
            result.append(
                Situation(
                    id: "deposed-leader",
                    summary: "no leader; \(node.name) is a deposed leader held down by no-start-pgsql",
                    evidence: [
                        "/var/opt/chef-backend/leaderl/data/no-start-pgsql present on \(node.name)",
                        "\(node.name) postgresql: \(node.status?["postgresql"]?.localStatus ?? "unknown")",
                    ]
                        + reachable.map { "\($0.name): \(observation.role(of: $0.name) ?? "not listed")" },
                    command: "drover run reinstate-deposed-leader \(inventoryArgument) --set node=\(node.name)",
                    advice:
                        "Only if \(node.name) holds the most recent data; otherwise promote another node with promote-node."
                ))
        } else if leader == nil, reachable.count >= 2,
            reachable.allSatisfy({ observation.role(of: $0.name) == "waiting_for_leader" })
        {
            result.append(
                Situation(
                    id: "all-waiting", summary: "partition healed but every node is waiting_for_leader",
                    evidence: reachable.map { "\($0.name): waiting_for_leader" }
                        + reachable.compactMap { node in
                            node.status?["leaderl"].map { "\(node.name) sees leaderl \($0.distributed)" }
                        }.prefix(1),
                    command: "drover run promote-node \(inventoryArgument) --set node=NODE",
                    advice:
                        "Which node has the most recent data cannot be read from chef-backend-ctl's documented output: choose it (usually the last leader), and set node= to it."
                ))
        }
        for node in reachable where node.unsyncedSentinel == true {
            result.append(
                Situation(
                    id: "partially-synced",
                    summary: "\(node.name) did not finish syncing from the leader (partially_synced)",
                    evidence: [
                        "/var/opt/chef-backend/leaderl/data/unsynced present on \(node.name)",
                        "\(node.name): \(observation.role(of: node.name) ?? "not listed")",
                    ],
                    command: leader == nil
                        ? nil : "drover run resync-node \(inventoryArgument) --set node=\(node.name)",
                    advice: leader == nil
                        ? "Restore a leader first."
                        : "If pgsql-follow reports that the requested WAL segment was removed, add --set force_basebackup=true."
                ))
        }
        let versions = Set(reachable.compactMap(\.installedVersion))
        // An interrupted upgrade already says what to run; its node's stopped services follow from it.
        if versions.count > 1 && interrupted.isEmpty {
            let unfinished = lastRun.map { [.running, .interrupted, .failed].contains($0.status) } ?? false
            let failure = Self.failureToFixFirst(lastRun)
            result.append(
                Situation(
                    id: "mixed-versions", summary: "versions are mixed across nodes: an upgrade was interrupted",
                    evidence: reachable.map { "\($0.name): \($0.installedVersion ?? "unknown")" }
                        + (unfinished ? ["run \(lastRun!.runID) is \(lastRun!.status.rawValue)"] : []),
                    command: unfinished ? "drover resume \(inventoryArgument)" : "drover upgrade \(inventoryArgument)",
                    advice: nil, first: failure?.first, firstCommand: failure?.command,
                    commandCondition: failure == nil ? nil : "that cause is fixed"))
        }
        if let lastRun, lastRun.failover == "off", lastRun.status != .succeeded {
            result.append(
                Situation(
                    id: "failover-off", summary: "cluster failover was left off by run \(lastRun.runID)",
                    evidence: [
                        "run \(lastRun.runID) (\(lastRun.status.rawValue)) last set it off in step \(lastRun.failoverStep ?? "?")",
                        "chef-backend-ctl documents no output that shows the flag",
                    ],
                    command: versions.count > 1 ? nil : "drover run set-failover \(inventoryArgument) --set state=on",
                    advice: versions.count > 1 ? "Finish the upgrade first (it turns failover back on)." : nil))
        }
        let guide: [String: String] = [
            "postgresql":
                "leaderl fails PostgreSQL over if this is the leader; two of three nodes may lose PostgreSQL while etcd and leaderl run. Once fixed, the node re-syncs from the leader.",
            "elasticsearch":
                "one of three nodes may lose Elasticsearch without losing availability; on the leader, leaderl fails over (PostgreSQL too). Once fixed, the node rejoins.",
            "etcd": "one of three nodes may lose etcd; on the leader, a PostgreSQL failover follows.",
            "leaderl":
                "on the leader, the others take over leadership, but PostgreSQL there may still accept connections; restart leaderl.",
        ]
        for node in reachable where !interrupted.contains(node.name) {
            for service in ["postgresql", "elasticsearch", "etcd", "leaderl"]
            where node.status?[service].map({ !$0.isRunning }) == true {
                if service == "postgresql", node.noStartPgsqlSentinel == true { continue }
                result.append(
                    Situation(
                        id: "service-down", summary: "\(service) is down on \(node.name)",
                        evidence: ["\(node.name) \(service): \(node.status?[service]?.localStatus ?? "down")"],
                        command: nil,
                        advice:
                            "What happens next (Chef's guide): \(guide[service]!) To start it: chef-backend-ctl start \(service) on \(node.name)."
                    ))
            }
        }
        if result.isEmpty {
            let failing = Predicates.healthy(observation, allowYellow: false).filter { !$0.holds }
            if !failing.isEmpty {
                result.append(
                    Situation(
                        id: "unhealthy", summary: "the cluster is not healthy", evidence: failing.map(\.detail),
                        command: nil,
                        advice: "Wait a little (a node may still be syncing) and diagnose again."))
            }
        }
        return result
    }
}
