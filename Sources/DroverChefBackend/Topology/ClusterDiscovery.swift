import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// What a focused reading reads: the backends named, and the frontends or not.
struct ReadFocus: Sendable {
    var backends: [String]
    var frontends = false
}

/// Reads the live state of every backend through the documented command outputs; changes nothing.
public enum ClusterDiscovery {
    /// Observes every node in parallel. `full` adds free space and the package file (pre-flight).
    /// `focus`: read only those backends (the others are listed, unread) and the frontends only if it says so.
    static func observe(
        _ connection: any NodeTransport, full: Bool, checksum: Bool = false,
        focus: ReadFocus? = nil
    ) async -> ClusterObservation {
        let inventory = connection.inventory
        let nodes = await withTaskGroup(of: NodeObservation.self) { group in
            for backend in inventory.backends {
                if let focus, !focus.backends.contains(backend.name) {
                    group.addTask { NodeObservation(name: backend.name, host: backend.host) }
                    continue
                }
                group.addTask { await observe(backend, connection: connection, full: full, checksum: checksum) }
            }
            var result: [NodeObservation] = []
            for await node in group { result.append(node) }
            return result
        }
        let order = inventory.backends.map(\.name)
        var observation = ClusterObservation(
            nodes: nodes.sorted { order.firstIndex(of: $0.name)! < order.firstIndex(of: $1.name)! })
        if full, let package = inventory.package,
            UpgradePath.needsElasticsearch(installed: Array(observation.versions.values), target: package.version)
        {
            observation.elasticsearch = await elasticsearch(observation, connection: connection)
        }
        if full || (focus.map(\.frontends) ?? connection.watchAuxiliaries) {
            observation.frontends = await frontends(connection, full: full, checksum: checksum)
        }
        return observation
    }

    /// Each SSH frontend, read in one remote command: its `/_status` from erchef directly (`localhost:8000`),
    /// its release, `chef-server-ctl status` and its migration level; with `full`, the free space and the
    /// frontend package too.
    static func frontends(
        _ connection: any NodeTransport, full: Bool = false, checksum: Bool = false
    ) async
        -> [FrontendObservation]
    {
        let names = connection.auxiliaryNames
        let read = await withTaskGroup(of: FrontendObservation.self) { group in
            for name in names {
                group.addTask { await frontend(name, connection: connection, full: full, checksum: checksum) }
            }
            var result: [FrontendObservation] = []
            for await frontend in group { result.append(frontend) }
            return result
        }
        return read.sorted { names.firstIndex(of: $0.name)! < names.firstIndex(of: $1.name)! }
    }

    static func frontend(
        _ name: String, connection: any NodeTransport, full: Bool, checksum: Bool
    ) async -> FrontendObservation {
        if let failure = connection.failures[name] { return FrontendObservation(name: name, unreachable: failure) }
        var frontend = FrontendObservation(name: name)
        let package = connection.inventory.frontendPackage
        var parts = [
            NodeScript.Part("status-url", "curl -s -S http://localhost:8000/_status"),
            NodeScript.Part("version", "cat \(FrontendPaths.manifest)"),
            NodeScript.Part("services", "chef-server-ctl status"),
            NodeScript.Part("migration-level", "cat \(FrontendPaths.migrationLevel) 2>/dev/null"),
        ]
        if full {
            parts.append(NodeScript.Part("df", "df -Pk \(FrontendPaths.data)"))
            if let package { parts.append(NodeScript.Part("package", "test -f \(ShellQuote.quote(package.path))")) }
            if let package, checksum || package.sha256 != nil { parts.append(NodeScript.Part.sha256(package.path)) }
        }
        let script = NodeScript(parts: parts)
        do {
            let result = try await connection.run(name, script.command, timeout: .seconds(120))
            let read = script.split(result)
            guard let status = read["status-url"] else {
                frontend.unreachable =
                    "reading it did not finish (exit \(result.exitStatus)): \(lastLine(result.stderrText))"
                return frontend
            }
            if status.exitStatus == 0 {
                do {
                    frontend.status = try FrontendStatusBody.status(status.stdout)
                    frontend.upstreams = FrontendStatusBody.upstreams(status.stdout)
                } catch {
                    frontend.statusError = error.localizedDescription
                }
            } else {
                frontend.statusError = "/_status: curl exited \(status.exitStatus): \(lastLine(status.stderr))"
            }
            if let part = read["version"] {
                do {
                    frontend.version = try VersionManifest.buildVersion(part.stdout, path: FrontendPaths.manifest)
                } catch {
                    frontend.readErrors.append(error.localizedDescription)
                }
            }
            if let part = read["services"] {
                do {
                    frontend.services = try FrontendServices.parse(part.stdout)
                } catch {
                    frontend.readErrors.append(error.localizedDescription)
                }
            }
            if let part = read["migration-level"], part.exitStatus == 0 {
                let level = part.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                frontend.migrationLevel = level.isEmpty ? nil : level
            }
            if full {
                if let part = read["df"] { frontend.freeMB = try? DiskFree.availableMB(part.stdout) }
                if let package, let part = read["package"] {
                    frontend.packagePresent = part.exitStatus == 0
                    if part.exitStatus == 0, checksum || package.sha256 != nil {
                        switch script.sha256(read) {
                        case .success(let sum): frontend.packageSHA256 = sum
                        case .failure(let error): frontend.readErrors.append(error.reason)
                        }
                    }
                }
            }
        } catch {
            frontend.unreachable = error.localizedDescription
        }
        return frontend
    }

    /// The creation versions and health of the `chef` indexes, read on the leader (two read-only requests).
    static func elasticsearch(
        _ observation: ClusterObservation, connection: any NodeTransport
    ) async
        -> Result<ElasticsearchFacts, ElasticsearchUnreadable>
    {
        guard let leader = observation.leader else {
            return .failure(ElasticsearchUnreadable(reason: "there is no leader to read them on"))
        }
        func read(_ url: String) async -> Result<String, ElasticsearchUnreadable> {
            let command = "curl -s -S \(ShellQuote.quote(url))"
            do {
                let result = try await connection.run(leader, command, timeout: .seconds(60))
                guard result.succeeded else {
                    return .failure(
                        ElasticsearchUnreadable(
                            reason:
                                "`\(command)` on \(leader) exited \(result.exitStatus): \(lastLine(result.stderrText))")
                    )
                }
                return .success(result.stdoutText)
            } catch {
                return .failure(ElasticsearchUnreadable(reason: "\(leader): \(error.localizedDescription)"))
            }
        }
        do {
            let settings = try await read("localhost:9200/chef/_settings/index.version.created*?human").get()
            let indices = try await read("localhost:9200/_cat/indices?h=health,status,index").get()
            return .success(
                ElasticsearchFacts(
                    created: try ElasticsearchFacts.creationVersions(settings),
                    unhealthy: try ElasticsearchFacts.unhealthyIndexes(indices)))
        } catch let unreadable as ElasticsearchUnreadable {
            return .failure(unreadable)
        } catch {
            return .failure(ElasticsearchUnreadable(reason: "on \(leader): \(error.localizedDescription)"))
        }
    }

    static func observe(
        _ backend: Inventory.Backend, connection: any NodeTransport, full: Bool, checksum: Bool
    ) async -> NodeObservation {
        var node = NodeObservation(name: backend.name, host: backend.host)
        if let failure = connection.failures[backend.name] {
            node.unreachable = failure
            return node
        }
        let inventory = connection.inventory
        // Every read of the node in one remote command (each part's output, errors and status kept apart).
        var parts = [
            NodeScript.Part("cluster-status", "chef-backend-ctl cluster-status"),
            NodeScript.Part("status", "chef-backend-ctl status"),
            NodeScript.Part("unsynced", "test -e /var/opt/chef-backend/leaderl/data/unsynced"),
            NodeScript.Part("no-start-pgsql", "test -e /var/opt/chef-backend/leaderl/data/no-start-pgsql"),
            NodeScript.Part("version", "cat /opt/chef-backend/version-manifest.json"),
            // Which machine this is, as the cluster knows it (checked against cluster-status: a wrong host).
            NodeScript.Part("publish-address", "grep -s publish_address \(PublishAddress.configPath)"),
        ]
        let readsElasticsearchLog = inventory.package.flatMap({ ChefBackendVersion($0.version) })?.major == 3
        if readsElasticsearchLog {
            // The last line that mentions either the known 2.x → 3.x failure or a successful start.
            let log = ShellQuote.quote(ElasticsearchFacts.logPath)
            parts.append(
                NodeScript.Part(
                    "elasticsearch-log",
                    "grep -F -e \(ShellQuote.quote(ElasticsearchFacts.pathScriptsError)) -e '] started' \(log) 2>/dev/null | tail -n 1"
                ))
        }
        let packagePath = inventory.package.map { ShellQuote.quote($0.path) }
        // The lock in every reading (one `cat` in the same script): a run checks it before each change from the
        // reading it just took.
        parts.append(
            NodeScript.Part("lock", ClusterLock.readCommand(ChefBackendTopology.lockDirectory) + " 2>/dev/null"))
        if full {
            parts.append(NodeScript.Part("df", "df -Pk /var/opt/chef-backend"))
            if let packagePath { parts.append(NodeScript.Part("package", "test -f \(packagePath)")) }
            if let package = inventory.package, checksum || package.sha256 != nil {
                parts.append(NodeScript.Part.sha256(package.path))
            }
        }
        let script = NodeScript(parts: parts)
        do {
            let result = try await connection.run(backend.name, script.command, timeout: .seconds(120))
            let read = script.split(result)
            /// A part's output parsed; a failure (or an unread part) is recorded, not thrown.
            func parsed<T>(
                _ name: String, acceptFailure: Bool = false, _ parse: (NodeScript.PartResult) throws -> T
            ) -> T? {
                guard let part = read[name] else {
                    node.readErrors.append(
                        "`\(script.command(of: name))` did not finish (exit \(result.exitStatus)): \(lastLine(result.stderrText))"
                    )
                    return nil
                }
                guard part.exitStatus == 0 || acceptFailure else {
                    node.readErrors.append(
                        "`\(script.command(of: name))` exited \(part.exitStatus): \(lastLine(part.stderr))")
                    return nil
                }
                do {
                    return try parse(part)
                } catch {
                    node.readErrors.append(error.localizedDescription)
                    return nil
                }
            }
            if let part = read["cluster-status"], part.exitStatus == 1 {
                // The documented answer of a node that is not configured as a member of a cluster.
                node.notInCluster = lastLine(part.stderr + part.stdout)
            }
            node.members = parsed("cluster-status") { try ClusterStatusTable.parse($0.stdout) }
            // status exits non-zero on a degraded cluster; its table is still the documented one.
            node.status = parsed("status", acceptFailure: true) { try StatusReport.parse($0.stdout) }
            node.unsyncedSentinel = parsed("unsynced", acceptFailure: true) { $0.exitStatus == 0 }
            node.noStartPgsqlSentinel = parsed("no-start-pgsql", acceptFailure: true) { $0.exitStatus == 0 }
            node.installedVersion = parsed("version") { try VersionManifest.buildVersion($0.stdout) }
            node.publishAddress =
                parsed("publish-address", acceptFailure: true) { PublishAddress.parse($0.stdout) } ?? nil
            if readsElasticsearchLog {
                node.elasticsearchHalfUpgraded = parsed("elasticsearch-log", acceptFailure: true) {
                    $0.stdout.contains(ElasticsearchFacts.pathScriptsError)
                }
            }
            if read["lock"] != nil {
                node.lockOwner = parsed("lock", acceptFailure: true) { $0.exitStatus == 0 ? $0.stdout : nil } ?? nil
                node.lockRead = true
            }
            if full {
                node.freeMB = parsed("df") { try DiskFree.availableMB($0.stdout) }
                if let package = inventory.package {
                    node.packagePresent = parsed("package", acceptFailure: true) { $0.exitStatus == 0 }
                    if node.packagePresent == true, checksum || package.sha256 != nil {
                        switch script.sha256(read) {
                        case .success(let sum): node.packageSHA256 = sum
                        case .failure(let error): node.readErrors.append(error.reason)
                        }
                    }
                }
            }
        } catch {
            node.unreachable = error.localizedDescription
        }
        return node
    }

    /// Why a file's checksum could not be read.
    struct ChecksumUnreadable: Error {
        var reason: String
    }

    /// Several read-only commands run as one remote command, so a reading of a node costs one round trip:
    /// each part's stdout is followed by a line `drover-read: NAME exit STATUS`, and its stderr is preceded
    /// by a line `drover-read: NAME`, so outputs, errors and exit statuses are told apart.
    struct NodeScript {
        struct Part {
            var name: String
            var command: String
            init(_ name: String, _ command: String) {
                self.name = name
                self.command = command
            }

            /// The SHA-256 of a file (`sha256sum`: a large package takes a second or two of the reading).
            static func sha256(_ path: String) -> Part {
                Part("package-sha256", "sha256sum -- \(ShellQuote.quote(path))")
            }
        }

        struct PartResult: Equatable {
            var stdout: String
            var stderr: String
            var exitStatus: Int32
        }

        /// Marks the script's own lines; with this process's nonce, so that no output can pass for one.
        static let marker = "drover-read: \(OutputNonce.value) "
        var parts: [Part]

        var command: String {
            parts.map { part in
                "echo '\(Self.marker)\(part.name)' >&2; \(part.command); printf '\\n\(Self.marker)%s exit %s\\n' \(part.name) \"$?\""
            }.joined(separator: "; ")
        }

        func command(of name: String) -> String { parts.first { $0.name == name }?.command ?? name }

        /// The digest the `package-sha256` part read: 64 hexadecimal digits, or why there is none.
        func sha256(_ read: [String: PartResult]) -> Result<String, ChecksumUnreadable> {
            let command = command(of: "package-sha256")
            guard let part = read["package-sha256"] else {
                return .failure(ChecksumUnreadable(reason: "`\(command)` did not finish"))
            }
            guard part.exitStatus == 0, let value = part.stdout.split(separator: " ").first, value.utf8.count == 64,
                value.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
            else {
                return .failure(
                    ChecksumUnreadable(
                        reason: "`\(command)` exited \(part.exitStatus): \(ClusterDiscovery.lastLine(part.stderr))"))
            }
            return .success(String(value))
        }

        /// Each finished part's output, errors and exit status, by name.
        func split(_ result: CommandResult) -> [String: PartResult] {
            split(stdout: result.stdoutText, stderr: result.stderrText)
        }

        func split(stdout: String, stderr: String) -> [String: PartResult] {
            let names = Set(parts.map(\.name))
            var outputs: [String: (String, Int32)] = [:]
            var lines: [Substring] = []
            for line in stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                let fields = line.hasPrefix(Self.marker) ? line.dropFirst(Self.marker.count).split(separator: " ") : []
                if fields.count == 3, fields[1] == "exit", names.contains(String(fields[0])),
                    let status = Int32(fields[2])
                {
                    // The printf put a newline before the marker: drop it again.
                    if lines.last == "" { lines.removeLast() }
                    outputs[String(fields[0])] = (lines.map { $0 + "\n" }.joined(), status)
                    lines = []
                } else {
                    lines.append(line)
                }
            }
            var errors: [String: String] = [:]
            var current: String?
            for line in stderr.split(separator: "\n") {
                if line.hasPrefix(Self.marker), names.contains(String(line.dropFirst(Self.marker.count))) {
                    current = String(line.dropFirst(Self.marker.count))
                } else if let current {
                    errors[current, default: ""] += line + "\n"
                }
            }
            var result: [String: PartResult] = [:]
            for (name, output) in outputs {
                result[name] = PartResult(stdout: output.0, stderr: errors[name] ?? "", exitStatus: output.1)
            }
            return result
        }
    }

    static func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last.map(String.init) ?? "(no output)"
    }
}
