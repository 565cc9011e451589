import DroverSandbox
import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// The sandbox (real sshd per node) needs root and OpenSSH's server.
let sandboxAvailable = geteuid() == 0 && SSHServer.isAvailable
let needsSandbox = Testing.ConditionTrait.enabled(
    if: sandboxAvailable, "needs root and openssh-server (make test installs it; run as root)")

/// One entry of the simulator's command log.
struct LoggedCommand {
    var time: Date
    var node: String
    var event: String
    var command: String
    var exitStatus: Int?

    /// True for commands that change the cluster (Drover's own lock directory does not count).
    var isMutating: Bool {
        // A reading of a node (cluster-status, status, sentinels, version... as one command) starts with its marker.
        let readOnly = [
            "echo 'drover-read: ", "chef-backend-ctl cluster-status", "chef-backend-ctl status", "cat ", "test ", "df ",
            "sha256sum",
            "drbdadm role ", "chef-server-ctl ha-status", "chef-server-ctl status", "curl -s -S ", "grep -F ", "find ",
            "uname -n",
        ]
        return !readOnly.contains { command.hasPrefix($0) } && !command.contains("/drover.lock")
            && !command.contains("/drover-runs/")
    }
}

/// A sandbox cluster for one test, with an inventory tuned for fast tests and a HOME of its own, so
/// that every drover run of the test records its journals there and nowhere else.
struct SandboxCluster: Sendable {
    let sandbox: Sandbox
    let inventoryPath: String
    /// The test's HOME: drover's state goes to `HOME/.local/state/drover`.
    let home: String

    /// Starts a sandbox; `versions` (installed, target) defaults to the sandbox's 2.3.15 → 2.3.16.
    static func start(
        scale: Double = 0.05, rejoin: String = "8s", topology: String = "chef-backend",
        versions: (String, String)? = nil, frontends: Int = 0, cluster: String? = nil,
        fragile: Double? = nil, ssh: String = "", real: Bool = false
    ) async throws -> SandboxCluster {
        let base = try temporaryDirectory("e2e")
        let directory = base + "/sandbox"
        let sandbox = Sandbox(directory: directory)
        // DROVER_SIMULATOR: another build of the simulator (make sanitize uses the plain one: it is a
        // fixture, and a sanitized simulator started for every remote command only slows the runs down).
        let simulator = ProcessInfo.processInfo.environment["DROVER_SIMULATOR"].flatMap { $0.isEmpty ? nil : $0 }
        var options = Sandbox.UpOptions(simulatorPath: simulator ?? DroverBinary.builtProduct("chef-backend-sim"))
        options.delayScale = scale
        options.topology = topology
        if let versions { (options.version, options.targetVersion) = versions }
        options.frontends = frontends
        options.cluster = cluster
        if let fragile {
            options.fragileCommands = true
            options.upgradeSeconds = fragile
        }
        if real {
            options.realDataLayer = Repository.root.appendingPathComponent("Fixtures/RealServices/datalayer.py").path
        }
        _ = try await sandbox.up(options)
        try await Processes.offPool {
            var inventory = try String(contentsOfFile: sandbox.inventoryPath, encoding: .utf8)
            inventory = String(inventory[..<inventory.range(of: "timeouts:")!.lowerBound])
            if !ssh.isEmpty { inventory = inventory.replacingOccurrences(of: "\nssh:\n", with: "\nssh:\n" + ssh) }
            inventory +=
                topology == "drbd-pair"
                ? "timeouts:\n  transition: \(rejoin)\n  sync: 30s\n  poll_interval: 200ms\n  stable_polls: 2\n"
                : "timeouts:\n  rejoin: \(rejoin)\n  failover: \(rejoin)\n  poll_interval: 200ms\n  stable_polls: 2\n"
            try inventory.write(toFile: sandbox.inventoryPath, atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: base + "/home", withIntermediateDirectories: true)
        }
        return SandboxCluster(sandbox: sandbox, inventoryPath: sandbox.inventoryPath, home: base + "/home")
    }

    /// Starts a sandbox, runs `body`, and always tears it down.
    static func with<T>(
        scale: Double = 0.05, rejoin: String = "8s", topology: String = "chef-backend",
        versions: (String, String)? = nil, frontends: Int = 0, fragile: Double? = nil, ssh: String = "",
        real: Bool = false, _ body: (SandboxCluster) async throws -> T
    ) async throws -> T {
        let cluster = try await start(
            scale: scale, rejoin: rejoin, topology: topology, versions: versions, frontends: frontends,
            fragile: fragile, ssh: ssh, real: real)
        do {
            let result = try await body(cluster)
            try await cluster.sandbox.down()
            // Its home, state and scratch files go too; a test that threw keeps them to be read.
            let base = (cluster.sandbox.directory as NSString).deletingLastPathComponent
            try? await Processes.offPool { try FileManager.default.removeItem(atPath: base) }
            return result
        } catch {
            try? await cluster.sandbox.down()
            throw error
        }
    }

    /// Where this test's runs are recorded: drover's default under the test's HOME.
    var stateDirectory: String { home + "/.local/state/drover" }

    /// A path for the test's own files (plans, playbooks, packages), beside the sandbox.
    func scratch(_ name: String) -> String { (sandbox.directory as NSString).deletingLastPathComponent + "/" + name }

    /// The environment of every drover run of this test: its own HOME.
    var environment: [String: String] { ["HOME": home, "XDG_STATE_HOME": ""] }

    /// The arguments `drover` gets: `--inventory` added before any `--` (after it, exec takes everything
    /// as the command).
    func arguments(_ arguments: [String]) -> [String] {
        [arguments[0], "--inventory", inventoryPath] + arguments.dropFirst()
    }

    /// Runs drover (the binary under test) with `--inventory` added, in the test's HOME.
    /// `binary`: another drover to run instead of the one under test (a copy of it, say); `timeout`: how long it
    /// may take before it is killed and the test fails.
    func drover(
        _ arguments: [String], environment: [String: String] = [:], binary: String? = nil,
        timeout: Duration = .seconds(150)
    ) async throws -> Processes.Output {
        let all = self.arguments(arguments)
        let environment = self.environment.merging(environment) { $1 }
        return try await Processes.offPool {
            try Processes.run(
                binary ?? DroverBinary.path, all, environment: try DroverBinary.environment(environment),
                timeout: timeout)
        }
    }

    /// Starts `drover` in the background, with its output going to files.
    func start(_ arguments: [String]) throws -> (child: ChildProcess, stdout: String, stderr: String) {
        let out =
            (sandbox.directory as NSString).deletingLastPathComponent + "/drover-\(UUID().uuidString.prefix(6)).out"
        let err = out.replacingOccurrences(of: ".out", with: ".err")
        let child = try Processes.spawn(
            DroverBinary.path, self.arguments(arguments), environment: try DroverBinary.environment(environment),
            stdout: out, stderr: err)
        return (child, out, err)
    }

    /// Starts `drover ARGUMENTS`, waits until its output shows `point`, then kills it with SIGKILL and reaps
    /// it; false when the point was never reached.
    func killRun(_ arguments: [String], at point: String) async throws -> Bool {
        let run = try start(arguments)
        let reached = try await waitFor(point, in: run.stdout)
        kill(run.child.pid, SIGKILL)
        _ = await run.child.exitStatus()
        return reached
    }

    /// Waits (bounded, on a thread of its own) until the file contains `text`.
    func waitFor(_ text: String, in path: String, timeout: Duration = .seconds(180)) async throws -> Bool {
        try await Processes.offPool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").contains(text) { return true }
                usleep(20_000)
            }
            return false
        }
    }

    /// The simulator's command log (read off the cooperative pool).
    func log() async -> [LoggedCommand] {
        let path = sandbox.commandLog
        return (try? await Processes.offPool { Self.readLog(path) }) ?? []
    }

    /// The log as commands: each SSH command, except that a command Drover ran detached (its SSH command is
    /// Drover's node-command script) stands for the tools it ran on the node, under the session that started
    /// it; re-attaching to it runs nothing and shows nothing.
    private static func readLog(_ path: String) -> [LoggedCommand] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let formatter = ISO8601DateFormatter.withFraction
        let records = text.split(separator: "\n").compactMap { line -> (LoggedCommand, session: String?)? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let time = (object["time"] as? String).flatMap(formatter.date)
            else { return nil }
            return (
                LoggedCommand(
                    time: time, node: object["node"] as? String ?? "", event: object["event"] as? String ?? "",
                    command: object["command"] as? String ?? "", exitStatus: object["exit_status"] as? Int),
                object["session"] as? String
            )
        }
        let detached = Set(
            records.filter { $0.0.event == "started" && $0.0.command.contains(nodeCommandMarker) }.compactMap(\.session)
        )
        return records.compactMap { record, session in
            var entry = record
            switch entry.event {
            case "started", "finished":
                return entry.command.contains(nodeCommandMarker) ? nil : entry
            case "tool_started", "tool_finished":
                guard let session, detached.contains(session) else { return nil }
                entry.event = entry.event == "tool_started" ? "started" : "finished"
                return entry
            default:
                return entry
            }
        }
    }

    /// What marks Drover's node-command script (NodeCommand.marker).
    static let nodeCommandMarker = "##drover-node-command##"

    /// The simulated cluster's state (read under its flock, off the cooperative pool).
    func state() async throws -> SimulatedCluster {
        let store = sandbox.store
        return try await Processes.offPool { try store.load() }
    }

    /// Sends `signal` to `node`'s per-connection sshd processes (its listener's descendants named sshd), by
    /// pid: SIGKILL cuts every connection to it, SIGSTOP freezes them. Returns the pids signalled.
    @discardableResult
    func signalConnections(of node: String, _ signal: Int32) -> [pid_t] {
        guard let listener = sandbox.record()?.nodes.first(where: { $0.name == node })?.pid else { return [] }
        let pids = Processes.descendants(of: listener).filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(
                in: .whitespacesAndNewlines) == "sshd"
        }
        for pid in pids { kill(pid, signal) }
        return pids
    }

    /// How many times `command` started on `node`, as the node ran it (the simulator's tool log).
    func started(_ command: String, on node: String) async -> Int {
        await log().filter { $0.event == "started" && $0.node == node && $0.command == command }.count
    }

    func breakNode(_ node: String, _ fault: String, _ values: String...) async throws {
        try await sandbox.breakNode(node, fault: fault, values: values)
    }

    /// The simulated DRBD pair's state (a `drbd-pair` sandbox), advanced to now.
    func pairState() async throws -> SimulatedPair {
        let store = sandbox.pairStore
        return try await Processes.offPool { try store.update { pair, _ in pair } }
    }
}

extension ISO8601DateFormatter {
    /// `2026-12-03T06:10:54.498Z`, as the JSON events and the simulator's log give times.
    static var withFraction: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}

/// A plan's actions one per line as `  N. STEP NODE: ACTION` (the plan prints each step once, numbered as the
/// run numbers it, with its actions under it), for tests that look for an action on a node.
func plannedActions(_ plan: String) -> String {
    var lines: [String] = []
    var header = ""
    var inSteps = false
    for line in plan.split(separator: "\n").map(String.init) {
        if line == "Steps:" {
            inSteps = true
            continue
        }
        guard inSteps else { continue }
        if let match = line.firstMatch(of: /^ *(\d+)\. (\S+)(?: on (.+?))?(?:: (skip .*))?$/) {
            let node = match.3.map { " " + $0 } ?? ""
            header = String(format: "  %2d. ", Int(match.1) ?? 0) + match.2 + node
            if let skip = match.4 { lines.append(header + ": " + skip) }
        } else if line.hasPrefix("        ") {
            lines.append(header + ": " + line.trimmingCharacters(in: .whitespaces))
        } else if !line.hasPrefix(" ") {
            inSteps = false
        }
    }
    return lines.joined(separator: "\n") + "\n"
}
