import Foundation
import PackagePlugin

/// Compiles the files of the target's `Assets/` folder (the HTML report's style sheet and static markup)
/// into that target, as `ReportAssetFiles`.
@main
struct EmbedReportAssets: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "Sources/\(target.name)/Assets")
        let assets = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "ReportAssetFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(assets.count) report assets from \(target.name)/Assets/",
                executable: try context.tool(named: "drover-embed-files").url,
                arguments: ["ReportAssetFiles", output.path] + assets.map(\.path),
                inputFiles: assets,
                outputFiles: [output]
            )
        ]
    }
}
