import DroverSandbox
import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// The sandbox (real sshd per node) needs root and OpenSSH's server.
let sandboxAvailable = geteuid() == 0 && SSHServer.isAvailable
let needsSandbox = Testing.ConditionTrait.enabled(if: sandboxAvailable, "needs root and openssh-server (make test installs it; run as root)")

/// One entry of the simulator's command log.
struct LoggedCommand {
    var time: Date
    var node: String
    var event: String
    var command: String
    var exitStatus: Int?

    /// True for commands that change the cluster (Drover's own lock directory does not count).
    var isMutating: Bool {
        let readOnly = ["chef-backend-ctl cluster-status", "chef-backend-ctl status", "cat ", "test ", "df ", "sha256sum"]
        return !readOnly.contains { command.hasPrefix($0) } && !command.contains("/var/opt/chef-backend/drover.lock")
    }
}

/// A sandbox cluster for one test, with an inventory tuned for fast tests.
struct SandboxCluster: Sendable {
    let sandbox: Sandbox
    let inventoryPath: String

    static func start(scale: Double = 0.05, rejoin: String = "8s") async throws -> SandboxCluster {
        let directory = try temporaryDirectory("e2e") + "/sandbox"
        let sandbox = Sandbox(directory: directory)
        var options = Sandbox.UpOptions(simulatorPath: DroverBinary.builtProduct("chef-backend-sim"))
        options.delayScale = scale
        _ = try await sandbox.up(options)
        var inventory = try String(contentsOfFile: sandbox.inventoryPath, encoding: .utf8)
        inventory = String(inventory[..<inventory.range(of: "timeouts:")!.lowerBound])
        inventory += "timeouts:\n  rejoin: \(rejoin)\n  failover: \(rejoin)\n  poll_interval: 50ms\n  stable_polls: 2\n"
        try inventory.write(toFile: sandbox.inventoryPath, atomically: true, encoding: .utf8)
        return SandboxCluster(sandbox: sandbox, inventoryPath: sandbox.inventoryPath)
    }

    /// Starts a sandbox, runs `body`, and always tears it down.
    static func with<T>(scale: Double = 0.05, rejoin: String = "8s", _ body: (SandboxCluster) async throws -> T) async throws -> T {
        let cluster = try await start(scale: scale, rejoin: rejoin)
        do {
            let result = try await body(cluster)
            try await cluster.sandbox.down()
            return result
        } catch {
            try? await cluster.sandbox.down()
            throw error
        }
    }

    /// Where this test's runs are recorded.
    var stateDirectory: String { (sandbox.directory as NSString).deletingLastPathComponent + "/state" }

    /// The arguments `drover` gets: `--inventory` (and `--state-dir` for commands that record runs) added
    /// before any `--` (after it, exec takes everything as the command).
    func arguments(_ arguments: [String]) -> [String] {
        var extra = ["--inventory", inventoryPath]
        if ["upgrade", "run", "resume"].contains(arguments[0]) { extra += ["--state-dir", stateDirectory] }
        return [arguments[0]] + extra + arguments.dropFirst()
    }

    /// Runs the built `drover` with `--inventory` added.
    func drover(_ arguments: [String], environment: [String: String] = [:]) async throws -> Processes.Output {
        let all = self.arguments(arguments)
        return try await Processes.offPool { try DroverBinary.run(all, environment: environment) }
    }

    /// Starts `drover` in the background, with its output going to files.
    func start(_ arguments: [String]) throws -> (child: ChildProcess, stdout: String, stderr: String) {
        let out = (sandbox.directory as NSString).deletingLastPathComponent + "/drover-\(UUID().uuidString.prefix(6)).out"
        let err = out.replacingOccurrences(of: ".out", with: ".err")
        let child = try Processes.spawn(DroverBinary.path, self.arguments(arguments), environment: ["NO_COLOR": "1"], stdout: out, stderr: err)
        return (child, out, err)
    }

    /// Waits (bounded) until the file contains `text`.
    func waitFor(_ text: String, in path: String, timeout: Duration = .seconds(180)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").contains(text) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    var log: [LoggedCommand] {
        let text = (try? String(contentsOfFile: sandbox.commandLog, encoding: .utf8)) ?? ""
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let time = (object["time"] as? String).flatMap(formatter.date) else { return nil }
            return LoggedCommand(time: time, node: object["node"] as? String ?? "", event: object["event"] as? String ?? "",
                                 command: object["command"] as? String ?? "", exitStatus: object["exit_status"] as? Int)
        }
    }

    var state: SimulatedCluster { get throws { try sandbox.store.load() } }

    func breakNode(_ node: String, _ fault: String) async throws { try await sandbox.breakNode(node, fault: fault) }
}
