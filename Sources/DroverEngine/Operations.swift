import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

/// What each `drover` command does, given its parsed arguments; returns the exit status.
public enum Operations {
    static func loadInventory(_ path: String) -> Inventory? {
        do {
            return try Inventory.load(path: path)
        } catch {
            Output.stderr("drover: invalid inventory: \(error.localizedDescription)\n")
            return nil
        }
    }

    static func loadPlaybook(_ name: String) -> Playbook? {
        do {
            return try PlaybookLibrary.find(name)
        } catch {
            Output.stderr("drover: invalid playbook: \(error.localizedDescription)\n")
            return nil
        }
    }

    /// Prints unreachable nodes; true when every node is connected.
    static func reportUnreachable(_ connection: ClusterConnection) -> Bool {
        for (name, reason) in connection.failures.sorted(by: { $0.key < $1.key }) {
            Output.stderr("drover: \(name): \(reason)\n")
        }
        return connection.failures.isEmpty
    }

    // MARK: plan

    /// `drover plan`: read-only discovery, pre-flight and the ordered steps.
    public static func plan(playbook name: String, inventoryPath: String, json: Bool, offline: Bool, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath), let playbook = loadPlaybook(name) else { return .usage }
        var observation: ClusterObservation?
        if !offline {
            let connection = await ClusterConnection.connect(inventory, logger: logger)
            observation = await Discovery.observe(connection, full: true)
            await connection.close()
        }
        let plan = Plan.make(playbook: playbook, inventory: inventory, observation: observation)
        Output.stdout(json ? plan.json.serialized + "\n" : plan.text)
        return offline || plan.preflightPassed ? .success : .refused
    }

    // MARK: run

    /// `drover run` and `drover upgrade`.
    public static func run(playbook name: String, inventoryPath: String, yes: Bool, json: Bool, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath), let playbook = loadPlaybook(name) else { return .usage }
        let interactive = isatty(0) == 1
        if !yes && !interactive {
            Output.stderr("drover: refusing to start without --yes: standard input is not a terminal. Review the steps with `drover plan \(playbook.name) --inventory \(inventoryPath)`, then re-run with --yes.\n")
            return .usage
        }
        let reporter: any Reporter = json ? JSONLinesReporter() : HumanReporter()
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        // Every session is closed before returning: the process must not exit while a session thread
        // is still inside libssh2.
        let status = await run(playbook: playbook, inventory: inventory, inventoryPath: inventoryPath, connection: connection,
                               reporter: reporter, yes: yes, json: json)
        await connection.close()
        return status
    }

    static func run(playbook: Playbook, inventory: Inventory, inventoryPath: String, connection: ClusterConnection,
                    reporter: any Reporter, yes: Bool, json: Bool) async -> ExitStatus {
        let observation = await Discovery.observe(connection, full: true)
        let plan = Plan.make(playbook: playbook, inventory: inventory, observation: observation)
        if !plan.preflightPassed || !connection.failures.isEmpty {
            if !json { Output.stdout(plan.text) }
            for check in plan.preflight where !check.ok {
                Output.stderr("drover: pre-flight failed: \(check.check)\(check.node.map { " on \($0)" } ?? ""): \(check.detail)\(check.fix.map { "; fix: \($0)" } ?? "")\n")
            }
            if json {
                reporter.emit(Event("run_finished", ["outcome": "refused", "exit_code": 2,
                                                     "preflight": .array(plan.preflight.filter { !$0.ok }.map { .string("\($0.check) \($0.node ?? ""): \($0.detail)") })]))
            }
            Output.stderr("drover: nothing was changed.\n")
            return .refused
        }
        if plan.nothingToDo {
            if json {
                reporter.emit(Event("run_finished", ["outcome": "succeeded", "exit_code": 0, "summary": "nothing to do"]))
            } else {
                Output.stdout("Nothing to do: every node already runs \(inventory.package?.version ?? "the target version").\n")
            }
            return .success
        }
        if !yes {
            Output.stdout(plan.text)
            Output.stdout("Type yes to start the run: ")
            guard readLine()?.trimmingCharacters(in: .whitespaces) == "yes" else {
                Output.stdout("Not started; nothing was changed.\n")
                return .success
            }
        }
        let runner = Runner(playbook: playbook, inventory: inventory, connection: connection, reporter: reporter, runID: Self.newRunID())
        return await runner.execute(initial: observation).exitStatus
    }

    /// A run id: UTC time and a random suffix, sortable.
    public static func newRunID() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date()) + "-" + String(UUID().uuidString.prefix(6)).lowercased()
    }

    // MARK: status

    /// `drover status`: each node's role, version and the four services' distributed status.
    public static func status(inventoryPath: String, json: Bool, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        let connection = await ClusterConnection.connect(inventory, logger: logger)
        let observation = await Discovery.observe(connection, full: false)
        await connection.close()
        let services = ["leaderl", "postgresql", "etcd", "elasticsearch"]
        if json {
            let nodes: [JSONValue] = observation.nodes.map { node in
                .object([
                    "name": .string(node.name), "host": .string(node.host), "reachable": .bool(node.unreachable == nil),
                    "error": .optional(node.unreachable), "role": .optional(observation.role(of: node.name)),
                    "version": .optional(node.installedVersion), "unsynced_sentinel": node.unsyncedSentinel.map { .bool($0) } ?? .null,
                    "services": .object(Dictionary(uniqueKeysWithValues: services.map { ($0, JSONValue.optional(node.status?[$0]?.distributed)) })),
                    "local": .object(Dictionary(uniqueKeysWithValues: services.map { ($0, JSONValue.optional(node.status?[$0]?.localStatus)) })),
                    "read_errors": .array(node.readErrors.map { .string($0) }),
                ])
            }
            let healthy = Predicates.healthy(observation, allowYellow: false).allSatisfy(\.holds)
            Output.stdout(JSONValue.object([
                "cluster": .string(inventory.cluster), "leader": .optional(observation.leader), "healthy": .bool(healthy),
                "cluster_failover": "unknown", "nodes": .array(nodes),
            ]).serialized + "\n")
        } else {
            var lines = ["Cluster \(inventory.cluster): leader \(observation.leader ?? "none")"]
            for node in observation.nodes {
                guard node.unreachable == nil else {
                    lines.append("\(node.name) (\(node.host)): UNREACHABLE: \(node.unreachable!)")
                    continue
                }
                lines.append("\(node.name) (\(node.host)): \(observation.role(of: node.name) ?? "not listed"), version \(node.installedVersion ?? "unknown")\(node.unsyncedSentinel == true ? ", UNSYNCED sentinel present" : "")")
                for service in services {
                    let row = node.status?[service]
                    lines.append("    \(service.padding(toLength: 14, withPad: " ", startingAt: 0)) \((row?.localStatus ?? "?").padding(toLength: 20, withPad: " ", startingAt: 0)) \(row?.distributed ?? "?")")
                }
                for problem in node.readErrors { lines.append("    ! \(problem)") }
            }
            let failing = Predicates.healthy(observation, allowYellow: false).filter { !$0.holds }
            lines.append(failing.isEmpty ? "Healthy." : "Not healthy: " + failing.map(\.detail).joined(separator: "; "))
            lines.append("Cluster failover: unknown (chef-backend-ctl documents no output that shows it)")
            Output.stdout(lines.joined(separator: "\n") + "\n")
        }
        return connection.failures.isEmpty ? .success : .refused
    }

    // MARK: exec

    /// `drover exec`: one command on the chosen nodes in parallel, output prefixed by node.
    public static func exec(inventoryPath: String, nodes: [String], command: String, logger: Logger) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        let unknown = nodes.filter { inventory.backend(named: $0) == nil }
        guard unknown.isEmpty else {
            Output.stderr("drover: unknown node \(unknown.joined(separator: ", ")) (inventory \(inventoryPath) has \(inventory.backends.map(\.name).joined(separator: ", ")))\n")
            return .usage
        }
        let chosen = nodes.isEmpty ? inventory.backends.map(\.name) : nodes
        let connection = await ClusterConnection.connect(inventory, only: chosen, logger: logger)
        guard reportUnreachable(connection) else {
            await connection.close()
            return .refused
        }
        let lock = NSLock()
        let width = chosen.map(\.count).max() ?? 0
        let statuses = await withTaskGroup(of: (String, Int32).self) { group in
            for node in chosen {
                group.addTask {
                    let prefix = node.padding(toLength: width, withPad: " ", startingAt: 0)
                    do {
                        let result = try await connection.run(node, command) { line in
                            lock.withLock {
                                if line.stream == .stdout { Output.stdout("\(prefix)| \(line.text)\n") } else { Output.stderr("\(prefix)| \(line.text)\n") }
                            }
                        }
                        if !result.succeeded {
                            lock.withLock { Output.stderr("\(prefix)| exit \(result.exitSignal.map { "signal \($0)" } ?? "status \(result.exitStatus)")\n") }
                        }
                        return (node, result.succeeded ? 0 : max(1, result.exitStatus))
                    } catch {
                        lock.withLock { Output.stderr("\(prefix)| \(error.localizedDescription)\n") }
                        return (node, 255)
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        await connection.close()
        return statuses.values.allSatisfy { $0 == 0 } ? .success : .failedAfterChanges
    }

    // MARK: playbooks

    /// `drover playbooks`: every playbook with its description.
    public static func listPlaybooks() -> ExitStatus {
        do {
            let playbooks = try PlaybookLibrary.all()
            guard !playbooks.isEmpty else {
                Output.stderr("drover: no playbooks found in \(PlaybookLibrary.directories.joined(separator: ", ")); set DROVER_PLAYBOOKS\n")
                return .usage
            }
            let width = playbooks.map(\.name.count).max() ?? 0
            for playbook in playbooks {
                let summary = playbook.description.split(separator: "\n").joined(separator: " ")
                Output.stdout("\(playbook.name.padding(toLength: width + 2, withPad: " ", startingAt: 0))\(summary)\n")
            }
            return .success
        } catch {
            Output.stderr("drover: invalid playbook: \(error.localizedDescription)\n")
            return .usage
        }
    }
}
