import Foundation

/// A real data layer under the simulated nodes (`drover-sandbox up --real`): an etcd member and a PostgreSQL 15
/// instance per node on the node's own address, and a leader-election stand-in for leaderl on etcd leases
/// (Fixtures/RealServices/datalayer.py). The simulator drives it and reads its state from it: the leader is
/// the holder of the election in etcd, a follower is synced when its replay position reached the primary's.
public struct RealDataLayer: Codable, Equatable, Sendable {
    /// datalayer.py's directory (its state, the servers' data and logs).
    public var directory: String
    /// The datalayer.py script.
    public var script: String
    /// Debian's Python (python3-psycopg2 is installed for it).
    public var python = "/usr/bin/python3"
    /// When the real services were last read: a reading costs about 0.2 s, so polls reuse it for a moment.
    public var observedAt: Date?

    public init(directory: String, script: String) {
        self.directory = directory
        self.script = script
    }

    /// How long a reading of the real services stands.
    static let observationLifetime: TimeInterval = 0.25

    /// One PostgreSQL instance as `datalayer.py status` reports it.
    public struct Postgres: Decodable, Equatable, Sendable {
        public var role: String
        public var streaming: Bool?
        public var replayLSN: String?
        public var currentLSN: String?
        /// The host a standby's WAL receiver streams from.
        public var upstream: String?

        enum CodingKeys: String, CodingKey {
            case role, streaming, upstream
            case replayLSN = "replay_lsn"
            case currentLSN = "current_lsn"
        }
    }

    /// The real services' state: each node's PostgreSQL, the election's holder, the failover switch.
    public struct Observation: Equatable, Sendable {
        public var postgres: [String: Postgres]
        public var leader: String?
        public var failover: Bool?

        /// The primary's current WAL position, when the leader's PostgreSQL is the primary.
        public var primaryLSN: UInt64? {
            guard let leader, let node = postgres[leader], node.role == "primary" else { return nil }
            return node.currentLSN.flatMap(RealDataLayer.lsn)
        }
    }

    /// A WAL position `X/Y` (hexadecimal halves) as one number.
    public static func lsn(_ text: String) -> UInt64? {
        let halves = text.split(separator: "/")
        guard halves.count == 2, let high = UInt64(halves[0], radix: 16), let low = UInt64(halves[1], radix: 16),
            high <= UInt64(UInt32.max), low <= UInt64(UInt32.max)
        else { return nil }
        return high << 32 | low
    }

    /// Runs `datalayer.py COMMAND --dir DIRECTORY ARGUMENTS`; its exit status and stdout.
    @discardableResult
    public func run(_ command: String, _ arguments: [String] = []) -> (status: Int32, stdout: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, command, "--dir", directory] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return (127, "") }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The real services now, or nil when datalayer.py could not read them.
    public func observe() -> Observation? {
        let result = run("status")
        guard result.status == 0,
            let line = result.stdout.split(separator: "\n").last,
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { return nil }
        var postgres: [String: Postgres] = [:]
        for (name, value) in object {
            guard let fields = value as? [String: Any], fields["role"] is String,
                let data = try? JSONSerialization.data(withJSONObject: fields),
                let node = try? JSONDecoder().decode(Postgres.self, from: data)
            else { continue }
            postgres[name] = node
        }
        return Observation(
            postgres: postgres, leader: object["leader"] as? String, failover: object["failover"] as? Bool)
    }
}

extension SimulatedCluster {
    /// With a real data layer: reads it (at most every ``RealDataLayer/observationLifetime``) and takes the
    /// leader and each member's replication state from it. Nodes down for upgrade, outside the cluster or held
    /// down by a sentinel keep their phase.
    mutating func reconcileWithRealDataLayer(at now: Date, force: Bool = false) {
        guard var real = realDataLayer else { return }
        if !force, let observed = real.observedAt, now.timeIntervalSince(observed) < RealDataLayer.observationLifetime {
            return
        }
        guard let observation = real.observe() else { return }
        real.observedAt = now
        realDataLayer = real
        election = nil
        if observation.leader != leader { setLeader(observation.leader, at: now) }
        let primary = observation.primaryLSN
        for index in nodes.indices where nodes[index].isMember && !nodes[index].unreachable {
            switch nodes[index].phase {
            case .downForUpgrade, .outside, .deposed, .partiallySynced: continue
            default: break
            }
            guard let postgres = observation.postgres[nodes[index].name] else { continue }
            let name = nodes[index].name
            if name == observation.leader && postgres.role == "primary" {
                setPhase(index, .synced, at: now)
                writeSentinel(index, NodePaths.unsynced, present: false)
            } else if postgres.role == "standby", postgres.streaming == true, let primary,
                let replay = postgres.replayLSN.flatMap(RealDataLayer.lsn),
                // Streaming from the leader: a standby still attached to a former primary is not in sync.
                postgres.upstream != nil, postgres.upstream == observation.leader.flatMap({ node($0)?.ip })
            {
                if replay >= primary {
                    setPhase(index, .synced, at: now)
                    writeSentinel(index, NodePaths.unsynced, present: false)
                } else {
                    if case .syncing = nodes[index].phase {
                    } else {
                        setPhase(index, .syncing(since: now, until: nil), at: now)
                    }
                    writeSentinel(index, NodePaths.unsynced, present: true)
                }
            } else if nodes[index].phase == .synced
                || {
                    if case .syncing = nodes[index].phase { return true } else { return false }
                }()
            {
                // Its PostgreSQL stopped, or no longer streams: it is not a synced member until it does again.
                setPhase(index, .rejoining(until: now), at: now)
            }
        }
    }
}
