import Foundation

/// `chef-backend-ctl remove-node`, `join-cluster`, `create-cluster` and `cleanse`.
extension Invocation {
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
}
