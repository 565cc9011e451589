import Foundation

/// One invocation of a simulated tool on one node; writes like the real tool and returns its exit status.
public struct Invocation {
    public let node: String
    public let store: StateStore
    public let environment: [String: String]
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(
        node: String, store: StateStore, environment: [String: String],
        out: @escaping (String) -> Void, err: @escaping (String) -> Void
    ) {
        self.node = node
        self.store = store
        self.environment = environment
        self.out = out
        self.err = err
    }

    /// Dispatches on the tool name (`chef-backend-ctl`, `dpkg`, `dpkg-query`, `rpm`, `yum`, `df`).
    public func run(tool: String, arguments: [String]) -> Int32 {
        do {
            switch tool {
            case "chef-backend-ctl": return try ctl(arguments)
            case "dpkg": return try dpkg(arguments)
            case "dpkg-query": return try dpkgQuery(arguments)
            case "rpm": return try rpm(arguments)
            case "yum": return try yum(arguments)
            case "df": return try df(arguments)
            case "curl": return try curl(arguments)
            default:
                err("\(tool): not simulated\n")
                return 127
            }
        } catch {
            err("\(error.localizedDescription)\n")
            return 70
        }
    }

    // MARK: chef-backend-ctl

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
        cluster.election = Election(completes: now + cluster.delays.seconds(cluster.delays.election), winner: winner)
        for other in cluster.nodes.indices where cluster.nodes[other].isMember && cluster.nodes[other].name != winner {
            cluster.setPhase(
                other, .rejoining(until: now + cluster.delays.seconds(cluster.delays.election + cluster.delays.rejoin)),
                at: now)
        }
        out("Every node is upgraded; \(winner) leads the cluster again\n")
    }

    func upgrade(failover: Bool) throws -> Int32 {
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
                if cluster.nodes[index].elasticsearchHalfUpgraded {
                    // Running the upgrade again finishes Elasticsearch's (reference §11, chef-server PR #3214).
                    out("Reconfiguring Elasticsearch for chef-backend \(installed)\n")
                    cluster.nodes[index].appendElasticsearchLog("[INFO ][o.e.n.Node               ] [\(node)] started")
                    cluster.nodes[index].elasticsearchHalfUpgraded = false
                    return ("noop", false)
                }
                out("chef-backend \(installed) is already running; nothing to upgrade.\n")
                return ("noop", false)
            }
            let isLeader = cluster.currentLeader?.name == node
            if isLeader && failover {
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
                out("Failing over to \(candidate.name) before upgrading this node\n")
                cluster.setLeader(nil, at: now)
                cluster.election = Election(
                    completes: cluster.nodes.contains { $0.faults.contains(.electionStalls) }
                        ? nil : now + cluster.delays.seconds(cluster.delays.election),
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
            out("Restarting services\n")
            restartServices(&cluster, index, at: now)
            cluster.nodes[index].runningVersion = installed
            if cluster.nodes[index].faults.contains(.elasticsearchPathScripts) {
                cluster.nodes[index].faults.remove(.elasticsearchPathScripts)
                cluster.nodes[index].elasticsearchHalfUpgraded = true
                cluster.nodes[index].appendElasticsearchLog(
                    "[ERROR][o.e.b.Bootstrap          ] Exception java.lang.IllegalArgumentException: unknown setting [path.scripts] please check that any required plugins are installed"
                )
            }
            if cluster.nodes[index].faults.contains(.upgradeFails) {
                cluster.setPhase(index, .waiting, at: now)
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
        out("Waiting for this node to rejoin the cluster\n")
        let timeout = try store.update { cluster, _ in
            cluster.delays.seconds(cluster.delays.election + cluster.delays.rejoin + cluster.delays.serviceRestart) * 4
                + 1
        }
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
                    ? nil : now + cluster.delays.seconds(cluster.delays.election), winner: candidate.name)
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
        let timeout = try store.update { cluster, _ in cluster.delays.seconds(cluster.delays.election) * 4 + 1 }
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
                    ? nil : now + cluster.delays.seconds(cluster.delays.election), winner: candidate.name)
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

    func removeNode(_ target: String, yes: Bool) throws -> Int32 {
        try store.update { cluster, now in
            guard let index = cluster.index(target), cluster.nodes[index].isMember else {
                err("ERROR: \(target) is not a member of this cluster\n")
                return 1
            }
            guard cluster.nodes[index].name != node else {
                err("ERROR: remove-node cannot be run on the node being removed; run it on a healthy member\n")
                return 1
            }
            let down =
                cluster.nodes[index].unreachable
                || Set(SimulatedCluster.services).subtracting(["epmd"]).isSubset(of: cluster.nodes[index].servicesDown)
            guard down else {
                err("ERROR: \(cluster.nodes[index].name) is still running; stop all its services first\n")
                return 1
            }
            cluster.setPhase(index, .outside, at: now)
            if cluster.leader == cluster.nodes[index].name { cluster.setLeader(nil, at: now) }
            out("Removed \(cluster.nodes[index].name) from the cluster\n")
            return 0
        }
    }

    func joinCluster(_ arguments: [String]) throws -> Int32 {
        var peer: String?
        var secrets: String?
        var recovery = false
        var publish: String?
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "-s", "--secrets-file-path": secrets = iterator.next()
            case "-p", "--publish-address", "--publish_address": publish = iterator.next()
            case "--recovery": recovery = true
            case let value where !value.hasPrefix("-") && peer == nil: peer = value
            default: return usageError("join-cluster: unknown argument \(argument)")
            }
        }
        guard let peer else { return usageError("join-cluster: PEER_NODE_IP required") }
        _ = publish
        return try store.update { cluster, now in
            guard let index = cluster.index(node) else { return 1 }
            guard !cluster.nodes[index].isMember else {
                err("ERROR: this node is already part of a cluster\n")
                return 1
            }
            let configured = FileManager.default.fileExists(atPath: cluster.nodes[index].hostPath(NodePaths.config))
            if recovery && !configured {
                err("ERROR: --recovery needs an existing \(NodePaths.config)\n")
                return 1
            }
            if !recovery && configured {
                err("ERROR: this node is already configured; use --recovery to rejoin it\n")
                return 1
            }
            if !recovery {
                guard let secrets, secrets.hasPrefix("/"),
                    let data = FileManager.default.contents(atPath: cluster.nodes[index].hostPath(secrets)),
                    !data.isEmpty
                else {
                    err("ERROR: secrets file missing or empty; pass its absolute path with -s\n")
                    return 1
                }
                try? FileManager.default.createDirectory(
                    atPath: cluster.nodes[index].hostPath("/etc/chef-backend"), withIntermediateDirectories: true)
                _ = FileManager.default.createFile(
                    atPath: cluster.nodes[index].hostPath(NodePaths.secrets), contents: data)
                _ = FileManager.default.createFile(
                    atPath: cluster.nodes[index].hostPath(NodePaths.config),
                    contents: Data("publish_address '\(cluster.nodes[index].ip)'\n".utf8))
            }
            guard let peerIndex = cluster.index(peer), cluster.nodes[peerIndex].isMember,
                !cluster.nodes[peerIndex].unreachable
            else {
                err("ERROR: cannot reach a cluster member at \(peer)\n")
                return 1
            }
            restartServices(&cluster, index, at: now)
            cluster.nodes[index].servicesDown = []
            if let installed = installedVersion(cluster.nodes[index]) {
                cluster.nodes[index].runningVersion = installed
            }
            cluster.setPhase(index, .rejoining(until: now + cluster.delays.seconds(cluster.delays.rejoin)), at: now)
            out("Joined the cluster through \(peer); syncing from the leader\n")
            return 0
        }
    }

    func createCluster(_ arguments: [String]) throws -> Int32 {
        let quorumLoss = arguments.contains("--quorum-loss-recovery")
        guard
            arguments.allSatisfy({
                $0 == "--quorum-loss-recovery" || $0.hasPrefix("--elasticsearch-wait-time")
                    || $0.hasPrefix("--etcd-wait-time")
            })
        else {
            return usageError("create-cluster: unknown option")
        }
        return try store.update { cluster, now in
            guard let index = cluster.index(node) else { return 1 }
            if cluster.nodes[index].isMember && !quorumLoss {
                err("ERROR: this node is already part of a cluster; use --quorum-loss-recovery after losing quorum\n")
                return 1
            }
            if quorumLoss {
                let answering = cluster.answeringMembers
                guard answering.count < 2 else {
                    err(
                        "ERROR: \(answering.count) nodes are still reachable; quorum-loss recovery is only for a sole survivor\n"
                    )
                    return 1
                }
                for other in cluster.nodes.indices where other != index && cluster.nodes[other].isMember {
                    cluster.setPhase(other, .outside, at: now)
                }
            } else {
                let secrets = cluster.nodes[index].hostPath(NodePaths.secrets)
                try? FileManager.default.createDirectory(
                    atPath: (secrets as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                _ = FileManager.default.createFile(
                    atPath: secrets,
                    contents: Data(
                        #"{"postgresql":{"db_superuser_password":"simulated","replication_password":"simulated"},"etcd":{"initial_cluster_token":"simulated"}}"#
                            .utf8))
            }
            cluster.election = nil
            cluster.setPhase(index, .synced, at: now)
            cluster.setLeader(node, at: now)
            cluster.nodes[index].servicesDown = []
            out("Cluster created; this node (\(node)) is the leader\n")
            return 0
        }
    }

    func cleanse(_ arguments: [String], yes: Bool) throws -> Int32 {
        try store.update { cluster, now in
            guard let index = cluster.index(node) else { return 1 }
            let saved = cluster.nodes[index].hostPath("/root/chef-backend-cleanse-\(Int(now.timeIntervalSince1970))")
            try? FileManager.default.createDirectory(atPath: saved, withIntermediateDirectories: true)
            let etc = cluster.nodes[index].hostPath("/etc/chef-backend")
            for file in (try? FileManager.default.contentsOfDirectory(atPath: etc)) ?? [] {
                try? FileManager.default.copyItem(atPath: etc + "/" + file, toPath: saved + "/" + file)
            }
            let data = cluster.nodes[index].hostPath("/var/opt/chef-backend")
            for file in (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? [] {
                try? FileManager.default.removeItem(atPath: data + "/" + file)
            }
            for file in (try? FileManager.default.contentsOfDirectory(atPath: etc)) ?? [] {
                try? FileManager.default.removeItem(atPath: etc + "/" + file)
            }
            cluster.nodes[index].servicesDown = Set(SimulatedCluster.services)
            if cluster.nodes[index].isMember { cluster.setPhase(index, .outside, at: now) }
            if cluster.leader == node { cluster.setLeader(nil, at: now) }
            out("Cleansed; configuration saved in /root/\((saved as NSString).lastPathComponent)\n")
            return 0
        }
    }

    func service(_ action: String, _ name: String?) throws -> Int32 {
        if let name, !SimulatedCluster.services.contains(name) {
            return usageError("\(action): unknown service '\(name)'")
        }
        return try store.update { cluster, now in
            guard let index = cluster.index(node) else { return 1 }
            for service in name.map({ [$0] }) ?? SimulatedCluster.services {
                var node = cluster.nodes[index]
                if action == "stop" {
                    node.servicesDown.insert(service)
                    node.serviceSince[service] = now
                    out("ok: down: \(service): 0s, normally up\n")
                } else {
                    if service == "postgresql" && cluster.sentinelPresent(node, NodePaths.noStartPgsql) {
                        node.servicesDown.insert(service)
                        out("ok: down: \(service): 0s, normally up\n")
                        cluster.nodes[index] = node
                        continue
                    }
                    node.servicesDown.remove(service)
                    node.serviceSince[service] = now
                    node.pids[service] = Int.random(in: 2000...60000)
                    out("ok: run: \(service): (pid \(node.pids[service]!)) 0s\n")
                    if service == "elasticsearch" {
                        let data = node.hostPath(NodePaths.elasticsearchData)
                        node.elasticsearchDataEmpty =
                            ((try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []).isEmpty
                    }
                    if service == "postgresql" && node.phase == .deposed { node.phase = .waiting }
                    if service == "leaderl" && cluster.sentinelPresent(node, NodePaths.unsynced)
                        && node.phase == .synced
                    {
                        node.phase = .partiallySynced
                    }
                }
                let wasLeader = cluster.leader == node.name
                cluster.nodes[index] = node
                // Every node's Elasticsearch started on emptied data: the indexes are gone until a reindex.
                if service == "elasticsearch", action != "stop",
                    cluster.members.allSatisfy({
                        $0.elasticsearchDataEmpty && !$0.servicesDown.contains("elasticsearch")
                    })
                {
                    cluster.indexes = []
                    for other in cluster.nodes.indices { cluster.nodes[other].elasticsearchDataEmpty = false }
                }
                if action != "start", wasLeader, ["leaderl", "postgresql", "etcd"].contains(service) {
                    if action == "stop" { cluster.setLeader(nil, at: now) }
                }
            }
            if action != "stop", cluster.leader == nil, cluster.election == nil,
                let last = cluster.transitions.last(where: { $0.to == "leader:none" }),
                last.from == "leader:\(node)", cluster.nodes[index].servicesDown.isEmpty
            {
                cluster.setLeader(node, at: now)
            }
            return 0
        }
    }

    func pgsqlFollow(_ arguments: [String]) throws -> Int32 {
        guard environment["PSQL_INTERNAL_OK"] == "true" else {
            err("pgsql-follow is an internal command; set PSQL_INTERNAL_OK=true to run it\n")
            return 1
        }
        let force = arguments.contains("--force-basebackup")
        let positional = arguments.filter { !$0.hasPrefix("-") }
        guard positional.count == 1 else {
            return usageError("pgsql-follow LEADER_IP [--force-basebackup] [--verbose]")
        }
        return try store.update { cluster, now in
            guard let index = cluster.index(node) else { return 1 }
            guard cluster.currentLeader?.name != node else {
                err("ERROR: this node is the leader; pgsql-follow runs on a follower\n")
                return 1
            }
            guard cluster.nodes[index].servicesDown.contains("leaderl") else {
                err("ERROR: stop leaderl first: chef-backend-ctl stop leaderl\n")
                return 1
            }
            guard let leader = cluster.currentLeader, leader.ip == positional[0] || leader.name == positional[0] else {
                err("ERROR: \(positional[0]) is not the current leader\n")
                return 1
            }
            if cluster.nodes[index].faults.contains(.walGone) && !force {
                err("FATAL: requested WAL segment has already been removed; retry with --force-basebackup\n")
                return 1
            }
            out(force ? "Taking a base backup from \(leader.ip)\n" : "Resuming replication from \(leader.ip)\n")
            out("Replication caught up with the leader\n")
            cluster.nodes[index].faults.subtract([.walGone, .neverSyncs])
            cluster.nodes[index].servicesDown.remove("postgresql")
            cluster.setPhase(index, .synced, at: now)
            return 0
        }
    }

    func backup() throws -> Int32 {
        try store.update { cluster, now in
            guard let index = cluster.index(node) else { return 1 }
            if cluster.nodes[index].faults.contains(.backupFails) {
                err("ERROR: backup failed: pg_basebackup: could not connect to server\n")
                return 1
            }
            let directory = cluster.nodes[index].hostPath("/var/opt/chef-backup")
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let name = "chef-backend-backup-\(Int(now.timeIntervalSince1970 * 1000)).tgz"
            let contents = cluster.nodes[index].faults.contains(.backupEmpty) ? Data() : Data("simulated backup\n".utf8)
            _ = FileManager.default.createFile(atPath: directory + "/" + name, contents: contents)
            out("Backup written to /var/opt/chef-backup/\(name)\n")
            return 0
        }
    }

    func genServerConfig(_ fqdn: String) throws -> Int32 {
        try store.update { cluster, _ in
            guard cluster.node(node)?.isMember == true else {
                err("ERROR: this node is not bootstrapped or joined\n")
                return 1
            }
            let members = cluster.members.map { "\"\($0.ip)\"" }.joined(separator: ", ")
            out(
                """
                fqdn "\(fqdn)"
                use_chef_backend true
                chef_backend_members [\(members)]
                haproxy['remote_postgresql_port'] = 5432
                haproxy['remote_elasticsearch_port'] = 9200
                postgresql['external'] = true
                postgresql['vip'] = '127.0.0.1'
                postgresql['db_superuser'] = 'chef_pgsql'
                postgresql['db_superuser_password'] = '<redacted-in-simulator>'
                opscode_solr4['external'] = true
                opscode_solr4['external_url'] = 'http://127.0.0.1:9200'
                opscode_erchef['search_provider'] = 'elasticsearch'

                """)
            return 0
        }
    }

    // MARK: Package tools

    /// Reads the version from a simulated package file (`Version: 2.3.16-1` line) or its name.
    static func packageVersion(path: String) -> String? {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Version: ") })
        {
            return String(line.dropFirst("Version: ".count))
        }
        return nil
    }

    func install(_ path: String, format: String) throws -> Int32 {
        guard FileManager.default.fileExists(atPath: path) else {
            err(
                format == "deb"
                    ? "dpkg: error: cannot access archive '\(path)': No such file or directory\n"
                    : "error: open of \(path) failed: No such file or directory\n")
            return format == "deb" ? 2 : 1
        }
        guard let full = Self.packageVersion(path: path) else {
            err("\(format == "deb" ? "dpkg-deb" : "rpm"): '\(path)' is not a chef-backend package\n")
            return 2
        }
        return try store.update { cluster, _ in
            guard let index = cluster.index(node) else { return 1 }
            if cluster.nodes[index].faults.contains(.diskFull) {
                err("dpkg: error processing archive \(path): No space left on device\n")
                return 1
            }
            let upstream = String(full.split(separator: "-").first ?? Substring(full))
            let previous = installedVersion(cluster.nodes[index]) ?? "none"
            if format == "deb" {
                out("(Reading database ... 48213 files and directories currently installed.)\n")
                out(
                    "Preparing to unpack \(path) ...\nUnpacking chef-backend (\(full)) over (\(previous)-1) ...\nSetting up chef-backend (\(full)) ...\n"
                )
            } else {
                out(
                    "Preparing...                          ################################# [100%]\nUpdating / installing...\n   1:chef-backend-\(full)     ################################# [100%]\n"
                )
            }
            let manifest = cluster.nodes[index].hostPath(NodePaths.manifest)
            try? FileManager.default.createDirectory(
                atPath: (manifest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let json =
                #"{"manifest_format":2,"software":{},"build_version":"\#(upstream)","build_git_revision":"simulated","license":"Chef EULA"}"#
            _ = FileManager.default.createFile(atPath: manifest, contents: Data((json + "\n").utf8))
            return 0
        }
    }

    /// `curl [-s] [-S] URL` against the node's Elasticsearch (localhost:9200): the two documented reads,
    /// `chef/_settings/index.version.created*?human` and `_cat/indices?h=health,status,index`.
    func curl(_ arguments: [String]) throws -> Int32 {
        let urls = arguments.filter { !$0.hasPrefix("-") }
        guard urls.count == 1, let url = urls.first else {
            err("curl: only 'curl [-s] [-S] URL' is simulated\n")
            return 2
        }
        let path = url.replacingOccurrences(of: "http://", with: "")
        guard path.hasPrefix("localhost:9200/") || path.hasPrefix("127.0.0.1:9200/") else {
            err("curl: (7) Failed to connect to \(url): Connection refused\n")
            return 7
        }
        return try store.update { cluster, _ in
            guard let index = cluster.index(node), cluster.nodes[index].isMember,
                !cluster.nodes[index].servicesDown.contains("elasticsearch")
            else {
                err("curl: (7) Failed to connect to localhost port 9200: Connection refused\n")
                return 7
            }
            let request = String(path.drop { $0 != "/" })
            if request.hasPrefix("/chef/_settings/index.version.created") {
                let version: (SimulatedIndex) -> String = { index in
                    let parts = index.created.split(separator: ".").compactMap { Int($0) } + [0, 0, 0]
                    let number = parts[0] * 1_000_000 + parts[1] * 10_000 + parts[2] * 100 + 99
                    return
                        #"{"settings":{"index":{"version":{"created_string":"\#(index.created)","created":"\#(number)"}}}}"#
                }
                out("{" + cluster.indexes.map { #""\#($0.name)":"# + version($0) }.joined(separator: ",") + "}")
            } else if request.hasPrefix("/_cat/indices") {
                out(cluster.reportedIndexes.map { "\($0.health) open \($0.name)\n" }.joined())
            } else {
                out(#"{"error":"no handler found for uri [\#(request)]","status":400}"#)
            }
            return 0
        }
    }

    func dpkg(_ arguments: [String]) throws -> Int32 {
        guard arguments.count == 2, arguments[0] == "-i" || arguments[0] == "--install" else {
            err("dpkg: only 'dpkg -i FILE.deb' is simulated\n")
            return 2
        }
        return try install(arguments[1], format: "deb")
    }

    func installedFull() throws -> String? {
        try store.update { cluster, _ in cluster.node(node).flatMap(installedVersion).map { $0 + "-1" } }
    }

    func dpkgQuery(_ arguments: [String]) throws -> Int32 {
        guard arguments.last == "chef-backend", arguments.contains("-W") || arguments.contains("--show") else {
            err("dpkg-query: only '-W [-f=FORMAT] chef-backend' is simulated\n")
            return 2
        }
        guard let version = try installedFull() else {
            err("dpkg-query: no packages found matching chef-backend\n")
            return 1
        }
        let format =
            arguments.first { $0.hasPrefix("-f=") || $0.hasPrefix("--showformat=") }.map {
                String($0[$0.index(after: $0.firstIndex(of: "=")!)...])
            }
            ?? (arguments.firstIndex(of: "-f").map { arguments[$0 + 1] })
        if let format {
            out(
                format.replacingOccurrences(of: "${Version}", with: version).replacingOccurrences(
                    of: "${Package}", with: "chef-backend"
                ).replacingOccurrences(of: "\\n", with: "\n"))
        } else {
            out("chef-backend\t\(version)\n")
        }
        return 0
    }

    func rpm(_ arguments: [String]) throws -> Int32 {
        if arguments == ["-q", "chef-backend"] {
            guard let version = try installedFull() else {
                out("package chef-backend is not installed\n")
                return 1
            }
            out("chef-backend-\(version).el7.x86_64\n")
            return 0
        }
        if arguments.count == 2, ["-Uvh", "-ivh", "-U", "-i"].contains(arguments[0]) {
            return try install(arguments[1], format: "rpm")
        }
        err("rpm: only 'rpm -q chef-backend' and 'rpm -Uvh FILE.rpm' are simulated\n")
        return 1
    }

    func yum(_ arguments: [String]) throws -> Int32 {
        let files = arguments.filter { $0.hasSuffix(".rpm") }
        guard arguments.first == "install", files.count == 1 else {
            err("yum: only 'yum install -y FILE.rpm' is simulated\n")
            return 1
        }
        return try install(files[0], format: "rpm")
    }

    /// `df -P -k PATH` (or `-Pk`, `-h`): the simulated free space for node-private paths.
    func df(_ arguments: [String]) throws -> Int32 {
        let paths = arguments.filter { !$0.hasPrefix("-") }
        let human = arguments.contains { $0.hasPrefix("-") && $0.contains("h") }
        let full = try store.update { cluster, _ in cluster.node(node)?.faults.contains(.diskFull) ?? false }
        let sizeKB = 20 * 1024 * 1024
        let availableKB = full ? 100 * 1024 : 12 * 1024 * 1024
        out(
            human
                ? "Filesystem      Size  Used Avail Use% Mounted on\n"
                : "Filesystem     1024-blocks      Used Available Capacity Mounted on\n")
        for path in paths.isEmpty ? ["/"] : paths {
            let used = sizeKB - availableKB
            let percent = used * 100 / sizeKB
            if human {
                out(
                    "/dev/vdb         20G  \(used / 1_048_576)G  \(availableKB >= 1_048_576 ? "\(availableKB / 1_048_576)G" : "\(availableKB / 1024)M")  \(percent)% \(path)\n"
                )
            } else {
                out("/dev/vdb         \(sizeKB)  \(used)   \(availableKB)      \(percent)% \(path)\n")
            }
        }
        return 0
    }
}
