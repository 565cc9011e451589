import DroverInventory
import DroverSSH
import Foundation

/// A procedure as a declarative file (`Playbooks/NAME.yml`) that the engine executes.
///
/// ```yaml
/// name: upgrade
/// description: What it does, for `drover playbooks`.
/// topology: chef-backend        # or drbd-pair; default chef-backend. Decides the names below.
/// preflight: upgrade            # which pre-flight checks must pass before any change
/// steps:
///   - name: block-failover
///     description: What a person would do and why.
///     target: leader            # any | all | node:NAME | a role of the topology (leader, each-follower; primary, secondary)
///     skip_if: at-target-version
///     actions:
///       - run: chef-backend-ctl set-cluster-failover off   # values in {{...}} are shell-quoted
///       - install: package      # dpkg -i or yum install -y, by the package's format
///       - wait: rejoined        # a predicate the topology implements in Swift
///         timeout: rejoin       # an inventory timeout name, or a duration
///       - check: frontends
/// ```
/// A step may give `run:` directly instead of `actions:`.
public struct Playbook: Sendable {
    public enum Target: Sendable, Equatable {
        case any, all
        case node(String)
        /// A role of the topology's vocabulary: `leader`, `each-follower`; `primary`, `secondary`.
        case role(String)

        var label: String {
            switch self {
            case .any: return "any"
            case .all: return "all"
            case .node(let name): return "node:\(name)"
            case .role(let name): return name
            }
        }
    }

    public enum Action: Sendable, Equatable {
        case run(template: String)
        /// `install: package` (the backends') or `install: frontend-package` (chef-server-core on a frontend).
        case install(String)
        /// Polls until the topology's predicate holds for `stable_polls` readings.
        case wait(predicate: String, timeout: TimeoutSpec)
        case check(String)
        /// A destructive step's explanation; needs a typed `yes` on a terminal, or `--yes`.
        case confirm(String)
        /// Something the operator does outside Drover; waits for acknowledgement (`--assume-done` skips).
        case manual(String)
    }

    /// True when some step asks for confirmation.
    public var needsConfirmation: Bool {
        steps.contains { $0.actions.contains { if case .confirm = $0 { return true } else { return false } } }
    }

    /// True when some step asks the operator to act by hand.
    public var hasManualSteps: Bool {
        steps.contains { $0.actions.contains { if case .manual = $0 { return true } else { return false } } }
    }

    public enum TimeoutSpec: Sendable, Equatable {
        case named(String)
        case fixed(Duration)
    }

    /// A value the operator gives with `--set NAME=VALUE`.
    public struct Parameter: Sendable {
        public enum Kind: String, Sendable, CaseIterable {
            /// An inventory backend's name.
            case node
            /// `on` or `off`.
            case state
            /// `true` or `false`; renders as the parameter's `flag` text, or nothing.
            case flag
            /// A whole number, 0 or more (`chef_nodes`).
            case count
        }
        public var name: String
        public var description: String
        public var kind: Kind
        public var required: Bool
        public var flag: String?
    }

    /// A condition of the topology's vocabulary checked on the live state right before a step runs;
    /// `argument` is the template after `:` (`down:NODE`).
    public struct Condition: Sendable {
        public var requirement: String
        public var argument: String?
    }

    public struct Step: Sendable {
        public var name: String
        public var description: String
        public var target: Target
        public var skipIf: Guard?
        public var requirements: [Condition] = []
        public var actions: [Action]
        public var line: Int
        /// `repeatable: true`: safe to run again from its start after a run stopped in it, whatever its
        /// commands (emptying Elasticsearch's data that is being discarded anyway).
        public var repeatable = false
        /// The actions (numbered from 1) marked `again: true`: commands that write known content and run again
        /// each time a run (or a resumed one) runs their step, instead of re-attaching to their record on the
        /// node (what they wrote may be gone since).
        public var again: Set<Int> = []
    }

    public var name: String
    public var description: String
    /// The kind of backend it operates; its inventory must have the same topology.
    public var topology: Inventory.Topology = .chefBackend
    public var preflight: String?
    public var parameters: [Parameter] = []
    public var steps: [Step]
    /// The file it was read from, or `built-in:NAME.yml`; errors and journals name it.
    public var file: String
    /// Where it came from: compiled into drover, or a file that adds to or overrides the built-ins.
    public var source: Source = .builtIn
    /// SHA-256 of its text, so a saved plan can tell whether the playbook changed.
    public var digest: String = ""

    /// What joins the parts of a combined playbook's name and pre-flight set (`upgrade+upgrade-frontends`).
    public static let joiner = "+"

    /// The parts of a combined playbook's name or pre-flight set, first first; one part for any other.
    public static func parts(_ name: String) -> [String] {
        name.split(separator: Character(joiner)).map(String.init)
    }

    /// Playbooks of one topology run one after the other as one (`drover upgrade --all`): one run, one lock,
    /// one journal, one report. Its name and pre-flight set are the parts' joined by `+`, so a resumed run
    /// combines the same parts again.
    public static func combined(_ parts: [Playbook]) -> Playbook {
        precondition(!parts.isEmpty && Set(parts.map(\.topology)).count == 1)
        guard parts.count > 1 else { return parts[0] }
        var parameters: [Parameter] = []
        for parameter in parts.flatMap(\.parameters) where !parameters.contains(where: { $0.name == parameter.name }) {
            parameters.append(parameter)
        }
        var playbook = Playbook(
            name: parts.map(\.name).joined(separator: joiner),
            description: parts.map(\.description).joined(separator: " Then: "), topology: parts[0].topology,
            preflight: parts.map { $0.preflight ?? "basic" }.joined(separator: joiner), parameters: parameters,
            steps: parts.flatMap(\.steps), file: parts.map(\.file).joined(separator: joiner),
            digest: Digest.sha256Hex(Data(parts.map(\.digest).joined(separator: joiner).utf8)))
        playbook.source = parts.first { $0.source != .builtIn }?.source ?? .builtIn
        return playbook
    }

    /// Where a playbook came from.
    public enum Source: Sendable, Equatable {
        /// Compiled into the drover binary from the repository's `Playbooks/`.
        case builtIn
        /// A file from `--playbooks DIR`, `$DROVER_PLAYBOOKS`, or a path given on the command line.
        case file(String)

        /// `built-in` or the file's path, for `drover playbooks`.
        public var label: String {
            switch self {
            case .builtIn: return "built-in"
            case .file(let path): return path
            }
        }
    }

    /// Guards that skip a step already done.
    public enum Guard: String, Sendable, CaseIterable {
        case atTargetVersion = "at-target-version"
        /// Skips a node whose Elasticsearch finished its 3.x upgrade (chef-backend; see ``ChefBackendTopology``).
        case elasticsearchUpgraded = "elasticsearch-upgraded"
        /// Skips a node whose upgrade is not (or no longer) interrupted: it is back in the cluster (chef-backend).
        case upgradeNotInterrupted = "upgrade-not-interrupted"
        /// Skips a frontend already serving at the frontend package's version (chef-backend).
        case frontendAtTargetVersion = "frontend-at-target-version"
        /// Skips a step when two or more frontends have host: the others serve while one is upgraded.
        case severalFrontends = "several-frontends"
    }

    /// Loads and validates a playbook file.
    public static func load(path: String) throws -> Playbook {
        let data = try InputError.read(path, what: "playbook file")
        var playbook = try parse(String(decoding: data, as: UTF8.self), file: path)
        playbook.source = .file(path)
        return playbook
    }

    /// Parses and validates a playbook's text; `file` is what errors name.
    public static func parse(_ text: String, file: String) throws -> Playbook {
        let root = try StrictYAML.load(text, file: file)
        try root.rejectUnknownKeys(["name", "description", "topology", "preflight", "parameters", "steps"])
        let name = try root.requiredString("name")
        let description = try root.requiredString("description")
        var topology = Inventory.Topology.chefBackend
        if let text = try root.string("topology") {
            guard let known = Inventory.Topology(rawValue: text) else {
                throw root.error(
                    "topology",
                    "unknown topology '\(text)'; known: \(Inventory.Topology.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            topology = known
        }
        let vocabulary = topology.vocabulary
        let preflight = try root.string("preflight")
        if let preflight, !topology.preflightSets.keys.contains(preflight) {
            throw root.error(
                "preflight",
                "unknown pre-flight set '\(preflight)' for \(topology.rawValue); known: \(topology.preflightSets.keys.sorted().joined(separator: ", "))"
            )
        }
        var parameters: [Parameter] = []
        for entry in try root.mappingList("parameters") ?? [] {
            try entry.rejectUnknownKeys(["name", "description", "kind", "required", "flag"])
            let kindText = try entry.requiredString("kind")
            guard let kind = Parameter.Kind(rawValue: kindText) else {
                throw entry.error(
                    "kind",
                    "unknown kind '\(kindText)'; known: \(Parameter.Kind.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            parameters.append(
                Parameter(
                    name: try entry.requiredString("name"), description: try entry.string("description") ?? "",
                    kind: kind, required: try entry.bool("required") ?? false, flag: try entry.string("flag")))
        }
        guard let entries = try root.mappingList("steps"), !entries.isEmpty else {
            throw root.error(nil, "missing required key 'steps'")
        }
        var steps: [Step] = []
        for entry in entries {
            try entry.rejectUnknownKeys([
                "name", "description", "target", "skip_if", "require", "run", "actions", "repeatable",
            ])
            let stepName = try entry.requiredString("name")
            if steps.contains(where: { $0.name == stepName }) {
                throw entry.error("name", "duplicate step name '\(stepName)'")
            }
            let targetText = try entry.string("target") ?? "any"
            let target: Target
            switch targetText {
            case "any": target = .any
            case "all": target = .all
            case let value where value.hasPrefix("node:") && value.count > 5: target = .node(String(value.dropFirst(5)))
            case let value where vocabulary.targets.contains(value): target = .role(value)
            default:
                throw entry.error(
                    "target",
                    "'\(targetText)' is not a \(topology.rawValue) target; use any, all, node:NAME or \(vocabulary.targets.joined(separator: ", "))"
                )
            }
            var skip: Guard?
            if let text = try entry.string("skip_if") {
                guard let value = Guard(rawValue: text) else {
                    throw entry.error(
                        "skip_if",
                        "unknown guard '\(text)'; known: \(Guard.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                skip = value
            }
            var requirements: [Condition] = []
            for text in try entry.stringList("require") ?? [] {
                let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
                let spelled = parts.count == 2 ? parts[0] + ":" : parts[0]
                guard vocabulary.requirements.contains(spelled) else {
                    throw entry.error(
                        "require",
                        "unknown \(topology.rawValue) condition '\(text)'; known: \(vocabulary.requirements.map { $0.hasSuffix(":") ? $0 + "NODE" : $0 }.joined(separator: ", "))"
                    )
                }
                requirements.append(Condition(requirement: parts[0], argument: parts.count == 2 ? parts[1] : nil))
            }
            var actions: [Action] = []
            var again: Set<Int> = []
            if let command = try entry.string("run") { actions.append(.run(template: command)) }
            for item in try entry.mappingList("actions") ?? [] {
                try item.rejectUnknownKeys(["run", "install", "wait", "timeout", "check", "confirm", "manual", "again"])
                if item.has("again"), try item.string("run") == nil {
                    throw item.error("again", "again: true is for a run: action (a command that writes known content)")
                }
                if let command = try item.string("run") {
                    actions.append(.run(template: command))
                    if try item.bool("again") == true { again.insert(actions.count) }
                } else if let what = try item.string("install") {
                    guard ["package", "frontend-package"].contains(what), vocabulary.installs else {
                        throw item.error(
                            "install",
                            vocabulary.installs
                                ? "only 'install: package' (the backends') and 'install: frontend-package' are supported"
                                : "\(topology.rawValue) playbooks install nothing")
                    }
                    actions.append(.install(what))
                } else if let predicate = try item.string("wait") {
                    guard vocabulary.waits.contains(predicate) else {
                        throw item.error(
                            "wait",
                            "unknown \(topology.rawValue) predicate '\(predicate)'; known: \(vocabulary.waits.joined(separator: ", "))"
                        )
                    }
                    let timeoutNames = vocabulary.timeouts + ["command"]
                    let timeoutText = try item.string("timeout") ?? vocabulary.timeouts[0]
                    let timeout: TimeoutSpec
                    if timeoutNames.contains(timeoutText) {
                        timeout = .named(timeoutText)
                    } else if let fixed = DurationText.parse(timeoutText) {
                        timeout = .fixed(fixed)
                    } else {
                        throw item.error(
                            "timeout",
                            "'\(timeoutText)' is neither a duration nor one of \(timeoutNames.joined(separator: ", "))")
                    }
                    actions.append(.wait(predicate: predicate, timeout: timeout))
                } else if let message = try item.string("confirm") {
                    actions.append(.confirm(message))
                } else if let instruction = try item.string("manual") {
                    actions.append(.manual(instruction))
                } else if let check = try item.string("check") {
                    guard check == "frontends", vocabulary.installs else {
                        throw item.error("check", "unknown check '\(check)'; known: frontends (chef-backend)")
                    }
                    actions.append(.check(check))
                } else {
                    throw item.error(nil, "an action needs one of run, install, wait, check, confirm, manual")
                }
            }
            guard !actions.isEmpty else { throw entry.error(nil, "step '\(stepName)' has no run or actions") }
            try validateTemplates(actions, entry: entry, parameters: parameters, vocabulary: vocabulary)
            steps.append(
                Step(
                    name: stepName, description: try entry.string("description") ?? stepName, target: target,
                    skipIf: skip, requirements: requirements, actions: actions, line: entry.line,
                    repeatable: try entry.bool("repeatable") ?? false, again: again))
        }
        return Playbook(
            name: name, description: description, topology: topology, preflight: preflight, parameters: parameters,
            steps: steps, file: file,
            digest: Digest.sha256Hex(Data(text.utf8)))
    }

    static func validateTemplates(
        _ actions: [Action], entry: StrictYAML, parameters: [Parameter], vocabulary: PlaybookVocabulary
    ) throws {
        let known = Template.known.union(vocabulary.placeholders).union(
            parameters.flatMap { ["params.\($0.name)", "params.\($0.name).host"] })
        let texts = actions.compactMap { action -> String? in
            switch action {
            case .run(let text), .confirm(let text), .manual(let text): return text
            default: return nil
            }
        }
        for template in texts {
            for placeholder in Template.placeholders(in: template) where !known.contains(placeholder) {
                throw entry.error(
                    "run", "unknown placeholder {{\(placeholder)}}; known: \(known.sorted().joined(separator: ", "))")
            }
        }
    }
}

/// Command templates: `{{name}}` placeholders replaced by shell-quoted values.
public enum Template {
    static let known: Set<String> = ["node", "node.host"]

    static func placeholders(in template: String) -> [String] {
        var result: [String] = []
        var rest = Substring(template)
        while let open = rest.range(of: "{{"), let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex)
        {
            result.append(rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces))
            rest = rest[close.upperBound...]
        }
        return result
    }

    /// Fills `template`; every value is shell-quoted, except `raw` ones (flag texts the playbook itself
    /// defines, never operator input).
    ///
    /// One pass over the template: each `{{NAME}}` (spaces inside allowed) is replaced where it stands, and a
    /// value is never read again, so a `{{` inside a value stays text (it cannot reopen a placeholder inside an
    /// earlier quoted value).
    public static func render(
        _ template: String, values: [String: String], raw: [String: String] = [:], quote: (String) -> String
    ) -> String {
        var result = ""
        var rest = Substring(template)
        while let open = rest.range(of: "{{"), let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex)
        {
            result += rest[..<open.lowerBound]
            let placeholder = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            result += raw[placeholder] ?? quote(values[placeholder] ?? "")
            rest = rest[close.upperBound...]
        }
        return result + rest
    }
}

/// Where playbooks are found: the built-in ones (compiled into drover from `Playbooks/`), to which
/// `--playbooks DIR` and `$DROVER_PLAYBOOKS` (directories separated by `:`) add playbooks or override
/// them by name. The first directory given wins: `--playbooks`, then `$DROVER_PLAYBOOKS` in order.
public struct PlaybookLibrary: Sendable {
    /// Directories whose `NAME.yml` files add to or replace the built-ins, first one winning.
    public let directories: [String]
    /// `--playbooks DIR` as given, which the commands a run prints carry again.
    public let directory: String?

    /// - Parameter directory: `--playbooks DIR`, searched before `$DROVER_PLAYBOOKS`.
    public init(directory: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.directory = directory
        let fromEnvironment = (environment["DROVER_PLAYBOOKS"] ?? "").split(separator: ":").map(String.init)
        directories = ([directory].compactMap { $0 } + fromEnvironment).map(UserAccount.expandingTilde)
    }

    /// Finds a playbook by name, or reads the `.yml` file at a path.
    public func find(_ nameOrPath: String) throws -> Playbook {
        if nameOrPath.hasSuffix(".yml") || nameOrPath.contains("/") { return try Playbook.load(path: nameOrPath) }
        for directory in try readableDirectories() {
            let path = directory + "/" + nameOrPath + ".yml"
            if FileManager.default.fileExists(atPath: path) { return try Self.load(path, named: nameOrPath) }
        }
        if let builtIn = try Self.builtIn().first(where: { $0.name == nameOrPath }) { return builtIn }
        let available = (try? all().map(\.name)) ?? []
        throw InputError(
            file: nameOrPath, line: 0, key: nil,
            message: "no such playbook; available: \(available.joined(separator: ", "))")
    }

    /// Every playbook by name: the built-ins, with those of the directories added or overriding them.
    public func all() throws -> [Playbook] {
        var byName: [String: Playbook] = [:]
        for playbook in try Self.builtIn() { byName[playbook.name] = playbook }
        for directory in try readableDirectories().reversed() {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for file in files.sorted() where file.hasSuffix(".yml") {
                let playbook = try Self.load(directory + "/" + file, named: String(file.dropLast(4)))
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
    private static func load(_ path: String, named name: String) throws -> Playbook {
        let playbook = try Playbook.load(path: path)
        guard playbook.name == name else {
            throw InputError(
                file: path, line: 1, key: "name",
                message:
                    "'\(playbook.name)' differs from the file name; rename the file \(playbook.name).yml or set name: \(name)"
            )
        }
        return playbook
    }

    /// The playbooks compiled into the binary.
    public static func builtIn() throws -> [Playbook] {
        try BuiltInPlaybookFiles.files.map { try Playbook.parse($0.text, file: "built-in:" + $0.name) }
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

extension Playbook {
    /// The packages its `install:` actions install (`package`, `frontend-package`).
    public var installs: Set<String> {
        Set(
            steps.flatMap(\.actions).compactMap { action -> String? in
                if case .install(let what) = action { return what }
                return nil
            })
    }

    /// What a run of it upgrades to, in words: the backends' package version, the frontends'
    /// (`chef-server-core 15.9.38`), or both; the backends' for a playbook that installs nothing.
    public func targetVersion(_ inventory: Inventory) -> String? {
        let frontend =
            installs.contains("frontend-package")
            ? inventory.frontendPackage.map { "chef-server-core \($0.version)" } : nil
        guard installs.contains("package") || frontend == nil else { return frontend }
        let both = [inventory.package?.version, frontend].compactMap { $0 }
        return both.isEmpty ? nil : both.joined(separator: ", frontends ")
    }
}
