import Foundation

/// `chef-backend-ctl upgrade` (with and without `--failover`) and the downtime path.
extension Invocation {
    /// A bar redrawn in place, then erased (cursor hidden, lines cleared) before the next message.
    static let progressIndicator =
        "\u{1B}[?25l[          ]   0%\r[#####     ]  50%\r[##########] 100%\r\u{1B}[2K\u{1B}[?25h"

    func upgrade(failover: Bool) throws -> Int32 {
        if let real = try store.update({ cluster, _ in cluster.realDataLayer }) {
            return try realUpgrade(failover: failover, real: real)
        }
        let plan: (String, Bool)? = try store.update { cluster, now in
            guard let index = cluster.index(node), cluster.nodes[index].isMember else {
                err("ERROR: this node is not part of a cluster\n")
                return nil
            }
            guard let installed = installedVersion(cluster.nodes[index]) else {
                err("ERROR: cannot read \(NodePaths.manifest)\n")
                return nil
            }
            if cluster.nodes[index].upgradeUnfinished {
                // An upgrade that died with its services stopped: this run makes the changes needed to start
                // the new services and waits for the rejoin.
                out("Resuming the interrupted upgrade to chef-backend \(installed)\n")
                if !cluster.fragileCommands { finishUpgrade(&cluster, index, at: now) }
                return ("wait", false)
            }
            if cluster.nodes[index].phase == .downForUpgrade {
                upgradeFromDowntime(&cluster, index, installed: installed, at: now)
                return ("noop", false)
            }
            if installed == cluster.nodes[index].runningVersion {
                if finishElasticsearch(&cluster, index, installed: installed) { return ("noop", false) }
                out("chef-backend \(installed) is already running; nothing to upgrade.\n")
                return ("noop", false)
            }
            let isLeader = cluster.currentLeader?.name == node
            if isLeader && failover {
                guard let candidate = failoverCandidate(cluster) else { return nil }
                out("Failing over to \(candidate.name) before upgrading this node\n")
                cluster.setLeader(nil, at: now)
                cluster.election = Election(
                    completes: cluster.nodes.contains { $0.faults.contains(.electionStalls) }
                        ? nil : now + cluster.electionSeconds,
                    winner: candidate.name)
            } else if isLeader {
                out("WARNING: upgrading the leader in place; the cluster has no leader until it returns\n")
                cluster.outages.append(Outage(node: node, start: now, end: nil))
                cluster.setLeader(nil, at: now)
                cluster.election = Election(
                    completes: now + cluster.delays.seconds(cluster.delays.rejoin + cluster.delays.serviceRestart),
                    winner: node)
            }
            out("Upgrading chef-backend from \(cluster.nodes[index].runningVersion) to \(installed)\n")
            // A progress indicator, drawn in place as chef-backend-ctl draws its own (release notes 1.3.2): the
            // captured output carries the carriage returns and ANSI sequences.
            out(Self.progressIndicator + "Restarting services\n")
            restartServices(&cluster, index, at: now)
            cluster.nodes[index].runningVersion = installed
            halfUpgradeElasticsearchIfFaulted(&cluster, index)
            if cluster.nodes[index].faults.contains(.upgradeFails) {
                cluster.setPhase(index, .waiting, at: now)
                cluster.nodes[index].appendLog(
                    "leaderl", "[error] leaderl did not start after the upgrade (simulated fault upgrade-fails)")
                err("ERROR: upgrade failed: leaderl did not start (see /var/log/chef-backend/leaderl/current)\n")
                return nil
            }
            if cluster.fragileCommands && !(isLeader && !failover) {
                // Real work with the services stopped: the node is down until it finishes.
                cluster.nodes[index].servicesDown = Set(SimulatedCluster.services)
                cluster.setPhase(index, .waiting, at: now)
                cluster.nodes[index].upgradeUnfinished = true
                return ("wait", isLeader && failover)
            }
            if !(isLeader && !failover) {
                cluster.setPhase(
                    index,
                    .rejoining(
                        until: now + cluster.delays.seconds(cluster.delays.serviceRestart + cluster.delays.rejoin)),
                    at: now)
            }
            return ("wait", isLeader && failover)
        }
        guard let plan else { return 1 }
        if plan.0 == "noop" { return 0 }
        let (fragile, seconds) = try store.update { cluster, _ in
            (
                cluster.nodes.first { $0.name == node }?.upgradeUnfinished == true && cluster.fragileCommands,
                cluster.upgradeSeconds
            )
        }
        if fragile {
            // Each line goes to the connection: once it is gone, the write kills this process (SIGPIPE), as
            // it would a real one, and the node stays down.
            let steps = max(1, Int((seconds / 0.2).rounded()))
            for step in 1...steps {
                out("Upgrading: migrating and restarting services (\(step)/\(steps))\n")
                usleep(200_000)
            }
            try store.update { cluster, now in
                if let index = cluster.index(node) { finishUpgrade(&cluster, index, at: now) }
            }
        }
        let timeout = try store.update { cluster, _ in
            cluster.delays.seconds(cluster.delays.election + cluster.delays.rejoin + cluster.delays.serviceRestart) * 4
                + (cluster.promotionSeconds ?? 0) + 1
        }
        return try waitForRejoin(timeout: timeout)
    }

    /// Running the upgrade again on a node whose Elasticsearch is half-upgraded finishes it (reference §11,
    /// chef-server PR #3214); false when it is not.
    func finishElasticsearch(_ cluster: inout SimulatedCluster, _ index: Int, installed: String) -> Bool {
        guard cluster.nodes[index].elasticsearchHalfUpgraded else { return false }
        out("Reconfiguring Elasticsearch for chef-backend \(installed)\n")
        cluster.nodes[index].appendElasticsearchLog("[INFO ][o.e.n.Node               ] [\(node)] started")
        cluster.nodes[index].elasticsearchHalfUpgraded = false
        return true
    }

    /// With ``Fault/elasticsearchPathScripts``, this upgrade leaves Elasticsearch half-upgraded, its log saying why.
    func halfUpgradeElasticsearchIfFaulted(_ cluster: inout SimulatedCluster, _ index: Int) {
        guard cluster.nodes[index].faults.contains(.elasticsearchPathScripts) else { return }
        cluster.nodes[index].faults.remove(.elasticsearchPathScripts)
        cluster.nodes[index].elasticsearchHalfUpgraded = true
        cluster.nodes[index].appendElasticsearchLog(
            "[ERROR][o.e.b.Bootstrap          ] Exception java.lang.IllegalArgumentException: unknown setting [path.scripts] please check that any required plugins are installed"
        )
    }

    /// The follower `upgrade --failover` hands the leadership to (synced, node failover on, reachable, no unsynced
    /// sentinel); nil, said on stderr, when cluster failover is off or no follower is eligible.
    func failoverCandidate(_ cluster: SimulatedCluster) -> SimulatedNode? {
        guard cluster.clusterFailover else {
            err(
                "ERROR: cluster failover is disabled; cannot fail over. Enable it with: chef-backend-ctl set-cluster-failover on\n"
            )
            return nil
        }
        guard
            let candidate = cluster.nodes.first(where: {
                $0.name != node && $0.isMember && $0.phase == .synced && $0.nodeFailover && !$0.unreachable
                    && !cluster.sentinelPresent($0, NodePaths.unsynced)
            })
        else {
            err("ERROR: no follower is eligible for leadership (synced, with node failover enabled)\n")
            return nil
        }
        return candidate
    }

    /// Waits up to `timeout` seconds for this node to be a follower or the leader again, as `upgrade` does.
    func waitForRejoin(timeout: TimeInterval) throws -> Int32 {
        out("Waiting for this node to rejoin the cluster\n")
        let rejoined = try waitUntil(timeout: timeout) { cluster in
            guard let me = cluster.node(node) else { return false }
            let role = cluster.role(of: me)
            return role == "follower" || role == "leader"
        }
        guard rejoined else {
            err("ERROR: this node did not rejoin the cluster in time\n")
            return 1
        }
        out(
            "Node rejoined the cluster as \(try store.update { cluster, _ in cluster.node(node).flatMap(cluster.role) ?? "?" }); PostgreSQL may still be syncing\n"
        )
        return 0
    }
}
