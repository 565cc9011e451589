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

    var isMutating: Bool {
        let readOnly = ["chef-backend-ctl cluster-status", "chef-backend-ctl status", "cat ", "test ", "df ", "sha256sum"]
        return !readOnly.contains { command.hasPrefix($0) }
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

    /// Runs the built `drover` with `--inventory` added.
    func drover(_ arguments: [String]) async throws -> Processes.Output {
        // Options go before a `--` (after it, exec takes everything as the command).
        let all = [arguments[0], "--inventory", inventoryPath] + arguments.dropFirst()
        return try await Processes.offPool { try DroverBinary.run(all) }
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
