import DroverCluster
import DroverInventory
import DroverSSH
import Foundation

/// Reads the live state of every backend through the documented command outputs; changes nothing.
public enum Discovery {
    /// The read-only commands discovery runs, in order (shown by `plan`).
    public static func commands(package: Inventory.Package?, full: Bool) -> [String] {
        var commands = [
            "chef-backend-ctl cluster-status",
            "chef-backend-ctl status",
            "cat /opt/chef-backend/version-manifest.json",
            "test -e /var/opt/chef-backend/leaderl/data/unsynced",
        ]
        if full {
            commands.append("df -Pk /var/opt/chef-backend")
            if let package { commands.append("test -f \(ShellQuote.quote(package.path))") }
        }
        return commands
    }

    /// Observes every node in parallel. `full` adds free space and the package file (pre-flight).
    public static func observe(_ connection: ClusterConnection, full: Bool, checksum: Bool = false) async -> ClusterObservation {
        let inventory = connection.inventory
        let nodes = await withTaskGroup(of: NodeObservation.self) { group in
            for backend in inventory.backends {
                group.addTask { await observe(backend, connection: connection, full: full, checksum: checksum) }
            }
            var result: [NodeObservation] = []
            for await node in group { result.append(node) }
            return result
        }
        let order = inventory.backends.map(\.name)
        return ClusterObservation(nodes: nodes.sorted { order.firstIndex(of: $0.name)! < order.firstIndex(of: $1.name)! })
    }

    static func observe(_ backend: Inventory.Backend, connection: ClusterConnection, full: Bool, checksum: Bool) async -> NodeObservation {
        var node = NodeObservation(name: backend.name, host: backend.host)
        if let failure = connection.failures[backend.name] {
            node.unreachable = failure
            return node
        }
        let timeout: Duration = .seconds(120)
        do {
            let clusterStatus = try await connection.run(backend.name, "chef-backend-ctl cluster-status", timeout: timeout)
            if clusterStatus.succeeded {
                do { node.members = try ClusterStatusTable.parse(clusterStatus.stdoutText) } catch { node.readErrors.append(error.localizedDescription) }
            } else {
                node.readErrors.append("cluster-status exited \(clusterStatus.exitStatus): \(lastLine(clusterStatus.stderrText))")
            }
            // status exits non-zero on a degraded cluster; its table is still the documented one.
            let status = try await connection.run(backend.name, "chef-backend-ctl status", timeout: timeout)
            do { node.status = try StatusReport.parse(status.stdoutText) } catch { node.readErrors.append(error.localizedDescription) }
            let manifest = try await connection.run(backend.name, "cat /opt/chef-backend/version-manifest.json", timeout: timeout)
            if manifest.succeeded {
                do { node.installedVersion = try VersionManifest.buildVersion(manifest.stdoutText) } catch { node.readErrors.append(error.localizedDescription) }
            } else {
                node.readErrors.append("cannot read /opt/chef-backend/version-manifest.json: \(lastLine(manifest.stderrText))")
            }
            let sentinel = try await connection.run(backend.name, "test -e /var/opt/chef-backend/leaderl/data/unsynced", timeout: timeout)
            node.unsyncedSentinel = sentinel.exitStatus == 0 && sentinel.exitSignal == nil
            if full {
                let df = try await connection.run(backend.name, "df -Pk /var/opt/chef-backend", timeout: timeout)
                if df.succeeded {
                    do { node.freeMB = try DiskFree.availableMB(df.stdoutText) } catch { node.readErrors.append(error.localizedDescription) }
                } else {
                    node.readErrors.append("df -Pk /var/opt/chef-backend exited \(df.exitStatus): \(lastLine(df.stderrText))")
                }
                if let package = connection.inventory.package {
                    let present = try await connection.run(backend.name, "test -f \(ShellQuote.quote(package.path))", timeout: timeout)
                    node.packagePresent = present.succeeded
                    if present.succeeded, checksum || package.sha256 != nil {
                        let sum = try await connection.run(backend.name, "sha256sum -- \(ShellQuote.quote(package.path))", timeout: .seconds(600))
                        node.packageSHA256 = sum.stdoutText.split(separator: " ").first.map(String.init)
                    }
                }
            }
        } catch {
            node.unreachable = error.localizedDescription
        }
        return node
    }

    static func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last.map(String.init) ?? "(no output)"
    }
}
