import DroverInventory
import DroverSSH
import Foundation

/// Where playbooks are found: the built-in ones (each topology's, compiled into drover from
/// `Playbooks/TOPOLOGY/`), to which `--playbooks DIR` and `$DROVER_PLAYBOOKS` (directories separated by `:`)
/// add playbooks or override them by name. The first directory given wins: `--playbooks`, then `$DROVER_PLAYBOOKS` in order.
public struct PlaybookLibrary: Sendable {
    /// Directories whose `NAME.yml` files add to or replace the built-ins, first one winning.
    public let directories: [String]
    /// `--playbooks DIR` as given, which the commands a run prints carry again.
    public let directory: String?
    /// The topologies whose playbooks it reads: each playbook's names are checked against its topology's.
    public let topologies: TopologyCatalog

    /// - Parameter directory: `--playbooks DIR`, searched before `$DROVER_PLAYBOOKS`.
    public init(
        topologies: TopologyCatalog, directory: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.topologies = topologies
        self.directory = directory
        let fromEnvironment = (environment["DROVER_PLAYBOOKS"] ?? "").split(separator: ":").map(String.init)
        directories = ([directory].compactMap { $0 } + fromEnvironment).map(UserAccount.expandingTilde)
    }

    /// Finds a playbook by name, or reads the `.yml` file at a path.
    public func find(_ nameOrPath: String) throws -> Playbook {
        if nameOrPath.hasSuffix(".yml") || nameOrPath.contains("/") {
            return try Playbook.load(path: nameOrPath, topologies: topologies)
        }
        for directory in try readableDirectories() {
            let path = directory + "/" + nameOrPath + ".yml"
            if FileManager.default.fileExists(atPath: path) { return try load(path, named: nameOrPath) }
        }
        if let builtIn = try builtIn().first(where: { $0.name == nameOrPath }) { return builtIn }
        let available = (try? all().map(\.name)) ?? []
        throw InputError(
            file: nameOrPath, line: 0, key: nil,
            message: "no such playbook; available: \(available.joined(separator: ", "))")
    }

    /// Every playbook by name: the built-ins, with those of the directories added or overriding them.
    public func all() throws -> [Playbook] {
        var byName: [String: Playbook] = [:]
        for playbook in try builtIn() { byName[playbook.name] = playbook }
        for directory in try readableDirectories().reversed() {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for file in files.sorted() where file.hasSuffix(".yml") {
                let playbook = try load(directory + "/" + file, named: String(file.dropLast(4)))
                byName[playbook.name] = playbook
            }
        }
        return byName.values.sorted { $0.name < $1.name }
    }

    private func readableDirectories() throws -> [String] {
        for directory in directories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw InputError(
                    file: directory, line: 0, key: nil,
                    message: "no such directory of playbooks; check --playbooks and DROVER_PLAYBOOKS")
            }
        }
        return directories
    }

    /// A playbook of a directory: found by file name, so its `name` must be that name.
    private func load(_ path: String, named name: String) throws -> Playbook {
        let playbook = try Playbook.load(path: path, topologies: topologies)
        guard playbook.name == name else {
            throw InputError(
                file: path, line: 1, key: "name",
                message:
                    "'\(playbook.name)' differs from the file name; rename the file \(playbook.name).yml or set name: \(name)"
            )
        }
        return playbook
    }

    /// The playbooks compiled into the binary: those of every topology of the catalog.
    public func builtIn() throws -> [Playbook] {
        var playbooks: [Playbook] = []
        for topology in topologies.all {
            for file in topology.builtInPlaybooks {
                let playbook = try Playbook.parse(file.text, file: "built-in:" + file.name, topologies: topologies)
                guard playbook.topology == topology.kind else {
                    throw InputError(
                        file: playbook.file, line: 1, key: "topology",
                        message:
                            "a playbook of \(topology.kind.rawValue) names \(playbook.topology.rawValue); set topology: \(topology.kind.rawValue)"
                    )
                }
                playbooks.append(playbook)
            }
        }
        return playbooks
    }

    /// Checks `--set` values against the playbook's parameters and the inventory.
    public static func validate(
        _ values: [String: String], for playbook: Playbook, inventory: Inventory
    ) throws -> [String: String] {
        var result: [String: String] = [:]
        for key in values.keys where !playbook.parameters.contains(where: { $0.name == key }) {
            let known = playbook.parameters.map(\.name)
            throw InputError(
                file: playbook.file, line: 0, key: "--set \(key)",
                message:
                    "\(playbook.name) has no parameter \(key); \(known.isEmpty ? "it takes none" : "it takes: \(known.joined(separator: ", "))")"
            )
        }
        for parameter in playbook.parameters {
            guard let value = values[parameter.name] else {
                if parameter.required {
                    throw InputError(
                        file: playbook.file, line: 0, key: "--set \(parameter.name)",
                        message:
                            "required: \(parameter.description) (e.g. --set \(parameter.name)=\(parameter.kind == .node ? inventory.backends.first?.name ?? "be1" : parameter.kind == .state ? "on" : "true"))"
                    )
                }
                if parameter.kind == .flag { result["params.\(parameter.name)"] = "" }
                continue
            }
            switch parameter.kind {
            case .node:
                guard inventory.backend(named: value) != nil else {
                    throw InputError(
                        file: inventory.file, line: 0, key: "--set \(parameter.name)",
                        message:
                            "'\(value)' is not a backend of the inventory (\(inventory.backends.map(\.name).joined(separator: ", ")))"
                    )
                }
                result["params.\(parameter.name)"] = value
                result["params.\(parameter.name).host"] = inventory.backend(named: value)?.host
            case .state:
                guard value == "on" || value == "off" else {
                    throw InputError(
                        file: playbook.file, line: 0, key: "--set \(parameter.name)",
                        message: "'\(value)' must be on or off")
                }
                result["params.\(parameter.name)"] = value
            case .count:
                guard let number = Int(value), number >= 0 else {
                    throw InputError(
                        file: playbook.file, line: 0, key: "--set \(parameter.name)",
                        message: "'\(value)' must be a whole number, 0 or more")
                }
                result["params.\(parameter.name)"] = String(number)
            case .flag:
                guard value == "true" || value == "false" else {
                    throw InputError(
                        file: playbook.file, line: 0, key: "--set \(parameter.name)",
                        message: "'\(value)' must be true or false")
                }
                result["params.\(parameter.name)"] = value == "true" ? (parameter.flag ?? "") : ""
            }
        }
        return result
    }
}
