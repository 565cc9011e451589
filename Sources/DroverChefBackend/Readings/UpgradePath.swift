import DroverCluster
import DroverReporting
import Foundation

/// A chef-backend version as `major.minor.patch` (a build suffix after `+` or `-` is ignored).
public struct ChefBackendVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init(major: Int, minor: Int, patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses `2.3.16`, `2.3.16-1` or `3.1.1+20220101`; nil when the text is not a dotted version.
    public init?(_ text: String) {
        let core = text.split(whereSeparator: { $0 == "+" || $0 == "-" }).first.map(String.init) ?? ""
        let parts = core.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard (2...3).contains(parts.count), parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        self.init(major: parts[0]!, minor: parts[1]!, patch: parts.count == 3 ? parts[2]! : 0)
    }

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }
}

/// The documented way from the installed versions to the target (reference §11), chosen from live facts.
public struct UpgradePath: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The zero-downtime rolling procedure (the `upgrade` playbook).
        case rolling
        /// 1.x → 2.x: every backend down for the upgrade.
        case downtime1To2 = "downtime-1-to-2"
        /// 2.1+ → 3.x with `chef` indexes created by an Elasticsearch older than 5.6.16: reindex with downtime.
        case downtimeReindex = "downtime-reindex"
        /// No documented path, or a fact that must be repaired first.
        case refused
        /// A fact the choice needs could not be read (a node's version): the path is not known yet.
        case unknown
    }

    public var kind: Kind
    /// Why this path: the facts it was chosen from, for the plan.
    public var reasons: [String]
    /// For a refusal: what to do instead (commands included).
    public var fix: String?
    /// 2.x → 3.x rolling: the old leader's Elasticsearch may need a second `upgrade` (`unknown setting [path.scripts]`).
    public var elasticsearchRepair = false

    /// The playbook that carries out the path, nil for a refusal.
    public var playbook: String? {
        switch kind {
        case .rolling: return "upgrade"
        case .downtime1To2: return "upgrade-downtime-1-to-2"
        case .downtimeReindex: return "upgrade-downtime-reindex"
        case .refused, .unknown: return nil
        }
    }

    /// The oldest Elasticsearch an index may have been created by for a rolling 2.x → 3.x upgrade.
    public static let rollingElasticsearch = ChefBackendVersion(major: 5, minor: 6, patch: 16)
    /// The release a 2.0.x cluster goes through on its way to 3.x.
    public static let bridgeRelease = "2.3.16"

    /// True when choosing needs the leader's Elasticsearch facts (some node on 2.x, the target 3.x).
    public static func needsElasticsearch(installed: [String], target: String) -> Bool {
        guard let to = ChefBackendVersion(target), to.major == 3 else { return false }
        return installed.compactMap(ChefBackendVersion.init).contains { $0.major == 2 }
    }

    /// Chooses the path.
    ///
    /// - Parameters:
    ///   - installed: each backend's installed version, by node name.
    ///   - target: the package's version.
    ///   - elasticsearch: the leader's index facts when ``needsElasticsearch(installed:target:)``; a failure says
    ///     why they could not be read.
    ///   - inventoryFile: named in the commands of a refusal.
    public static func choose(
        installed: [String: String], target: String,
        elasticsearch: Result<ElasticsearchFacts, ElasticsearchUnreadable>?,
        inventoryFile: String = "INVENTORY", unread: [String] = []
    ) -> UpgradePath {
        func refuse(_ reason: String, _ fix: String) -> UpgradePath {
            UpgradePath(kind: .refused, reasons: [reason], fix: fix)
        }
        guard let to = ChefBackendVersion(target) else {
            return refuse(
                "the target version \(target) is not a dotted version",
                "set package.version in \(inventoryFile) to the package's version, such as 2.3.16")
        }
        // A version that could not be read is unknown: the path cannot be chosen without it.
        if !unread.isEmpty {
            return UpgradePath(
                kind: .unknown,
                reasons: ["the installed version of \(unread.joined(separator: ", ")) could not be read"],
                fix:
                    "make \(unread.joined(separator: ", ")) reachable and readable, then plan again (drover diagnose --inventory \(inventoryFile) says why it is not)"
            )
        }
        var versions: [(node: String, version: ChefBackendVersion)] = []
        for (node, text) in installed.sorted(by: { $0.key < $1.key }) {
            guard let version = ChefBackendVersion(text) else {
                return refuse(
                    "\(node) reports version \(text), which is not a dotted version",
                    "check /opt/chef-backend/version-manifest.json on \(node)")
            }
            versions.append((node, version))
        }
        if let newer = versions.first(where: { $0.version > to }) {
            return refuse(
                "\(newer.node) runs \(newer.version), newer than the target \(to)",
                "Drover does not downgrade; choose a package at least as new as \(newer.version)")
        }
        let pending = versions.filter { $0.version < to }
        guard let from = pending.map(\.version).min() else {
            return UpgradePath(kind: .rolling, reasons: ["every node already runs \(to)"])
        }
        let span = "\(from) → \(to)"
        let run = "drover upgrade --inventory \(inventoryFile)"
        switch (from.major, to.major) {
        case (let a, let b) where a == b:
            return UpgradePath(
                kind: .rolling, reasons: ["\(span) stays within major version \(a): the documented rolling upgrade"])
        case (1, 2):
            return UpgradePath(
                kind: .downtime1To2,
                reasons: [
                    "\(span) crosses from 1.x to 2.x, which Chef documents only with every backend down for the upgrade"
                ])
        case (1, 3):
            return refuse(
                "\(span) skips 2.x; Chef documents no direct path",
                "upgrade to \(bridgeRelease) first (set package.version: \(bridgeRelease) and its package.path in \(inventoryFile), then \(run): the downtime-1-to-2 path), then set the package back to \(to) and run \(run) again"
            )
        case (2, 3) where from < ChefBackendVersion(major: 2, minor: 1, patch: 0):
            return refuse(
                "\(span): 2.0.x cannot be upgraded to 3.x directly (3.x requires 2.1 or later)",
                "upgrade to \(bridgeRelease) first: set package.version: \(bridgeRelease) and its package.path in \(inventoryFile), then \(run); then set the package back to \(to) and run \(run) again"
            )
        case (2, 3):
            guard let elasticsearch else {
                return refuse(
                    "\(span) depends on the age of the chef indexes, which were not read",
                    "re-run the plan with the leader reachable")
            }
            let facts: ElasticsearchFacts
            switch elasticsearch {
            case .failure(let unreadable):
                return refuse(
                    "\(span) depends on the age of the chef indexes, but \(unreadable.reason)",
                    "check Elasticsearch on the leader (curl -s localhost:9200/_cat/indices), then re-run the plan")
            case .success(let read): facts = read
            }
            if !facts.unhealthy.isEmpty {
                return refuse(
                    "Elasticsearch indexes are not green: \(facts.unhealthy.joined(separator: "; "))",
                    "repair them until `curl -s 'localhost:9200/_cat/indices?h=health,status,index'` on the leader shows only green rows, then re-run"
                )
            }
            let created = facts.created.sorted { $0.key < $1.key }
            let old = created.filter {
                (ChefBackendVersion($0.value) ?? ChefBackendVersion(major: 0, minor: 0, patch: 0))
                    < rollingElasticsearch
            }
            let listed = created.map { "\($0.key) created by Elasticsearch \($0.value)" }.joined(separator: ", ")
            if old.isEmpty {
                var path = UpgradePath(
                    kind: .rolling,
                    reasons: [
                        "\(span) (Elasticsearch 5.6 → 6.8): every index was created by Elasticsearch \(rollingElasticsearch) or later (\(listed)), so the documented rolling upgrade applies",
                        "every index is green",
                    ])
                path.elasticsearchRepair = true
                return path
            }
            return UpgradePath(
                kind: .downtimeReindex,
                reasons: [
                    "\(span) (Elasticsearch 5.6 → 6.8): \(old.map { "\($0.key) was created by Elasticsearch \($0.value)" }.joined(separator: ", ")), older than \(rollingElasticsearch): Elasticsearch 6.8 cannot read it, so its data is removed and reindexed with the frontends in maintenance",
                    "every index is green",
                ])
        default:
            return refuse(
                "\(span): Chef documents no upgrade path from \(from.major).x to \(to.major).x",
                "check the release notes of chef-backend \(to) for the supported path")
        }
    }
}

/// Why the leader's Elasticsearch facts could not be read.
public struct ElasticsearchUnreadable: Error, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}
