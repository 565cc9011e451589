import DroverSSH
import Foundation
import Yams

/// An Ansible inventory (INI or YAML) read as a Drover inventory: the hosts of one group are the backends.
///
/// Per host: `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`; `ansible_become`
/// is `ssh.sudo`. Drover's own settings are `drover_*` variables of the group (or of its parents, or
/// `all`): `drover_cluster` (required), `drover_topology`, `drover_package_path`, `drover_package_version`,
/// `drover_package_sha256`, `drover_package_upload`, `drover_package_backup`, `drover_timeouts_*`,
/// `drover_ssh_*` (`known_hosts`, `host_key_checking`, `connect_timeout`, `command_timeout`) and
/// `drover_frontends` (a list of frontend entries, as in a Drover inventory). Variables are merged as
/// Ansible does: `all`, then each parent group, then the group, then the host's own. Errors name the
/// file, the line and the variable. See `Fixtures/Inventories/ansible-hosts.ini`.
public struct AnsibleInventory: Sendable {
    /// Key-value pairs of a YAML mapping node being built.
    typealias Pairs = [(Node, Node)]

    /// A variable's value and where it was set.
    public struct Variable: Sendable {
        public var value: Value
        public var line: Int
    }

    /// A variable's value: text, or a structure (a YAML inventory's list; an INI value written as JSON).
    public enum Value: Sendable, Equatable {
        case text(String)
        case structure(String)

        /// The value as a YAML node: a scalar holding the text as data, or the structure composed from its JSON
        /// (JSON is YAML); never text pasted into YAML.
        func node() throws -> Node {
            switch self {
            case .text(let text): return Node(text, .implicit, .doubleQuoted)
            case .structure(let json): return try Yams.compose(yaml: json) ?? Node("")
            }
        }

        var text: String {
            switch self {
            case .text(let text): return text
            case .structure(let json): return json
            }
        }

    }

    public struct Host: Sendable {
        public var name: String
        public var line: Int
        public var variables: [String: Variable]
    }

    public struct Group: Sendable {
        public var name: String
        public var hosts: [Host] = []
        public var variables: [String: Variable] = [:]
        public var children: [String] = []
        public var line: Int
    }

    public var file: String
    /// Groups by name, in the order first seen.
    public var groups: [String: Group]
    public var order: [String]
    /// How many more YAML nodes reading may visit: YAML aliases can make a small file a huge tree (an "alias
    /// bomb"), which is refused instead of read.
    private var budget = AnsibleInventory.nodeLimit

    /// The most YAML nodes (groups, hosts, variables and their values) an Ansible inventory may expand to.
    static let nodeLimit = 100_000

    // MARK: Reading

    /// Reads an INI or YAML Ansible inventory (YAML when it parses as a mapping of groups).
    public static func parse(_ text: String, file: String) throws -> AnsibleInventory {
        guard text.utf8.count <= StrictYAML.sizeLimit else {
            throw InputError(
                file: file, line: 0, key: nil,
                message: "larger than \(StrictYAML.sizeLimit / 1024) KiB; this is not an inventory Drover reads")
        }
        let trimmed = text.split(separator: "\n").first {
            !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#")
        }
        if file.hasSuffix(".yml") || file.hasSuffix(".yaml")
            || (trimmed.map { !$0.hasPrefix("[") && $0.contains(":") } ?? false)
        {
            return try parseYAML(text, file: file)
        }
        return try parseINI(text, file: file)
    }

    static func parseINI(_ text: String, file: String) throws -> AnsibleInventory {
        var inventory = AnsibleInventory(file: file, groups: [:], order: [])
        var section = (group: "ungrouped", kind: "hosts")
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else {
                    throw InputError(
                        file: file, line: number, key: nil, message: "a section header ends with ]: \(line)")
                }
                let name = line.dropFirst().dropLast()
                let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
                let kind = parts.count == 2 ? parts[1] : "hosts"
                guard ["hosts", "vars", "children"].contains(kind), let group = parts.first, !group.isEmpty else {
                    throw InputError(
                        file: file, line: number, key: nil,
                        message:
                            "[\(name)] is not a section Ansible knows; use [GROUP], [GROUP:vars] or [GROUP:children]")
                }
                section = (group, kind)
                inventory.touch(group, line: number)
                continue
            }
            inventory.touch(section.group, line: number)
            if section.kind == "vars" {
                // NAME=VALUE, the value being the rest of the line (quotes around all of it removed).
                guard let (key, rest) = assignment(line) else {
                    throw InputError(
                        file: file, line: number, key: nil,
                        message: "a [\(section.group):vars] line is NAME=VALUE: \(line)")
                }
                var value = rest.trimmingCharacters(in: .whitespaces)
                if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                    value = String(value.dropFirst().dropLast())
                }
                inventory.groups[section.group]!.variables[key.trimmingCharacters(in: .whitespaces)] = Variable(
                    value: iniValue(value), line: number)
                continue
            }
            let words = try shellWords(line, file: file, line: number)
            switch section.kind {
            case "children":
                inventory.groups[section.group]!.children.append(words[0])
                inventory.touch(words[0], line: number)
            default:
                let name = words[0]
                if name.contains("[") {
                    throw InputError(
                        file: file, line: number, key: nil,
                        message: "host ranges (\(name)) are not supported; list each host on a line of its own")
                }
                var variables: [String: Variable] = [:]
                for word in words.dropFirst() {
                    guard let (key, value) = assignment(word) else {
                        throw InputError(
                            file: file, line: number, key: nil,
                            message: "after the host name come NAME=VALUE pairs, not '\(word)'")
                    }
                    variables[key] = Variable(value: iniValue(value), line: number)
                }
                inventory.groups[section.group]!.hosts.append(Host(name: name, line: number, variables: variables))
            }
        }
        return inventory
    }

    static func parseYAML(_ text: String, file: String) throws -> AnsibleInventory {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw InputError(file: file, line: 0, key: nil, message: "not a YAML Ansible inventory: \(error)")
        }
        guard let mapping = root?.mapping else {
            throw InputError(
                file: file, line: 1, key: nil, message: "a YAML Ansible inventory is a mapping of groups (all:, ...)")
        }
        var inventory = AnsibleInventory(file: file, groups: [:], order: [])
        for (key, value) in mapping { try inventory.readYAMLGroup(key.string ?? "", value, line: key.mark?.line ?? 1) }
        return inventory
    }

    /// Counts `count` nodes against the budget; past it, the inventory is refused.
    private mutating func spend(_ count: Int, line: Int) throws {
        budget -= count
        guard budget >= 0 else {
            throw InputError(
                file: file, line: line, key: nil,
                message:
                    "expands to more than \(Self.nodeLimit) groups, hosts and values (YAML aliases repeated?); Drover refuses inventories that large"
            )
        }
    }

    private mutating func readYAMLGroup(_ name: String, _ node: Node, line: Int) throws {
        try spend(1, line: line)
        touch(name, line: line)
        guard let mapping = node.mapping else { return }
        for (key, value) in mapping {
            let keyLine = key.mark?.line ?? line
            switch key.string {
            case "hosts":
                for (host, variables) in value.mapping ?? [:] {
                    var read: [String: Variable] = [:]
                    for (variable, setting) in variables.mapping ?? [:] {
                        let at = variable.mark?.line ?? keyLine
                        read[variable.string ?? ""] = Variable(value: try yamlValue(setting, line: at), line: at)
                    }
                    try spend(1, line: keyLine)
                    groups[name]!.hosts.append(
                        Host(name: host.string ?? "", line: host.mark?.line ?? keyLine, variables: read))
                }
            case "vars":
                for (variable, setting) in value.mapping ?? [:] {
                    let at = variable.mark?.line ?? keyLine
                    groups[name]!.variables[variable.string ?? ""] = Variable(
                        value: try yamlValue(setting, line: at), line: at)
                }
            case "children":
                for (child, body) in value.mapping ?? [:] {
                    let childName = child.string ?? ""
                    groups[name]!.children.append(childName)
                    try readYAMLGroup(childName, body, line: child.mark?.line ?? keyLine)
                }
            default:
                throw InputError(
                    file: file, line: keyLine, key: key.string,
                    message: "a group has hosts:, vars: and children:, not \(key.string ?? "this")")
            }
        }
    }

    /// A variable's value: its text, or its structure as JSON (counted against the budget first, so that an
    /// alias-repeated value is refused before it is expanded).
    mutating func yamlValue(_ node: Node, line: Int) throws -> Value {
        if let scalar = node.scalar {
            try spend(1, line: line)
            return .text(scalar.string)
        }
        var stack = [node]
        while let next = stack.popLast() {
            try spend(1, line: line)
            if let mapping = next.mapping { stack += mapping.flatMap { [$0.key, $0.value] } }
            if let sequence = next.sequence { stack += sequence }
        }
        let object: Any? = node.any
        let data = object.flatMap {
            try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .withoutEscapingSlashes])
        }
        return .structure(data.map { String(decoding: $0, as: UTF8.self) } ?? "null")
    }

    private mutating func touch(_ group: String, line: Int) {
        if groups[group] == nil {
            groups[group] = Group(name: group, line: line)
            order.append(group)
        }
    }

    static func assignment(_ word: String) -> (String, String)? {
        guard let equals = word.firstIndex(of: "="), equals != word.startIndex else { return nil }
        return (String(word[..<equals]), String(word[word.index(after: equals)...]))
    }

    /// An INI value: JSON when it is a list or a mapping, otherwise text.
    static func iniValue(_ text: String) -> Value {
        if let first = text.first, first == "[" || first == "{",
            (try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil
        {
            return .structure(text)
        }
        return .text(text)
    }

    /// Words as the shell splits them (spaces; single and double quotes).
    static func shellWords(_ line: String, file: String, line number: Int) throws -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else if character == "#" && !inWord {
                break
            } else {
                current.append(character)
                inWord = true
            }
        }
        if quote != nil {
            throw InputError(file: file, line: number, key: nil, message: "a quote is not closed: \(line)")
        }
        if inWord { words.append(current) }
        return words
    }

    // MARK: As a Drover inventory

    /// The groups that have `name` among their children (directly or not).
    func ancestors(of name: String) -> [String] {
        var parents: [String: [String]] = [:]
        for parent in order {
            for child in Set(groups[parent]!.children) { parents[child, default: []].append(parent) }
        }
        var found: [String] = []
        var seen: Set<String> = []
        var frontier = [name]
        while let next = frontier.popLast() {
            for parent in parents[next] ?? [] where seen.insert(parent).inserted {
                found.append(parent)
                frontier.append(parent)
            }
        }
        return found
    }

    /// The hosts of `name` and its descendants, each once (where first listed), with the variables of the
    /// group it is listed in. Each group is visited once, so a diamond of groups costs its size, not its paths.
    func hosts(of name: String) -> [(host: Host, group: String)] {
        var visited: Set<String> = []
        var listed: Set<String> = []
        var result: [(host: Host, group: String)] = []
        func visit(_ name: String) {
            guard let group = groups[name], visited.insert(name).inserted else { return }
            for host in group.hosts where listed.insert(host.name).inserted { result.append((host, name)) }
            for child in group.children { visit(child) }
        }
        visit(name)
        return result
    }

    /// The Drover inventory this group describes: the YAML it amounts to, parsed by ``Inventory/parse(_:file:)``,
    /// with any error traced back to the Ansible variable, file and line.
    public func inventory(group name: String) throws -> Inventory {
        guard groups[name] != nil else {
            let known = order.filter { $0 != "ungrouped" || !(groups[$0]?.hosts.isEmpty ?? true) }
            throw InputError(
                file: file, line: 0, key: nil,
                message: "no group \(name); the groups are \(known.joined(separator: ", "))")
        }
        // Ansible's precedence: all, then the parents (farthest first), then the group.
        let chain = (["all"] + ancestors(of: name).reversed().filter { $0 != "all" } + [name]).filter {
            groups[$0] != nil
        }
        var common: [String: Variable] = [:]
        for group in chain { common.merge(groups[group]!.variables) { $1 } }

        var root = Pairs()
        var origins: [String: (variable: String, line: Int)] = [:]
        /// The group variable `variable`, when set, as `key` (`section.key`) of `section`.
        func set(_ key: String, _ variable: String, in section: inout Pairs) throws {
            guard let setting = common[variable] else { return }
            section.append((Node(String(key.split(separator: ".").last!)), try setting.value.node()))
            origins[key] = (variable, setting.line)
        }
        let known = Set(
            ["drover_cluster", "drover_topology", "drover_frontends", "drover_frontend_group"]
                + ["path", "version", "sha256", "upload", "backup"].map { "drover_package_" + $0 }
                + ["path", "version", "sha256", "accept_license"].map { "drover_frontend_package_" + $0 }
                + ["rejoin", "failover", "transition", "sync", "poll_interval", "stable_polls"].map {
                    "drover_timeouts_" + $0
                }
                + ["known_hosts", "host_key_checking", "connect_timeout", "command_timeout"].map { "drover_ssh_" + $0 })
        for (variable, setting) in common where variable.hasPrefix("drover_") && !known.contains(variable) {
            throw InputError(
                file: file, line: setting.line, key: variable,
                message: "not a Drover variable; they are \(known.sorted().joined(separator: ", "))")
        }
        guard let cluster = common["drover_cluster"] else {
            throw InputError(
                file: file, line: groups[name]!.line, key: "drover_cluster",
                message:
                    "group \(name) needs drover_cluster (the cluster's name for locks, journals and reports) in [\(name):vars]"
            )
        }
        root.append((Node("cluster"), try cluster.value.node()))
        origins["cluster"] = ("drover_cluster", cluster.line)
        if common["drover_topology"] != nil {
            root.append((Node("topology"), try common["drover_topology"]!.value.node()))
            origins["topology"] = ("drover_topology", common["drover_topology"]!.line)
        }
        var ssh = Pairs()
        for key in ["known_hosts", "host_key_checking", "connect_timeout", "command_timeout"] {
            try set("ssh.\(key)", "drover_ssh_\(key)", in: &ssh)
        }
        let members = hosts(of: name)
        guard !members.isEmpty else {
            throw InputError(file: file, line: groups[name]!.line, key: nil, message: "group \(name) has no hosts")
        }
        // Per host: the group's variables, then those of the group it is listed in, then its own.
        func variables(_ member: (host: Host, group: String)) -> [String: Variable] {
            var merged = common
            if member.group != name { merged.merge(groups[member.group]!.variables) { $1 } }
            merged.merge(member.host.variables) { $1 }
            return merged
        }
        let become = Set(
            members.map {
                variables($0)["ansible_become"].map { ["true", "yes", "1"].contains($0.value.text.lowercased()) }
                    ?? false
            })
        if become.count > 1, let member = members.first(where: { variables($0)["ansible_become"] != nil }) {
            throw InputError(
                file: file, line: variables(member)["ansible_become"]!.line, key: "ansible_become",
                message: "Drover runs every backend of a cluster the same way; set ansible_become for the whole group")
        }
        if become.first == true {
            ssh.append((Node("sudo"), Node("true")))
            if let member = members.first(where: { variables($0)["ansible_become"] != nil }) {
                origins["ssh.sudo"] = ("ansible_become", variables(member)["ansible_become"]!.line)
            }
        }
        if !ssh.isEmpty { root.append((Node("ssh"), Node(ssh))) }
        if common["drover_package_path"] != nil {
            var package = Pairs()
            for key in ["path", "version", "sha256", "upload", "backup"] {
                try set("package.\(key)", "drover_package_\(key)", in: &package)
            }
            root.append((Node("package"), Node(package)))
        }
        var backends: [Node] = []
        for (index, member) in members.enumerated() {
            let merged = variables(member)
            var jump: String?
            if let arguments = merged["ansible_ssh_common_args"] {
                // Only a jump host: `-o ProxyJump=SPEC`, `-oProxyJump=SPEC` or `-J SPEC`.
                let words = try Self.shellWords(arguments.value.text, file: file, line: arguments.line)
                if words.count == 2, words[0] == "-o" || words[0] == "-J",
                    words[0] == "-J" || words[1].hasPrefix("ProxyJump=")
                {
                    jump = words[0] == "-J" ? words[1] : String(words[1].dropFirst("ProxyJump=".count))
                } else if words.count == 1, words[0].hasPrefix("-oProxyJump=") {
                    jump = String(words[0].dropFirst("-oProxyJump=".count))
                } else {
                    throw InputError(
                        file: file, line: arguments.line, key: "ansible_ssh_common_args",
                        message:
                            "Drover does not pass OpenSSH options; only -o ProxyJump=[user@]host[:port] is understood here (set the rest with ansible_host, ansible_port, ansible_user, or in ~/.ssh/config)"
                    )
                }
            }
            var backend: Pairs = [(Node("name"), try Value.text(member.host.name).node())]
            if let jump, let arguments = merged["ansible_ssh_common_args"] {
                backend.append((Node("proxy_jump"), try Value.text(jump).node()))
                origins["backends[\(index)].proxy_jump"] = ("ansible_ssh_common_args", arguments.line)
            }
            origins["backends[\(index)].name"] = ("inventory hostname", member.host.line)
            let fields = [
                ("host", "ansible_host"), ("port", "ansible_port"), ("user", "ansible_user"),
                ("identity_files", "ansible_ssh_private_key_file"),
            ]
            backend.append((Node("host"), try (merged["ansible_host"]?.value ?? .text(member.host.name)).node()))
            origins["backends[\(index)].host"] =
                merged["ansible_host"].map { ("ansible_host", $0.line) } ?? ("inventory hostname", member.host.line)
            for (key, variable) in fields.dropFirst() {
                guard let setting = merged[variable] else { continue }
                let value = try setting.value.node()
                backend.append((Node(key), key == "identity_files" && value.scalar != nil ? Node([value]) : value))
                origins["backends[\(index)].\(key)"] = (variable, setting.line)
            }
            backends.append(Node(backend))
        }
        root.append((Node("backends"), Node(backends)))
        if let frontends = common["drover_frontends"] {
            if let group = common["drover_frontend_group"] {
                throw InputError(
                    file: file, line: group.line, key: "drover_frontend_group",
                    message:
                        "set the frontends once: drover_frontend_group (an Ansible group of them) or drover_frontends (a list), not both"
                )
            }
            root.append((Node("frontends"), try frontends.value.node()))
            origins["frontends"] = ("drover_frontends", frontends.line)
        }
        if let group = common["drover_frontend_group"] {
            root.append((Node("frontends"), try frontendEntries(group: group, origins: &origins)))
        }
        if common["drover_frontend_package_path"] != nil {
            var package = Pairs()
            for key in ["path", "version", "sha256", "accept_license"] {
                try set("frontend_package.\(key)", "drover_frontend_package_\(key)", in: &package)
            }
            root.append((Node("frontend_package"), Node(package)))
        }
        let timeoutKeys = ["rejoin", "failover", "transition", "sync", "poll_interval", "stable_polls"]
        if timeoutKeys.contains(where: { common["drover_timeouts_\($0)"] != nil }) {
            var timeouts = Pairs()
            for key in timeoutKeys { try set("timeouts.\(key)", "drover_timeouts_\(key)", in: &timeouts) }
            root.append((Node("timeouts"), Node(timeouts)))
        }
        do {
            // The nodes are read as a Drover inventory is; nothing here was ever YAML text.
            var inventory = try Inventory.parse(
                StrictYAML.built(Node(root), file: file),
                digest: Digest.sha256Hex(
                    Data(((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").utf8) + Data(name.utf8)))
            inventory.sources = origins.mapValues { "\(file):\($0.line) (\($0.variable))" }
            return inventory
        } catch let error as InputError {
            // Trace the key back to the variable that set it.
            let key = error.key ?? ""
            let origin = origins[key] ?? origins.first { key.hasPrefix($0.key) }?.value
            throw InputError(
                file: file, line: origin?.line ?? groups[name]!.line, key: origin?.variable ?? error.key,
                message: error.message)
        }
    }

    /// The frontends as the hosts of an Ansible group (`drover_frontend_group`), as backends are read: name,
    /// `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`, and `drover_status_url`.
    private func frontendEntries(
        group variable: Variable, origins: inout [String: (variable: String, line: Int)]
    ) throws -> Node {
        let name = variable.value.text
        guard groups[name] != nil else {
            let known = order.filter { !(groups[$0]?.hosts.isEmpty ?? true) || !(groups[$0]?.children.isEmpty ?? true) }
            throw InputError(
                file: file, line: variable.line, key: "drover_frontend_group",
                message: "no group \(name); the groups are \(known.joined(separator: ", "))")
        }
        let chain = (["all"] + ancestors(of: name).reversed().filter { $0 != "all" } + [name]).filter {
            groups[$0] != nil
        }
        var common: [String: Variable] = [:]
        for group in chain { common.merge(groups[group]!.variables) { $1 } }
        let members = hosts(of: name)
        guard !members.isEmpty else {
            throw InputError(
                file: file, line: variable.line, key: "drover_frontend_group",
                message: "group \(name) (the frontends) has no hosts")
        }
        var entries: [Node] = []
        for (index, member) in members.enumerated() {
            var merged = common
            if member.group != name { merged.merge(groups[member.group]!.variables) { $1 } }
            merged.merge(member.host.variables) { $1 }
            var entry: Pairs = [(Node("name"), try Value.text(member.host.name).node())]
            origins["frontends[\(index)].name"] = ("inventory hostname", member.host.line)
            entry.append((Node("host"), try (merged["ansible_host"]?.value ?? .text(member.host.name)).node()))
            origins["frontends[\(index)].host"] =
                merged["ansible_host"].map { ("ansible_host", $0.line) } ?? ("inventory hostname", member.host.line)
            let fields = [
                ("port", "ansible_port"), ("user", "ansible_user"), ("identity_files", "ansible_ssh_private_key_file"),
                ("status_url", "drover_status_url"),
            ]
            for (key, variable) in fields {
                guard let setting = merged[variable] else { continue }
                let value = try setting.value.node()
                entry.append((Node(key), key == "identity_files" && value.scalar != nil ? Node([value]) : value))
                origins["frontends[\(index)].\(key)"] = (variable, setting.line)
            }
            entries.append(Node(entry))
        }
        return Node(entries)
    }
}
