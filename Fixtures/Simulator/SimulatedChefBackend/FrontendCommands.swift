import Foundation

/// One invocation on a simulated Chef Infra Server frontend: `chef-server-ctl maintenance on|off`,
/// `reconfigure`, `reindex`, and `curl` of erchef's `/_status` on localhost:8000.
public struct FrontendInvocation {
    public let node: String
    public let store: StateStore
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(node: String, store: StateStore, out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.node = node
        self.store = store
        self.out = out
        self.err = err
    }

    /// Dispatches on the tool name (`chef-server-ctl`, `curl`).
    public func run(tool: String, arguments: [String]) -> Int32 {
        do {
            switch tool {
            case "chef-server-ctl": return try ctl(arguments)
            case "curl": return try curl(arguments)
            default:
                err("\(tool): not simulated on a frontend\n")
                return 127
            }
        } catch {
            err("\(error.localizedDescription)\n")
            return 70
        }
    }

    /// The backends' major version: the leader's, else the most common running one.
    static func backendMajor(_ cluster: SimulatedCluster) -> Int {
        let version = cluster.currentLeader?.runningVersion ?? cluster.members.first?.runningVersion ?? "0"
        return Int(version.split(separator: ".").first ?? "0") ?? 0
    }

    func ctl(_ arguments: [String]) throws -> Int32 {
        try store.update { cluster, _ in
            guard let index = cluster.frontends.firstIndex(where: { $0.name == node }) else {
                err("chef-server-ctl: \(node) is not a simulated frontend\n")
                return 70
            }
            switch arguments {
            case ["maintenance", "on"]:
                cluster.frontends[index].maintenance = true
                out("Maintenance mode is now on: requests from outside the allow list get 503\n")
                return 0
            case ["maintenance", "off"]:
                cluster.frontends[index].maintenance = false
                out("Maintenance mode is now off\n")
                return 0
            case ["reconfigure"]:
                // HAProxy must see exactly one backend UP (reference §10).
                guard cluster.currentLeader != nil else {
                    err("FATAL: HAProxy still showing multiple active backends (or none); is the backend cluster up?\n")
                    return 1
                }
                cluster.frontends[index].configuredMajor = Self.backendMajor(cluster)
                cluster.frontends[index].reconfigures += 1
                out("Chef Infra Server Reconfigured!\n")
                return 0
            case let args where args.first == "reindex":
                guard args.count == 2 else {
                    err("Usage: chef-server-ctl reindex -a | ORGNAME\n")
                    return 1
                }
                guard cluster.currentLeader != nil else {
                    err("ERROR: cannot reach the search index: is the backend cluster up?\n")
                    return 1
                }
                out("Reindexing \(args[1] == "-a" || args[1] == "--all" ? "every organization" : args[1])\n")
                if cluster.indexes.isEmpty {
                    cluster.indexes = [SimulatedIndex(name: "chef", created: "6.8.23", health: "green")]
                }
                return 0
            default:
                err("chef-server-ctl: only maintenance on|off, reconfigure and reindex are simulated\n")
                return 1
            }
        }
    }

    /// `curl [-s] [-S] http://localhost:8000/_status`: pong while the backend cluster has a leader, the frontend
    /// is configured for it and no index is red; fail (HTTP 500) otherwise.
    func curl(_ arguments: [String]) throws -> Int32 {
        let urls = arguments.filter { !$0.hasPrefix("-") }
        guard urls.count == 1, let url = urls.first,
            url.hasSuffix("localhost:8000/_status") || url.hasSuffix("127.0.0.1:8000/_status")
        else {
            err("curl: (7) Failed to connect: only http://localhost:8000/_status is simulated on a frontend\n")
            return 7
        }
        return try store.update { cluster, _ in
            guard let frontend = cluster.frontends.first(where: { $0.name == node }) else { return 7 }
            // Frontends configured for 1.x backends need `reconfigure` for 2.x (reference §11); 2.x → 3.x reconfigures
            // one frontend only, and the others keep working.
            let stale = frontend.configuredMajor < 2 && Self.backendMajor(cluster) >= 2
            let sql = cluster.currentLeader != nil && !stale
            let search =
                sql && cluster.members.contains(where: cluster.elasticsearchOnline)
                && !cluster.reportedIndexes.contains { $0.health == "red" }
            let upstreams =
                #"{"chef_elasticsearch":"\#(search ? "pong" : "fail")","chef_sql":"\#(sql ? "pong" : "fail")","oc_chef_authz":"pong"}"#
            out(
                #"{"status":"\#(sql && search ? "pong" : "fail")","upstreams":\#(upstreams),"keygen":{"keys":10,"max":10,"max_workers":2,"cur_max_workers":2,"inflight":0,"avail_workers":2,"start_size":0},"indexing":{"mode":"batch"}}"#
            )
            return 0
        }
    }
}
