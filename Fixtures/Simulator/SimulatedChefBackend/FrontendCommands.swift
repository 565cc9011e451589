import Foundation

/// One invocation on a simulated Chef Infra Server frontend: `chef-server-ctl` (`stop`, `start`, `status`,
/// `upgrade`, `reconfigure`, `cleanup`, `maintenance on|off`, `reindex`), the package tools installing
/// chef-server-core, `df`, and `curl` of erchef's `/_status` on localhost:8000 (reference §16, §20).
public struct FrontendInvocation {
    public let node: String
    public let store: StateStore
    public let environment: [String: String]
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(
        node: String, store: StateStore, environment: [String: String] = [:], out: @escaping (String) -> Void,
        err: @escaping (String) -> Void
    ) {
        self.node = node
        self.store = store
        self.environment = environment
        self.out = out
        self.err = err
    }

    /// The services a frontend of a backend HA cluster runs (haproxy reaches the backends).
    static let services = ["bookshelf", "haproxy", "nginx", "oc_bifrost", "oc_id", "opscode-erchef", "redis_lb"]

    /// Dispatches on the tool name.
    public func run(tool: String, arguments: [String]) -> Int32 {
        do {
            switch tool {
            case "chef-server-ctl": return try ctl(arguments)
            case "curl": return try curl(arguments)
            case "dpkg": return try install(arguments, format: "deb")
            case "rpm": return try install(arguments, format: "rpm")
            case "df": return df(arguments)
            default:
                err("\(tool): not simulated on a frontend\n")
                return 127
            }
        } catch {
            err("\(error.localizedDescription)\n")
            return 70
        }
    }

    /// The backends' major version: the leader's, else the most common running one.
    static func backendMajor(_ cluster: SimulatedCluster) -> Int {
        let version = cluster.currentLeader?.runningVersion ?? cluster.members.first?.runningVersion ?? "0"
        return Int(version.split(separator: ".").first ?? "0") ?? 0
    }

    /// The database migration level a release brings (the simulator's own numbering).
    public static func migrationLevel(_ version: String) -> Int {
        let parts = version.split(separator: ".").compactMap { Int($0) }
        return (parts.first ?? 0) * 100 + (parts.dropFirst().first ?? 0)
    }

    /// The migration-level file's path on the host, for this frontend.
    public static let migrationLevelPath = "/var/opt/opscode/upgrades/migration-level"
    public static let manifestPath = "/opt/opscode/version-manifest.json"

    func ctl(_ arguments: [String]) throws -> Int32 {
        if arguments == ["upgrade"] {
            // With fragile commands the upgrade works for upgradeSeconds first, a line every 0.2 s to its
            // output: once its connection is gone, the next write kills it (SIGPIPE) and nothing is upgraded.
            let seconds = try store.update { cluster, _ in cluster.fragileCommands ? cluster.upgradeSeconds : nil }
            if let seconds {
                let steps = max(1, Int((seconds / 0.2).rounded()))
                for step in 1...steps {
                    out("Upgrading: running the upgrade's recipes (\(step)/\(steps))\n")
                    usleep(200_000)
                }
            }
        }
        return try store.update { cluster, now in
            guard let index = cluster.frontends.firstIndex(where: { $0.name == node }) else {
                err("chef-server-ctl: \(node) is not a simulated frontend\n")
                return 70
            }
            func setRunning(_ running: Bool) {
                let before = cluster.frontends[index].serving
                cluster.frontends[index].running = running
                if cluster.frontends[index].serving != before {
                    cluster.frontendTransitions.append(
                        FrontendTransition(time: now, frontend: node, serving: cluster.frontends[index].serving))
                }
            }
            switch arguments {
            case ["maintenance", "on"]:
                cluster.frontends[index].maintenance = true
                setRunning(cluster.frontends[index].running)
                out("Maintenance mode is now on: requests from outside the allow list get 503\n")
                return 0
            case ["maintenance", "off"]:
                cluster.frontends[index].maintenance = false
                setRunning(cluster.frontends[index].running)
                out("Maintenance mode is now off\n")
                return 0
            case ["reconfigure"]:
                // HAProxy must see exactly one backend UP (reference §10).
                guard cluster.currentLeader != nil else {
                    err("FATAL: HAProxy still showing multiple active backends (or none); is the backend cluster up?\n")
                    return 1
                }
                cluster.frontends[index].configuredMajor = Self.backendMajor(cluster)
                cluster.frontends[index].reconfigures += 1
                // reconfigure starts the enabled services.
                if !cluster.frontends[index].faults.contains(.doesNotStart) { setRunning(true) }
                out("Chef Infra Server Reconfigured!\n")
                return 0
            case ["stop"]:
                setRunning(false)
                for service in Self.services { out("ok: down: \(service): 0s, normally up\n") }
                return 0
            case ["start"]:
                for service in Self.services { out("ok: run: \(service): (pid \(4000 + service.count)) 0s\n") }
                // A frontend that does not come back: its services die right after they start.
                setRunning(!cluster.frontends[index].faults.contains(.doesNotStart))
                return 0
            case ["status"]:
                let frontend = cluster.frontends[index]
                for (offset, service) in Self.services.enumerated() {
                    out(
                        frontend.running
                            ? "run: \(service): (pid \(4000 + offset * 13)) 3600s; run: log: (pid \(3900 + offset)) 86400s\n"
                            : "down: \(service): 12s, normally up; run: log: (pid \(3900 + offset)) 86400s\n")
                }
                return 0
            case ["cleanup"]:
                cluster.frontends[index].cleanups += 1
                out("Cleaning up the data of the previous release...\nCleanup complete.\n")
                return 0
            case ["upgrade"]:
                return upgrade(&cluster, index)
            case let args where args.first == "reindex":
                guard args.count == 2 else {
                    err("Usage: chef-server-ctl reindex -a | ORGNAME\n")
                    return 1
                }
                guard cluster.currentLeader != nil else {
                    err("ERROR: cannot reach the search index: is the backend cluster up?\n")
                    return 1
                }
                out("Reindexing \(args[1] == "-a" || args[1] == "--all" ? "every organization" : args[1])\n")
                if cluster.indexes.isEmpty {
                    cluster.indexes = [SimulatedIndex(name: "chef", created: "6.8.23", health: "green")]
                }
                return 0
            default:
                err(
                    "chef-server-ctl: only stop, start, status, upgrade, reconfigure, cleanup, maintenance on|off and reindex are simulated\n"
                )
                return 1
            }
        }
    }

    /// `chef-server-ctl upgrade`: the license for 13 and later; the first frontend migrates the database and
    /// writes its migration level; another finds it already migrated and needs that level copied first.
    func upgrade(_ cluster: inout SimulatedCluster, _ index: Int) -> Int32 {
        let frontend = cluster.frontends[index]
        let major = Int(frontend.installedVersion.split(separator: ".").first ?? "") ?? 0
        if major >= 13, !["accept", "accept-silent", "accept-no-persist"].contains(environment["CHEF_LICENSE"] ?? "") {
            out("+---------------------------------------------+\n")
            out(
                "            Chef License Acceptance\n\nBefore you can continue, 1 product license\nmust be accepted.\n"
            )
            err("Chef License not accepted: run it on a terminal, or set CHEF_LICENSE=accept to accept it\n")
            return 172
        }
        if frontend.faults.contains(.upgradeFails) {
            out("Upgrading Chef Infra Server to \(frontend.installedVersion)\n")
            err("FATAL: Chef::Exceptions::Exec: the upgrade of \(node) failed (simulated)\n")
            return 1
        }
        let levelFile = frontend.hostPath(Self.migrationLevelPath)
        if frontend.faults.contains(.migrationLevelLost) { try? FileManager.default.removeItem(atPath: levelFile) }
        let fileLevel = (try? String(contentsOfFile: levelFile, encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let target = Self.migrationLevel(frontend.installedVersion)
        out("Upgrading Chef Infra Server to \(frontend.installedVersion)\n")
        if cluster.databaseMigrationLevel < target {
            // This frontend migrates the database (partybus); it must be at the database's current level.
            guard fileLevel == cluster.databaseMigrationLevel else {
                err(
                    "partybus: \(Self.migrationLevelPath) says \(fileLevel.map(String.init) ?? "nothing"), the database is at \(cluster.databaseMigrationLevel)\n"
                )
                return 1
            }
            out("Running partybus migrations \(cluster.databaseMigrationLevel + 1) to \(target)\n")
            cluster.databaseMigrationLevel = target
        } else if (fileLevel ?? 0) < cluster.databaseMigrationLevel {
            err(
                "partybus: the database is already at migration level \(cluster.databaseMigrationLevel), but \(Self.migrationLevelPath) says \(fileLevel.map(String.init) ?? "nothing"): copy it from the first upgraded frontend\n"
            )
            return 1
        }
        try? FileManager.default.createDirectory(
            atPath: (levelFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? "\(cluster.databaseMigrationLevel)\n".write(toFile: levelFile, atomically: true, encoding: .utf8)
        cluster.frontends[index].runningVersion = frontend.installedVersion
        out("Chef Infra Server Upgraded!\n")
        return 0
    }

    /// `dpkg -i FILE` / `rpm -Uvh [--nopostun] FILE` of a chef-server-core package file.
    func install(_ arguments: [String], format: String) throws -> Int32 {
        let valid =
            format == "deb"
            ? arguments.count == 2 && ["-i", "--install"].contains(arguments[0])
            : arguments.count >= 2 && arguments[0] == "-Uvh"
        guard valid, let path = arguments.last else {
            err(
                format == "deb"
                    ? "dpkg: only 'dpkg -i FILE.deb' is simulated\n"
                    : "rpm: only 'rpm -Uvh [--nopostun] FILE' is simulated\n")
            return 2
        }
        return try store.update { cluster, _ in
            guard let index = cluster.frontends.firstIndex(where: { $0.name == node }) else { return 70 }
            let file = cluster.frontends[index].hostPath(path)
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                err(
                    format == "deb"
                        ? "dpkg: error: cannot access archive '\(path)': No such file or directory\n"
                        : "error: open of \(path) failed: No such file or directory\n")
                return format == "deb" ? 2 : 1
            }
            guard text.hasPrefix("Package: chef-server-core\n"),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Version: ") })
            else {
                err("\(format == "deb" ? "dpkg-deb" : "rpm"): '\(path)' is not a chef-server-core package\n")
                return 2
            }
            let full = String(line.dropFirst("Version: ".count))
            let version = String(full.split(separator: "-").first ?? Substring(full))
            out(
                format == "deb"
                    ? "Preparing to unpack \(path) ...\nUnpacking chef-server-core (\(full)) over (\(cluster.frontends[index].installedVersion)-1) ...\nSetting up chef-server-core (\(full)) ...\n"
                    : "Updating / installing...\n   1:chef-server-core-\(full)     ################################# [100%]\n"
            )
            out("Thank you for installing Chef Infra Server! Run chef-server-ctl upgrade to finish.\n")
            cluster.frontends[index].installedVersion = version
            let manifest = cluster.frontends[index].hostPath(Self.manifestPath)
            try? FileManager.default.createDirectory(
                atPath: (manifest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try? (Self.manifest(version) + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
            return 0
        }
    }

    /// /opt/opscode/version-manifest.json of a release (its `build_version` is what Drover reads).
    public static func manifest(_ version: String) -> String {
        #"{"manifest_format":2,"software":{},"build_version":"\#(version)","build_git_revision":"simulated","license":"Chef EULA"}"#
    }

    /// `df -Pk PATH`: plenty of space.
    func df(_ arguments: [String]) -> Int32 {
        out(DfOutput.text(arguments, availableKB: DfOutput.plentyKB))
        return 0
    }

    /// `curl [-s] [-S] http://localhost:8000/_status`: pong while its services run, the backend cluster has a
    /// leader, the frontend is configured for it and no index is red; fail otherwise; refused when stopped.
    func curl(_ arguments: [String]) throws -> Int32 {
        let urls = arguments.filter { !$0.hasPrefix("-") }
        guard urls.count == 1, let url = urls.first,
            url.hasSuffix("localhost:8000/_status") || url.hasSuffix("127.0.0.1:8000/_status")
        else {
            err("curl: (7) Failed to connect: only http://localhost:8000/_status is simulated on a frontend\n")
            return 7
        }
        return try store.update { cluster, _ in
            guard let frontend = cluster.frontends.first(where: { $0.name == node }) else { return 7 }
            guard frontend.running else {
                err("curl: (7) Failed to connect to localhost port 8000 after 0 ms: Connection refused\n")
                return 7
            }
            out(Self.status(of: frontend, in: cluster).body)
            return 0
        }
    }

    /// erchef's `/_status` (reference §16): pong while the backend cluster has a leader, the frontend is
    /// configured for it and no index is red; fail otherwise.
    public static func status(
        of frontend: SimulatedFrontend, in cluster: SimulatedCluster
    ) -> (pong: Bool, body: String) {
        // Frontends configured for 1.x backends need `reconfigure` for 2.x (reference §11); 2.x → 3.x reconfigures
        // one frontend only, and the others keep working.
        let stale = frontend.configuredMajor < 2 && Self.backendMajor(cluster) >= 2
        let sql = cluster.currentLeader != nil && !stale
        let search =
            sql && cluster.members.contains(where: cluster.elasticsearchOnline)
            && !cluster.reportedIndexes.contains { $0.health == "red" }
        let upstreams =
            #"{"chef_elasticsearch":"\#(search ? "pong" : "fail")","chef_sql":"\#(sql ? "pong" : "fail")","oc_chef_authz":"pong"}"#
        let body =
            #"{"status":"\#(sql && search ? "pong" : "fail")","upstreams":\#(upstreams),"keygen":{"keys":10,"max":10,"max_workers":2,"cur_max_workers":2,"inflight":0,"avail_workers":2,"start_size":0},"indexing":{"mode":"batch"}}"#
        return (sql && search, body)
    }

    /// The HTTP answer to `GET /_status` from outside (through nginx): 200 with the body when it pongs, 500
    /// when an upstream fails, 503 in maintenance; nil while its services are stopped (nothing answers).
    public static func httpStatus(
        of frontend: SimulatedFrontend, in cluster: SimulatedCluster
    ) -> (code: Int, body: String)? {
        guard frontend.running else { return nil }
        if frontend.maintenance { return (503, #"{"error":"maintenance"}"#) }
        let status = status(of: frontend, in: cluster)
        return (status.pong ? 200 : 500, status.body)
    }
}
