import Foundation

/// `curl` of the node's own Elasticsearch, as chef-backend's documented checks read it.
extension Invocation {
    /// `curl [-s] [-S] URL` against the node's Elasticsearch (localhost:9200): the two documented reads,
    /// `chef/_settings/index.version.created*?human` and `_cat/indices?h=health,status,index`.
    func curl(_ arguments: [String]) throws -> Int32 {
        let urls = arguments.filter { !$0.hasPrefix("-") }
        guard urls.count == 1, let url = urls.first else {
            err("curl: only 'curl [-s] [-S] URL' is simulated\n")
            return 2
        }
        let path = url.replacingOccurrences(of: "http://", with: "")
        guard path.hasPrefix("localhost:9200/") || path.hasPrefix("127.0.0.1:9200/") else {
            err("curl: (7) Failed to connect to \(url): Connection refused\n")
            return 7
        }
        return try store.update { cluster, _ in
            guard let index = cluster.index(node), cluster.nodes[index].isMember,
                !cluster.nodes[index].servicesDown.contains("elasticsearch")
            else {
                err("curl: (7) Failed to connect to localhost port 9200: Connection refused\n")
                return 7
            }
            let request = String(path.drop { $0 != "/" })
            if request.hasPrefix("/chef/_settings/index.version.created") {
                let version: (SimulatedIndex) -> String = { index in
                    let parts = index.created.split(separator: ".").compactMap { Int($0) } + [0, 0, 0]
                    let number = parts[0] * 1_000_000 + parts[1] * 10_000 + parts[2] * 100 + 99
                    return
                        #"{"settings":{"index":{"version":{"created_string":"\#(index.created)","created":"\#(number)"}}}}"#
                }
                out("{" + cluster.indexes.map { #""\#($0.name)":"# + version($0) }.joined(separator: ",") + "}")
            } else if request.hasPrefix("/_cat/indices") {
                out(cluster.reportedIndexes.map { "\($0.health) open \($0.name)\n" }.joined())
            } else {
                out(#"{"error":"no handler found for uri [\#(request)]","status":400}"#)
            }
            return 0
        }
    }
}
