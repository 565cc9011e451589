import Foundation
import PackagePlugin

/// Compiles a topology's playbooks into its module, as `BuiltInPlaybookFiles`: the `.yml` files of the directory
/// named by the one line of `Sources/MODULE/EmbeddedPlaybooks` (`Playbooks/chef-backend`), relative to the
/// package.
@main
struct EmbedPlaybooks: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        // The module's directory is `Sources/NAME` (SwiftPM's default path, which the topology modules keep).
        let marker = context.package.directoryURL.appending(path: "Sources/\(target.name)/EmbeddedPlaybooks")
        let relative = try String(contentsOf: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let directory = context.package.directoryURL.appending(path: relative)
        let playbooks = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yml" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltInPlaybookFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(playbooks.count) playbooks from \(relative)/",
                executable: try context.tool(named: "drover-embed-files").url,
                arguments: ["BuiltInPlaybookFiles", output.path] + playbooks.map(\.path),
                inputFiles: playbooks + [marker],
                outputFiles: [output]
            )
        ]
    }
}
