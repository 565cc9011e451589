import DroverEngine
import DroverReporting
import DroverSSH
import Foundation

extension Operations {
    /// Uploads `package.upload` where needed (``PackageUpload``), with a progress bar per node on a terminal and a
    /// line per node after; returns false, having said why, when any node could not get the package.
    static func uploadPackage(_ connection: ClusterConnection, json: Bool) async -> Bool {
        guard let package = connection.inventory.package, package.upload != nil else { return true }
        let bars = ProgressBars(nodes: connection.connectedNames, enabled: !json && isatty(2) == 1)
        let outcomes: [PackageUpload.NodeOutcome]
        do {
            outcomes = try await PackageUpload.run(connection) { bars.update($0, $1) }
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            return false
        }
        for outcome in outcomes {
            let line = outcome.line(path: package.path) + "\n"
            if json { Output.stderr(line) } else { Output.stdout(line) }
        }
        return outcomes.allSatisfy(\.ok)
    }
}

/// One progress bar per node on a terminal (stderr), redrawn in place.
final class ProgressBars: Sendable {
    private struct State {
        var progress: [String: UploadProgress] = [:]
        var drawn = false
    }
    private let state = Locked(State())
    private let nodes: [String]
    private let enabled: Bool

    init(nodes: [String], enabled: Bool) {
        self.nodes = nodes
        self.enabled = enabled
    }

    func update(_ node: String, _ value: UploadProgress) {
        guard enabled else { return }
        state.withLock { state in
            state.progress[node] = value
            var text = state.drawn ? "\u{1B}[\(nodes.count)A" : ""
            for name in nodes {
                let current = state.progress[name]
                let fraction = current.map { $0.totalBytes > 0 ? Double($0.bytesSent) / Double($0.totalBytes) : 1 } ?? 0
                let filled = Int(fraction * 30)
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                text +=
                    "\r\(name.padding(toLength: 8, withPad: " ", startingAt: 0)) [\(bar)] \(Int(fraction * 100))%\u{1B}[K\n"
            }
            state.drawn = true
            Output.stderr(text)
        }
    }
}
