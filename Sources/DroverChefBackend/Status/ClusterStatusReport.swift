import DroverCluster
import DroverReporting
import Foundation

/// `drover status` of a Chef Backend cluster: each node's role, version and the four services.
public struct ClusterStatusReport: Sendable {
    public var cluster: String
    public var observation: ClusterObservation
    public var locks: [LockOwner]
    /// Each frontend's address, by name (the frontends read are `observation.frontends`).
    public var frontendHosts: [String: String]

    public init(
        cluster: String, observation: ClusterObservation, locks: [LockOwner], frontendHosts: [String: String] = [:]
    ) {
        self.cluster = cluster
        self.observation = observation
        self.locks = locks
        self.frontendHosts = frontendHosts
    }

    static let services = ["leaderl", "postgresql", "etcd", "elasticsearch"]

    public var json: JSONValue {
        let services = Self.services
        let nodes: [JSONValue] = observation.nodes.map { node in
            .object([
                "name": .string(node.name), "host": .string(node.host), "reachable": .bool(node.unreachable == nil),
                "error": .optional(node.unreachable), "role": .optional(observation.role(of: node.name)),
                "version": .optional(node.installedVersion),
                "unsynced_sentinel": node.unsyncedSentinel.map { .bool($0) } ?? .null,
                "services": .object(
                    Dictionary(
                        uniqueKeysWithValues: services.map { ($0, JSONValue.optional(node.status?[$0]?.distributed)) })),
                "local": .object(
                    Dictionary(
                        uniqueKeysWithValues: services.map { ($0, JSONValue.optional(node.status?[$0]?.localStatus)) })),
                "read_errors": .array(node.readErrors.map { .string($0) }),
                "in_cluster": .bool(node.notInCluster == nil),
            ])
        }
        let healthy = Predicates.healthy(observation, allowYellow: false).allSatisfy(\.holds)
        var fields: [String: JSONValue] = [
            "cluster": .string(cluster), "topology": "chef-backend", "leader": .optional(observation.leader),
            "healthy": .bool(healthy),
            "cluster_failover": "unknown", "nodes": .array(nodes), "locks": LockOwner.json(locks),
            // Each inventory backend that is not the machine the cluster knows by its name (a wrong host).
            "inventory_mismatches": .array(
                observation.identityMismatches.map {
                    .object(["node": .string($0.node), "host": .string($0.inventoryHost), "detail": .string($0.detail)])
                }),
        ]
        if !observation.frontends.isEmpty {
            fields["frontends_serving"] = .bool(observation.frontends.allSatisfy(\.serving))
            fields["frontends"] = .array(
                observation.frontends.map { frontend in
                    .object([
                        "name": .string(frontend.name), "host": .optional(frontendHosts[frontend.name]),
                        "reachable": .bool(frontend.unreachable == nil), "error": .optional(frontend.unreachable),
                        "version": .optional(frontend.version), "serving": .bool(frontend.serving),
                        "status": .optional(frontend.unreachable == nil ? frontend.statusText : nil),
                        "stopped_services": .array(frontend.stoppedServices.map { .string($0) }),
                        "read_errors": .array(frontend.readErrors.map { .string($0) }),
                    ])
                })
        }
        return .object(fields)
    }

    public var text: String {
        var lines = ["Cluster \(cluster): leader \(observation.leader ?? "none")"]
        for node in observation.nodes {
            guard node.unreachable == nil else {
                lines.append("\(node.name) (\(node.host)): UNREACHABLE: \(node.unreachable!)")
                continue
            }
            let role =
                node.notInCluster.map { "NOT PART OF A CLUSTER (cluster-status exited 1: \($0))" }
                ?? observation.role(of: node.name) ?? "not listed"
            lines.append(
                "\(node.name) (\(node.host)): \(role), version \(node.installedVersion ?? "unknown")\(node.unsyncedSentinel == true ? ", UNSYNCED sentinel present" : "")"
            )
            for service in Self.services {
                let row = node.status?[service]
                lines.append(
                    "    \(service.padding(toLength: 14, withPad: " ", startingAt: 0)) \((row?.localStatus ?? "?").padding(toLength: 20, withPad: " ", startingAt: 0)) \(row?.distributed ?? "?")"
                )
            }
            for problem in node.readErrors { lines.append("    ! \(problem)") }
        }
        lines += frontendLines
        lines.append(healthLine)
        lines.append("Cluster failover: unknown (chef-backend-ctl documents no output that shows it)")
        for owner in locks { lines.append("Lock: \(owner.node) is locked by \(owner.description)") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension ClusterStatusReport {
    /// A line per frontend read over SSH: its release and whether it serves (`/_status` pong, every upstream
    /// pong), with the services `chef-server-ctl status` shows stopped.
    var frontendLines: [String] {
        observation.frontends.map { frontend in
            let host = frontendHosts[frontend.name].map { " (\($0))" } ?? ""
            if let unreachable = frontend.unreachable {
                return "\(frontend.name)\(host): frontend, UNREACHABLE: \(unreachable)"
            }
            var line = "\(frontend.name)\(host): frontend, chef-server-core \(frontend.version ?? "unknown"), "
            line += frontend.serving ? "serving" : "NOT SERVING: \(frontend.statusText)"
            if !frontend.stoppedServices.isEmpty {
                line += "; stopped: \(frontend.stoppedServices.joined(separator: ", "))"
            }
            return line + frontend.readErrors.map { "\n    ! \($0)" }.joined()
        }
    }

    /// `Healthy.`, or why not: a node that could not be reached is the cause, said once, when the others are
    /// healthy but for it; otherwise every criterion that fails.
    var healthLine: String {
        // A wrong host is the cause to name, first: the cluster itself may be healthy.
        let mismatches = observation.identityMismatches
        if !mismatches.isEmpty {
            return "The inventory does not name the machines the cluster knows: "
                + mismatches.map(\.detail).joined(separator: "; ") + "."
        }
        let failing = Predicates.healthy(observation, allowYellow: false).filter { !$0.holds }
        let notServing = observation.frontends.filter { !$0.serving }.map(\.name)
        guard !failing.isEmpty else {
            return notServing.isEmpty
                ? "Healthy." : "Backends healthy; not serving: \(notServing.joined(separator: ", ")) (see above)."
        }
        let unreachable = observation.nodes.filter { $0.unreachable != nil }.map(\.name)
        let others = observation.nodes.filter { $0.unreachable == nil }
        if unreachable.count == 1, !others.isEmpty,
            others.allSatisfy({ Predicates.healthyWithOneOut($0.status, source: $0.name).allSatisfy(\.holds) })
        {
            return
                "Not healthy: \(unreachable[0]) could not be reached (see above); the others are healthy but for it, and see it out of the cluster."
        }
        return "Not healthy: " + failing.map(\.detail).joined(separator: "; ")
    }
}
