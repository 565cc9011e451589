import Foundation

/// `chef-backend-ctl upgrade` over a real data layer (`drover-sandbox up --real`): the node's PostgreSQL is
/// really stopped and started again, and `--failover` really hands the election to a follower.
extension Invocation {
    /// What an upgrade on a real data layer is to do, decided under the state's lock.
    private struct RealUpgradePlan {
        var handoff: String?
        var inPlaceLeader: Bool
        var installed: String
        var running: String
    }

    func realUpgrade(failover: Bool, real: RealDataLayer) throws -> Int32 {
        var exitStatus: Int32 = 1
        let plan: RealUpgradePlan? = try store.update { cluster, now in
            guard let index = cluster.index(node), cluster.nodes[index].isMember else {
                err("ERROR: this node is not part of a cluster\n")
                return nil
            }
            guard let installed = installedVersion(cluster.nodes[index]) else {
                err("ERROR: cannot read \(NodePaths.manifest)\n")
                return nil
            }
            let running = cluster.nodes[index].runningVersion
            if installed == running {
                if !finishElasticsearch(&cluster, index, installed: installed) {
                    out("chef-backend \(installed) is already running; nothing to upgrade.\n")
                }
                exitStatus = 0
                return nil
            }
            let isLeader = cluster.currentLeader?.name == node
            guard isLeader && failover else {
                if isLeader { cluster.outages.append(Outage(node: node, start: now, end: nil)) }
                return RealUpgradePlan(handoff: nil, inPlaceLeader: isLeader, installed: installed, running: running)
            }
            guard let candidate = failoverCandidate(cluster) else { return nil }
            return RealUpgradePlan(
                handoff: candidate.name, inPlaceLeader: false, installed: installed, running: running)
        }
        guard let plan else { return exitStatus }
        if let handoff = plan.handoff {
            out("Failing over to \(handoff) before upgrading this node\n")
            guard real.run("switchover", ["--to", handoff, "--timeout", "60"]).status == 0 else {
                err("ERROR: the failover to \(handoff) did not complete\n")
                return 1
            }
        } else if plan.inPlaceLeader {
            out("WARNING: upgrading the leader in place; the cluster has no leader until it returns\n")
        }
        out("Upgrading chef-backend from \(plan.running) to \(plan.installed)\n")
        out(Self.progressIndicator + "Restarting services\n")
        guard real.run("hold", ["--node", node]).status == 0 else {
            err("ERROR: PostgreSQL did not stop on \(node)\n")
            return 1
        }
        let fails: Bool = try store.update { cluster, now in
            guard let index = cluster.index(node) else { return false }
            restartServices(&cluster, index, at: now)
            cluster.nodes[index].runningVersion = plan.installed
            halfUpgradeElasticsearchIfFaulted(&cluster, index)
            // Read afresh: the reading before the stop showed it streaming.
            cluster.realDataLayer?.observedAt = nil
            guard !cluster.nodes[index].faults.contains(.upgradeFails) else {
                // Its services do not come back: PostgreSQL stays down until `drover-sandbox heal`.
                cluster.setPhase(index, .waiting, at: now)
                cluster.nodes[index].appendLog(
                    "leaderl", "[error] leaderl did not start after the upgrade (simulated fault upgrade-fails)")
                return true
            }
            cluster.setPhase(index, .rejoining(until: now), at: now)
            return false
        }
        if fails {
            err("ERROR: upgrade failed: leaderl did not start (see /var/log/chef-backend/leaderl/current)\n")
            return 1
        }
        guard real.run("release", ["--node", node]).status == 0 else {
            err("ERROR: PostgreSQL could not be started again on \(node)\n")
            return 1
        }
        return try waitForRejoin(timeout: 120)
    }
}
