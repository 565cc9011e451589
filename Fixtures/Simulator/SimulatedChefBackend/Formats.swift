import Foundation

/// Renders chef-backend-ctl's documented text outputs from the cluster state.
public enum Formats {
    /// `chef-backend-ctl status [SERVICE]` as seen on `node` (local columns are that node's).
    public static func status(
        _ cluster: SimulatedCluster, on node: SimulatedNode, service: String?, now: Date
    ) -> String {
        let members = cluster.members
        let total = members.count
        let roles = members.map { cluster.role(of: $0) }
        let leaders = roles.filter { $0 == "leader" }.count
        let followers = roles.filter { $0 == "follower" }.count
        let waiting = roles.filter { $0 == "waiting_for_leader" }.count
        let postgres = members.map { cluster.postgresState(of: $0) }
        let esOnline = members.filter(cluster.elasticsearchOnline).count
        let etcdHealthy = members.filter(cluster.etcdHealthy).count
        let versions = Set(members.filter { !$0.unreachable }.map(\.runningVersion))
        let esState = esOnline < 2 ? "red" : (esOnline < total || versions.count > 1 ? "yellow" : "green")
        let etcdHealth = etcdHealthy == total ? "green" : (etcdHealthy * 2 > total ? "yellow" : "red")

        var distributed: [String: String] = [
            "elasticsearch": "state: \(esState); nodes online: \(esOnline)/\(total)",
            "epmd": "status: local-only",
            "etcd": "health: \(etcdHealth); healthy nodes: \(etcdHealthy)/\(total)",
            "leaderl": "leader: \(leaders); waiting: \(waiting); follower: \(followers); total: \(total)",
        ]
        if cluster.currentLeader == nil {
            distributed["postgresql"] = "error: could not reach pgsql leader for replication stats"
        } else {
            distributed["postgresql"] =
                "leader: \(postgres.filter { $0 == "leader" }.count); "
                + "offline: \(postgres.filter { $0 == "offline" }.count); "
                + "syncing: \(postgres.filter { $0 == "syncing" }.count); "
                + "synced: \(postgres.filter { $0 == "synced" }.count)"
        }
        let services = service.map { [$0] } ?? SimulatedCluster.services
        var rows = [["Service", "Local Status", "Time in State", "Distributed Node Status"]]
        for name in services {
            let down = localDown(cluster, node, name)
            let since = node.serviceSince[name] ?? now
            rows.append([
                name, down ? "down" : "running (pid \(node.pids[name] ?? 1000))",
                duration(now.timeIntervalSince(since)),
                distributed[name] ?? "",
            ])
        }
        var text = table(rows)
        if service == nil {
            let diskState = node.faults.contains(.diskFull) ? "LOW" : "OK"
            let disksHealthy = members.filter { !$0.faults.contains(.diskFull) && !$0.unreachable }.count
            text +=
                "\n"
                + table([
                    ["System", "Local Status", "Distributed Node Status"],
                    [
                        "disks", "/var/log/chef-backend: OK; /var/opt/chef-backend: \(diskState)",
                        "health: \(disksHealthy == total ? "green" : "yellow"); healthy nodes: \(disksHealthy)/\(total)",
                    ],
                ])
        }
        return text
    }

    /// `chef-backend-ctl status --simple` (runit form).
    public static func simpleStatus(_ cluster: SimulatedCluster, on node: SimulatedNode, now: Date) -> String {
        SimulatedCluster.services.map { name in
            let seconds = Int(now.timeIntervalSince(node.serviceSince[name] ?? now))
            let logPid = (node.pids[name] ?? 1000) + 6
            if localDown(cluster, node, name) {
                return "down: \(name): \(seconds)s, normally up; run: log: (pid \(logPid)) \(seconds)s"
            }
            return "run: \(name): (pid \(node.pids[name] ?? 1000)) \(seconds)s; run: log: (pid \(logPid)) \(seconds)s"
        }.joined(separator: "\n") + "\n"
    }

    /// `chef-backend-ctl cluster-status`: the nodes this node can reach.
    public static func clusterStatus(_ cluster: SimulatedCluster) -> String {
        var rows = [["Name", "IP", "GUID", "Role", "PG", "ES"]]
        for node in cluster.answeringMembers {
            let role = cluster.role(of: node) ?? "waiting_for_leader"
            let pg = cluster.postgresState(of: node)
            rows.append([
                node.name, node.ip, node.guid, role,
                pg == "leader" ? "leader" : (pg == "offline" ? "offline" : "follower"),
                cluster.esMaster == node.name ? "master" : "not_master",
            ])
        }
        return table(rows)
    }

    /// `chef-backend-ctl cluster-status --json`: the simulator's own shape (the real one is undocumented).
    public static func clusterStatusJSON(_ cluster: SimulatedCluster) -> String {
        let nodes: [[String: Any]] = cluster.answeringMembers.map { node in
            [
                "name": node.name, "ip": node.ip, "guid": node.guid, "role": cluster.role(of: node) ?? "",
                "pg": cluster.postgresState(of: node), "es": cluster.esMaster == node.name ? "master" : "not_master",
                "partially_synced": node.phase == .partiallySynced || cluster.sentinelPresent(node, NodePaths.unsynced),
            ]
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["nodes": nodes], options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func localDown(_ cluster: SimulatedCluster, _ node: SimulatedNode, _ service: String) -> Bool {
        if node.servicesDown.contains(service) { return true }
        if service == "postgresql" && node.phase == .deposed { return true }
        return !node.isMember && service != "epmd"
    }

    /// `1d 5h 59m 41s`.
    public static func duration(_ interval: TimeInterval) -> String {
        let total = max(0, Int(interval))
        return "\(total / 86400)d \(total % 86400 / 3600)h \(total % 3600 / 60)m \(total % 60)s"
    }

    /// Left-aligned columns separated by at least two spaces, as chef-backend-ctl prints them.
    public static func table(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }
}
