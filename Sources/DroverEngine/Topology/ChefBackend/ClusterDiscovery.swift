import DroverCluster
import DroverInventory
import DroverSSH
import Foundation

/// Reads the live state of every backend through the documented command outputs; changes nothing.
public enum ClusterDiscovery {
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
        var observation = ClusterObservation(nodes: nodes.sorted { order.firstIndex(of: $0.name)! < order.firstIndex(of: $1.name)! })
        if full, let package = inventory.package,
           UpgradePath.needsElasticsearch(installed: Array(observation.versions.values), target: package.version) {
            observation.elasticsearch = await elasticsearch(observation, connection: connection)
        }
        if full || connection.watchFrontends {
            observation.frontends = await frontends(connection)
        }
        return observation
    }

    /// Each SSH frontend's `/_status`, read on the frontend from erchef directly (`localhost:8000`).
    static func frontends(_ connection: ClusterConnection) async -> [FrontendObservation] {
        let names = connection.frontendNames
        let read = await withTaskGroup(of: FrontendObservation.self) { group in
            for name in names {
                group.addTask {
                    if let failure = connection.failures[name] { return FrontendObservation(name: name, unreachable: failure) }
                    do {
                        let result = try await connection.run(name, "curl -s -S http://localhost:8000/_status", timeout: .seconds(60))
                        guard result.succeeded else {
                            return FrontendObservation(name: name, unreachable: "/_status: curl exited \(result.exitStatus): \(lastLine(result.stderrText))")
                        }
                        do {
                            return FrontendObservation(name: name, status: try FrontendStatusBody.status(result.stdoutText))
                        } catch {
                            return FrontendObservation(name: name, unreachable: error.localizedDescription)
                        }
                    } catch {
                        return FrontendObservation(name: name, unreachable: error.localizedDescription)
                    }
                }
            }
            var result: [FrontendObservation] = []
            for await frontend in group { result.append(frontend) }
            return result
        }
        return read.sorted { names.firstIndex(of: $0.name)! < names.firstIndex(of: $1.name)! }
    }

    /// The creation versions and health of the `chef` indexes, read on the leader (two read-only requests).
    static func elasticsearch(_ observation: ClusterObservation, connection: ClusterConnection) async
        -> Result<ElasticsearchFacts, ElasticsearchUnreadable> {
        guard let leader = observation.leader else {
            return .failure(ElasticsearchUnreadable(reason: "there is no leader to read them on"))
        }
        func read(_ url: String) async -> Result<String, ElasticsearchUnreadable> {
            let command = "curl -s -S \(ShellQuote.quote(url))"
            do {
                let result = try await connection.run(leader, command, timeout: .seconds(60))
                guard result.succeeded else {
                    return .failure(ElasticsearchUnreadable(reason: "`\(command)` on \(leader) exited \(result.exitStatus): \(lastLine(result.stderrText))"))
                }
                return .success(result.stdoutText)
            } catch {
                return .failure(ElasticsearchUnreadable(reason: "\(leader): \(error.localizedDescription)"))
            }
        }
        do {
            let settings = try await read("localhost:9200/chef/_settings/index.version.created*?human").get()
            let indices = try await read("localhost:9200/_cat/indices?h=health,status,index").get()
            return .success(ElasticsearchFacts(created: try ElasticsearchFacts.creationVersions(settings),
                                               unhealthy: try ElasticsearchFacts.unhealthyIndexes(indices)))
        } catch let unreadable as ElasticsearchUnreadable {
            return .failure(unreadable)
        } catch {
            return .failure(ElasticsearchUnreadable(reason: "on \(leader): \(error.localizedDescription)"))
        }
    }

    static func observe(_ backend: Inventory.Backend, connection: ClusterConnection, full: Bool, checksum: Bool) async -> NodeObservation {
        var node = NodeObservation(name: backend.name, host: backend.host)
        if let failure = connection.failures[backend.name] {
            node.unreachable = failure
            return node
        }
        /// Runs a read-only command and parses its output; a failure is recorded, not thrown.
        func read<T>(_ command: String, acceptFailure: Bool = false, timeout: Duration = .seconds(120),
                     _ parse: (CommandResult) throws -> T) async throws -> T? {
            let result = try await connection.run(backend.name, command, timeout: timeout)
            guard result.succeeded || acceptFailure else {
                node.readErrors.append("`\(command)` exited \(result.exitStatus): \(lastLine(result.stderrText))")
                return nil
            }
            do {
                return try parse(result)
            } catch {
                node.readErrors.append(error.localizedDescription)
                return nil
            }
        }
        do {
            node.members = try await read("chef-backend-ctl cluster-status") { try ClusterStatusTable.parse($0.stdoutText) }
            // status exits non-zero on a degraded cluster; its table is still the documented one.
            node.status = try await read("chef-backend-ctl status", acceptFailure: true) { try StatusReport.parse($0.stdoutText) }
            node.installedVersion = try await read("cat /opt/chef-backend/version-manifest.json") { try VersionManifest.buildVersion($0.stdoutText) }
            node.unsyncedSentinel = try await read("test -e /var/opt/chef-backend/leaderl/data/unsynced", acceptFailure: true) { $0.succeeded }
            node.noStartPgsqlSentinel = try await read("test -e /var/opt/chef-backend/leaderl/data/no-start-pgsql", acceptFailure: true) { $0.succeeded }
            if let target = connection.inventory.package.flatMap({ ChefBackendVersion($0.version) }), target.major == 3 {
                // The last line that mentions either the known 2.x → 3.x failure or a successful start.
                let log = ShellQuote.quote(ElasticsearchFacts.logPath)
                node.elasticsearchHalfUpgraded = try await read("grep -F -e \(ShellQuote.quote(ElasticsearchFacts.pathScriptsError)) -e '] started' \(log) 2>/dev/null | tail -n 1",
                                                                acceptFailure: true) { $0.stdoutText.contains(ElasticsearchFacts.pathScriptsError) }
            }
            if full {
                node.lockOwner = try await read(ClusterLock.readCommand(ClusterLock.directory(for: connection.inventory)) + " 2>/dev/null", acceptFailure: true) { $0.succeeded ? $0.stdoutText : nil } ?? nil
                node.freeMB = try await read("df -Pk /var/opt/chef-backend") { try DiskFree.availableMB($0.stdoutText) }
                if let package = connection.inventory.package {
                    let path = ShellQuote.quote(package.path)
                    node.packagePresent = try await read("test -f \(path)", acceptFailure: true) { $0.succeeded }
                    if node.packagePresent == true, checksum || package.sha256 != nil {
                        node.packageSHA256 = try await read("sha256sum -- \(path)", timeout: .seconds(600)) {
                            $0.stdoutText.split(separator: " ").first.map(String.init)
                        } ?? nil
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
