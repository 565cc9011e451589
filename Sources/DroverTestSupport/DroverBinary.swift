import Foundation

/// The built `drover` executable, run as a user would run it.
public enum DroverBinary {
    /// Path of the `drover` binary beside the test bundle (swift build puts both in one folder).
    public static var path: String { builtProduct("drover") }

    /// Path of a built executable product beside the test bundle.
    public static func builtProduct(_ name: String) -> String {
        let candidates = [
            Bundle.main.executableURL?.deletingLastPathComponent(),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug"),
        ].compactMap { $0?.appendingPathComponent(name).path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// Runs `drover` with `arguments` and returns its exit status and output.
    public static func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> Processes.Output {
        var env = environment
        env["NO_COLOR"] = env["NO_COLOR"] ?? "1"
        return try Processes.run(path, arguments, environment: env, input: input)
    }
}
