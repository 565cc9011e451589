import DroverInventory
import DroverSSH
import Foundation

/// A procedure as a declarative file (`Playbooks/TOPOLOGY/NAME.yml`) that the engine executes.
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
        /// `skip_if`: the name of a guard of the topology that skips the step where it is already done.
        public var skipIf: String?
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
    public var topology: Inventory.Topology
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
}
