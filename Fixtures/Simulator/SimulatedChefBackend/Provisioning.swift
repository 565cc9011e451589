import Foundation

/// Lays out simulated nodes on disk: the private directories, an installed version, configuration,
/// secrets and a package file waiting in /var/tmp.
public enum Provisioning {
    /// The package file name for a version, as Chef names them.
    public static func packageName(version: String, format: String) -> String {
        format == "rpm" ? "chef-backend-\(version)-1.el7.x86_64.rpm" : "chef-backend_\(version)-1_amd64.deb"
    }

    /// A 32-hex node id like chef-backend's GUIDs.
    public static func guid() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// Creates a node under `directory/nodes/NAME` running `version`, with the `target` package in /var/tmp.
    public static func node(
        name: String, ip: String, directory: String, version: String, target: String,
        format: String, index: Int
    ) throws -> SimulatedNode {
        let root = directory + "/nodes/" + name
        for prefix in NodePaths.privatePrefixes {
            try FileManager.default.createDirectory(atPath: root + prefix, withIntermediateDirectories: true)
        }
        var node = SimulatedNode(name: name, ip: ip, guid: guid(), root: root, phase: .synced, runningVersion: version)
        let started = Date().addingTimeInterval(-Double.random(in: 80_000...120_000))
        for (offset, service) in SimulatedCluster.services.enumerated() {
            node.serviceSince[service] = started.addingTimeInterval(Double(offset))
            node.pids[service] = 6600 + index * 100 + offset * 7
            // Where Chef's guides (and Drover's advice) send you: each service's runit log.
            node.appendLog(service, "[info] \(service) started (simulated by chef-backend-sim)")
        }
        let manifest =
            #"{"manifest_format":2,"software":{},"build_version":"\#(version)","build_git_revision":"simulated","license":"Chef EULA"}"#
        try (manifest + "\n").write(toFile: node.hostPath(NodePaths.manifest), atomically: true, encoding: .utf8)
        try "publish_address '\(ip)'\n".write(
            toFile: node.hostPath(NodePaths.config), atomically: true, encoding: .utf8)
        try
            #"{"postgresql":{"db_superuser_password":"sandbox-secret-db","replication_password":"sandbox-secret-repl"},"etcd":{"initial_cluster_token":"sandbox-token"},"elasticsearch":{"cluster_name":"ChefBackend-sandbox"}}"#
            .write(toFile: node.hostPath(NodePaths.secrets), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(
            atPath: node.hostPath("/var/opt/chef-backend/leaderl/data"), withIntermediateDirectories: true)
        // Elasticsearch's data: the downtime-reindex path empties this directory on every node.
        let shards = node.hostPath(NodePaths.elasticsearchData + "/nodes/0/indices")
        try FileManager.default.createDirectory(atPath: shards, withIntermediateDirectories: true)
        try "simulated shard\n".write(toFile: shards + "/chef-0", atomically: true, encoding: .utf8)
        var package = "Package: chef-backend\nVersion: \(target)-1\nArchitecture: amd64\n"
        package += String(repeating: "simulated package payload\n", count: 4096)
        try package.write(
            toFile: node.hostPath("/var/tmp/" + packageName(version: target, format: format)), atomically: true,
            encoding: .utf8)
        return node
    }
}
