import ArgumentParser
import DroverCommands
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation
import Logging

/// `--inventory FILE`, shared by every command that talks to a cluster.
struct InventoryOptions: ParsableArguments {
    @Option(
        name: [.short, .long],
        help: ArgumentHelp("The cluster's inventory (YAML), or an Ansible inventory with --group.", valueName: "file"))
    var inventory: String

    @Option(
        help: ArgumentHelp(
            "With an Ansible inventory (INI or YAML): the group whose hosts are the backends.", valueName: "name"))
    var group: String?

    /// The inventory as drover's operations take it (`FILE#GROUP` for an Ansible inventory's group).
    var reference: String { Inventory.reference(file: inventory, group: group) }

    @Flag(name: .long, help: "Log SSH details to stderr.")
    var verbose = false

    /// A logger writing warnings (or, with --verbose, debug messages) to stderr.
    var logger: Logger { Self.makeLogger(verbose: verbose) }

    static func makeLogger(verbose: Bool) -> Logger {
        var logger = Logger(label: "drover") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = verbose ? .debug : .warning
        return logger
    }
}

/// `--yes`, `--assume-done`, `--json`, `--state-dir`, `--junit` and `--playbooks`, shared by the commands
/// that run playbooks (run, upgrade, resume, apply).
struct RunOptions: ParsableArguments {
    @Flag(help: "Start without asking, and approve destructive steps (required when standard input is not a terminal).")
    var yes = false

    @Flag(help: "Treat manual steps as done without asking (--yes alone does not skip them).")
    var assumeDone = false

    @Flag(help: "Print only JSON Lines events on stdout (schema in the README).")
    var json = false

    @OptionGroup var state: StateOptions

    @Option(
        help: ArgumentHelp(
            "Also write a JUnit XML report (one test case per step and node; several clusters: a directory, one CLUSTER.xml each).",
            valueName: "file"))
    var junit: String?

    @Option(
        help: ArgumentHelp(
            "Also write the run's report for people: one self-contained HTML file (several clusters: a directory, one CLUSTER.html each).",
            valueName: "file"))
    var html: String?

    @OptionGroup var playbooks: PlaybookOptions

    @OptionGroup var backup: BackupOptions

    func request(playbook: String, inventory: String, parameters: [String: String] = [:]) -> Operations.RunRequest {
        var request = Operations.RunRequest(
            playbook: playbook, inventoryPath: inventory, yes: yes, json: json,
            stateDirectory: state.stateDir, junit: junit, assumeDone: assumeDone,
            parameters: parameters)
        request.playbooks = playbooks.library
        request.backup = backup.backup
        request.html = html
        return request
    }
}

extension RunOptions {
    /// Runs `operation` (a run or a resume) for every cluster of `options`, each with its own request.
    func forEachCluster(
        _ options: FleetOptions, command: String, playbook: String, parameters: [String: String] = [:],
        _ operation: @escaping @Sendable (Operations.RunRequest, Logger) async -> ExitStatus
    ) async throws -> ExitStatus {
        let request = self.request(playbook: playbook, inventory: "", parameters: parameters)
        let fleet = try {
            var fleet = try options.request(json: json, mode: .live, command: command, yes: yes)
            fleet.nextOptions = request.nextOptions
            return fleet
        }()
        let logger = options.logger
        return await Operations.fleet(fleet) { path, cluster in
            await operation(request.forCluster(path, cluster, of: fleet), logger)
        }
    }
}

/// `--backup` / `--no-backup` (upgrade, run, plan).
struct BackupOptions: ParsableArguments {
    @Flag(
        inversion: .prefixedNo,
        help:
            "Take `chef-backend-ctl backup` on a follower before the first change (default: package.backup in the inventory; on for the downtime paths)."
    )
    var backup: Bool?
}

/// `--set KEY=VALUE`: a playbook's parameters (run, plan).
struct ParameterOptions: ParsableArguments {
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("A playbook parameter, e.g. --set node=be2 (repeatable).", valueName: "key=value"))
    var settings: [String] = []

    /// `--set` values as a dictionary.
    var parameters: [String: String] { ParameterSettings.parse(settings) }

    func validate() throws { try ParameterSettings.check(settings) }
}

/// `--playbooks DIR`: playbooks that add to or override the built-in ones by name.
struct PlaybookOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A directory of NAME.yml playbooks that add to or override the built-in ones (searched before $DROVER_PLAYBOOKS).",
            valueName: "dir"))
    var playbooks: String?

    var library: PlaybookLibrary { PlaybookLibrary(topologies: .drover, directory: playbooks) }
}

/// `--state-dir`: where journals and transcripts live.
struct StateOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Where runs are recorded (default: $XDG_STATE_HOME/drover, else $HOME/.local/state/drover).",
            valueName: "dir"))
    var stateDir: String?
}

extension ExitStatus {
    /// Ends the command with this status.
    var exitCode: ExitCode { ExitCode(rawValue) }
}

/// `--set KEY=VALUE` arguments.
enum ParameterSettings {
    static func check(_ settings: [String]) throws {
        for setting in settings where !setting.contains("=") || setting.hasPrefix("=") {
            throw ValidationError("--set takes KEY=VALUE, e.g. --set node=be2; got '\(setting)'")
        }
    }

    static func parse(_ settings: [String]) -> [String: String] {
        Dictionary(
            settings.compactMap { setting in
                setting.firstIndex(of: "=").map {
                    (String(setting[..<$0]), String(setting[setting.index(after: $0)...]))
                }
            }
        ) { $1 }
    }
}

/// The clusters a command works on: `--inventory FILE` (one or more times) or `--inventories DIR`, with
/// `--parallel` and `--fail-fast` (plan, upgrade, run, status, diagnose, resume).
struct FleetOptions: ParsableArguments {
    @Option(
        name: [.short, .long],
        help: ArgumentHelp(
            "A cluster's inventory (YAML); give it several times for several clusters.", valueName: "file"))
    var inventory: [String] = []

    @Option(help: ArgumentHelp("Every *.yml inventory in this directory, one cluster each.", valueName: "dir"))
    var inventories: String?

    @Option(
        help: ArgumentHelp(
            "With Ansible inventories (INI or YAML): the group whose hosts are the backends.", valueName: "name"))
    var group: String?

    @Option(
        parsing: .unconditional,
        help: "At most this many clusters at once; inside a cluster everything stays one node at a time.")
    var parallel = 5

    @Flag(help: "After a cluster fails, start no other and stop the running ones after their step in flight.")
    var failFast = false

    @Flag(name: .long, help: "Log SSH details to stderr.")
    var verbose = false

    var logger: Logger { InventoryOptions.makeLogger(verbose: verbose) }

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1, not \(parallel)") }
    }

    /// The fleet: the inventories given with --inventory, then those of --inventories. Several clusters that
    /// run playbooks (`yes` not nil) need --yes: their prompts would come all at once. Bad input is said on
    /// stderr and throws exit 64.
    func request(
        json: Bool, mode: FleetConsole.Mode, command: String, yes: Bool? = nil
    ) throws -> Operations.FleetRequest {
        // Here, not in validate(): the parser says a misspelt option (--inventroy: did you mean --inventory?)
        // only once validation passed.
        guard !inventory.isEmpty || inventories != nil else {
            Output.diagnostic(
                "give --inventory FILE (one or more times) or --inventories DIR (see drover \(command) --help)")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        do {
            let listed = try inventories.map { try Operations.inventories(in: $0, ansible: group != nil) } ?? []
            let paths = (inventory + listed).map { Inventory.reference(file: $0, group: group) }
            if paths.count > 1, yes == false {
                Output.diagnostic(
                    "\(paths.count) clusters run only with --yes (their questions would come all at once); review them first: drover plan \(inventories.map { "--inventories \(ShellQuote.quote($0))" } ?? paths.map { "--inventory \(ShellQuote.quote($0))" }.joined(separator: " "))"
                )
                throw ExitCode(ExitStatus.usage.rawValue)
            }
            return Operations.FleetRequest(
                inventoryPaths: paths, parallel: parallel, failFast: failFast, json: json, mode: mode,
                command: command, isFleet: paths.count > 1 || inventories != nil)
        } catch let error as InputError {
            Output.diagnostic("\(error.localizedDescription)")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
    }
}
