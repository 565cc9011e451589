import Foundation

/// One invocation of a simulated tool on a node of the DRBD pair: `cat /proc/drbd`, `drbdadm`,
/// `chef-server-ctl` / `private-chef-ctl` (ha-status, stop, start, status, master-recover, backup-recover).
public struct PairInvocation {
    public let node: String
    public let store: PairStateStore
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(node: String, store: PairStateStore, out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.node = node
        self.store = store
        self.out = out
        self.err = err
    }

    public static let tools = ["drbdadm", "chef-server-ctl", "private-chef-ctl"]

    public func run(tool: String, arguments: [String]) -> Int32 {
        do {
            switch tool {
            case "cat": return try procDRBD()
            case "drbdadm": return try drbdadm(arguments)
            case "chef-server-ctl", "private-chef-ctl": return try ctl(tool, arguments)
            default:
                err("\(tool): not simulated\n")
                return 127
            }
        } catch {
            err("\(error.localizedDescription)\n")
            return 70
        }
    }

    // MARK: /proc/drbd

    func procDRBD() throws -> Int32 {
        try store.update { pair, now in
            out(PairFormats.procDRBD(pair, node: pair.index(node)!, now: now))
            return 0
        }
    }

    // MARK: drbdadm

    func drbdadm(_ arguments: [String]) throws -> Int32 {
        let words = arguments.filter { $0 != "--" }
        let force = words.contains("--force") || words.contains("--overwrite-data-of-peer")
        let rest = words.filter { !$0.hasPrefix("-") }
        guard rest.count == 2 else {
            err("USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}\n")
            return 20
        }
        let (command, resource) = (rest[0], rest[1])
        return try store.update { pair, now in
            guard resource == pair.resource else {
                err("'\(resource)' not defined in your config (for this host).\n")
                return 10
            }
            let me = pair.index(node)!
            let peer = pair.peerIndex(me)
            func fail(_ message: String, _ code: Int32 = 11) -> Int32 {
                err("0: State change failed: \(message)\n")
                return code
            }
            switch command {
            case "role":
                out(
                    pair.nodes[me].resourceUp
                        ? "\(pair.nodes[me].role)/\(PairFormats.peerRole(pair, me))\n" : "Unconfigured\n")
                return 0
            case "primary":
                guard pair.nodes[me].resourceUp else {
                    err("0: Failure: (127) Device minor not allocated\n")
                    return 10
                }
                if pair.nodes[peer].role == "Primary" && !pair.nodes[peer].unreachable {
                    pair.violations.append("drbdadm primary on \(node) while \(pair.nodes[peer].name) is Primary")
                    if pair.connected(me) { return fail("(-1) Multiple primaries not allowed by config") }
                }
                if pair.nodes[me].disk != "UpToDate" {
                    guard force else { return fail("(-2) Need access to UpToDate data") }
                    pair.forcedPromotions.append(node)
                    pair.nodes[me].disk = "UpToDate"
                }
                pair.nodes[me].role = "Primary"
                pair.reconcile(now)
                return 0
            case "secondary":
                guard pair.nodes[me].running.isEmpty else { return fail("(-12) Device is held open by someone") }
                pair.nodes[me].role = "Secondary"
                return 0
            case "connect":
                pair.nodes[me].standalone = false
                pair.reconcile(now)
                return 0
            case "disconnect":
                pair.nodes[me].standalone = true
                pair.sync = nil
                return 0
            case "up":
                guard pair.nodes[me].metadata else {
                    err(
                        "No valid meta data found\nCommand 'drbdmeta 0 v08 /dev/opscode/drbd internal apply-al' terminated with exit code 255\n"
                    )
                    return 10
                }
                pair.nodes[me].resourceUp = true
                pair.nodes[me].standalone = false
                pair.nodes[me].stuck = false
                pair.nodes[pair.peerIndex(me)].stuck = false
                pair.reconcile(now)
                return 0
            case "down":
                guard pair.nodes[me].running.isEmpty || pair.nodes[me].role != "Primary" else {
                    return fail("(-12) Device is held open by someone")
                }
                pair.nodes[me].resourceUp = false
                pair.nodes[me].role = "Secondary"
                pair.nodes[me].stuck = false
                pair.sync = nil
                return 0
            case "wipe-md":
                guard !pair.nodes[me].resourceUp else {
                    err(
                        "Device '0' is configured!\nCommand 'drbdmeta 0 v08 /dev/opscode/drbd internal wipe-md' terminated with exit code 20\n"
                    )
                    return 20
                }
                let mine = pair.nodes[me]
                let theirs = pair.nodes[peer]
                if mine.disk == "UpToDate" && theirs.disk != "UpToDate" || mine.outOfSync < theirs.outOfSync
                    || theirs.unreachable
                {
                    pair.violations.append("drbdadm wipe-md on \(node), which held the data to keep")
                }
                pair.nodes[me].metadata = false
                pair.nodes[me].disk = "Diskless"
                out("Wiping meta data...\nDRBD meta data block successfully wiped out.\n")
                return 0
            case "create-md":
                pair.nodes[me].metadata = true
                pair.nodes[me].disk = "Inconsistent"
                pair.nodes[me].outOfSync = 0
                out("Writing meta data...\nNew drbd meta data block successfully created.\n")
                return 0
            default:
                err("drbdadm: Unknown command '\(command)'\n")
                return 20
            }
        }
    }

    // MARK: chef-server-ctl

    /// `master-recover` as a real one behaves: the node becomes master at once, then its services start one
    /// at a time, a line each; a write to a connection that is gone ends the process (SIGPIPE) with the rest
    /// of the services down.
    func fragileMasterRecover() throws -> Int32 {
        let seconds: Double? = try store.update { pair, _ in
            let me = pair.index(node)!
            guard pair.nodes[me].role == "Primary" else {
                pair.violations.append("master-recover on \(node), which is not DRBD Primary")
                return nil
            }
            pair.nodes[me].keepalived = true
            pair.nodes[me].requested = "master"
            pair.nodes[me].current = "master"
            pair.nodes[me].vip = true
            pair.nodes[me].running = []
            return pair.recoverSeconds
        }
        guard let seconds else {
            err("cluster.sh: cannot become master: DRBD is not Primary on this node\n")
            return 1
        }
        let services = SimulatedPair.haServices
        for service in services {
            usleep(useconds_t(seconds / Double(services.count) * 1_000_000))
            out("ok: run: \(service)\n")
            try store.update { pair, _ in pair.nodes[pair.index(node)!].running.insert(service) }
        }
        return 0
    }

    func ctl(_ tool: String, _ arguments: [String]) throws -> Int32 {
        guard let command = arguments.first else {
            err("\(tool): missing command\n")
            return 1
        }
        let service = arguments.dropFirst().first
        if command == "master-recover", try store.update({ pair, _ in pair.fragileCommands }) {
            return try fragileMasterRecover()
        }
        return try store.update { pair, now in
            let me = pair.index(node)!
            let peer = pair.peerIndex(me)
            switch command {
            case "ha-status":
                let (text, status) = PairFormats.haStatus(pair, me)
                out(text)
                return status
            case "status":
                // Before a reconfigure there is nothing under runit to show.
                if pair.nodes[me].reconfigured { out(PairFormats.runitStatus(pair.nodes[me])) }
                return 0
            case "stop":
                switch service {
                case nil:
                    pair.nodes[me].running = []
                    pair.nodes[me].keepalived = false
                case "keepalived"?:
                    pair.nodes[me].keepalived = false
                    let other = pair.nodes[peer]
                    if pair.nodes[me].isMaster, pair.failover == nil, !other.unreachable, other.keepalived,
                        other.disk == "UpToDate", pair.connected(me)
                    {
                        pair.nodes[me].requested = "backup"
                        pair.nodes[peer].requested = "master"
                        pair.failover = PairFailover(
                            from: node, to: other.name, completes: now + pair.seconds(pair.failoverSeconds))
                    }
                case let name?:
                    pair.nodes[me].running.remove(name)
                }
                out("ok: down: \(service ?? "all services")\n")
                return 0
            case "start":
                switch service {
                case nil:
                    pair.nodes[me].keepalived = true
                    if pair.nodes[me].isMaster { pair.nodes[me].running = Set(SimulatedPair.haServices) }
                case "keepalived"?:
                    pair.nodes[me].keepalived = true
                case let name?:
                    pair.nodes[me].running.insert(name)
                }
                out("ok: run: \(service ?? "all services")\n")
                return 0
            case "master-recover":
                guard pair.nodes[me].role == "Primary" else {
                    pair.violations.append("master-recover on \(node), which is not DRBD Primary")
                    err(
                        "cluster.sh: cannot become master: DRBD \(pair.resource) is \(pair.nodes[me].role) on this node\n"
                    )
                    return 1
                }
                pair.nodes[me].keepalived = true
                pair.nodes[me].requested = "master"
                pair.nodes[me].current = "master"
                pair.nodes[me].vip = true
                pair.nodes[me].running = Set(SimulatedPair.haServices)
                return 0
            case "backup-recover":
                pair.nodes[me].running = []
                pair.nodes[me].vip = false
                pair.nodes[me].requested = "backup"
                pair.nodes[me].current = "backup"
                pair.nodes[me].role = "Secondary"
                return 0
            default:
                err("\(tool): unknown command '\(command)'\n")
                return 1
            }
        }
    }
}

/// The documented outputs of the pair's commands, rendered from the state.
public enum PairFormats {
    static func peerRole(_ pair: SimulatedPair, _ index: Int) -> String {
        pair.connected(index) ? pair.nodes[pair.peerIndex(index)].role : "Unknown"
    }

    static func peerDisk(_ pair: SimulatedPair, _ index: Int) -> String {
        pair.connected(index) ? pair.nodes[pair.peerIndex(index)].disk : "DUnknown"
    }

    /// `/proc/drbd` as DRBD 8.4 prints it, with the progress lines during a resync.
    public static func procDRBD(_ pair: SimulatedPair, node index: Int, now: Date) -> String {
        let node = pair.nodes[index]
        var text =
            "version: 8.4.0 (api:1/proto:86-100)\nGIT-hash: 28753f559ab51b549d16bcf487fe625d5919c49c build by root@localhost.localdomain, 2012-02-06 12:59:36\n"
        let connection = pair.connection(index)
        guard connection != "Unconfigured" else { return text + " 0: cs:Unconfigured\n" }
        var outOfSync = node.outOfSync
        if let sync = pair.sync {
            outOfSync = Int(Double(sync.totalKiB) * (1 - sync.fraction(at: now)))
        }
        text +=
            " 0: cs:\(connection) ro:\(node.role)/\(peerRole(pair, index)) ds:\(node.disk)/\(peerDisk(pair, index)) C r-----\n"
        text += "    ns:4091788 nr:64 dw:112 dr:4092817 al:3 bm:252 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:\(outOfSync)\n"
        if let sync = pair.sync {
            let done = sync.fraction(at: now)
            let bar =
                String(repeating: "=", count: Int(done * 19)) + ">" + String(repeating: ".", count: 19 - Int(done * 19))
            let left = max(0, sync.seconds - now.timeIntervalSince(sync.started))
            text += "\t[\(bar)] sync'ed: \(String(format: "%.1f", done * 100))% (\(outOfSync)/\(sync.totalKiB))K\n"
            text +=
                "\tfinish: 0:\(String(format: "%02d:%02d", Int(left) / 60, Int(left.rounded(.up)) % 60)) speed: 35,152 (18,124) want: 44,520 K/sec\n"
        }
        return text
    }

    /// `chef-server-ctl ha-status` and its exit status: as `ha.rb` does it, the code of the last failing check
    /// (each failing check overwrites it), not the worst; what it prints depends on ``SimulatedPair/chefServer``.
    public static func haStatus(_ pair: SimulatedPair, _ index: Int) -> (String, Int32) {
        let node = pair.nodes[index]
        guard node.reconfigured else {
            return ("[ERROR] cannot check HA status if you haven't completed a reconfigure\n", 1)
        }
        if pair.chefServer.hasPrefix("12."), let minor = Int(pair.chefServer.dropFirst(3)), minor >= 9 {
            return (
                "[ERROR] keepalived HA services not enabled, please configure keepalived according to documentation.\n",
                1
            )
        }
        let builtInDRBD = pair.chefServer == "11"
        var lines = ["[OK] keepalived HA services enabled."]
        if builtInDRBD {
            lines += [
                "[OK] DRBD disk replication enabled.", "[OK] DRBD partition /dev/opscode/drbd found.",
                "[OK] DRBD device /dev/drbd0 found.",
            ]
        }
        var status: Int32 = 0
        func error(_ text: String, _ code: Int32) {
            lines.append("[ERROR] " + text)
            status = code
        }
        if node.requested != node.current {
            lines.append(
                "[WARN] inconsistent cluster status, requested: \(node.requested), current: \(node.current), failover running?"
            )
            status = 2
        } else {
            lines.append("[OK] cluster status = \(node.current)")
        }
        switch (node.isMaster, node.vip) {
        case (true, true): lines.append("[OK] found VIP IP address and I am master")
        case (false, false): lines.append("[OK] did not find VIP IP address and I am not master")
        case (false, true): error("found VRRP address and I am not master", 3)
        case (true, false): error("did not find VIP IP address and I am master", 3)
        }
        lines.append("[OK] found VRRP communications interface eth1")
        if builtInDRBD {
            for line in drbdLines(pair, index) {
                if let code = line.error { error(line.text, code) } else { lines.append("[OK] " + line.text) }
            }
        }
        if pair.chefServer == "11" {
            lines.append(
                status == 0 || status == 2 || status == 3
                    ? "[OK] storage backend status is OK" : "[ERROR] storage backend status is not OK")
        }
        var services = SimulatedPair.haServices.map { ($0, true) }
        if pair.chefServer == "12.0" && node.isMaster {
            // Listed with the others, alphabetically; not an HA service (no keepalive_me), and not running.
            services.append(("opscode-chef-mover", false))
            services.sort { $0.0 < $1.0 }
        }
        for (service, ha) in services {
            guard ha else {
                error("\(service) is not running.", 7)
                continue
            }
            switch (node.running.contains(service), node.isMaster) {
            case (true, true): lines.append("[OK] \(service) is running correctly, and I am master.")
            case (false, false): lines.append("[OK] \(service) is not running, and I am not master.")
            case (true, false): error("\(service) is running, and I am not master.", 7)
            case (false, true): error("\(service) is not running correctly, and I am master. ", 7)
            }
        }
        if node.keepalived {
            lines.append("[OK] keepalived is running.")
        } else {
            error("keepalived is not running.", 7)
        }
        lines.append("")
        lines.append(status == 0 ? "[OK] all checks passed." : "[ERROR] ERRORS WERE DETECTED.")
        return (lines.joined(separator: "\n") + "\n", status)
    }

    /// Enterprise Chef 11's built-in DRBD checks (the device's state and its mount, for this node's role): each
    /// line's text, and its exit code when it is an error.
    static func drbdLines(_ pair: SimulatedPair, _ index: Int) -> [(text: String, error: Int32?)] {
        let node = pair.nodes[index]
        var lines: [(text: String, error: Int32?)] = []
        let device =
            " 0: cs:\(pair.connection(index)) ro:\(node.role)/\(peerRole(pair, index)) ds:\(node.disk)/\(peerDisk(pair, index))"
        if node.isMaster && device.contains("cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate") {
            lines.append(("my DRBD status is Connected/Primary/UpToDate and I am master", nil))
        } else if !node.isMaster && device.contains("cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate") {
            lines.append(("my DRBD status is Connected/Secondary/UpToDate and I am not master", nil))
        } else {
            lines.append(("my DRBD status is: \(device.trimmingCharacters(in: .whitespaces))", 4))
        }
        let mounted = node.role == "Primary" && !node.running.isEmpty
        if mounted == node.isMaster {
            lines.append(
                (
                    node.isMaster
                        ? "my DRBD partition is mounted and I am master"
                        : "my DRBD partition is not mounted and I am not master", nil
                ))
        } else {
            lines.append(
                (
                    mounted
                        ? "my DRBD partition is mounted and I am not master"
                        : "my DRBD partition is not mounted and I am master", 4
                ))
        }
        return lines
    }

    /// `chef-server-ctl status`: runit's lines for keepalived and the HA services.
    public static func runitStatus(_ node: SimulatedPairNode) -> String {
        var lines = [
            node.keepalived
                ? "run: keepalived: (pid 5711) 145308s; run: log: (pid 5700) 145308s"
                : "down: keepalived: 12s, normally up; run: log: (pid 5700) 145308s"
        ]
        for (offset, service) in SimulatedPair.haServices.enumerated() {
            lines.append(
                node.running.contains(service)
                    ? "run: \(service): (pid \(25341 + offset)) 239s, normally down; run: log: (pid \(5800 + offset)) 145308s"
                    : "down: \(service): 239s; run: log: (pid \(5800 + offset)) 145308s")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
