import Foundation
import PackagePlugin

/// Compiles `Playbooks/*.yml` into the target that applies it, as `BuiltInPlaybookFiles`.
@main
struct EmbedPlaybooks: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "Playbooks")
        let playbooks = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yml" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltInPlaybookFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(playbooks.count) playbooks from Playbooks/",
                executable: try context.tool(named: "drover-embed-files").url,
                arguments: ["BuiltInPlaybookFiles", output.path] + playbooks.map(\.path),
                inputFiles: playbooks,
                outputFiles: [output]
            )
        ]
    }
}
