import Foundation

/// `chef-backend-ctl` service control, `pgsql-follow`, `backup` and `gen-server-config`.
extension Invocation {
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
}
