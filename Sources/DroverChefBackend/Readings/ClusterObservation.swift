import DroverCluster
import DroverReporting
import Foundation

/// What Drover read from one backend.
public struct NodeObservation: Sendable {
    public var name: String
    public var host: String
    /// Why the node could not be read; nil when it was.
    public var unreachable: String?
    public var status: StatusReport?
    public var members: [ClusterMember]?
    public var installedVersion: String?
    public var unsyncedSentinel: Bool?
    /// `/var/opt/chef-backend/leaderl/data/no-start-pgsql`: a deposed leader held down.
    public var noStartPgsqlSentinel: Bool?
    public var freeMB: Int?
    public var packagePresent: Bool?
    public var packageSHA256: String?
    /// Elasticsearch's log shows `unknown setting [path.scripts]` after its last start: a 3.x upgrade that did
    /// not finish (read only when the target is 3.x).
    public var elasticsearchHalfUpgraded: Bool?
    /// The `publish_address` of the node's own chef-backend.rb: the address the cluster knows the machine by.
    public var publishAddress: String?
    /// The owner file of a Drover lock on this node, when one is held.
    public var lockOwner: String?
    /// The reading read the lock's owner file here (``lockOwner`` nil then means no lock).
    public var lockRead = false
    /// Problems reading individual items (command failed, output not in the documented form).
    public var readErrors: [String] = []
    /// `chef-backend-ctl cluster-status` exited 1 on the node: it is not part of a configured cluster (a node
    /// not configured, or cleansed, or freshly installed); what it said.
    public var notInCluster: String?

    public init(name: String, host: String) {
        self.name = name
        self.host = host
    }
}

/// What Drover read from one frontend over SSH.
public struct FrontendObservation: Sendable {
    public var name: String
    /// Why it could not be reached or read; nil when it was.
    public var unreachable: String?
    /// `status` of its `/_status` (`pong`, `fail`), read with curl on the frontend itself; nil when unread.
    public var status: String?
    /// Why `/_status` could not be read (erchef not answering: its services stopped), when it could not.
    public var statusError: String?
    /// Each upstream's answer in `/_status` (`chef_sql` → `pong`).
    public var upstreams: [String: String] = [:]
    /// The installed release (`build_version` of /opt/opscode/version-manifest.json); nil when unread.
    public var version: String?
    /// `chef-server-ctl status`; nil when unread.
    public var services: [FrontendService]?
    /// The content of /var/opt/opscode/upgrades/migration-level, trimmed; nil when absent or unread.
    public var migrationLevel: String?
    /// Free space in /var/opt/opscode, and whether the frontend package is there (full readings only).
    public var freeMB: Int?
    public var packagePresent: Bool?
    public var packageSHA256: String?
    /// What could not be read, each with its cause.
    public var readErrors: [String] = []

    public init(name: String, unreachable: String? = nil, status: String? = nil) {
        self.name = name
        self.unreachable = unreachable
        self.status = status
    }

    /// `/_status` answered pong with every upstream pong.
    public var serving: Bool { status == "pong" && upstreams.values.allSatisfy { $0 == "pong" } }

    /// Every service `chef-server-ctl status` lists runs (false when unread).
    public var allServicesRunning: Bool { services.map { !$0.isEmpty && $0.allSatisfy(\.isRunning) } ?? false }

    /// The services that do not run, for messages.
    public var stoppedServices: [String] { services?.filter { !$0.isRunning }.map(\.name) ?? [] }

    /// What `/_status` said, in words: `pong`, `fail (chef_sql fail)` or why it could not be read.
    public var statusText: String {
        guard let status else { return statusError ?? unreachable ?? "not read" }
        let failing = upstreams.filter { $0.value != "pong" }.keys.sorted()
        return failing.isEmpty
            ? status : "\(status) (\(failing.map { "\($0) \(upstreams[$0]!)" }.joined(separator: ", ")))"
    }
}

/// The cluster as read in one pass over every backend.
public struct ClusterObservation: Sendable {
    public var nodes: [NodeObservation]
    public var time: Date
    /// The leader's `chef` index facts, read (pre-flight only) when a 2.x → 3.x upgrade depends on them.
    public var elasticsearch: Result<ElasticsearchFacts, ElasticsearchUnreadable>?
    /// The frontends with `host`, when the run reaches them over SSH.
    public var frontends: [FrontendObservation] = []

    public func frontend(_ name: String) -> FrontendObservation? { frontends.first { $0.name == name } }

    public init(nodes: [NodeObservation], time: Date = Date()) {
        self.nodes = nodes
        self.time = time
    }

    public func node(_ name: String) -> NodeObservation? { nodes.first { $0.name == name } }

    /// The membership as cluster-status shows it, from the first node that answered it.
    public var members: [ClusterMember] { nodes.lazy.compactMap(\.members).first ?? [] }

    /// The inventory name of a member (matched by name, else by IP).
    public func inventoryName(of member: ClusterMember) -> String? {
        nodes.first { $0.name == member.name }?.name ?? nodes.first { $0.host == member.ip }?.name
    }

    /// The leader's inventory name.
    public var leader: String? {
        members.first { $0.role == "leader" }.flatMap(inventoryName)
    }

    public var followers: [String] {
        members.filter { $0.role == "follower" }.compactMap(inventoryName)
    }

    public func role(of name: String) -> String? {
        members.first { inventoryName(of: $0) == name }?.role
    }

    public var versions: [String: String] {
        Dictionary(uniqueKeysWithValues: nodes.compactMap { node in node.installedVersion.map { (node.name, $0) } })
    }

    /// True when the nodes run different versions (an upgrade under way or interrupted): Elasticsearch
    /// is documented to be yellow then, since a newer node's shards cannot be replicated to an older one.
    public var versionsMixed: Bool { Set(versions.values).count > 1 }

    /// Each node's GUID as cluster-status lists it, by inventory name.
    public var guids: [String: String] {
        var result: [String: String] = [:]
        for member in members { if let name = inventoryName(of: member) { result[name] = member.guid } }
        return result
    }
}

/// Cluster predicates, evaluated over parsed state (no expression language).
public enum Predicates {
    /// The distributed criteria of a healthy 3-node cluster, read from one node's `status`.
    public static func distributedHealthy(_ status: StatusReport?, source: String, allowYellow: Bool) -> [Criterion] {
        guard let status else { return [Criterion("status", false, "\(source): no status output")] }
        var result: [Criterion] = []
        let leaderl = status["leaderl"]
        let counts = (leaderl?.count("leader"), leaderl?.count("waiting"), leaderl?.count("follower"))
        result.append(
            Criterion(
                "leaderl", counts.0 == 1 && counts.1 == 0 && counts.2 == 2,
                "leaderl \(leaderl?.distributed ?? "missing")"))
        let pg = status["postgresql"]
        let pgOK =
            pg?.count("leader") == 1 && pg?.count("offline") == 0 && pg?.count("syncing") == 0
            && pg?.count("synced") == 2
        result.append(Criterion("postgresql", pgOK, "postgresql \(pg.map { shortPostgres($0) } ?? "missing")"))
        let etcd = status["etcd"]?.fraction("healthy nodes")
        result.append(
            Criterion(
                "etcd", etcd.map { $0 == (3, 3) } ?? false,
                "etcd healthy nodes \(etcd.map { "\($0.0)/\($0.1)" } ?? "unknown")"))
        let es = status["elasticsearch"]
        let online = es?.fraction("nodes online")
        let state = es?.fields["state"] ?? "unknown"
        let esOK = online.map { $0 == (3, 3) } ?? false && (state == "green" || (allowYellow && state == "yellow"))
        result.append(
            Criterion(
                "elasticsearch", esOK,
                "elasticsearch \(state), nodes online \(online.map { "\($0.0)/\($0.1)" } ?? "unknown")"))
        return result
    }

    static func shortPostgres(_ row: ServiceRow) -> String {
        guard row.count("synced") != nil else { return row.distributed }
        return
            "offline \(row.count("offline") ?? -1), syncing \(row.count("syncing") ?? -1), synced \(row.count("synced") ?? -1)"
    }

    /// A node has rejoined: follower, the cluster's distributed status healthy (yellow allowed while
    /// versions are mixed), no unsynced sentinel, and at the target version.
    public static func rejoined(
        _ name: String, in observation: ClusterObservation, targetVersion: String?
    ) -> [Criterion] {
        guard let node = observation.node(name), node.unreachable == nil else {
            return [
                Criterion(
                    "reachable", false, "\(name) unreachable: \(observation.node(name)?.unreachable ?? "unknown")")
            ]
        }
        var result = [
            Criterion(
                "role", observation.role(of: name) == "follower", "role \(observation.role(of: name) ?? "not listed")")
        ]
        result += distributedHealthy(node.status, source: name, allowYellow: true)
        result.append(
            Criterion(
                "unsynced sentinel", node.unsyncedSentinel == false,
                node.unsyncedSentinel == true
                    ? "unsynced sentinel present"
                    : (node.unsyncedSentinel == nil ? "sentinel unknown" : "no unsynced sentinel")))
        if let targetVersion {
            result.append(
                Criterion(
                    "version", node.installedVersion == targetVersion, "version \(node.installedVersion ?? "unknown")"))
        }
        return result
    }

    /// The whole cluster is healthy: one leader, two followers, distributed status green on every node.
    public static func healthy(_ observation: ClusterObservation, allowYellow: Bool = false) -> [Criterion] {
        var result: [Criterion] = []
        let leaders = observation.members.filter { $0.role == "leader" }.count
        let followers = observation.members.filter { $0.role == "follower" }.count
        // No node answered cluster-status (none reached, or none read): the roles are unknown, not zero.
        result.append(
            observation.nodes.allSatisfy({ $0.members == nil })
                ? Criterion("roles", false, "roles unknown: no node's cluster-status could be read")
                : Criterion(
                    "roles", leaders == 1 && followers == 2,
                    "\(leaders) leader\(leaders == 1 ? "" : "s"), \(followers) follower\(followers == 1 ? "" : "s")"))
        for node in observation.nodes {
            guard node.unreachable == nil else {
                result.append(Criterion("reachable", false, "\(node.name) unreachable"))
                continue
            }
            result += distributedHealthy(node.status, source: node.name, allowYellow: allowYellow).map {
                Criterion("\(node.name) \($0.name)", $0.holds, "\(node.name): \($0.detail)")
            }
            if node.unsyncedSentinel == true {
                result.append(Criterion("\(node.name) sentinel", false, "\(node.name): unsynced sentinel present"))
            }
        }
        return result
    }
}

extension ClusterObservation {
    /// The nodes whose upgrade was interrupted: `target` installed (the package is in, the manifest says so),
    /// but not back in the cluster (neither leader nor follower) with its core services not running. A
    /// `chef-backend-ctl upgrade` that died with its connection, or a person's dropped ssh, leaves a node so;
    /// Chef documents that `upgrade` makes the changes needed to start the new services, so running it again
    /// is the recovery. A node merely rejoining (services running) is not one.
    public func interruptedUpgrades(target: String?) -> [String] {
        guard let target else { return [] }
        return nodes.filter { node in
            guard node.unreachable == nil, node.installedVersion == target else { return false }
            let role = role(of: node.name)
            guard role != "leader" && role != "follower" else { return false }
            guard let status = node.status else { return true }
            return ["leaderl", "postgresql"].contains { status[$0]?.isRunning != true }
        }.map(\.name)
    }

    /// What shows `node`'s upgrade was interrupted, for diagnose and pre-flight.
    public func interruptedEvidence(_ name: String, target: String) -> [String] {
        guard let node = node(name) else { return [] }
        var evidence = [
            "\(name) has \(target) installed (version manifest) but is \(role(of: name) ?? "not listed") in cluster-status"
        ]
        if let status = node.status {
            let down = ["leaderl", "postgresql", "etcd", "elasticsearch"].filter { status[$0]?.isRunning != true }
            if !down.isEmpty { evidence.append("\(name) services not running: \(down.joined(separator: ", "))") }
        } else {
            evidence.append("\(name): chef-backend-ctl status gave no service table")
        }
        return evidence
    }
}

extension Predicates {
    /// The distributed status as a healthy node sees it while exactly one other node is out (an interrupted
    /// upgrade): one leader, one follower, one node at most waiting or offline, two of three online.
    public static func healthyWithOneOut(_ status: StatusReport?, source: String) -> [Criterion] {
        guard let status else { return [Criterion("status", false, "\(source): no status output")] }
        let leaderl = status["leaderl"]
        let leaderlOK = leaderl?.count("leader") == 1 && leaderl?.count("follower") == 1
        let pg = status["postgresql"]
        let pgOK = pg?.count("leader") == 1 && pg?.count("synced") == 1 && (pg?.count("syncing") ?? 0) == 0
        let etcd = status["etcd"]?.fraction("healthy nodes")
        let online = status["elasticsearch"]?.fraction("nodes online")
        return [
            Criterion("leaderl", leaderlOK, "leaderl \(leaderl?.distributed ?? "missing")"),
            Criterion("postgresql", pgOK, "postgresql \(pg.map { shortPostgres($0) } ?? "missing")"),
            Criterion(
                "etcd", etcd.map { $0.0 >= 2 } ?? false,
                "etcd healthy nodes \(etcd.map { "\($0.0)/\($0.1)" } ?? "unknown")"),
            Criterion(
                "elasticsearch", online.map { $0.0 >= 2 } ?? false,
                "elasticsearch nodes online \(online.map { "\($0.0)/\($0.1)" } ?? "unknown")"),
        ]
    }
}
