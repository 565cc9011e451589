import DroverSSH
import DroverTestSupport
import Foundation
import SimulatedChefBackend

/// A simulated three-node Chef Backend cluster: one real sshd per node on its own loopback address
/// (port 22), each in its own mount namespace, answering through the chef-backend simulator.
///
/// Needs root (port 22 and bind mounts). Everything lives under ``directory``; `down` stops what `up`
/// started, by pid, and removes it.
public struct Sandbox: Sendable {
    /// What `up` records so later commands (status, break, heal, down) can find everything.
    public struct Record: Codable, Sendable {
        public struct Node: Codable, Sendable {
            public var name: String
            public var address: String
            public var pid: Int32?
            /// A frontend's `/_status` server over HTTP (port 80 of its address).
            public var statusPid: Int32? = nil
        }

        public var nodes: [Node]
        /// `chef-backend` (three nodes) or `drbd-pair` (two); absent in records of older sandboxes.
        public var topology: String?
        public var simulator: String
        public var started: Date
        public var packageVersion: String
        public var packageFormat: String
        /// The real data layer under the nodes (`up --real`), stopped by `down`.
        public var realDataLayer: RealDataLayer? = nil
    }

    public let directory: String

    public init(directory: String) {
        self.directory = (directory as NSString).standardizingPath
    }

    public var recordPath: String { directory + "/sandbox.json" }
    public var statePath: String { directory + "/state.json" }
    public var commandLog: String { directory + "/commands.log" }
    public var inventoryPath: String { directory + "/inventory.yml" }

    /// `drover COMMAND --inventory INVENTORY` for this sandbox, shell-quoted.
    public func drover(_ command: String) -> String {
        "drover \(command) --inventory \(ShellQuote.quote(inventoryPath))"
    }

    /// `drover-sandbox SUBCOMMAND ARGUMENTS --dir DIR` for this sandbox, shell-quoted: every hint carries its
    /// `--dir`, so that pasted it acts on this sandbox and no other.
    public func command(_ subcommand: String, _ arguments: String...) -> String {
        (["drover-sandbox", subcommand] + arguments + ["--dir", ShellQuote.quote(directory)]).joined(separator: " ")
    }
    public var knownHostsPath: String { directory + "/known_hosts" }
    public var identityPath: String { directory + "/id_ed25519" }
    public var sshConfigPath: String { directory + "/ssh_config" }
    public var store: StateStore { StateStore(path: statePath) }

    /// The record of a running sandbox, if there is one.
    public func record() -> Record? {
        guard let data = FileManager.default.contents(atPath: recordPath) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Record.self, from: data)
    }

    func save(_ record: Record) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(record).write(to: URL(fileURLWithPath: recordPath), options: .atomic)
    }

    // MARK: up

    /// A frontend's private directories: Chef Infra Server's installation and state, and /var/tmp for its
    /// package.
    static let frontendPrefixes = ["/var/opt/opscode", "/opt/opscode", "/var/tmp"]

    /// Options of `up`.
    public struct UpOptions: Sendable {
        public var version = "2.3.15"
        public var targetVersion = "2.3.16"
        public var packageFormat = "deb"
        /// Multiplies the simulator's delays (1: seconds, as in the demo; 0.05: tests).
        public var delayScale = 1.0
        public var simulatorPath: String
        /// `chef-backend` or `drbd-pair`.
        public var topology = "chef-backend"
        /// Chef Infra Server frontends (`fe1`, ...) beside a chef-backend cluster, reachable over SSH.
        public var frontends = 0
        /// chef-server-core on the frontends, and the version of the package waiting in their /var/tmp.
        public var frontendVersion = "14.0.65"
        public var frontendTarget = "15.9.38"
        /// The inventory's `cluster:` (several sandboxes in one fleet need names of their own); nil: `sandbox`,
        /// or `sandbox-pair` for a DRBD pair.
        public var cluster: String?
        /// Long commands die with their connection, as real programs do (``SimulatedCluster/fragileCommands``);
        public var fragileCommands = false
        /// How long a fragile `chef-backend-ctl upgrade` works with the node's services stopped (seconds).
        public var upgradeSeconds: Double = 3
        /// Fixtures/RealServices/datalayer.py: a real etcd and PostgreSQL under the nodes (root, Debian's
        /// postgresql-15, etcd-server, etcd-client, python3-psycopg2).
        public var realDataLayer: String?

        public init(simulatorPath: String) { self.simulatorPath = simulatorPath }
    }

    /// Starts the cluster and writes its inventory, known_hosts and ssh_config.
    ///
    /// Everything here blocks (key generation, flock, files, starting sshd): it runs on a thread of its
    /// own, never on Swift's cooperative pool. So do ``down()``, ``breakNode(_:fault:)`` and ``heal(_:fresh:)``.
    public func up(_ options: UpOptions) async throws -> Record {
        try await Processes.offPool { [self] in try upBlocking(options) }
    }

    private func upBlocking(_ options: UpOptions) throws -> Record {
        if let existing = record() {
            throw SandboxError.alreadyRunning(directory, existing.started)
        }
        guard geteuid() == 0 else { throw SandboxError.needsRoot }
        guard SSHServer.isAvailable else { throw SandboxError.missing(SSHServer.unavailableReason) }
        guard FileManager.default.isExecutableFile(atPath: options.simulatorPath) else {
            throw SandboxError.missing(
                "the simulator is not built at \(options.simulatorPath): run `swift build` first")
        }
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if options.topology == "drbd-pair" { return try upPairBlocking(options) }
        // Frontends keep their own /var/opt/opscode (Drover's node command records live there).
        try MountPoints.register(
            directory, prefixes: NodePaths.privatePrefixes + (options.frontends > 0 ? Self.frontendPrefixes : []))
        var record = Record(
            nodes: [], topology: "chef-backend", simulator: options.simulatorPath, started: Date(),
            packageVersion: options.targetVersion, packageFormat: options.packageFormat)
        try save(record)
        do {
            try prepareFiles(options)
            var nodes: [SimulatedNode] = []
            for index in 1...3 {
                let name = "be\(index)"
                let address = LoopbackAddresses.next(port: 22)
                nodes.append(
                    try Provisioning.node(
                        name: name, ip: address, directory: directory, version: options.version,
                        target: options.targetVersion, format: options.packageFormat, index: index))
                record.nodes.append(Record.Node(name: name, address: address, pid: nil))
            }
            try save(record)
            var cluster = SimulatedCluster(nodes: nodes, leader: "be1", delays: Delays(scale: options.delayScale))
            cluster.fragileCommands = options.fragileCommands
            cluster.upgradeSeconds = options.upgradeSeconds
            let major = Int(options.version.split(separator: ".").first ?? "0") ?? 0
            for index in 0..<max(0, options.frontends) {
                let name = "fe\(index + 1)"
                let address = LoopbackAddresses.next(port: 22)
                cluster.frontends.append(
                    SimulatedFrontend(
                        name: name, ip: address, root: directory + "/nodes/" + name, configuredMajor: major,
                        version: options.frontendVersion))
                record.nodes.append(Record.Node(name: name, address: address, pid: nil))
            }
            try save(record)
            cluster.databaseMigrationLevel = FrontendInvocation.migrationLevel(options.frontendVersion)
            for frontend in cluster.frontends {
                try provisionFrontend(frontend, target: options.frontendTarget, format: options.packageFormat)
            }
            if let script = options.realDataLayer {
                let real = try startRealDataLayer(script: script, nodes: nodes)
                record.realDataLayer = real
                try save(record)
                cluster.realDataLayer = real
            }
            try store.save(cluster)
            for (index, node) in nodes.enumerated() {
                record.nodes[index].pid = try startServer(node)
                try save(record)
            }
            for (offset, frontend) in cluster.frontends.enumerated() {
                record.nodes[nodes.count + offset].pid = try startServer(
                    name: frontend.name, ip: frontend.ip, root: frontend.root,
                    prefixes: Self.frontendPrefixes, kind: "frontend")
                try save(record)
                record.nodes[nodes.count + offset].statusPid = try startStatusServer(
                    frontend, simulator: record.simulator)
                try save(record)
            }
            try writeSSHFiles(nodes.map { ($0.name, $0.ip) } + cluster.frontends.map { ($0.name, $0.ip) })
            try writeInventory(
                nodes: nodes, frontends: cluster.frontends, options: options, real: record.realDataLayer)
            return record
        } catch {
            try? downBlocking()
            throw error
        }
    }

    func prepareFiles(
        _ options: UpOptions,
        tools: [String] = [
            "chef-backend-ctl", "dpkg", "dpkg-query", "rpm", "yum", "df", "curl", "chef-server-ctl", "rm", "mkdir",
        ]
    ) throws {
        let bin = directory + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for tool in tools {
            try? FileManager.default.removeItem(atPath: bin + "/" + tool)
            try FileManager.default.createSymbolicLink(
                atPath: bin + "/" + tool, withDestinationPath: options.simulatorPath)
        }
        if !FileManager.default.fileExists(atPath: identityPath) {
            let result = try Processes.run(
                "/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "drover-sandbox", "-f", identityPath])
            guard result.status == 0 else { throw SandboxError.missing("ssh-keygen failed: \(result.stderr)") }
        }
        _ = FileManager.default.createFile(atPath: commandLog, contents: nil)
    }

    private func startServer(_ node: SimulatedNode) throws -> Int32 {
        try startServer(name: node.name, ip: node.ip, root: node.root, prefixes: NodePaths.privatePrefixes)
    }

    /// Starts one node's sshd on `ip`:22, its `prefixes` bind-mounted from `root`; `kind` `frontend` for a
    /// Chef Infra Server frontend.
    func startServer(name: String, ip: String, root: String, prefixes: [String], kind: String? = nil) throws -> Int32 {
        let publicKey = try String(contentsOfFile: identityPath + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard let record = record() else { throw SandboxError.notRunning(directory) }
        let environment = [
            "DROVER_SIM_NODE": name, "DROVER_SIM_STATE": statePath, "DROVER_SIM_LOG": commandLog,
            "PATH": directory + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
        ].merging(kind.map { ["DROVER_SIM_KIND": $0] } ?? [:]) { $1 }
        let configuration = SSHServerConfiguration(
            port: 22, authorizedKeys: [publicKey], environment: environment, hostKeyTypes: ["ed25519", "ecdsa"],
            extraConfig: ["ForceCommand \(record.simulator) login"],
            bindMounts: prefixes.map { (source: root + $0, target: $0) }, hostname: name,
            address: ip, directory: directory + "/sshd/" + name)
        let server = try SSHServer(configuration)
        server.detach()
        return server.pid
    }

    /// known_hosts (both host key types of every node) and an ssh_config with one Host entry per node.
    func writeSSHFiles(_ nodes: [(name: String, ip: String)]) throws {
        var knownHosts = ""
        var sshConfig = "# ssh -F \(sshConfigPath) be1\n"
        for node in nodes {
            for type in ["ed25519", "ecdsa"] {
                let key = try String(
                    contentsOfFile: directory + "/sshd/\(node.name)/ssh_host_\(type)_key.pub", encoding: .utf8)
                knownHosts += node.ip + " " + key.split(separator: " ").prefix(2).joined(separator: " ") + "\n"
            }
            sshConfig += """
                Host \(node.name)
                  HostName \(node.ip)
                  User root
                  IdentityFile \(identityPath)
                  IdentitiesOnly yes
                  UserKnownHostsFile \(knownHostsPath)
                  StrictHostKeyChecking yes
                  LogLevel ERROR

                """
        }
        try knownHosts.write(toFile: knownHostsPath, atomically: true, encoding: .utf8)
        try sshConfig.write(toFile: sshConfigPath, atomically: true, encoding: .utf8)
    }

    /// The inventory's `ssh:` block: the sandbox's key, known_hosts and short timeouts.
    var inventorySSHBlock: String {
        """
        ssh:
          user: root
          port: 22
          identity_files: [\(identityPath)]
          known_hosts: \(knownHostsPath)
          host_key_checking: strict
          connect_timeout: 5s
          command_timeout: 5m
        """
    }

    /// A duration as inventories write it: `50ms` below a second, else whole seconds.
    static func durationText(_ seconds: Double) -> String {
        seconds < 1 ? "\(max(10, Int(seconds * 1000)))ms" : "\(Int(seconds.rounded(.up)))s"
    }

    /// The inventory's `probe:` over a real data layer: one write through the multi-host connection (the
    /// values as JSON strings, which YAML reads as they are).
    static func probeBlock(_ real: RealDataLayer?) throws -> String {
        guard let real else { return "" }
        let argv = [real.python, real.script, "probe", "--dir", real.directory]
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: argv, options: [.withoutEscapingSlashes]),
            as: UTF8.self)
        // A Python start and a connection: a busy machine may take seconds, which is not a write failing.
        return "probe:\n  command: \(json)\n  interval: 500ms\n  timeout: 10s\n"
    }

    private func writeInventory(
        nodes: [SimulatedNode], frontends: [SimulatedFrontend], options: UpOptions, real: RealDataLayer? = nil
    ) throws {
        let scale = options.delayScale
        let duration = Self.durationText
        let inventory = """
            # Inventory of the drover-sandbox cluster, written by `drover-sandbox up`.
            cluster: \(options.cluster ?? "sandbox")
            \(inventorySSHBlock)
            package:
              path: /var/tmp/\(Provisioning.packageName(version: options.targetVersion, format: options.packageFormat))
              version: \(options.targetVersion)
            backends:
            \(nodes.map { "  - name: \($0.name)\n    host: \($0.ip)" }.joined(separator: "\n"))
            \(frontends.isEmpty ? "" : "frontends:\n" + frontends.map { "  - name: \($0.name)\n    host: \($0.ip)\n    status_url: \(Self.statusURL($0))" }.joined(separator: "\n") + "\n" + frontendPackageBlock(options))\(try Self.probeBlock(real))timeouts:
              rejoin: \(duration(max(30, 60 * scale)))
              failover: \(duration(max(30, 60 * scale)))
              poll_interval: \(duration(max(0.05, 0.5 * scale)))
              stable_polls: 2

            """
        try inventory.write(toFile: inventoryPath, atomically: true, encoding: .utf8)
    }

    // MARK: down

    /// Stops every sshd the sandbox started (and their sessions) by pid, then removes its files.
    public func down() async throws {
        try await Processes.offPool { [self] in try downBlocking() }
    }

    /// Starts datalayer.py's etcd members, PostgreSQL instances and leaderl stand-ins on the nodes' addresses,
    /// in a directory the postgres user can reach (the sandbox's own is root's only).
    private func startRealDataLayer(script: String, nodes: [SimulatedNode]) throws -> RealDataLayer {
        guard FileManager.default.isReadableFile(atPath: script) else {
            throw SandboxError.missing("the real data layer's script is not at \(script)")
        }
        let real = RealDataLayer(
            directory: "/tmp/drover-real-\(UUID().uuidString.prefix(8).lowercased())", script: script)
        let output = try Processes.run(
            real.python,
            [
                script, "up", "--dir", real.directory, "--nodes",
                nodes.map { "\($0.name)=\($0.ip)" }.joined(separator: ","),
            ],
            timeout: .seconds(120))
        guard output.status == 0 else {
            _ = try? Processes.run(real.python, [script, "down", "--dir", real.directory], timeout: .seconds(60))
            throw SandboxError.missing(
                "the real data layer did not start (make test-deps installs postgresql-15, etcd-server, etcd-client and python3-psycopg2): \(output.stderr.suffix(600))"
            )
        }
        return real
    }

    private func downBlocking() throws {
        guard let record = record() else { throw SandboxError.notRunning(directory) }
        if let real = record.realDataLayer {
            _ = try? Processes.run(real.python, [real.script, "down", "--dir", real.directory], timeout: .seconds(60))
        }
        for node in record.nodes {
            if let pid = node.statusPid { Processes.stop(pid: pid, grace: .seconds(1)) }
            guard let pid = node.pid else { continue }
            let children = Processes.descendantIdentities(of: pid)
            Processes.stop(pid: pid, grace: .seconds(3))
            for child in children { Processes.stop(child, grace: .milliseconds(500)) }
        }
        try? FileManager.default.removeItem(atPath: directory)
        MountPoints.unregister(directory)
    }

    /// Runs the write load against the real data layer (`up --real`) and returns its ledger (one JSON line).
    public func load(seconds: Double, rate: Double) async throws -> String {
        try await Processes.offPool { [self] in
            guard let record = record() else { throw SandboxError.notRunning(directory) }
            guard let real = record.realDataLayer else {
                throw SandboxError.missing(
                    "this sandbox has no real data layer: start it with `drover-sandbox up --real`")
            }
            let output = try Processes.run(
                real.python,
                [real.script, "load", "--dir", real.directory, "--seconds", String(seconds), "--rate", String(rate)],
                timeout: .seconds(seconds + 120))
            guard output.status == 0, let line = output.stdout.split(separator: "\n").last else {
                throw SandboxError.missing("the write load printed no ledger: \(output.stderr.suffix(600))")
            }
            return String(line)
        }
    }

    /// Pids of sshd servers that are still running.
    public func runningPids() -> [Int32] {
        (record()?.nodes.flatMap { [$0.pid, $0.statusPid].compactMap { $0 } } ?? []).filter { Processes.isAlive($0) }
    }

    // MARK: status

    /// A human-readable summary of the sandbox and the simulated cluster.
    public func statusReport() throws -> String {
        guard let record = record() else { throw SandboxError.notRunning(directory) }
        if record.topology == "drbd-pair" { return try pairStatusReport(record) }
        let cluster = try store.update { cluster, _ in cluster }
        var rows = [["node", "address", "sshd", "phase", "role", "running", "faults"]]
        for (node, entry) in zip(cluster.nodes, record.nodes) {
            let alive = entry.pid.map { Processes.isAlive($0) ? "pid \($0)" : "stopped" } ?? "stopped"
            rows.append([
                node.name, node.ip, alive, SimulatedCluster.label(node.phase), cluster.role(of: node) ?? "-",
                node.runningVersion,
                (node.faults.map(\.rawValue) + node.servicesDown.sorted().map { "service-down:\($0)" }
                    + (node.unreachable ? ["unreachable"] : [])).joined(separator: ","),
            ])
        }
        for frontend in cluster.frontends {
            let alive =
                record.nodes.first { $0.name == frontend.name }?.pid
                .map { Processes.isAlive($0) ? "pid \($0)" : "stopped" } ?? "stopped"
            rows.append([
                frontend.name, frontend.ip, alive, frontend.running ? "serving" : "stopped", "frontend",
                frontend.runningVersion, frontend.faults.map(\.rawValue).sorted().joined(separator: ","),
            ])
        }
        var text = "Sandbox in \(directory) (started \(ISO8601DateFormatter().string(from: record.started)))\n"
        text += Formats.table(rows)
        text +=
            "leader: \(cluster.currentLeader?.name ?? "none"); cluster failover: \(cluster.clusterFailover ? "on" : "off"); outages recorded: \(cluster.outages.count)\n"
        if let real = record.realDataLayer {
            text += "real data layer: \(real.directory) (the leader is the holder of its etcd election)\n"
        }
        text += "inventory: \(inventoryPath)\nssh: ssh -F \(sshConfigPath) be1\n"
        return text
    }

    // MARK: faults

    /// Faults `break` can inject.
    public static let faultNames =
        Fault.allCases.map(\.rawValue) + [
            "unreachable", "service-down:SERVICE", "partition", "two-nodes-lost", "deposed-leader", "partially-synced",
            "es-old-index [VERSION]", "es-index-unhealthy [HEALTH]", "slow-promotion SECONDS",
        ]

    /// Injects a fault into one node (or, for partition, the whole cluster).
    public func breakNode(_ name: String, fault: String, values: [String] = []) async throws {
        try await Processes.offPool { [self] in try breakNodeBlocking(name, fault: fault, values: values) }
    }

    private func breakNodeBlocking(_ name: String, fault: String, values: [String]) throws {
        guard var record = record() else { throw SandboxError.notRunning(directory) }
        if record.topology == "drbd-pair" {
            return try breakPairBlocking(name, fault: fault, values: values, record: record)
        }
        guard let recordIndex = record.nodes.firstIndex(where: { $0.name == name }) else {
            throw SandboxError.unknownNode(name)
        }
        if try breakFrontend(name, fault: fault) { return }
        if let command = Self.realFaults[fault] {
            guard let real = record.realDataLayer else {
                throw SandboxError.invalid(
                    "\(fault) is a fault of the real data layer: start the sandbox with `up --real`")
            }
            try runRealDataLayer(real, [command, "--node", name])
            return
        }
        var stopNodes: [String] = []
        try store.update { cluster, now in
            guard let index = cluster.index(name) else { throw SandboxError.unknownNode(name) }
            if let known = Fault(rawValue: fault) {
                cluster.nodes[index].faults.insert(known)
                return
            }
            switch fault {
            case "es-old-index":
                // The chef index was created by an Elasticsearch older than 5.6.16 (default 5.4.1).
                cluster.indexes = cluster.indexes.map {
                    SimulatedIndex(name: $0.name, created: values.first ?? "5.4.1", health: $0.health)
                }
            case "slow-promotion":
                // Every promotion from now on takes SECONDS (pgsql-promote waiting for recovery, chef-backend
                // 1.3.2 and later): the whole cluster's, whichever node is named.
                guard let seconds = values.first.flatMap(Double.init), seconds > 0 else {
                    throw SandboxError.invalid("slow-promotion takes the promotion's seconds, such as 20")
                }
                cluster.promotionSeconds = seconds
            case "es-index-unhealthy":
                cluster.indexes = cluster.indexes.map {
                    SimulatedIndex(name: $0.name, created: $0.created, health: values.first ?? "yellow")
                }
            case "unreachable":
                stopNodes = [name]
                markUnreachable(&cluster, index, now)
            case let value where value.hasPrefix("service-down:"):
                let service = String(value.dropFirst("service-down:".count))
                guard SimulatedCluster.services.contains(service) else { throw SandboxError.unknownFault(fault) }
                cluster.nodes[index].servicesDown.insert(service)
                cluster.nodes[index].serviceSince[service] = now
            case "partition":
                cluster.election = nil
                cluster.setLeader(nil, at: now)
                for other in cluster.nodes.indices where cluster.nodes[other].isMember {
                    cluster.setPhase(other, .waiting, at: now)
                }
            case "two-nodes-lost":
                cluster.election = nil
                cluster.setLeader(nil, at: now)
                for other in cluster.nodes.indices where other != index {
                    stopNodes.append(cluster.nodes[other].name)
                    cluster.nodes[other].unreachable = true
                    cluster.setPhase(other, .waiting, at: now)
                }
                cluster.setPhase(index, .waiting, at: now)
            case "deposed-leader":
                guard cluster.currentLeader?.name == name else {
                    throw SandboxError.invalid("\(name) is not the leader; deposed-leader applies to the leader")
                }
                cluster.election = nil
                cluster.setLeader(nil, at: now)
                cluster.setPhase(index, .deposed, at: now)
                cluster.writeSentinel(index, NodePaths.noStartPgsql, present: true)
                for other in cluster.nodes.indices where other != index && cluster.nodes[other].isMember {
                    cluster.setPhase(other, .waiting, at: now)
                }
            case "partially-synced":
                cluster.setPhase(index, .partiallySynced, at: now)
                cluster.writeSentinel(index, NodePaths.unsynced, present: true)
            default:
                throw SandboxError.unknownFault(fault)
            }
        }
        for node in stopNodes {
            guard let entry = record.nodes.firstIndex(where: { $0.name == node }), let pid = record.nodes[entry].pid
            else { continue }
            let children = Processes.descendantIdentities(of: pid)
            Processes.stop(pid: pid)
            for child in children { Processes.stop(child, grace: .milliseconds(300)) }
            record.nodes[entry].pid = nil
        }
        _ = recordIndex
        try save(record)
    }

    /// The real data layer's faults (`up --real`) and the datalayer.py command of each.
    public static let realFaults = [
        "postgres-killed": "kill", "replay-paused": "pause-replay", "etcd-stopped": "stop-etcd",
    ]

    /// Runs `datalayer.py COMMAND --dir DIR ARGUMENTS`; throws with its error when it fails.
    func runRealDataLayer(_ real: RealDataLayer, _ arguments: [String]) throws {
        let command = arguments.first ?? ""
        let output = try Processes.run(
            real.python, [real.script, command, "--dir", real.directory] + arguments.dropFirst(),
            timeout: .seconds(120))
        guard output.status == 0 else {
            throw SandboxError.invalid("datalayer.py \(command) failed: \(output.stderr.suffix(400))")
        }
    }

    private func markUnreachable(_ cluster: inout SimulatedCluster, _ index: Int, _ now: Date) {
        cluster.nodes[index].unreachable = true
        guard cluster.leader == cluster.nodes[index].name else { return }
        cluster.setLeader(nil, at: now)
        if cluster.clusterFailover,
            let candidate = cluster.members.first(where: {
                $0.name != cluster.nodes[index].name && $0.phase == .synced && $0.nodeFailover && !$0.unreachable
            })
        {
            cluster.election = Election(
                completes: now + cluster.delays.seconds(cluster.delays.election), winner: candidate.name)
        }
    }

    /// Clears a node's faults; an unreachable node's sshd is started again and the node re-syncs. With
    /// `fresh`, the node comes back as a newly installed machine: chef-backend installed at the cluster's
    /// version, no configuration, no data, not a member (for replace and quorum-loss runbooks).
    public func heal(_ name: String, fresh: Bool = false) async throws {
        try await Processes.offPool { [self] in try healBlocking(name, fresh: fresh) }
    }

    private func healBlocking(_ name: String, fresh: Bool) throws {
        guard var record = record() else { throw SandboxError.notRunning(directory) }
        if record.topology == "drbd-pair" { return try healPairBlocking(name, fresh: fresh, record: record) }
        guard let entry = record.nodes.firstIndex(where: { $0.name == name }) else {
            throw SandboxError.unknownNode(name)
        }
        if try healFrontend(name) { return }
        if let real = record.realDataLayer {
            // The real faults undone: replay resumed, the etcd member started again, and a PostgreSQL held down
            // (an upgrade that failed) let go; a killed PostgreSQL needs nothing (its leaderl starts it again).
            let status = try Processes.run(
                real.python, [real.script, "status", "--dir", real.directory], timeout: .seconds(60))
            let members =
                (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["etcd"]
                as? [String: Bool]
            if members?[name] == false { try runRealDataLayer(real, ["start-etcd", "--node", name]) }
            try? runRealDataLayer(real, ["resume-replay", "--node", name])
            try runRealDataLayer(real, ["release", "--node", name])
        }
        let node: SimulatedNode = try store.update { cluster, now in
            guard let index = cluster.index(name) else { throw SandboxError.unknownNode(name) }
            cluster.nodes[index].faults = []
            cluster.promotionSeconds = nil
            if fresh {
                let node = cluster.nodes[index]
                for path in ["/etc/chef-backend", "/var/opt/chef-backend"] {
                    for file in (try? FileManager.default.contentsOfDirectory(atPath: node.hostPath(path))) ?? [] {
                        try? FileManager.default.removeItem(atPath: node.hostPath(path) + "/" + file)
                    }
                }
                // A new machine in the node's slot: the old member stays in etcd until remove-node (or
                // create-cluster --quorum-loss-recovery) drops it.
                cluster.nodes[index].unreachable = false
                cluster.nodes[index].servicesDown = Set(SimulatedCluster.services)
                if cluster.leader == name { cluster.setLeader(nil, at: now) }
                return cluster.nodes[index]
            }
            for service in cluster.nodes[index].servicesDown {
                cluster.nodes[index].serviceSince[service] = now
            }
            cluster.nodes[index].servicesDown = []
            if cluster.nodes[index].unreachable {
                cluster.nodes[index].unreachable = false
                if cluster.nodes[index].isMember {
                    cluster.setPhase(
                        index, .rejoining(until: now + cluster.delays.seconds(cluster.delays.rejoin)), at: now)
                }
            } else if cluster.nodes[index].phase == .waiting, cluster.currentLeader != nil {
                cluster.setPhase(index, .rejoining(until: now + cluster.delays.seconds(cluster.delays.rejoin)), at: now)
            }
            return cluster.nodes[index]
        }
        if record.nodes[entry].pid.map({ !Processes.isAlive($0) }) ?? true {
            record.nodes[entry].pid = try startServer(node)
            try save(record)
        }
    }
}

/// The host directories the sandboxes bind-mount over (/opt/chef-backend, ...) must exist. Sandboxes
/// create the missing ones and the last sandbox to go down removes them: removing one while another
/// sandbox runs would detach that sandbox's bind mounts (Linux detaches mounts on a removed directory in
/// every mount namespace). A registry under /run, updated under flock, tracks both.
enum MountPoints {
    static let registry = "/run/drover-sandboxes"

    static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        try? FileManager.default.createDirectory(atPath: registry, withIntermediateDirectories: true)
        let fd = open(registry + "/.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        defer { if fd >= 0 { close(fd) } }
        if fd >= 0 { flock(fd, LOCK_EX) }
        return try body()
    }

    static func entry(_ directory: String) -> String {
        registry + "/" + Digest.sha256Hex(Data(directory.utf8)).prefix(16)
    }

    static var createdList: String { registry + "/created-mount-points" }

    static func register(_ directory: String, prefixes: [String]) throws {
        try withLock {
            var created = ((try? String(contentsOfFile: createdList, encoding: .utf8)) ?? "").split(separator: "\n")
                .map(String.init)
            for path in prefixes where !FileManager.default.fileExists(atPath: path) {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                created.append(path)
            }
            try created.joined(separator: "\n").write(toFile: createdList, atomically: true, encoding: .utf8)
            try directory.write(toFile: entry(directory), atomically: true, encoding: .utf8)
        }
    }

    static func unregister(_ directory: String) {
        withLock {
            try? FileManager.default.removeItem(atPath: entry(directory))
            let others = ((try? FileManager.default.contentsOfDirectory(atPath: registry)) ?? [])
                .filter { $0 != ".lock" && $0 != "created-mount-points" }
            guard others.isEmpty else { return }
            let created = ((try? String(contentsOfFile: createdList, encoding: .utf8)) ?? "").split(separator: "\n")
                .map(String.init)
            for path in created.reversed()
            where (try? FileManager.default.contentsOfDirectory(atPath: path))?.isEmpty == true {
                try? FileManager.default.removeItem(atPath: path)
            }
            try? FileManager.default.removeItem(atPath: registry)
        }
    }
}

/// Errors of the sandbox, each with what to do.
public enum SandboxError: LocalizedError {
    case alreadyRunning(String, Date)
    case notRunning(String)
    case needsRoot
    case missing(String)
    case unknownNode(String)
    case unknownFault(String)
    case invalid(String)

    public var errorDescription: String? {
        switch self {
        case .alreadyRunning(let directory, let started):
            return
                "a sandbox is already running in \(directory) (started \(ISO8601DateFormatter().string(from: started))); stop it with `\(Sandbox(directory: directory).command("down"))` or choose another --dir"
        case .notRunning(let directory):
            return "no sandbox in \(directory); start one with `\(Sandbox(directory: directory).command("up"))`"
        case .needsRoot:
            return
                "the sandbox needs root: each node's sshd listens on port 22 and keeps its files private with bind mounts in its own mount namespace; run it as root (sudo)"
        case .missing(let message):
            return message
        case .unknownNode(let name):
            return "no node named \(name) in the sandbox; nodes are be1, be2, be3 (be1, be2 in a drbd-pair sandbox)"
        case .unknownFault(let fault):
            return
                "unknown fault \(fault); faults: \(Sandbox.faultNames.joined(separator: ", ")); in a drbd-pair sandbox: \(PairSandbox.faultNames.joined(separator: ", "))"
        case .invalid(let message):
            return message
        }
    }
}
