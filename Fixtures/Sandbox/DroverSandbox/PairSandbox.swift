import DroverSSH
import DroverTestSupport
import Foundation
import SimulatedChefBackend

/// What the legacy DRBD pair sandbox (`drover-sandbox up --topology drbd-pair`) adds: two nodes, be1
/// Primary and master with the VIP, be2 Secondary and backup, answering `cat /proc/drbd`, `drbdadm` and
/// `chef-server-ctl` through the simulator.
public enum PairSandbox {
    /// The directories each pair node keeps private (Drover's lock lives in /var/opt/opscode).
    public static let privatePrefixes = ["/var/opt/opscode", "/root"]
    public static let tools = ["cat", "drbdadm", "chef-server-ctl", "private-chef-ctl"]

    /// Faults `break NODE FAULT [VALUES]` can inject into a pair (NODE is the node the fault is about).
    public static let faultNames = [
        "drbd-secondary-down", "drbd-primary-down", "drbd-primary-lost-unsynced", "drbd-both-secondary OOS1 OOS2",
        "drbd-split-brain", "drbd-resyncing", "keepalived-transition", "services-misplaced", "not-reconfigured",
        "chef-server-12", "chef-server-12.0", "chef-server-12.9",
    ]
}

extension Sandbox {
    public var pairStore: PairStateStore { PairStateStore(path: statePath) }

    func upPairBlocking(_ options: UpOptions) throws -> Record {
        try MountPoints.register(directory, prefixes: PairSandbox.privatePrefixes)
        var record = Record(
            nodes: [], topology: "drbd-pair", simulator: options.simulatorPath, started: Date(),
            packageVersion: "", packageFormat: "")
        try save(record)
        do {
            try prepareFiles(options, tools: PairSandbox.tools)
            let names = ["be1", "be2"]
            var addresses: [String] = []
            for name in names {
                let address = LoopbackAddresses.next(port: 22)
                addresses.append(address)
                for prefix in PairSandbox.privatePrefixes {
                    try FileManager.default.createDirectory(
                        atPath: directory + "/nodes/" + name + prefix, withIntermediateDirectories: true)
                }
                record.nodes.append(Record.Node(name: name, address: address, pid: nil))
            }
            try save(record)
            var pair = SimulatedPair.healthy(
                (names[0], addresses[0]), (names[1], addresses[1]), scale: options.delayScale)
            pair.fragileCommands = options.fragileCommands
            pair.recoverSeconds = options.upgradeSeconds
            try pairStore.save(pair)
            for index in record.nodes.indices {
                record.nodes[index].pid = try startPairServer(record.nodes[index].name, record.nodes[index].address)
                try save(record)
            }
            try writeSSHFiles(zip(names, addresses).map { ($0, $1) })
            let scale = options.delayScale
            let duration = Sandbox.durationText
            let inventory = """
                # Inventory of the drover-sandbox DRBD pair, written by `drover-sandbox up --topology drbd-pair`.
                cluster: \(options.cluster ?? "sandbox-pair")
                topology: drbd-pair
                drbd:
                  resource: pc0
                  ctl: chef-server-ctl
                \(inventorySSHBlock)
                backends:
                \(zip(names, addresses).map { "  - name: \($0)\n    host: \($1)" }.joined(separator: "\n"))
                timeouts:
                  transition: \(duration(max(30, 60 * scale)))
                  sync: \(duration(max(30, 120 * scale)))
                  poll_interval: \(duration(max(0.05, 0.5 * scale)))
                  stable_polls: 2

                """
            try inventory.write(toFile: inventoryPath, atomically: true, encoding: .utf8)
            return record
        } catch {
            try? downBlockingForPair()
            throw error
        }
    }

    private func downBlockingForPair() throws {
        guard let record = record() else { return }
        for node in record.nodes { if let pid = node.pid { Processes.stop(pid: pid, grace: .seconds(3)) } }
        try? FileManager.default.removeItem(atPath: directory)
        MountPoints.unregister(directory)
    }

    func startPairServer(_ name: String, _ address: String) throws -> Int32 {
        try startServer(
            name: name, ip: address, root: directory + "/nodes/" + name, prefixes: PairSandbox.privatePrefixes)
    }

    func pairStatusReport(_ record: Record) throws -> String {
        let pair = try pairStore.update { pair, _ in pair }
        var rows = [["node", "address", "sshd", "drbd", "role", "disk", "oos", "keepalived", "vip"]]
        for (index, entry) in record.nodes.enumerated() {
            let node = pair.nodes[index]
            let alive = entry.pid.map { Processes.isAlive($0) ? "pid \($0)" : "stopped" } ?? "stopped"
            rows.append([
                node.name, node.ip, alive, pair.connection(index), node.role, node.disk, String(node.outOfSync),
                "\(node.keepalived ? "running" : "stopped") \(node.current)", node.vip ? "held" : "-",
            ])
        }
        var text =
            "DRBD pair sandbox in \(directory) (started \(ISO8601DateFormatter().string(from: record.started)))\n"
        text += Formats.table(rows)
        if let sync = pair.sync { text += "resync: \(sync.target) from \(sync.source)\n" }
        if !pair.violations.isEmpty { text += "invariant violations: \(pair.violations.joined(separator: "; "))\n" }
        text += "inventory: \(inventoryPath)\nssh: ssh -F \(sshConfigPath) be1\n"
        return text
    }

    /// Stops a node's sshd (the host goes down).
    private func stopServer(_ name: String, record: inout Record) {
        guard let entry = record.nodes.firstIndex(where: { $0.name == name }), let pid = record.nodes[entry].pid else {
            return
        }
        let children = Processes.descendantIdentities(of: pid)
        Processes.stop(pid: pid)
        for child in children { Processes.stop(child, grace: .milliseconds(300)) }
        record.nodes[entry].pid = nil
    }

    func breakPairBlocking(_ name: String, fault: String, values: [String], record: Record) throws {
        var record = record
        var stop: String?
        try pairStore.update { pair, now in
            guard let me = pair.index(name) else { throw SandboxError.unknownNode(name) }
            let peer = me == 0 ? 1 : 0
            func require(_ role: String) throws {
                guard pair.nodes[me].role == role else {
                    throw SandboxError.invalid("\(name) is \(pair.nodes[me].role); \(fault) applies to the \(role)")
                }
            }
            switch fault {
            case "drbd-secondary-down":
                try require("Secondary")
                stop = name
                pair.nodes[me].unreachable = true
                pair.nodes[peer].outOfSync = 130_760
            case "drbd-primary-down", "drbd-primary-lost-unsynced":
                try require("Primary")
                stop = name
                // The host crashed: nothing of it runs any more.
                pair.nodes[me].unreachable = true
                pair.nodes[me].role = "Secondary"
                pair.nodes[me].running = []
                pair.nodes[me].vip = false
                pair.nodes[me].current = "backup"
                pair.nodes[me].requested = "backup"
                if fault == "drbd-primary-lost-unsynced" {
                    pair.nodes[peer].disk = "Inconsistent"
                    pair.nodes[peer].outOfSync = 40_552
                    pair.nodes[peer].standalone = true
                }
                pair.sync = nil
            case "drbd-both-secondary":
                guard values.count == 2, let first = Int(values[0]), let second = Int(values[1]) else {
                    throw SandboxError.invalid(
                        "drbd-both-secondary needs two out-of-sync amounts in KiB: OOS1 (for \(name)) OOS2 (for its peer)"
                    )
                }
                for index in [me, peer] {
                    pair.nodes[index].role = "Secondary"
                    pair.nodes[index].running = []
                    pair.nodes[index].vip = false
                    pair.nodes[index].current = "backup"
                    pair.nodes[index].requested = "backup"
                }
                pair.nodes[me].outOfSync = first
                pair.nodes[peer].outOfSync = second
                pair.sync = nil
            case "drbd-split-brain":
                for index in [me, peer] {
                    pair.nodes[index].role = "Primary"
                    pair.nodes[index].standalone = true
                    pair.nodes[index].current = "master"
                    pair.nodes[index].requested = "master"
                    pair.nodes[index].vip = true
                    pair.nodes[index].running = Set(SimulatedPair.haServices)
                }
                pair.sync = nil
            case "drbd-resyncing":
                try require("Secondary")
                pair.nodes[me].disk = "Inconsistent"
                pair.sync = PairSync(
                    source: pair.nodes[peer].name, target: name, totalKiB: 2_613_068, started: now,
                    seconds: 600)
            case "keepalived-transition":
                try require("Primary")
                pair.nodes[me].requested = "backup"
                pair.failover = PairFailover(from: name, to: pair.nodes[peer].name, completes: now + 3600)
            case "services-misplaced":
                try require("Secondary")
                pair.nodes[me].running = ["nginx", "opscode-erchef"]
            case "not-reconfigured":
                pair.nodes[me].reconfigured = false
            case "chef-server-12", "chef-server-12.0", "chef-server-12.9":
                // The pair's nodes print ha-status as that release does (both nodes: one installation).
                pair.chefServer = String(fault.dropFirst("chef-server-".count))
            default:
                throw SandboxError.unknownFault(fault)
            }
        }
        if let stop { stopServer(stop, record: &record) }
        try save(record)
    }

    /// Clears a pair node's faults. A node that was down comes back with DRBD up but, as the guide warns,
    /// possibly stuck at DUnknown; `fresh`: a newly built host (DRBD up, empty Inconsistent disk, waiting
    /// for its peer), as rebuild-partner's manual step leaves it.
    func healPairBlocking(_ name: String, fresh: Bool, record: Record) throws {
        var record = record
        try pairStore.update { pair, now in
            guard let me = pair.index(name) else { throw SandboxError.unknownNode(name) }
            let wasDown = pair.nodes[me].unreachable
            pair.nodes[me].unreachable = false
            pair.nodes[me].reconfigured = true
            if pair.failover?.from == name || pair.failover?.to == name {
                pair.failover = nil
                pair.nodes[me].requested = pair.nodes[me].current
            }
            if fresh {
                var node = SimulatedPairNode(name: name, ip: pair.nodes[me].ip)
                node.disk = "Inconsistent"
                pair.nodes[me] = node
            } else if wasDown {
                pair.nodes[me].stuck =
                    pair.nodes[me].role == "Secondary" && pair.nodes[me == 0 ? 1 : 0].role == "Primary"
            } else if !pair.nodes[me].isMaster {
                pair.nodes[me].running = []
            }
            pair.reconcile(now)
        }
        if let entry = record.nodes.firstIndex(where: { $0.name == name }),
            record.nodes[entry].pid.map({ !Processes.isAlive($0) }) ?? true
        {
            record.nodes[entry].pid = try startPairServer(name, record.nodes[entry].address)
            try save(record)
        }
    }
}
