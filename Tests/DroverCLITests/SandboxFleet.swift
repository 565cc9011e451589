import DroverTestSupport
import Foundation

/// Several sandbox clusters for one test: each its own cluster name, nodes and addresses, their
/// inventories together in one directory, and one HOME for every drover run of the test.
struct SandboxFleet: Sendable {
    let clusters: [String: SandboxCluster]
    let names: [String]
    /// The directory of `NAME.yml` inventories (`--inventories`).
    let inventories: String
    let home: String

    /// Starts one sandbox per name, runs `body`, and always tears them all down.
    static func with<T>(
        _ names: [String], scale: Double = 0.05, rejoin: String = "8s", topology: String = "chef-backend",
        _ body: (SandboxFleet) async throws -> T
    ) async throws -> T {
        let base = try temporaryDirectory("fleet")
        var started: [String: SandboxCluster] = [:]
        do {
            for name in names {
                started[name] = try await SandboxCluster.start(
                    scale: scale, rejoin: rejoin, topology: topology, cluster: name)
            }
            let inventories = base + "/inventories"
            let sources = names.map { (name: $0, path: started[$0]!.inventoryPath) }
            try await Processes.offPool {
                try FileManager.default.createDirectory(atPath: inventories, withIntermediateDirectories: true)
                try FileManager.default.createDirectory(atPath: base + "/home", withIntermediateDirectories: true)
                for source in sources {
                    try FileManager.default.copyItem(atPath: source.path, toPath: "\(inventories)/\(source.name).yml")
                }
            }
            let fleet = SandboxFleet(clusters: started, names: names, inventories: inventories, home: base + "/home")
            let result = try await body(fleet)
            for cluster in started.values { try await cluster.sandbox.down() }
            // Their homes and scratch files go too; a test that threw keeps them to be read.
            let bases = [base] + started.values.map { ($0.sandbox.directory as NSString).deletingLastPathComponent }
            try? await Processes.offPool { for path in bases { try? FileManager.default.removeItem(atPath: path) } }
            return result
        } catch {
            for cluster in started.values { try? await cluster.sandbox.down() }
            throw error
        }
    }

    subscript(_ name: String) -> SandboxCluster { clusters[name]! }

    func inventory(_ name: String) -> String { "\(inventories)/\(name).yml" }

    var environment: [String: String] { ["HOME": home, "XDG_STATE_HOME": ""] }

    var stateDirectory: String { home + "/.local/state/drover" }

    /// Runs drover (the binary under test) as given, in the fleet's HOME.
    func drover(_ arguments: [String]) async throws -> Processes.Output {
        let environment = try DroverBinary.environment(self.environment)
        return try await Processes.offPool { try Processes.run(DroverBinary.path, arguments, environment: environment) }
    }

    /// Starts `drover ARGUMENTS` in the background, with its output going to files.
    func start(_ arguments: [String]) throws -> (child: ChildProcess, stdout: String, stderr: String) {
        let out = (inventories as NSString).deletingLastPathComponent + "/drover-\(UUID().uuidString.prefix(6)).out"
        let err = out.replacingOccurrences(of: ".out", with: ".err")
        let child = try Processes.spawn(
            DroverBinary.path, arguments, environment: try DroverBinary.environment(environment), stdout: out,
            stderr: err)
        return (child, out, err)
    }

    /// The version every node of cluster `name` runs, by node.
    func versions(_ name: String) async throws -> [String: String] {
        let state = try await self[name].state()
        return Dictionary(uniqueKeysWithValues: state.nodes.map { ($0.name, $0.runningVersion) })
    }
}
