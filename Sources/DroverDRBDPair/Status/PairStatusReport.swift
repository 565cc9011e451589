import DroverCluster
import DroverReporting
import Foundation

/// `drover status` of a DRBD pair: per node its DRBD role, connection, disks, out-of-sync amount and
/// resync progress, keepalived's status, the VIP and ha-status's verdict; then the pair's situation.
public struct PairStatusReport: Sendable {
    public var cluster: String
    public var resource: String
    public var observation: PairObservation
    public var situation: Situation?
    public var locks: [LockOwner]

    public init(
        cluster: String, resource: String, observation: PairObservation, situation: Situation?, locks: [LockOwner]
    ) {
        self.cluster = cluster
        self.resource = resource
        self.observation = observation
        self.situation = situation
        self.locks = locks
    }

    /// Two lines or more per node.
    public var nodeLines: [String] {
        var lines: [String] = []
        for node in observation.nodes {
            guard node.reachable else {
                lines.append("  \(node.name) (\(node.host)): UNREACHABLE: \(node.unreachable ?? "?")")
                continue
            }
            if let device = node.device {
                var line =
                    "  \(node.name) (\(node.host)): DRBD \(node.drbdRole ?? device.role), peer \(node.role?.peer ?? device.peerRole); \(device.connection); disk \(device.disk), peer disk \(device.peerDisk); oos \(device.outOfSyncKiB.map { "\($0) KiB" } ?? "?")"
                if let sync = device.sync {
                    line += "; resync \(sync.percent)%\(sync.finish.map { ", finish \($0)" } ?? "")"
                }
                lines.append(line)
            } else {
                lines.append(
                    "  \(node.name) (\(node.host)): DRBD \(resource) not running\(node.role.map { " (drbdadm role \($0.local)/\($0.peer))" } ?? "")"
                )
            }
            if let ha = node.haStatus {
                lines.append(
                    "      keepalived \(ha.keepalived ?? "unknown"); VIP \(ha.holdsVIP == true ? "held" : "not held"); ha-status \(ha.passed ? "passed" : "FAILED (exit \(ha.exitStatus))")"
                )
                for error in ha.significantErrors { lines.append("      [ERROR] \(error)") }
                for known in ha.harmless {
                    lines.append("      [ERROR] \(known.error) (known and harmless: \(known.why))")
                }
                for warning in ha.lines where warning.level == .warn { lines.append("      [WARN] \(warning.message)") }
            }
            for problem in node.readErrors { lines.append("      ! \(problem)") }
        }
        return lines
    }

    public var text: String {
        var lines = [
            "Pair \(cluster) (DRBD resource \(resource)): primary \(observation.primary ?? "none"), VIP on \(observation.vipHolder ?? "no node")"
        ]
        lines += nodeLines
        lines.append(
            "Situation: \(situation.map { "\($0.id): \($0.summary)" } ?? "cannot tell: neither node's DRBD state could be read")"
        )
        for owner in locks { lines.append("Lock: \(owner.node) is locked by \(owner.description)") }
        return lines.joined(separator: "\n") + "\n"
    }

    public var nodesJSON: JSONValue {
        .array(
            observation.nodes.map { node in
                var object: [String: JSONValue] = [
                    "name": .string(node.name), "host": .string(node.host), "reachable": .bool(node.reachable),
                    "error": .optional(node.unreachable),
                    "read_errors": .array(node.readErrors.map { .string($0) }),
                ]
                if let device = node.device {
                    object["drbd"] = .object([
                        "minor": .int(device.minor), "role": .optional(node.drbdRole),
                        "peer_role": .string(node.role?.peer ?? device.peerRole),
                        "connection": .string(device.connection), "disk": .string(device.disk),
                        "peer_disk": .string(device.peerDisk),
                        "out_of_sync_kib": device.outOfSyncKiB.map { .int($0) } ?? .null,
                        "resync": device.sync.map { sync in
                            .object([
                                "percent": .double(sync.percent), "finish": .optional(sync.finish),
                                "speed_kib_s": sync.speedKiBPerSecond.map { .int($0) } ?? .null,
                                "remaining_kib": sync.remainingKiB.map { .int($0) } ?? .null,
                                "total_kib": sync.totalKiB.map { .int($0) } ?? .null,
                            ])
                        } ?? .null,
                    ])
                } else {
                    object["drbd"] = .null
                }
                if let ha = node.haStatus {
                    object["keepalived"] = .optional(ha.keepalived)
                    object["holds_vip"] = ha.holdsVIP.map { .bool($0) } ?? .null
                    object["ha_status"] = .object([
                        "passed": .bool(ha.passed), "exit_status": .int(Int(ha.exitStatus)),
                        "errors": .array(ha.significantErrors.map { .string($0) }),
                        "harmless_errors": .array(ha.harmless.map { .string($0.error) }),
                        "warnings": .array(ha.lines.filter { $0.level == .warn }.map { .string($0.message) }),
                    ])
                } else {
                    object["keepalived"] = .null
                    object["holds_vip"] = .null
                    object["ha_status"] = .null
                }
                return .object(object)
            })
    }

    public var json: JSONValue {
        .object([
            "cluster": .string(cluster), "topology": "drbd-pair", "resource": .string(resource),
            "primary": .optional(observation.primary), "vip_holder": .optional(observation.vipHolder),
            "situation": .optional(situation?.id), "summary": .optional(situation?.summary),
            "healthy": .bool(situation?.id == "healthy"), "nodes": nodesJSON, "locks": LockOwner.json(locks),
        ])
    }
}
