import Foundation

/// `chef-backend-ctl`: its dispatch, usage, `status` and the helpers its subcommands share.
extension Invocation {
    static let usage = """
        Usage: chef-backend-ctl COMMAND [arguments...]
        Commands: backup cleanse cluster-status create-cluster demote force-leader gen-server-config
        join-cluster pgsql-follow promote remove-node restart set-cluster-failover set-node-failover
        start status stop upgrade

        """

    func usageError(_ message: String) -> Int32 {
        err("\(message)\n" + Self.usage)
        return 1
    }

    func ctl(_ arguments: [String]) throws -> Int32 {
        guard let command = arguments.first else { return usageError("chef-backend-ctl: missing command") }
        var rest = Array(arguments.dropFirst())
        let flags = Set(rest.filter { $0.hasPrefix("-") })
        let yes = flags.contains("-y") || flags.contains("--yes")
        rest.removeAll { ["-y", "--yes", "--accept-license", "--quiet", "--verbose"].contains($0) }
        switch command {
        case "status": return try status(rest)
        case "cluster-status":
            guard rest.allSatisfy({ $0 == "--json" }) else {
                return usageError("cluster-status: unknown option \(rest.joined(separator: " "))")
            }
            return try store.update { cluster, _ in
                guard let me = cluster.node(node), me.isMember, cluster.isConfigured(me) else {
                    err("This node is not part of a configured cluster.\n")
                    return 1
                }
                out(rest.contains("--json") ? Formats.clusterStatusJSON(cluster) : Formats.clusterStatus(cluster))
                return 0
            }
        case "set-cluster-failover", "set-node-failover":
            guard rest.count == 1, let state = Self.switchState(rest[0]) else {
                return usageError("\(command): STATE must be one of on, off, true, false, enabled, disabled")
            }
            return try store.update { cluster, _ in
                guard let index = cluster.index(node), cluster.nodes[index].isMember else {
                    err("This node is not part of a configured cluster.\n")
                    return 1
                }
                if command == "set-cluster-failover" {
                    // Over a real data layer, the election's own switch: nobody campaigns while it is off.
                    if let real = cluster.realDataLayer,
                        real.run("failover", ["--set", state ? "on" : "off"]).status != 0
                    {
                        err("ERROR: cannot reach etcd to set cluster failover\n")
                        return 1
                    }
                    cluster.clusterFailover = state
                } else {
                    cluster.nodes[index].nodeFailover = state
                }
                out(
                    "\(command == "set-cluster-failover" ? "Cluster" : "Node") failover \(state ? "enabled" : "disabled").\n"
                )
                return 0
            }
        case "upgrade":
            guard rest.allSatisfy({ $0 == "--failover" }) else {
                return usageError("upgrade: unknown option \(rest.joined(separator: " "))")
            }
            return try upgrade(failover: rest.contains("--failover"))
        case "demote":
            guard rest.isEmpty else { return usageError("demote takes no arguments") }
            return try demote()
        case "promote":
            guard rest.count == 1 else { return usageError("promote: NODE_NAME_OR_IP required") }
            return try promote(rest[0])
        case "force-leader":
            guard rest.isEmpty else { return usageError("force-leader takes no arguments") }
            return try forceLeader()
        case "remove-node":
            guard rest.count == 1 else { return usageError("remove-node: NODE_NAME required") }
            return try removeNode(rest[0], yes: yes)
        case "join-cluster": return try joinCluster(rest)
        case "create-cluster": return try createCluster(rest)
        case "cleanse": return try cleanse(rest, yes: yes)
        case "start", "stop", "restart":
            guard rest.count <= 1 else { return usageError("\(command) [SERVICE_NAME]") }
            return try service(command, rest.first)
        case "pgsql-follow": return try pgsqlFollow(rest)
        case "down-for-upgrade": return try downForUpgrade()
        case "backup": return try backup()
        case "gen-server-config":
            guard rest.count == 1 else { return usageError("gen-server-config: FQDN required") }
            return try genServerConfig(rest[0])
        case "help", "--help", "-h":
            out(Self.usage)
            return 0
        default:
            return usageError("chef-backend-ctl: unknown command '\(command)'")
        }
    }

    static func switchState(_ value: String) -> Bool? {
        switch value {
        case "on", "true", "enabled": return true
        case "off", "false", "disabled": return false
        default: return nil
        }
    }

    func status(_ arguments: [String]) throws -> Int32 {
        let simple = arguments.contains("--simple")
        let names = arguments.filter { !$0.hasPrefix("-") }
        if let service = names.first, service != "disk", !SimulatedCluster.services.contains(service) {
            return usageError("status: unknown service '\(service)'")
        }
        return try store.update { cluster, now in
            guard let me = cluster.node(node) else { return 1 }
            if simple {
                out(Formats.simpleStatus(cluster, on: me, now: now))
            } else {
                out(Formats.status(cluster, on: me, service: names.first == "disk" ? nil : names.first, now: now))
            }
            let healthy =
                cluster.currentLeader != nil
                && cluster.members.allSatisfy { $0.phase == .synced && !$0.unreachable && $0.servicesDown.isEmpty }
            return healthy ? 0 : 1
        }
    }

    /// Polls the state until `condition` holds or `timeout` passes.
    func waitUntil(timeout: TimeInterval, _ condition: (SimulatedCluster) -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try store.update({ cluster, _ in condition(cluster) }) { return true }
            usleep(20_000)
        }
        return try store.update { cluster, _ in condition(cluster) }
    }

    func installedVersion(_ node: SimulatedNode) -> String? {
        guard let data = FileManager.default.contents(atPath: node.hostPath(NodePaths.manifest)),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return json["build_version"] as? String
    }

    /// The end of an upgrade's work: services started at the new version, the node rejoining.
    func finishUpgrade(_ cluster: inout SimulatedCluster, _ index: Int, at now: Date) {
        cluster.nodes[index].upgradeUnfinished = false
        cluster.nodes[index].servicesDown = []
        restartServices(&cluster, index, at: now)
        cluster.setPhase(
            index,
            .rejoining(until: now + cluster.delays.seconds(cluster.delays.serviceRestart + cluster.delays.rejoin)),
            at: now)
    }

    func restartServices(_ cluster: inout SimulatedCluster, _ index: Int, at now: Date) {
        for service in SimulatedCluster.services {
            cluster.nodes[index].serviceSince[service] = now
            cluster.nodes[index].pids[service] = Int.random(in: 2000...60000)
        }
    }

    /// `down-for-upgrade` (1.x → 2.x): stops every service; the leader gives up leadership until every
    /// node is upgraded.
    func downForUpgrade() throws -> Int32 {
        try store.update { cluster, now in
            guard let index = cluster.index(node), cluster.nodes[index].isMember else {
                err("ERROR: this node is not part of a cluster\n")
                return 1
            }
            if cluster.nodes[index].phase == .downForUpgrade {
                out("chef-backend is already down for upgrade\n")
                return 0
            }
            if cluster.leader == node || cluster.currentLeader?.name == node {
                cluster.downtimeLeader = node
                cluster.election = nil
                cluster.setLeader(nil, at: now)
            }
            out("Stopping all services for the upgrade\n")
            cluster.nodes[index].servicesDown = Set(SimulatedCluster.services)
            for service in SimulatedCluster.services { cluster.nodes[index].serviceSince[service] = now }
            cluster.setPhase(index, .downForUpgrade, at: now)
            return 0
        }
    }

    /// `upgrade` of a node down for upgrade: its services return at the new version; once no node is down,
    /// the leader from before the downtime leads again and the others rejoin.
    func upgradeFromDowntime(_ cluster: inout SimulatedCluster, _ index: Int, installed: String, at now: Date) {
        out("Upgrading chef-backend from \(cluster.nodes[index].runningVersion) to \(installed)\n")
        cluster.nodes[index].runningVersion = installed
        cluster.nodes[index].servicesDown = []
        restartServices(&cluster, index, at: now)
        cluster.setPhase(index, .waiting, at: now)
        guard !cluster.members.contains(where: { $0.phase == .downForUpgrade }) else {
            out("Services started; the cluster returns once every node is upgraded\n")
            return
        }
        let winner = cluster.downtimeLeader.flatMap { name in cluster.members.first { $0.name == name }?.name } ?? node
        cluster.downtimeLeader = nil
        cluster.election = Election(completes: now + cluster.electionSeconds, winner: winner)
        for other in cluster.nodes.indices where cluster.nodes[other].isMember && cluster.nodes[other].name != winner {
            cluster.setPhase(
                other, .rejoining(until: now + cluster.delays.seconds(cluster.delays.election + cluster.delays.rejoin)),
                at: now)
        }
        out("Every node is upgraded; \(winner) leads the cluster again\n")
    }
}
