import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

extension Operations {
    /// How several clusters are run by one command.
    public struct FleetRequest: Sendable {
        /// The inventories, in the order given (`--inventory` several times, or `--inventories DIR`).
        public var inventoryPaths: [String]
        /// At most this many clusters at once.
        public var parallel: Int
        /// After a cluster fails, start no other and stop the running ones after their step in flight.
        public var failFast: Bool
        public var json: Bool
        /// `live` for runs, `buffered` for plan, status and diagnose.
        public var mode: FleetConsole.Mode
        /// The command, for the next steps printed at the end (`upgrade`, `run NAME`).
        public var command: String
        /// A fleet's file options (`--out`, `--junit`) name directories: several inventories, or `--inventories`
        /// (even when its directory holds one).
        public var isFleet: Bool
        /// The run's own options that the commands printed at the end carry again (`--state-dir`, `--playbooks`,
        /// and for starting again, `--set`).
        public var nextOptions = NextCommandOptions()

        public init(
            inventoryPaths: [String], parallel: Int, failFast: Bool, json: Bool, mode: FleetConsole.Mode,
            command: String,
            isFleet: Bool? = nil
        ) {
            self.isFleet = isFleet ?? (inventoryPaths.count > 1)
            self.inventoryPaths = inventoryPaths
            self.parallel = parallel
            self.failFast = failFast
            self.json = json
            self.mode = mode
            self.command = command
        }
    }

    /// The inventories of `--inventories DIR`: every `*.yml` file there (with `ansible`, also `*.yaml` and
    /// `*.ini`), sorted by name.
    public static func inventories(in directory: String, ansible: Bool = false) throws -> [String] {
        let expanded = UserAccount.expandingTilde(directory)
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: expanded)
        } catch {
            throw InputError(
                file: directory, line: 0, key: nil, message: "cannot read the directory: \(error.localizedDescription)")
        }
        let suffixes = ansible ? [".yml", ".yaml", ".ini"] : [".yml"]
        let inventories = files.filter { file in suffixes.contains { file.hasSuffix($0) } }.sorted().map {
            (expanded as NSString).appendingPathComponent($0)
        }
        guard !inventories.isEmpty else {
            throw InputError(
                file: directory, line: 0, key: nil,
                message: "no inventory (*.yml) in the directory; give --inventories a directory of inventories")
        }
        return inventories
    }

    /// Runs `body` for each inventory, at most `parallel` at once; one inventory runs exactly as before.
    ///
    /// Every inventory is read first: one that is invalid, or two clusters of the same name, refuse the whole
    /// fleet with exit 64 before anything is contacted. Each cluster keeps its own lock, journal, transcript
    /// and JUnit file; its output goes through the fleet's console. The exit code is the most severe of the
    /// clusters' (130 > 1 > 64 > 3 > 2 > 0); a cluster stopped by `--fail-fast` counts as failed.
    public static func fleet(
        _ request: FleetRequest,
        _ body: @escaping @Sendable (_ inventoryPath: String, _ cluster: String) async -> ExitStatus
    ) async -> ExitStatus {
        if request.inventoryPaths.count == 1 {
            let path = request.inventoryPaths[0]
            // An invalid inventory is said once, here; its warnings come when the command reads it.
            guard let inventory = loadInventory(path, warnings: false) else { return .usage }
            return await body(path, inventory.cluster)
        }
        guard let clusters = clusters(of: request) else { return .usage }
        let terminal = isatty(1) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let console = FleetConsole(clusters: clusters, mode: request.mode, json: request.json, terminal: terminal)
        let control = FleetControl()
        let interrupts = InterruptMonitor()
        if request.mode == .live {
            interrupts.start(onFirst: { control.stop(.interrupt) }, onAbort: { control.abort() })
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                console.tick()
            }
        }
        let parallel = max(1, request.parallel)
        var stoppedByFailFast: Set<Int> = []
        await withTaskGroup(of: (Int, ExitStatus).self) { group in
            var next = 0
            func start(_ index: Int, in group: inout TaskGroup<(Int, ExitStatus)>) {
                console.started(index)
                let (name, path) = clusters[index]
                group.addTask {
                    let status = await Output.$sink.withValue(console.sink(index)) {
                        await FleetControl.$current.withValue(control) { await body(path, name) }
                    }
                    return (index, status)
                }
            }
            while next < clusters.count && next < parallel {
                start(next, in: &group)
                next += 1
            }
            for await (index, status) in group {
                let failFastStop = status == .interrupted && control.stopReason == .failFast
                if failFastStop { stoppedByFailFast.insert(index) }
                console.finished(index, exit: status, outcome: failFastStop ? "stopped by --fail-fast" : nil)
                if request.failFast && status != .success && !failFastStop { control.stop(.failFast) }
                if next < clusters.count && !control.stopRequested {
                    start(next, in: &group)
                    next += 1
                }
            }
        }
        ticker.cancel()
        interrupts.stop()
        let states = console.clusters
        if request.mode == .live { finish(request, states: states, console: console, control: control) }
        let severity: [ExitStatus] = [.interrupted, .failedAfterChanges, .usage, .locked, .refused, .success]
        let exits = states.enumerated().map { index, state in
            stoppedByFailFast.contains(index) ? ExitStatus.failedAfterChanges : (state.exit ?? .success)
        }
        return severity.first { exits.contains($0) } ?? .success
    }

    /// Each inventory's cluster name, every inventory read first; nil (said on stderr) when one is invalid or
    /// two name the same cluster.
    static func clusters(of request: FleetRequest) -> [(name: String, inventory: String)]? {
        var clusters: [(name: String, inventory: String)] = []
        for path in request.inventoryPaths {
            guard let inventory = loadInventory(path, warnings: false) else { return nil }
            if let other = clusters.first(where: { $0.name == inventory.cluster }) {
                Output.diagnostic(
                    "\(path): cluster \(inventory.cluster) is also the cluster of \(other.inventory); each cluster has one lock and one journal, so give each inventory its own cluster name."
                )
                return nil
            }
            clusters.append((inventory.cluster, path))
        }
        return clusters
    }

    /// The end of a fleet's runs: a summary table (or a `fleet_finished` event) and the next commands.
    private static func finish(
        _ request: FleetRequest, states: [FleetConsole.ClusterState], console: FleetConsole, control: FleetControl
    ) {
        if request.json {
            let clusters = states.map { state in
                RunEvent.FleetClusterOutcome(
                    cluster: state.name, inventory: state.inventory, outcome: state.outcome,
                    exitCode: state.exit.map { Int($0.rawValue) }, runID: state.runID)
            }
            Output.standardStream(
                Event(.fleetFinished(clusters: clusters)).jsonLine + "\n", standardError: false)
            return
        }
        var text = "\n" + console.summaryTable()
        if console.isLiveTable {
            // The live table showed no details: say what went wrong where.
            for state in states where state.exit != nil && state.exit != .success {
                let detail = (state.summary ?? state.messages).trimmingCharacters(in: .whitespacesAndNewlines)
                if !detail.isEmpty { text += "\n== \(state.name) ==\n\(detail)\n" }
            }
        }
        let resumable = states.filter { $0.exit == .interrupted || $0.exit == .failedAfterChanges }
        let notStarted = states.filter { $0.exit == nil }
        if !resumable.isEmpty || !notStarted.isEmpty {
            var steps: [NextStep] = []
            if !resumable.isEmpty {
                steps.append(
                    NextStep(
                        "Continue the clusters that stopped:",
                        commands: [
                            request.nextOptions.carried(
                                "drover resume "
                                    + resumable.map { "--inventory \(ShellQuote.quote($0.inventory))" }.joined(
                                        separator: " "))
                                + " --yes"
                        ]))
            }
            if !notStarted.isEmpty {
                steps.append(
                    NextStep(
                        "Start the clusters that did not start:",
                        commands: [
                            request.nextOptions.carried(
                                "drover \(request.command) "
                                    + notStarted.map { "--inventory \(ShellQuote.quote($0.inventory))" }.joined(
                                        separator: " "))
                                + (request.command.hasPrefix("run ") ? request.nextOptions.settings : "") + " --yes"
                        ]))
            }
            text += "\nNext:\n" + NextStep.lines(steps).joined(separator: "\n") + "\n"
        }
        Output.standardStream(text, standardError: false)
    }
}

extension Operations {
    /// In a fleet, a file option (`--junit`, `--out`) names a directory, created if need be, and each cluster
    /// writes `DIR/CLUSTER.EXTENSION` there; with one `--inventory`, the file itself.
    public static func perClusterFile(
        _ path: String?, cluster: String, of fleet: FleetRequest, extension suffix: String
    ) -> String? {
        guard let path, fleet.isFleet else { return path }
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return (path as NSString).appendingPathComponent("\(cluster).\(suffix)")
    }
}

extension Operations.RunRequest {
    /// This request for one cluster of `fleet`: its inventory, and its own JUnit file.
    public func forCluster(_ inventoryPath: String, _ cluster: String, of fleet: Operations.FleetRequest) -> Self {
        var request = self
        request.inventoryPath = inventoryPath
        request.junit = Operations.perClusterFile(junit, cluster: cluster, of: fleet, extension: "xml")
        request.html = Operations.perClusterFile(html, cluster: cluster, of: fleet, extension: "html")
        return request
    }
}

extension Operations {
    /// A CI engine's matrix of the fleet's clusters.
    public enum MatrixFormat: Sendable {
        /// GitHub Actions: `{"include":[{"cluster":...,"inventory":...}]}` on one line, for `$GITHUB_OUTPUT`.
        case github
        /// GitLab CI: a `parallel: matrix:` fragment with `CLUSTER` and `INVENTORY` per entry.
        case gitlab
    }

    /// `drover plan --format github-matrix|gitlab-matrix`: one entry per cluster, from the inventories alone
    /// (read-only; nothing is contacted). Exit 64 when an inventory is invalid or two share a cluster name.
    public static func matrix(_ fleet: FleetRequest, format: MatrixFormat) -> ExitStatus {
        guard let entries = clusters(of: fleet).map({ $0.map { (cluster: $0.name, inventory: $0.inventory) } }) else {
            return .usage
        }
        switch format {
        case .github:
            let include: [JSONValue] = entries.map {
                .object(["cluster": .string($0.cluster), "inventory": .string($0.inventory)])
            }
            Output.stdout(JSONValue.object(["include": .array(include)]).serialized + "\n")
        case .gitlab:
            var text = "parallel:\n  matrix:\n"
            for entry in entries {
                text += "    - CLUSTER: \(yamlString(entry.cluster))\n      INVENTORY: \(yamlString(entry.inventory))\n"
            }
            Output.stdout(text)
        }
        return .success
    }

    /// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
    static func yamlString(_ text: String) -> String { JSONValue.string(text).serialized }
}
