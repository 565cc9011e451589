import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// A plan saved with `drover plan --out FILE`, applied later with `drover apply FILE`: the plan plus a
/// fingerprint of what it observed. It holds no secret: the inventory and playbook are referenced by path
/// (or as built-in) and digest, never copied.
public struct SavedPlan: Sendable {
    public static let format = "drover-plan/2"

    public var playbook: String
    /// Built into drover, or the file it was read from; apply uses exactly that one.
    public var playbookSource: Playbook.Source
    /// SHA-256 of the playbook's text.
    public var playbookDigest: String
    /// The playbook's `--set` values (node names, on/off, flags: never secrets).
    public var parameters: [String: String]
    public var inventoryFile: String
    public var inventoryDigest: String
    public var cluster: String
    public var created: Date
    /// Flat `key → value` pairs: `leader`, `node.be1.guid`, `node.be1.version`, `package.version`, ...
    public var fingerprint: [String: String]
    public var plan: JSONValue
    /// Whether the plan takes a backup first (its `plan.backup`); `apply` does as the plan said.
    public var backup: Bool? = nil

    public init(
        playbook: String, playbookSource: Playbook.Source, playbookDigest: String, parameters: [String: String],
        inventoryFile: String, inventoryDigest: String, cluster: String, created: Date,
        fingerprint: [String: String], plan: JSONValue, backup: Bool? = nil
    ) {
        self.playbook = playbook
        self.playbookSource = playbookSource
        self.playbookDigest = playbookDigest
        self.parameters = parameters
        self.inventoryFile = inventoryFile
        self.inventoryDigest = inventoryDigest
        self.cluster = cluster
        self.created = created
        self.fingerprint = fingerprint
        self.plan = plan
        self.backup = backup
    }

    /// Terraform-style lines for every difference between two fingerprints (`~ key: old -> new`).
    public static func differences(_ old: [String: String], _ new: [String: String]) -> [String] {
        Set(old.keys).union(new.keys).sorted().compactMap { key in
            switch (old[key], new[key]) {
            case (let before?, let after?) where before != after: return "  ~ \(key): \(before) -> \(after)"
            case (let before?, nil): return "  - \(key): \(before)"
            case (nil, let after?): return "  + \(key): \(after)"
            default: return nil
            }
        }
    }

    /// True when a step of the plan asks for a typed yes: a `confirm:` the plan did not find skipped (with two
    /// frontends, the one-frontend downtime's confirmation is skipped and the plan applies without `--yes`).
    public var asksForConfirmation: Bool {
        guard case .object(let fields) = plan, case .array(let steps)? = fields["steps"] else { return true }
        return steps.contains {
            if case .object(let step) = $0, step["action"] == .string("confirm") { return true }
            return false
        }
    }

    public var json: JSONValue {
        .object([
            "format": .string(Self.format), "created": .string(RFC3339.string(created)), "cluster": .string(cluster),
            "playbook": .string(playbook), "playbook_source": .string(playbookSource.label),
            "playbook_digest": .string(playbookDigest),
            "parameters": .object(parameters.mapValues { .string($0) }),
            "inventory_file": .string(inventoryFile), "inventory_digest": .string(inventoryDigest),
            "fingerprint": .object(fingerprint.mapValues { .string($0) }), "plan": plan,
        ])
    }

    public static func load(path: String) throws -> SavedPlan {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            object["format"] as? String == format
        else {
            throw InputError(
                file: path, line: 0, key: nil,
                message: "not a saved Drover plan (\(format)); make one with drover plan --out FILE")
        }
        func string(_ key: String) throws -> String {
            guard let value = object[key] as? String else {
                throw InputError(file: path, line: 0, key: key, message: "missing from the saved plan")
            }
            return value
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let source = try string("playbook_source")
        return SavedPlan(
            playbook: try string("playbook"),
            playbookSource: source == Playbook.Source.builtIn.label ? .builtIn : .file(source),
            playbookDigest: try string("playbook_digest"), parameters: object["parameters"] as? [String: String] ?? [:],
            inventoryFile: try string("inventory_file"), inventoryDigest: try string("inventory_digest"),
            cluster: try string("cluster"), created: formatter.date(from: try string("created")) ?? Date(),
            fingerprint: object["fingerprint"] as? [String: String] ?? [:],
            plan: object["plan"].map(JSONValue.init(any:)) ?? .null,
            backup: (object["plan"] as? [String: Any])?["backup"] as? Bool)
    }

    /// The playbook the plan was made with, from where it came then; nil when it is gone.
    public func resolvePlaybook(in library: PlaybookLibrary) -> Playbook? {
        switch playbookSource {
        case .builtIn: return try? library.builtIn().first { $0.name == playbook }
        case .file(let path): return try? Playbook.load(path: path, topologies: library.topologies)
        }
    }
}
