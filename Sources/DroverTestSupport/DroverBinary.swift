import Foundation

/// The `drover` executable under test, run as a user would run it.
public enum DroverBinary {
    /// `$DROVER_BIN` when set (`make test` points it at the release binary users install), else the
    /// `drover` built beside the test bundle.
    public static var path: String {
        if let explicit = ProcessInfo.processInfo.environment["DROVER_BIN"], !explicit.isEmpty { return explicit }
        return builtProduct("drover")
    }

    /// Path of a built executable product beside the test bundle.
    public static func builtProduct(_ name: String) -> String {
        let candidates = [
            Bundle.main.executableURL?.deletingLastPathComponent(),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug"),
        ].compactMap { $0?.appendingPathComponent(name).path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// The environment a drover run gets: `environment`, with `NO_COLOR` set and, unless given, a new
    /// empty `HOME` of its own and no `XDG_STATE_HOME`, so that nothing from the machine's real home
    /// (journals, known_hosts, keys) can reach a test.
    public static func environment(_ environment: [String: String] = [:]) throws -> [String: String] {
        var result = environment
        result["NO_COLOR"] = result["NO_COLOR"] ?? "1"
        if result["HOME"] == nil { result["HOME"] = try temporaryDirectory("home") }
        result["XDG_STATE_HOME"] = result["XDG_STATE_HOME"] ?? ""
        return result
    }

    /// Runs `drover` on a thread of its own and returns its exit status and output.
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], input: String? = nil,
        timeout: Duration = .seconds(150)
    ) async throws -> Processes.Output {
        try await Processes.offPool {
            try runBlocking(arguments, environment: environment, input: input, timeout: timeout)
        }
    }

    /// ``run(_:environment:input:timeout:)`` for code already off the cooperative pool: it blocks until drover exits.
    public static func runBlocking(
        _ arguments: [String], environment: [String: String] = [:], input: String? = nil,
        timeout: Duration = .seconds(150)
    ) throws -> Processes.Output {
        let full = try Self.environment(environment)
        // A HOME made for this run alone goes with it.
        if environment["HOME"] == nil, let home = full["HOME"] {
            defer { try? FileManager.default.removeItem(atPath: home) }
            return try Processes.run(path, arguments, environment: full, input: input, timeout: timeout)
        }
        return try Processes.run(path, arguments, environment: full, input: input, timeout: timeout)
    }
}
