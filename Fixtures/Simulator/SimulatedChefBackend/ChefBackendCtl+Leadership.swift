import Foundation

/// `chef-backend-ctl demote`, `promote` and `force-leader`.
extension Invocation {
    func demote() throws -> Int32 {
        let started: Bool = try store.update { cluster, now in
            guard let leader = cluster.currentLeader else {
                err("ERROR: there is no leader to demote\n")
                return false
            }
            guard cluster.clusterFailover, leader.nodeFailover else {
                err("ERROR: failover is disabled (cluster or node); cannot demote\n")
                return false
            }
            guard
                let candidate = cluster.members.first(where: {
                    $0.name != leader.name && $0.phase == .synced && $0.nodeFailover && !$0.unreachable
                })
            else {
                err("ERROR: no eligible follower to take over\n")
                return false
            }
            cluster.setLeader(nil, at: now)
            cluster.election = Election(
                completes: cluster.nodes.contains { $0.faults.contains(.electionStalls) }
                    ? nil : now + cluster.electionSeconds, winner: candidate.name)
            if let index = cluster.index(leader.name) {
                cluster.setPhase(
                    index,
                    .syncing(
                        since: now, until: now + cluster.delays.seconds(cluster.delays.election + cluster.delays.sync)),
                    at: now)
            }
            out("Demoting \(leader.name); electing a new leader\n")
            return true
        }
        guard started else { return 1 }
        return try waitForLeader(other: nil) ? 0 : 1
    }

    func waitForLeader(other: String?) throws -> Bool {
        let timeout = try store.update { cluster, _ in cluster.electionSeconds * 4 + 1 }
        let ok = try waitUntil(timeout: timeout) { cluster in
            guard let leader = cluster.currentLeader else { return false }
            return other == nil || leader.name == other
        }
        if ok {
            out("New leader: \(try store.update { cluster, _ in cluster.currentLeader?.name ?? "?" })\n")
        } else {
            err("ERROR: no leader was elected within the allowed time\n")
        }
        return ok
    }

    func promote(_ target: String) throws -> Int32 {
        let name: String? = try store.update { cluster, now in
            guard let index = cluster.index(target), cluster.nodes[index].isMember else {
                err("ERROR: \(target) is not a member of this cluster\n")
                return nil
            }
            let candidate = cluster.nodes[index]
            if cluster.currentLeader?.name == candidate.name {
                out("\(candidate.name) is already the leader\n")
                return candidate.name
            }
            guard cluster.clusterFailover, candidate.nodeFailover else {
                err("ERROR: failover is disabled (cluster or node); cannot promote\n")
                return nil
            }
            let eligible =
                !candidate.unreachable && !cluster.sentinelPresent(candidate, NodePaths.unsynced)
                && candidate.phase != .partiallySynced
                && !(candidate.phase == .deposed || candidate.servicesDown.contains("postgresql"))
            guard eligible else {
                err("ERROR: \(candidate.name) is not eligible for leadership (unsynced, deposed or PostgreSQL down)\n")
                return nil
            }
            let previous = cluster.currentLeader?.name
            cluster.setLeader(nil, at: now)
            cluster.election = Election(
                completes: candidate.faults.contains(.electionStalls)
                    ? nil : now + cluster.electionSeconds, winner: candidate.name)
            for other in cluster.nodes.indices
            where cluster.nodes[other].name != candidate.name && cluster.nodes[other].isMember {
                switch cluster.nodes[other].phase {
                case .waiting, .synced:
                    if cluster.nodes[other].name == previous || cluster.nodes[other].phase == .waiting {
                        cluster.setPhase(
                            other,
                            .syncing(
                                since: now,
                                until: now + cluster.delays.seconds(cluster.delays.election + cluster.delays.sync)),
                            at: now)
                    }
                default: break
                }
            }
            out("Promoting \(candidate.name)\n")
            return candidate.name
        }
        guard let name else { return 1 }
        return try waitForLeader(other: name) ? 0 : 1
    }

    func forceLeader() throws -> Int32 {
        try store.update { cluster, now in
            if let leader = cluster.currentLeader {
                err("ERROR: a leader already exists (\(leader.name)); refusing to force leadership\n")
                return 1
            }
            guard let index = cluster.index(node), cluster.nodes[index].isMember,
                cluster.nodes[index].phase != .deposed,
                !cluster.sentinelPresent(cluster.nodes[index], NodePaths.unsynced)
            else {
                err("ERROR: this node is not healthy enough to lead\n")
                return 1
            }
            cluster.election = nil
            cluster.setPhase(index, .synced, at: now)
            cluster.setLeader(node, at: now)
            for other in cluster.nodes.indices where other != index && cluster.nodes[other].phase == .waiting {
                cluster.setPhase(
                    other, .syncing(since: now, until: now + cluster.delays.seconds(cluster.delays.sync)), at: now)
            }
            out("This node (\(node)) is now the leader\n")
            return 0
        }
    }
}
