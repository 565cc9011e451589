import DroverCluster
import DroverReporting
import Foundation

/// The `status` field of a frontend's `/_status` body (`pong` or `fail`).
public enum FrontendStatusBody {
    public static func status(_ json: String) throws -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let status = object["status"] as? String
        else {
            throw ParseError.unrecognised("/_status (no status field)", ParseError.excerpt(json))
        }
        return status
    }
}

/// What the leader's Elasticsearch says about the `chef` indexes, read only before a 2.x → 3.x upgrade.
public struct ElasticsearchFacts: Sendable, Equatable {
    /// Each index's creation version (`created_string`), by index name.
    public var created: [String: String]
    /// Indexes that are not green, as `_cat/indices` shows them (`yellow open chef`).
    public var unhealthy: [String]

    /// Elasticsearch's log on a backend (runit's `current`).
    public static let logPath = "/var/log/chef-backend/elasticsearch/current"
    /// What the log shows when a 2.x → 3.x upgrade left Elasticsearch half-upgraded (chef-server PR #3214).
    public static let pathScriptsError = "unknown setting [path.scripts]"

    public init(created: [String: String], unhealthy: [String]) {
        self.created = created
        self.unhealthy = unhealthy
    }

    /// Reads the creation versions from the body of
    /// `curl -s 'localhost:9200/chef/_settings/index.version.created*?human'`.
    ///
    /// Every top-level key is an index (the `chef` alias may name several); `created_string` is used, or
    /// the numeric `created` decoded (Elasticsearch writes 5.6.16 as 5061699) when the string is absent.
    public static func creationVersions(_ json: String) throws -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], !object.isEmpty
        else {
            throw ParseError.unrecognised(
                "Elasticsearch chef/_settings (not a JSON object of indexes)", ParseError.excerpt(json))
        }
        if object["error"] != nil {
            throw ParseError.unrecognised("Elasticsearch chef/_settings (an error)", ParseError.excerpt(json))
        }
        var result: [String: String] = [:]
        for (index, value) in object {
            let version =
                ((((value as? [String: Any])?["settings"] as? [String: Any])?["index"] as? [String: Any])?["version"]
                    as? [String: Any])
            if let text = version?["created_string"] as? String, !text.isEmpty {
                result[index] = text
            } else if let number = (version?["created"] as? String).flatMap(Int.init) ?? (version?["created"] as? Int) {
                result[index] = "\(number / 1_000_000).\(number / 10_000 % 100).\(number / 100 % 100)"
            } else {
                throw ParseError.unrecognised(
                    "Elasticsearch chef/_settings (no index.version.created for \(index))", ParseError.excerpt(json))
            }
        }
        return result
    }

    /// The rows of `curl -s 'localhost:9200/_cat/indices?h=health,status,index'` whose health is not green.
    public static func unhealthyIndexes(_ text: String) throws -> [String] {
        let rows = text.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        }
        .filter { !$0.isEmpty }
        guard rows.allSatisfy({ $0.count >= 3 && ["green", "yellow", "red"].contains($0[0]) }) else {
            throw ParseError.unrecognised("Elasticsearch _cat/indices?h=health,status,index", ParseError.excerpt(text))
        }
        return rows.filter { $0[0] != "green" }.map { $0.joined(separator: " ") }
    }
}
