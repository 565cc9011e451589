import Foundation

/// One node of the simulated legacy Chef Server HA pair (DRBD 8.4 and keepalived).
public struct SimulatedPairNode: Codable, Equatable, Sendable {
    public var name: String
    public var ip: String
    /// The sshd is stopped: the host is down.
    public var unreachable = false
    /// `drbdadm up` was run (the resource is configured and attached).
    public var resourceUp = true
    /// Primary or Secondary.
    public var role = "Secondary"
    /// UpToDate, Inconsistent, Diskless.
    public var disk = "UpToDate"
    /// DRBD metadata present (`wipe-md` removes it, `create-md` writes it).
    public var metadata = true
    /// KiB out of sync with the peer (grows while the peer is away).
    public var outOfSync = 0
    /// `drbdadm disconnect`, or DRBD gave up on the peer: StandAlone.
    public var standalone = false
    /// Came back but DRBD does not reconnect by itself (stays DUnknown) until `drbdadm down`/`up`.
    public var stuck = false
    public var keepalived = true
    /// keepalived's requested and current cluster status (master, backup).
    public var requested = "backup"
    public var current = "backup"
    public var vip = false
    /// HA services that run (bookshelf, nginx, ...).
    public var running: Set<String> = []
    /// `chef-server-ctl reconfigure` has run on the node (a secondary being set up has not: ha-status cannot
    /// check it and `status` prints nothing).
    public var reconfigured = true

    public init(name: String, ip: String) {
        self.name = name
        self.ip = ip
    }

    public var isMaster: Bool { current == "master" }
}

/// A running resync: `target` copies from `source`.
public struct PairSync: Codable, Equatable, Sendable {
    public var source: String
    public var target: String
    public var totalKiB: Int
    public var started: Date
    public var seconds: Double

    public init(source: String, target: String, totalKiB: Int, started: Date, seconds: Double) {
        self.source = source
        self.target = target
        self.totalKiB = totalKiB
        self.started = started
        self.seconds = seconds
    }

    public func fraction(at now: Date) -> Double { min(1, max(0, now.timeIntervalSince(started) / seconds)) }
}

/// A keepalived failover in flight from one node to the other.
public struct PairFailover: Codable, Equatable, Sendable {
    public var from: String
    public var to: String
    public var completes: Date

    public init(from: String, to: String, completes: Date) {
        self.from = from
        self.to = to
        self.completes = completes
    }
}

/// The simulated pair: both nodes' DRBD and keepalived state, and the transitions in flight.
public struct SimulatedPair: Codable, Equatable, Sendable, SimulatedState {
    public var nodes: [SimulatedPairNode]
    public var resource = "pc0"
    public var scale: Double
    /// Seconds (times `scale`) a failover and a full resync take.
    public var failoverSeconds = 3.0
    /// Long commands behave as real programs do: `master-recover` starts the services one at a time for
    /// ``recoverSeconds``, writing a line for each, and dies on its first write once its connection is gone,
    /// leaving the services it had not started down.
    public var fragileCommands = false
    /// How long a fragile `master-recover` takes (real seconds, not scaled).
    public var recoverSeconds = 3.0
    public var syncSeconds = 4.0
    public var sync: PairSync?
    public var failover: PairFailover?
    /// Commands that broke an invariant Drover promises (two Primaries, promoting a disk that is not
    /// UpToDate, master-recover on a Secondary, wiping the data to keep). Tests expect none.
    public var violations: [String] = []
    /// `drbdadm primary --force` runs (allowed only in rebuild-partner, after confirmation).
    public var forcedPromotions: [String] = []
    /// The Chef Server release whose `ha-status` the nodes print (chef/chef-server `ha.rb` by version):
    /// `11` (Enterprise Chef: built-in DRBD lines), `12` (no DRBD lines: storage checks are optional
    /// scripts), `12.0` (12 plus `opscode-chef-mover is not running` on the master, chef/chef-server#361),
    /// `12.9` (the pair deprecated: keepalived HA services not enabled).
    public var chefServer = "11"

    public static let haServices = [
        "bookshelf", "nginx", "opscode-erchef", "opscode-solr4", "postgresql", "rabbitmq", "redis_lb",
    ]

    public init(nodes: [SimulatedPairNode], scale: Double) {
        self.nodes = nodes
        self.scale = scale
    }

    /// A healthy pair: the first node Primary and master with the VIP, the second Secondary and backup.
    public static func healthy(_ first: (String, String), _ second: (String, String), scale: Double) -> SimulatedPair {
        var primary = SimulatedPairNode(name: first.0, ip: first.1)
        primary.role = "Primary"
        primary.requested = "master"
        primary.current = "master"
        primary.vip = true
        primary.running = Set(haServices)
        let secondary = SimulatedPairNode(name: second.0, ip: second.1)
        return SimulatedPair(nodes: [primary, secondary], scale: scale)
    }

    public func index(_ name: String) -> Int? { nodes.firstIndex { $0.name == name } }
    public func node(_ name: String) -> SimulatedPairNode? { nodes.first { $0.name == name } }
    func peerIndex(_ index: Int) -> Int { index == 0 ? 1 : 0 }
    func seconds(_ base: Double) -> Double { max(0.05, base * scale) }

    /// The connection state `/proc/drbd` shows on a node.
    public func connection(_ index: Int) -> String {
        let node = nodes[index]
        let peer = nodes[peerIndex(index)]
        if !node.resourceUp { return "Unconfigured" }
        if node.standalone { return "StandAlone" }
        if node.stuck || peer.stuck || peer.unreachable || !peer.resourceUp || peer.standalone { return "WFConnection" }
        if let sync { return sync.source == node.name ? "SyncSource" : "SyncTarget" }
        return "Connected"
    }

    public func connected(_ index: Int) -> Bool {
        ["Connected", "SyncSource", "SyncTarget"].contains(connection(index))
    }

    public mutating func advance(to now: Date) {
        if let failover, failover.completes <= now, let from = index(failover.from), let to = index(failover.to) {
            nodes[from].running = []
            nodes[from].vip = false
            nodes[from].role = "Secondary"
            nodes[from].current = "backup"
            nodes[from].requested = "backup"
            nodes[to].role = "Primary"
            nodes[to].current = "master"
            nodes[to].requested = "master"
            nodes[to].vip = true
            nodes[to].running = Set(Self.haServices)
            self.failover = nil
        }
        if let sync, sync.fraction(at: now) >= 1, let source = index(sync.source), let target = index(sync.target) {
            nodes[target].disk = "UpToDate"
            nodes[target].outOfSync = 0
            nodes[source].outOfSync = 0
            self.sync = nil
        }
        reconcile(now)
    }

    /// What DRBD does when two nodes (re)connect: a Primary syncs what its peer lacks; two Primaries
    /// drop the connection (split brain).
    public mutating func reconcile(_ now: Date) {
        guard sync == nil, connected(0), connected(1) else {
            if sync != nil, !(connected(0) && connected(1)) { sync = nil }
            return
        }
        if nodes[0].role == "Primary" && nodes[1].role == "Primary" {
            nodes[0].standalone = true
            nodes[1].standalone = true
            return
        }
        // A Primary syncs its peer; without one, an UpToDate disk still syncs a peer whose data was discarded.
        guard
            let source = nodes.indices.first(where: { nodes[$0].role == "Primary" && nodes[$0].disk == "UpToDate" })
                ?? nodes.indices.first(where: {
                    nodes[$0].disk == "UpToDate" && nodes[peerIndex($0)].disk == "Inconsistent"
                })
        else { return }
        let target = peerIndex(source)
        guard nodes[target].disk != "UpToDate" || nodes[source].outOfSync > 0 || nodes[target].outOfSync > 0 else {
            return
        }
        let full = nodes[target].disk != "UpToDate"
        let total = full ? 2_613_068 : max(nodes[source].outOfSync, nodes[target].outOfSync, 1)
        nodes[target].disk = "Inconsistent"
        nodes[source].outOfSync = total
        sync = PairSync(
            source: nodes[source].name, target: nodes[target].name, totalKiB: total, started: now,
            seconds: max(5, seconds(full ? syncSeconds : syncSeconds / 2)))
    }
}
