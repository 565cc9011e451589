import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// Copies `package.upload` from the workstation to `package.path` on every backend before a run.
public enum PackageUpload {
    /// Uploads where needed; returns false (having said why) when any node could not get the package.
    public static func run(_ connection: ClusterConnection, json: Bool) async -> Bool {
        guard let package = connection.inventory.package, let local = package.upload else { return true }
        let path = UserAccount.expandingTilde(local)
        let digest: String
        do {
            digest = try await BlockingWork.run { try Digest.sha256Hex(ofFile: path) }
        } catch {
            Output.stderr("drover: package.upload: \(error.localizedDescription)\n")
            return false
        }
        if let expected = package.sha256, expected != digest {
            Output.stderr(
                "drover: package.upload \(local) has SHA-256 \(digest), but package.sha256 says \(expected); nothing was uploaded\n"
            )
            return false
        }
        let showBar = !json && isatty(2) == 1
        let bars = ProgressBars(nodes: connection.connectedNames, enabled: showBar)
        let results = await withTaskGroup(of: (String, String?).self) { group in
            for node in connection.connectedNames {
                group.addTask {
                    do {
                        let existing = try await connection.run(
                            node, "sha256sum -- \(ShellQuote.quote(package.path)) 2>/dev/null", timeout: .seconds(600))
                        if existing.succeeded, existing.stdoutText.hasPrefix(digest) {
                            return (node, "already holds an identical file")
                        }
                        _ = try await connection.upload(node, file: path, to: package.path) { bars.update(node, $0) }
                        return (node, "uploaded and verified (SHA-256 \(digest.prefix(12))…)")
                    } catch {
                        return (node, "FAILED: \(error.localizedDescription)")
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        bars.finish()
        var ok = true
        for node in connection.connectedNames {
            let outcome = (results[node] ?? nil) ?? "FAILED"
            if outcome.hasPrefix("FAILED") { ok = false }
            let line = "package \(package.path) on \(node): \(outcome)\n"
            if json { Output.stderr(line) } else { Output.stdout(line) }
        }
        return ok
    }
}

/// One progress bar per node on a terminal (stderr), redrawn in place.
final class ProgressBars: @unchecked Sendable {
    private let lock = NSLock()
    private let nodes: [String]
    private var progress: [String: UploadProgress] = [:]
    private let enabled: Bool
    private var drawn = false

    init(nodes: [String], enabled: Bool) {
        self.nodes = nodes
        self.enabled = enabled
    }

    func update(_ node: String, _ value: UploadProgress) {
        guard enabled else { return }
        lock.withLock {
            progress[node] = value
            var text = drawn ? "\u{1B}[\(nodes.count)A" : ""
            for name in nodes {
                let current = progress[name]
                let fraction = current.map { $0.totalBytes > 0 ? Double($0.bytesSent) / Double($0.totalBytes) : 1 } ?? 0
                let filled = Int(fraction * 30)
                text +=
                    "\r\(name.padding(toLength: 8, withPad: " ", startingAt: 0)) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] \(Int(fraction * 100))%\u{1B}[K\n"
            }
            drawn = true
            Output.stderr(text)
        }
    }

    func finish() {}
}
