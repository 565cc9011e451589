import Foundation

/// Where a node stands in its life cycle; time moves it forward (see ``SimulatedCluster/advance(to:)``).
public enum NodePhase: Codable, Equatable, Sendable {
    /// Running and fully synced (the leader, or a synced follower).
    case synced
    /// Services restarting after an upgrade or join: leaderl `waiting_for_leader`, PostgreSQL offline,
    /// Elasticsearch not yet back.
    case rejoining(until: Date)
    /// Following again, PostgreSQL syncing (unsynced sentinel present). `until` nil: it never finishes.
    case syncing(since: Date, until: Date?)
    /// The sync failed: sentinel left behind, `waiting_for_leader`, leader ineligible.
    case partiallySynced
    /// No leader to follow (partition, failed upgrade, quorum loss).
    case waiting
    /// A deposed leader held down by `no-start-pgsql`.
    case deposed
    /// Not (or no longer) a member: cleansed, removed or freshly installed.
    case outside
    /// Stopped by `chef-backend-ctl down-for-upgrade` (1.x → 2.x); `upgrade` brings it back.
    case downForUpgrade
}

/// Tunable delays, scaled so tests run near-instantly and the demo looks real.
public struct Delays: Codable, Equatable, Sendable {
    public var scale: Double
    public var rejoin: Double = 2
    public var sync: Double = 3
    public var election: Double = 2
    public var serviceRestart: Double = 0.5

    public init(scale: Double) { self.scale = scale }

    public func seconds(_ base: Double) -> TimeInterval { max(0.01, base * scale) }
}

/// A fault injected into one node (or the cluster) by a test or a person.
public enum Fault: String, Codable, CaseIterable, Sendable {
    /// `chef-backend-ctl upgrade` exits non-zero; the node is left waiting_for_leader.
    case upgradeFails = "upgrade-fails"
    /// PostgreSQL never finishes syncing after the next upgrade or join (partially_synced).
    case neverSyncs = "never-syncs"
    /// The WAL a follower needs is gone: `pgsql-follow` fails without `--force-basebackup`.
    case walGone = "wal-gone"
    /// Elections never complete (the cluster stays leaderless).
    case electionStalls = "election-stalls"
    /// Free space of /var/opt/chef-backend drops below 250 MB.
    case diskFull = "disk-full"
    /// The node's next upgrade leaves Elasticsearch half-upgraded: its log shows
    /// `unknown setting [path.scripts]` until `chef-backend-ctl upgrade` is run on it again.
    case elasticsearchPathScripts = "es-path-scripts"
    /// `chef-backend-ctl backup` exits non-zero and writes nothing.
    case backupFails = "backup-fails"
    /// `chef-backend-ctl backup` exits 0 but leaves an empty tarball.
    case backupEmpty = "backup-empty"
}

/// One simulated Chef Infra Server frontend.
public struct SimulatedFrontend: Codable, Equatable, Sendable {
    public var name: String
    public var ip: String
    /// Where its private directories (/opt/opscode, /var/opt/opscode, /var/tmp) live on the host.
    public var root: String
    public var maintenance = false
    /// The backends' major version the frontend was last configured for (`chef-server-ctl reconfigure`):
    /// configured for 1.x, its `/_status` fails against 2.x backends until it is reconfigured.
    public var configuredMajor: Int
    public var reconfigures = 0
    /// chef-server-core as installed (dpkg/rpm; /opt/opscode/version-manifest.json), and as running (what
    /// the last `chef-server-ctl upgrade` brought the services to).
    public var installedVersion: String
    public var runningVersion: String
    /// Its services run (`chef-server-ctl stop` / `start`).
    public var running = true
    public var cleanups = 0
    public var faults: Set<FrontendFault> = []

    public init(name: String, ip: String, root: String, configuredMajor: Int, version: String) {
        self.name = name
        self.ip = ip
        self.root = root
        self.configuredMajor = configuredMajor
        self.installedVersion = version
        self.runningVersion = version
    }

    /// `path` on this frontend, as seen from the host.
    public func hostPath(_ path: String) -> String { root + path }

    /// Serving the API: its services run and it is not in maintenance.
    public var serving: Bool { running && !maintenance }
}

/// A fault injected into one frontend.
public enum FrontendFault: String, Codable, CaseIterable, Sendable {
    /// `chef-server-ctl upgrade` exits non-zero and changes nothing.
    case upgradeFails = "frontend-upgrade-fails"
    /// The migration level copied to it is gone by its upgrade (the copy was not made, or lost), so its
    /// upgrade finds the database already migrated and fails.
    case migrationLevelLost = "migration-level-not-copied"
    /// `chef-server-ctl start` reports its services started, but they die: it never serves again.
    case doesNotStart = "frontend-does-not-start"
}

/// A frontend starting or stopping to serve, kept so tests can check that one always served.
public struct FrontendTransition: Codable, Equatable, Sendable {
    public var time: Date
    public var frontend: String
    public var serving: Bool

    public init(time: Date, frontend: String, serving: Bool) {
        (self.time, self.frontend, self.serving) = (time, frontend, serving)
    }
}

/// One Elasticsearch index: the Elasticsearch version that created it and its health.
public struct SimulatedIndex: Codable, Equatable, Sendable {
    public var name: String
    public var created: String
    public var health: String

    public init(name: String, created: String, health: String) {
        self.name = name
        self.created = created
        self.health = health
    }
}

/// One simulated backend node.
public struct SimulatedNode: Codable, Equatable, Sendable {
    public var name: String
    public var ip: String
    public var guid: String
    /// Host directory holding the node's private paths (`opt/chef-backend`, `var/opt/chef-backend`, ...).
    public var root: String
    public var phase: NodePhase
    public var nodeFailover = true
    /// The version the node's services run (changes on `upgrade`, not on package install).
    public var runningVersion: String
    /// The machine is down or unreachable (its sshd is stopped).
    public var unreachable = false
    public var servicesDown: Set<String> = []
    public var serviceSince: [String: Date] = [:]
    public var pids: [String: Int] = [:]
    public var faults: Set<Fault> = []
    /// Elasticsearch did not finish its upgrade (``Fault/elasticsearchPathScripts``).
    public var elasticsearchHalfUpgraded = false
    /// Elasticsearch last started with an empty data directory.
    public var elasticsearchDataEmpty = false
    /// `chef-backend-ctl upgrade` stopped the services and died before it finished (its connection was
    /// lost, with ``SimulatedCluster/fragileCommands``): at the new version, services down, not rejoined.
    /// Running `upgrade` again finishes it.
    public var upgradeUnfinished = false
    /// The node led until another took over and has not become a follower yet: `cluster-status` shows its Role
    /// as `deposed_leader` (chef/chef-web-docs 365313e19), widening the column.
    public var deposedLeader = false

    public init(name: String, ip: String, guid: String, root: String, phase: NodePhase, runningVersion: String) {
        self.name = name
        self.ip = ip
        self.guid = guid
        self.root = root
        self.phase = phase
        self.runningVersion = runningVersion
    }

    public var isMember: Bool { phase != .outside }

    /// Appends a line to the node's Elasticsearch log (runit's `current`).
    public func appendElasticsearchLog(_ line: String) { appendLog("elasticsearch", line) }

    /// Appends a timestamped line to a service's runit log, `/var/log/chef-backend/SERVICE/current`.
    public func appendLog(_ service: String, _ line: String) {
        let path = hostPath(NodePaths.logs + "/" + service + "/current")
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data((ISO8601DateFormatter().string(from: Date()) + " " + line + "\n").utf8))
    }

    /// The host path of a path as the node sees it (`/var/opt/chef-backend/...`).
    public func hostPath(_ path: String) -> String {
        for prefix in NodePaths.privatePrefixes where path == prefix || path.hasPrefix(prefix + "/") {
            return root + path
        }
        return path
    }
}

/// The node-local paths each simulated node keeps private (bind mounts in its own mount namespace).
public enum NodePaths {
    public static let elasticsearchLog = "/var/log/chef-backend/elasticsearch/current"
    /// The services' runit logs, one `SERVICE/current` each, as Chef's guides point to them.
    public static let logs = "/var/log/chef-backend"
    public static let elasticsearchData = "/var/opt/chef-backend/elasticsearch/data"
    public static let privatePrefixes = [
        "/opt/chef-backend", "/var/opt/chef-backend", "/etc/chef-backend", "/var/log/chef-backend",
        "/var/opt/chef-backup", "/var/tmp", "/root",
    ]
    public static let manifest = "/opt/chef-backend/version-manifest.json"
    public static let unsynced = "/var/opt/chef-backend/leaderl/data/unsynced"
    public static let noStartPgsql = "/var/opt/chef-backend/leaderl/data/no-start-pgsql"
    public static let config = "/etc/chef-backend/chef-backend.rb"
    public static let secrets = "/etc/chef-backend/chef-backend-secrets.json"
}

/// A change of a node's phase or of the leader, kept so tests can check ordering invariants.
public struct Transition: Codable, Equatable, Sendable {
    public var time: Date
    public var node: String
    public var from: String
    public var to: String
}

/// A time without a leader caused by upgrading the leader in place (without `--failover`).
public struct Outage: Codable, Equatable, Sendable {
    public var node: String
    public var start: Date
    public var end: Date?
}

/// An election in progress: no leader until it completes (never, when it stalls).
public struct Election: Codable, Equatable, Sendable {
    public var completes: Date?
    public var winner: String

    public init(completes: Date?, winner: String) {
        self.completes = completes
        self.winner = winner
    }
}

/// The state all three simulated nodes share (standing in for etcd).
public struct SimulatedCluster: Codable, Equatable, Sendable {
    public static let services = ["elasticsearch", "epmd", "etcd", "leaderl", "postgresql"]

    public var nodes: [SimulatedNode]
    public var leader: String?
    public var clusterFailover = true
    public var election: Election?
    public var esMaster: String?
    public var delays: Delays
    public var outages: [Outage] = []
    public var transitions: [Transition] = []
    /// The leader when the first node went down for upgrade; it leads again once every node is upgraded.
    public var downtimeLeader: String?
    /// The Chef Infra Server frontends (sshd nodes answering `chef-server-ctl` and `/_status`).
    public var frontends: [SimulatedFrontend] = []
    /// The database's migration level: raised by the first frontend's `chef-server-ctl upgrade`.
    public var databaseMigrationLevel = 0
    public var frontendTransitions: [FrontendTransition] = []
    /// The Elasticsearch indexes the `chef` alias names, as the leader's `curl localhost:9200` shows them.
    public var indexes: [SimulatedIndex] = [SimulatedIndex(name: "chef", created: "5.6.16", health: "green")]
    /// Long commands behave as real programs do: `chef-backend-ctl upgrade` stops the node's services, works
    /// for ``upgradeSeconds`` writing a progress line every 0.2 s, and dies on the first write after its
    /// connection is gone, leaving the node down (``SimulatedNode/upgradeUnfinished``); a frontend's
    /// `chef-server-ctl upgrade` works as long the same way before it upgrades anything.
    public var fragileCommands = false
    /// How long a fragile upgrade works with the services stopped (real seconds, not scaled).
    public var upgradeSeconds: Double = 3
    /// How long a promotion takes (real seconds, not scaled), when set by `break NODE slow-promotion SECONDS`:
    /// since chef-backend 1.3.2 `pgsql-promote` waits up to 5 minutes for PostgreSQL's recovery to finish.
    public var promotionSeconds: Double?
    /// A real etcd and PostgreSQL under the nodes (`drover-sandbox up --real`): the leader and the followers'
    /// sync come from them, not from time.
    public var realDataLayer: RealDataLayer?

    /// How long an election takes from now: the slow promotion's time if one was set, else the scaled delay.
    public var electionSeconds: TimeInterval { promotionSeconds ?? delays.seconds(delays.election) }

    public init(nodes: [SimulatedNode], leader: String?, delays: Delays) {
        self.nodes = nodes
        self.leader = leader
        self.delays = delays
        esMaster = nodes.last?.name
    }

    public func node(_ name: String) -> SimulatedNode? { nodes.first { $0.name == name } }

    /// The indexes as Elasticsearch reports them: an index created before 5.6.16 is red once the cluster
    /// runs chef-backend 3.x (Elasticsearch 6.8 cannot read it).
    public var reportedIndexes: [SimulatedIndex] {
        let major = Int((currentLeader ?? members.first)?.runningVersion.split(separator: ".").first ?? "0") ?? 0
        return indexes.map { index in
            let parts = index.created.split(separator: ".").compactMap { Int($0) } + [0, 0, 0]
            let old = (parts[0], parts[1], parts[2]) < (5, 6, 16)
            return SimulatedIndex(
                name: index.name, created: index.created, health: major >= 3 && old ? "red" : index.health)
        }
    }

    public func index(_ nameOrIP: String) -> Int? {
        nodes.firstIndex { $0.name == nameOrIP || $0.ip == nameOrIP || $0.guid == nameOrIP }
    }

    public var members: [SimulatedNode] { nodes.filter(\.isMember) }

    /// Members that answer: reachable and configured (a freshly installed machine in a member's slot
    /// is not the member).
    public var answeringMembers: [SimulatedNode] { members.filter { !$0.unreachable && isConfigured($0) } }

    /// The node has chef-backend configuration (/etc/chef-backend/chef-backend.rb).
    public func isConfigured(_ node: SimulatedNode) -> Bool {
        FileManager.default.fileExists(atPath: node.hostPath(NodePaths.config))
    }

    /// The leader, if there is one now (none during an election).
    public var currentLeader: SimulatedNode? {
        guard election == nil, let leader, let node = node(leader), node.phase == .synced, !node.unreachable else {
            return nil
        }
        return node
    }

    /// leaderl's view of a node: `leader`, `follower` or `waiting_for_leader`; nil when not a member.
    public func role(of node: SimulatedNode) -> String? {
        guard node.isMember else { return nil }
        if node.unreachable || node.servicesDown.contains("leaderl") { return "waiting_for_leader" }
        if currentLeader?.name == node.name { return "leader" }
        if node.deposedLeader, currentLeader != nil, node.phase != .synced { return "deposed_leader" }
        switch node.phase {
        case .synced, .syncing: return currentLeader == nil ? "waiting_for_leader" : "follower"
        default: return "waiting_for_leader"
        }
    }

    /// PostgreSQL's state of a node for the distributed status: leader, synced, syncing or offline.
    public func postgresState(of node: SimulatedNode) -> String {
        guard node.isMember, !node.unreachable, !node.servicesDown.contains("postgresql") else { return "offline" }
        if currentLeader?.name == node.name { return "leader" }
        guard currentLeader != nil else { return "offline" }
        switch node.phase {
        case .synced: return "synced"
        case .syncing: return "syncing"
        default: return "offline"
        }
    }

    public func elasticsearchOnline(_ node: SimulatedNode) -> Bool {
        guard node.isMember, !node.unreachable, !node.servicesDown.contains("elasticsearch") else { return false }
        if case .rejoining = node.phase { return false }
        return true
    }

    public func etcdHealthy(_ node: SimulatedNode) -> Bool {
        node.isMember && !node.unreachable && !node.servicesDown.contains("etcd")
    }

    /// Moves time forward: finishes elections, rejoins and syncs that are due.
    public mutating func advance(to now: Date) {
        if realDataLayer != nil {
            reconcileWithRealDataLayer(at: now)
        } else {
            advanceSimulatedTime(to: now)
        }
        if let master = esMaster, let node = node(master), elasticsearchOnline(node) {
        } else {
            esMaster = members.first(where: elasticsearchOnline)?.name
        }
    }

    /// Finishes the simulated elections, rejoins and syncs that are due.
    mutating func advanceSimulatedTime(to now: Date) {
        if let election, let completes = election.completes, completes <= now {
            self.election = nil
            setLeader(election.winner, at: completes)
            if let index = index(election.winner) { nodes[index].phase = .synced }
        }
        for index in nodes.indices {
            var changed = true
            while changed {
                changed = false
                switch nodes[index].phase {
                case .rejoining(let until) where until <= now:
                    let neverSyncs = nodes[index].faults.contains(.neverSyncs)
                    setPhase(
                        index, .syncing(since: until, until: neverSyncs ? nil : until + delays.seconds(delays.sync)),
                        at: until)
                    writeSentinel(index, NodePaths.unsynced, present: true)
                    changed = true
                case .syncing(let since, let until):
                    if let until, until <= now {
                        setPhase(index, .synced, at: until)
                        writeSentinel(index, NodePaths.unsynced, present: false)
                        changed = true
                    } else if until == nil, since + delays.seconds(delays.sync) * 3 <= now {
                        setPhase(index, .partiallySynced, at: since + delays.seconds(delays.sync) * 3)
                    }
                default:
                    break
                }
            }
        }
    }

    public mutating func setPhase(_ index: Int, _ phase: NodePhase, at time: Date) {
        let old = nodes[index].phase
        guard old != phase else { return }
        nodes[index].phase = phase
        // A deposed leader that follows again (synced) is a follower like the others.
        if phase == .synced || phase == .outside { nodes[index].deposedLeader = false }
        transitions.append(
            Transition(time: time, node: nodes[index].name, from: Self.label(old), to: Self.label(phase)))
    }

    public mutating func setLeader(_ name: String?, at time: Date) {
        guard leader != name || name == nil else { return }
        if let old = leader, old != name, let index = nodes.firstIndex(where: { $0.name == old }) {
            nodes[index].deposedLeader = true
        }
        if let name, let index = nodes.firstIndex(where: { $0.name == name }) { nodes[index].deposedLeader = false }
        transitions.append(
            Transition(
                time: time, node: name ?? leader ?? "-", from: "leader:\(leader ?? "none")",
                to: "leader:\(name ?? "none")"))
        leader = name
        if let open = outages.lastIndex(where: { $0.end == nil }), name != nil { outages[open].end = time }
    }

    public mutating func writeSentinel(_ index: Int, _ path: String, present: Bool) {
        let host = nodes[index].hostPath(path)
        if present {
            try? FileManager.default.createDirectory(
                atPath: (host as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: host, contents: Data())
        } else {
            try? FileManager.default.removeItem(atPath: host)
        }
    }

    public func sentinelPresent(_ node: SimulatedNode, _ path: String) -> Bool {
        FileManager.default.fileExists(atPath: node.hostPath(path))
    }

    /// Short names of phases for transitions and `drover-sandbox status`.
    public static func label(_ phase: NodePhase) -> String {
        switch phase {
        case .synced: return "synced"
        case .rejoining: return "rejoining"
        case .syncing: return "syncing"
        case .partiallySynced: return "partially_synced"
        case .waiting: return "waiting"
        case .deposed: return "deposed"
        case .outside: return "outside"
        case .downForUpgrade: return "down_for_upgrade"
        }
    }
}
