import DroverInventory
import DroverSSH
import Foundation

/// Reading a playbook file: its YAML, each step, target, guard and action checked where read.
extension Playbook {
    /// Loads and validates a playbook file.
    public static func load(path: String, topologies: TopologyCatalog) throws -> Playbook {
        let data = try InputError.read(path, what: "playbook file")
        var playbook = try parse(String(decoding: data, as: UTF8.self), file: path, topologies: topologies)
        playbook.source = .file(path)
        return playbook
    }

    /// Parses and validates a playbook's text against its topology's names; `file` is what errors name.
    public static func parse(_ text: String, file: String, topologies: TopologyCatalog) throws -> Playbook {
        let root = try StrictYAML.load(text, file: file)
        try root.rejectUnknownKeys(["name", "description", "topology", "preflight", "parameters", "steps"])
        let name = try root.requiredString("name")
        let description = try root.requiredString("description")
        var topology = topologies.defaultKind
        if let text = try root.string("topology") {
            guard let known = Inventory.Topology(rawValue: text), topologies.type(of: known) != nil else {
                throw root.error(
                    "topology",
                    "unknown topology '\(text)'; known: \(topologies.all.map { $0.kind.rawValue }.joined(separator: ", "))"
                )
            }
            topology = known
        }
        let implementation = topologies.implementation(of: topology)
        let vocabulary = implementation.vocabulary
        let preflight = try root.string("preflight")
        if let preflight, !implementation.preflightSets.keys.contains(preflight) {
            throw root.error(
                "preflight",
                "unknown pre-flight set '\(preflight)' for \(topology.rawValue); known: \(implementation.preflightSets.keys.sorted().joined(separator: ", "))"
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
            let skip = try entry.string("skip_if")
            if let skip, !vocabulary.guards.contains(skip) {
                throw entry.error(
                    "skip_if",
                    vocabulary.guards.isEmpty
                        ? "\(topology.rawValue) playbooks take no skip_if"
                        : "unknown guard '\(skip)'; known: \(vocabulary.guards.joined(separator: ", "))")
            }
            var requirements: [Condition] = []
            for text in try entry.stringList("require") ?? [] {
                let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
                // `require: ""` and `require: ":"` have no name at all.
                let spelled = parts.isEmpty ? text : parts.count == 2 ? parts[0] + ":" : parts[0]
                guard !parts.isEmpty, vocabulary.requirements.contains(spelled) else {
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
                    guard vocabulary.installs.contains(what) else {
                        throw item.error(
                            "install",
                            vocabulary.installs.isEmpty
                                ? "\(topology.rawValue) playbooks install nothing"
                                : "only \(vocabulary.installs.map { "'install: \($0)'" }.joined(separator: " and ")) are supported"
                        )
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
                    guard vocabulary.checks.contains(check) else {
                        throw item.error(
                            "check",
                            vocabulary.checks.isEmpty
                                ? "\(topology.rawValue) playbooks take no check"
                                : "unknown check '\(check)'; known: \(vocabulary.checks.joined(separator: ", ")) (\(topology.rawValue))"
                        )
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
