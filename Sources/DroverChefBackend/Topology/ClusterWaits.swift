import DroverCluster
import DroverEngine
import DroverReporting
import Foundation

/// How each wait of a Chef Backend playbook is evaluated on one reading of the cluster.
enum ClusterWaits {
    /// Predicates a `wait` can name.
    enum Predicate: String, CaseIterable {
        /// The step's node is a follower again and the cluster's distributed status is healthy.
        case rejoined
        /// A different node than the step's node is leader.
        case leaderMoved = "leader-moved"
        /// Every node is healthy (green) and at the target version.
        case healthyAtTarget = "healthy-at-target"
        /// The step's node is the leader.
        case leaderIs = "leader-is"
        /// The step's node follows, fully synced, with no unsynced sentinel.
        case synced
        /// One leader, two followers, every service healthy (yellow Elasticsearch allowed).
        case healthy
        /// The step's node runs none of leaderl, postgresql, etcd, elasticsearch (`down-for-upgrade`).
        case servicesStopped = "services-stopped"
        /// The step's frontend answers `/_status` with `pong`.
        case frontendOK = "frontend-ok"
        /// The step's node does not run Elasticsearch.
        case elasticsearchStopped = "elasticsearch-stopped"
        /// The step's frontend serves again at the frontend package's version: every service of
        /// `chef-server-ctl status` runs, `/_status` answers pong with every upstream pong.
        case frontendUpgraded = "frontend-upgraded"
        /// The step's frontend has the first frontend's migration level (copied before its upgrade).
        case migrationLevelCopied = "migration-level-copied"
    }

    /// What a poll of `name` on `node` needs to read before the confirming polls, which read everything;
    /// nil when every node is needed from the first poll.
    static func focus(_ name: String, node: String, backends: [String], reachable: (String) -> Bool) -> ReadFocus? {
        switch Predicate(rawValue: name) {
        case .rejoined, .synced, .leaderIs, .servicesStopped, .elasticsearchStopped:
            // The node's own status carries the cluster's distributed counts; its cluster-status the roles.
            return ReadFocus(backends: [node])
        case .leaderMoved:
            // Who leads, asked of a node other than the one that is handing over.
            return backends.first { $0 != node && reachable($0) }.map { ReadFocus(backends: [$0]) }
        case .frontendOK, .frontendUpgraded, .migrationLevelCopied:
            return ReadFocus(backends: [], frontends: true)
        case .healthy, .healthyAtTarget, nil:
            return nil
        }
    }

    static func criteria(
        _ name: String, node: String, observation: ClusterObservation, targetVersion target: String?,
        frontendTarget: String? = nil, firstFrontend: String? = nil
    ) -> [Criterion] {
        switch Predicate(rawValue: name) {
        case .rejoined:
            return Predicates.rejoined(node, in: observation, targetVersion: target)
        case .leaderMoved:
            let leader = observation.leader
            return [Criterion("leader", leader != nil && leader != node, "leader \(leader ?? "none")")]
        case .healthyAtTarget:
            return Predicates.healthy(observation)
                + observation.nodes.map {
                    Criterion(
                        "\($0.name) version", target == nil || $0.installedVersion == target,
                        "\($0.name) at \($0.installedVersion ?? "unknown")")
                }
        case .leaderIs:
            return [Criterion("leader", observation.leader == node, "leader \(observation.leader ?? "none")")]
        case .synced:
            // Works while the cluster has fewer than three members (joins one at a time).
            let seen = observation.node(node)
            let pg = seen?.status?["postgresql"]
            return [
                Criterion(
                    "role", observation.role(of: node) == "follower",
                    "\(node) is \(observation.role(of: node) ?? "not listed")"),
                Criterion(
                    "postgresql", pg?.count("offline") == 0 && pg?.count("syncing") == 0,
                    "postgresql \(pg?.distributed ?? "unknown")"),
                Criterion(
                    "sentinel", seen?.unsyncedSentinel == false,
                    seen?.unsyncedSentinel == true ? "unsynced sentinel present" : "no sentinel"),
            ]
        case .healthy:
            return Predicates.healthy(observation, allowYellow: true)
        case .servicesStopped:
            let seen = observation.node(node)
            return ["leaderl", "postgresql", "etcd", "elasticsearch"].map { service in
                let row = seen?.status?[service]
                return Criterion(
                    service, row?.isRunning == false, "\(service) on \(node): \(row?.localStatus ?? "not read")")
            }
        case .elasticsearchStopped:
            let row = observation.node(node)?.status?["elasticsearch"]
            return [
                Criterion(
                    "elasticsearch", row?.isRunning == false,
                    "elasticsearch on \(node): \(row?.localStatus ?? "not read")")
            ]
        case .frontendOK:
            let seen = observation.frontend(node)
            return [
                Criterion("/_status", seen?.status == "pong", "\(node) /_status: \(seen?.statusText ?? "not read")")
            ]
        case .frontendUpgraded:
            let seen = observation.frontend(node)
            let stopped = seen?.stoppedServices ?? []
            return [
                Criterion(
                    "version", frontendTarget != nil && seen?.version == frontendTarget,
                    "\(node) at \(seen?.version ?? "unknown")\(frontendTarget.map { " (target \($0))" } ?? "")"),
                Criterion(
                    "services", seen?.allServicesRunning == true,
                    seen?.services == nil
                        ? "\(node) chef-server-ctl status: \(seen?.unreachable ?? "not read")"
                        : stopped.isEmpty
                            ? "\(node): every service runs" : "\(node) not running: \(stopped.joined(separator: ", "))"),
                Criterion("/_status", seen?.serving == true, "\(node) /_status: \(seen?.statusText ?? "not read")"),
            ]
        case .migrationLevelCopied:
            let level = firstFrontend.flatMap { observation.frontend($0)?.migrationLevel }
            let seen = observation.frontend(node)?.migrationLevel
            return [
                Criterion(
                    "migration-level", level != nil && seen == level,
                    "\(node) migration level \(seen ?? "absent"), \(firstFrontend ?? "the first frontend")'s \(level ?? "absent")"
                )
            ]
        case nil:
            return [Criterion("predicate", false, "unknown predicate \(name)")]
        }
    }

    static func explain(_ name: String, node: String?) -> String {
        switch Predicate(rawValue: name) {
        case .rejoined:
            return
                "\(node ?? "the node") rejoined: follower; leaderl waiting 0, follower 2; postgresql offline 0, syncing 0, synced 2; etcd 3/3; elasticsearch 3/3 online; no unsynced sentinel; at the target version"
        case .leaderMoved:
            return "a node other than \(node ?? "the old leader") is leader"
        case .healthyAtTarget:
            return "cluster healthy (1 leader, 2 followers, all services green) and every node at the target version"
        case .leaderIs:
            return "\(node ?? "the node") is the leader"
        case .synced:
            return "\(node ?? "the node") follows, PostgreSQL synced, no unsynced sentinel"
        case .healthy:
            return "cluster healthy: 1 leader, 2 followers, every service healthy"
        case .servicesStopped:
            return "\(node ?? "the node") runs none of leaderl, postgresql, etcd, elasticsearch"
        case .frontendOK:
            return "\(node ?? "the frontend") answers /_status with pong"
        case .frontendUpgraded:
            return
                "\(node ?? "the frontend") serves at the target version: every service running (chef-server-ctl status), /_status pong with every upstream pong"
        case .migrationLevelCopied:
            return "\(node ?? "the frontend") has the first frontend's migration level"
        case .elasticsearchStopped:
            return "Elasticsearch stopped on \(node ?? "the node")"
        case nil:
            return name
        }
    }
}

/// The conditions a Chef Backend step can require, checked on the live cluster right before it runs.
enum ClusterRequirements {
    enum Requirement: String, CaseIterable {
        case leaderExists = "leader-exists"
        case noLeader = "no-leader"
        /// The step's node is not the leader.
        case notLeader = "not-leader"
        /// The step's node is a member of the cluster.
        case member
        case noStartPgsqlPresent = "no-start-pgsql-present"
        case unsyncedPresent = "unsynced-present"
        /// At most one member answers (quorum is lost).
        case quorumLost = "quorum-lost"
        /// `down:NODE`: the named node is unreachable or has its services stopped.
        case down
        /// The step's node is not a member (a fresh machine to join).
        case notMember = "not-member"
        /// No backend runs Elasticsearch (before its data is removed).
        case elasticsearchStoppedEverywhere = "elasticsearch-stopped-everywhere"
        /// The first frontend runs the frontend package's version and its migration level is read.
        case firstFrontendUpgraded = "first-frontend-upgraded"
    }

    /// Whether requirement `name` holds now; `frontendTarget` and `firstFrontend` (the inventory's frontend
    /// package version and first frontend with host) answer `first-frontend-upgraded`.
    static func holds(
        _ name: String, subject: String?, node: String, observation: ClusterObservation,
        frontendTarget: String? = nil, firstFrontend: String? = nil
    ) -> (holds: Bool, detail: String) {
        let seen = observation.node(node)
        switch Requirement(rawValue: name) {
        case .quorumLost:
            let answering = observation.nodes.filter { $0.unreachable == nil && observation.role(of: $0.name) != nil }
            return (
                answering.count <= 1,
                "\(answering.count) members still answer (\(answering.map(\.name).joined(separator: ", ")))"
            )
        case .down:
            // Down as the cluster sees it: a node only Drover cannot reach (a wrong host, a firewall) that the
            // members still list as leader or follower is up, and must not be removed.
            let name = subject ?? ""
            let target = observation.node(name)
            let stopped =
                target?.status.map { status in
                    ["leaderl", "postgresql", "etcd", "elasticsearch"].allSatisfy { status[$0]?.isRunning == false }
                } ?? false
            if let mismatch = observation.identityMismatches.first(where: { $0.node == name }) {
                return (false, mismatch.detail)
            }
            if observation.listedUp(name) {
                let role = observation.role(of: name) ?? "up"
                return (
                    false,
                    "\(name) is \(role) in the cluster's cluster-status\(target?.unreachable != nil ? ", though Drover cannot reach it" : "")"
                )
            }
            return (
                target?.unreachable != nil || stopped,
                "\(name) is \(target?.unreachable != nil ? "unreachable" : (stopped ? "stopped" : "still running"))"
            )
        case .notMember:
            return (observation.role(of: node) == nil, "\(node) is \(observation.role(of: node) ?? "not a member")")
        case .elasticsearchStoppedEverywhere:
            let running = observation.nodes.filter { $0.status?["elasticsearch"]?.isRunning != false }.map(\.name)
            return (
                running.isEmpty,
                running.isEmpty
                    ? "Elasticsearch stopped on every backend"
                    : "Elasticsearch still running (or unread) on \(running.joined(separator: ", "))"
            )
        case .leaderExists: return (observation.leader != nil, "leader \(observation.leader ?? "none")")
        case .noLeader: return (observation.leader == nil, "leader \(observation.leader ?? "none")")
        case .notLeader: return (observation.leader != node, "\(node) is \(observation.role(of: node) ?? "not listed")")
        case .member:
            return (
                observation.role(of: node) != nil,
                "\(node) is \(observation.role(of: node) ?? "not listed in cluster-status")"
            )
        case .noStartPgsqlPresent:
            return (
                seen?.noStartPgsqlSentinel == true,
                "no-start-pgsql \(seen?.noStartPgsqlSentinel == true ? "present" : "absent") on \(node)"
            )
        case .unsyncedPresent:
            return (
                seen?.unsyncedSentinel == true,
                "unsynced sentinel \(seen?.unsyncedSentinel == true ? "present" : "absent") on \(node)"
            )
        case .firstFrontendUpgraded?:
            guard let first = firstFrontend else { return (false, "no frontend has host") }
            let seen = observation.frontend(first)
            return (
                frontendTarget != nil && seen?.version == frontendTarget && seen?.migrationLevel != nil,
                "\(first) at \(seen?.version ?? "unknown") (target \(frontendTarget ?? "none")), migration level \(seen?.migrationLevel ?? "not read")"
            )
        case nil: return (false, "unknown condition \(name)")
        }
    }
}
