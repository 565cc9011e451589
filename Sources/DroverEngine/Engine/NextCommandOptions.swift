import DroverSSH
import Foundation

/// The options of the command that started a run which the commands it prints must carry again, so that each
/// pastes as printed: where runs are recorded, where playbooks are found, the playbook's `--set` values.
public struct NextCommandOptions: Sendable, Equatable {
    /// `--state-dir DIR`, when the run was given one.
    public var stateDirectory: String?
    /// `--playbooks DIR`, when the run was given one.
    public var playbooks: String?
    /// The run's `--set NAME=VALUE` values.
    public var parameters: [String: String]

    public init(stateDirectory: String? = nil, playbooks: String? = nil, parameters: [String: String] = [:]) {
        self.stateDirectory = stateDirectory
        self.playbooks = playbooks
        self.parameters = parameters
    }

    /// ` --state-dir DIR`, or nothing: for the commands that read recorded runs (`resume`, `show`, `runs`,
    /// `diagnose`).
    public var state: String { stateDirectory.map { " --state-dir \(ShellQuote.quote($0))" } ?? "" }

    /// ` --playbooks DIR`, or nothing: for the commands that load playbooks (`run`, `upgrade`, `resume`, `plan`).
    public var library: String { playbooks.map { " --playbooks \(ShellQuote.quote($0))" } ?? "" }

    /// ` --set NAME=VALUE` for each of the run's values, by name, or nothing: for starting the run again.
    public var settings: String {
        parameters.keys.sorted().map { " --set \(ShellQuote.quote("\($0)=\(parameters[$0]!)"))" }.joined()
    }

    /// What `resume` needs besides the inventory.
    public var resume: String { state + library }

    /// A printed `drover SUBCOMMAND ...` with the options that subcommand takes appended (none for `status`,
    /// `exec`, `unlock`, which read no runs and load no playbook); any other text as it is.
    public func carried(_ command: String) -> String {
        guard command.hasPrefix("drover ") else { return command }
        let subcommand = command.dropFirst("drover ".count).prefix { $0 != " " }
        switch subcommand {
        case "resume", "run", "upgrade", "plan": return command + state + library
        case "show", "runs", "diagnose": return command + state
        default: return command
        }
    }
}
