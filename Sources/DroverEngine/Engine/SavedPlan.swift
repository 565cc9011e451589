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

    /// The saved plan as written to its file.
    public var json: JSONValue { JSONRecord.value(self) }

    /// Reads a saved plan; says which file and key when it is not one.
    public static func load(path: String) throws -> SavedPlan {
        let notOne = InputError(
            file: path, line: 0, key: nil,
            message: "not a saved Drover plan (\(format)); make one with drover plan --out FILE")
        guard let data = FileManager.default.contents(atPath: path),
            let header = try? JSONRecord.decode(Header.self, from: data), header.format == format
        else { throw notOne }
        do {
            return try JSONRecord.decode(SavedPlan.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw InputError(file: path, line: 0, key: key.stringValue, message: "missing from the saved plan")
        } catch DecodingError.valueNotFound(_, let context), DecodingError.typeMismatch(_, let context) {
            throw InputError(
                file: path, line: 0, key: context.codingPath.first?.stringValue, message: "missing from the saved plan")
        } catch {
            throw notOne
        }
    }

    /// What tells a saved plan from any other JSON file.
    private struct Header: Decodable {
        var format: String?
    }

    /// The playbook the plan was made with, from where it came then; nil when it is gone.
    public func resolvePlaybook(in library: PlaybookLibrary) -> Playbook? {
        switch playbookSource {
        case .builtIn: return try? library.builtIn().first { $0.name == playbook }
        case .file(let path): return try? Playbook.load(path: path, topologies: library.topologies)
        }
    }
}

extension SavedPlan: Codable {
    enum CodingKeys: String, CodingKey {
        case format, created, cluster, playbook, parameters, fingerprint, plan
        case playbookSource = "playbook_source"
        case playbookDigest = "playbook_digest"
        case inventoryFile = "inventory_file"
        case inventoryDigest = "inventory_digest"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let source = try container.decode(String.self, forKey: .playbookSource)
        let plan = try container.decodeIfPresent(JSONValue.self, forKey: .plan) ?? .null
        var backup: Bool?
        if case .object(let fields) = plan { backup = fields["backup"]?.bool }
        self.init(
            playbook: try container.decode(String.self, forKey: .playbook),
            playbookSource: source == Playbook.Source.builtIn.label ? .builtIn : .file(source),
            playbookDigest: try container.decode(String.self, forKey: .playbookDigest),
            parameters: try container.decodeIfPresent([String: String].self, forKey: .parameters) ?? [:],
            inventoryFile: try container.decode(String.self, forKey: .inventoryFile),
            inventoryDigest: try container.decode(String.self, forKey: .inventoryDigest),
            cluster: try container.decode(String.self, forKey: .cluster),
            created: RFC3339.date(try container.decode(String.self, forKey: .created)) ?? Date(),
            fingerprint: try container.decodeIfPresent([String: String].self, forKey: .fingerprint) ?? [:],
            plan: plan, backup: backup)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.format, forKey: .format)
        try container.encode(created, forKey: .created)
        try container.encode(cluster, forKey: .cluster)
        try container.encode(playbook, forKey: .playbook)
        try container.encode(playbookSource.label, forKey: .playbookSource)
        try container.encode(playbookDigest, forKey: .playbookDigest)
        try container.encode(parameters, forKey: .parameters)
        try container.encode(inventoryFile, forKey: .inventoryFile)
        try container.encode(inventoryDigest, forKey: .inventoryDigest)
        try container.encode(fingerprint, forKey: .fingerprint)
        try container.encode(plan, forKey: .plan)
    }
}
