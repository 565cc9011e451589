import DroverCluster
import DroverReporting
import Foundation

/// One device of `/proc/drbd` (DRBD 8.4): its state line, counters and, while it resyncs, the progress.
public struct DRBDDevice: Sendable, Equatable {
    /// The device minor (`0` for `/dev/drbd0`).
    public var minor: Int
    /// `cs:` the connection state: Connected, WFConnection, StandAlone, SyncSource, SyncTarget, ...
    public var connection: String
    /// `ro:` this node's role and the peer's as this node sees it (Primary, Secondary, Unknown).
    public var role: String
    public var peerRole: String
    /// `ds:` this node's disk state and the peer's (UpToDate, Inconsistent, DUnknown, ...).
    public var disk: String
    public var peerDisk: String
    /// Every `key:value` field of the device's lines (`ns`, `nr`, `oos`, ...), as written.
    public var fields: [String: String]
    /// The resync progress, while the device resyncs.
    public var sync: SyncProgress?

    /// `oos:` the KiB out of sync with the peer; nil when the line has none.
    public var outOfSyncKiB: Int? { fields["oos"].flatMap { Int($0) } }
    /// True while a resync runs (`SyncSource`, `SyncTarget` and their paused forms).
    public var isSyncing: Bool { connection.hasPrefix("Sync") || connection.hasPrefix("PausedSync") }
}

/// The progress lines of a resyncing device: `[==>...] sync'ed: 36.3% (1670512/2613068)K` and
/// `finish: 0:00:47 speed: 35,152 (18,124) want: 44,520 K/sec`.
public struct SyncProgress: Sendable, Equatable {
    public var percent: Double
    /// The KiB still to sync and the total, from `(1670512/2613068)K`.
    public var remainingKiB: Int?
    public var totalKiB: Int?
    /// The `finish:` estimate as DRBD prints it (`0:00:47`).
    public var finish: String?
    /// The current speed in KiB/s (`35,152`).
    public var speedKiBPerSecond: Int?

    public init(
        percent: Double, remainingKiB: Int? = nil, totalKiB: Int? = nil, finish: String? = nil,
        speedKiBPerSecond: Int? = nil
    ) {
        self.percent = percent
        self.remainingKiB = remainingKiB
        self.totalKiB = totalKiB
        self.finish = finish
        self.speedKiBPerSecond = speedKiBPerSecond
    }
}

/// Parses `/proc/drbd` of DRBD 8.4; `version:` and `GIT-hash:` lines and unknown lines are skipped.
public enum ProcDRBD {
    public static func parse(_ text: String) throws -> [DRBDDevice] {
        var devices: [DRBDDevice] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if let device = deviceLine(line) {
                devices.append(device)
                continue
            }
            guard !devices.isEmpty else { continue }
            let index = devices.count - 1
            if line.contains("sync'ed:") {
                devices[index].sync = progressLine(line, into: devices[index].sync)
            } else if line.hasPrefix("finish:") {
                devices[index].sync = finishLine(line, into: devices[index].sync)
            } else if line.contains(":") {
                for (key, value) in pairs(line) where devices[index].fields[key] == nil {
                    devices[index].fields[key] = value
                }
            }
        }
        guard !devices.isEmpty else {
            throw ParseError.unrecognised(
                "/proc/drbd (no device line such as ` 0: cs:Connected ...`)", ParseError.excerpt(text))
        }
        return devices
    }

    /// ` 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----`; also the `Unconfigured`
    /// line of a device that is down (`1: cs:Unconfigured`).
    static func deviceLine(_ line: String) -> DRBDDevice? {
        guard let colon = line.firstIndex(of: ":"), let minor = Int(line[..<colon]) else { return nil }
        let fields = pairs(String(line[line.index(after: colon)...]))
        guard let connection = fields["cs"] else { return nil }
        let roles = (fields["ro"] ?? fields["st"] ?? "Unknown/Unknown").split(separator: "/").map(String.init)
        let disks = (fields["ds"] ?? "DUnknown/DUnknown").split(separator: "/").map(String.init)
        return DRBDDevice(
            minor: minor, connection: connection, role: roles.first ?? "Unknown",
            peerRole: roles.dropFirst().first ?? "Unknown",
            disk: disks.first ?? "DUnknown", peerDisk: disks.dropFirst().first ?? "DUnknown", fields: fields, sync: nil)
    }

    static func pairs(_ line: String) -> [String: String] {
        var result: [String: String] = [:]
        for word in line.split(separator: " ") {
            guard let colon = word.firstIndex(of: ":"), colon != word.startIndex else { continue }
            result[String(word[..<colon])] = String(word[word.index(after: colon)...])
        }
        return result
    }

    static func progressLine(_ line: String, into existing: SyncProgress?) -> SyncProgress {
        var progress = existing ?? SyncProgress(percent: 0)
        let words = line.split(separator: " ").map(String.init)
        if let at = words.firstIndex(of: "sync'ed:"), at + 1 < words.count {
            progress.percent = Double(words[at + 1].trimmingCharacters(in: CharacterSet(charactersIn: "%"))) ?? 0
            if at + 2 < words.count {
                let counts = words[at + 2].trimmingCharacters(in: CharacterSet(charactersIn: "()K")).split(
                    separator: "/")
                if counts.count == 2 {
                    progress.remainingKiB = Int(counts[0])
                    progress.totalKiB = Int(counts[1])
                }
            }
        }
        return progress
    }

    static func finishLine(_ line: String, into existing: SyncProgress?) -> SyncProgress {
        var progress = existing ?? SyncProgress(percent: 0)
        let words = line.split(separator: " ").map(String.init)
        if let at = words.firstIndex(of: "finish:"), at + 1 < words.count { progress.finish = words[at + 1] }
        if let at = words.firstIndex(of: "speed:"), at + 1 < words.count {
            progress.speedKiBPerSecond = Int(words[at + 1].replacingOccurrences(of: ",", with: ""))
        }
        return progress
    }
}

/// `drbdadm role RES`: `Primary/Unknown` (this node's role, then the peer's).
public struct DRBDRole: Sendable, Equatable {
    public var local: String
    public var peer: String

    public init(local: String, peer: String) {
        self.local = local
        self.peer = peer
    }

    public static func parse(_ text: String) throws -> DRBDRole {
        let line =
            text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.last { $0.contains("/") } ?? ""
        let parts = line.split(separator: "/").map(String.init)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && !$0.contains(" ") }) else {
            throw ParseError.unrecognised(
                "drbdadm role (expected ROLE/PEER such as Primary/Unknown)", ParseError.excerpt(text))
        }
        return DRBDRole(local: parts[0], peer: parts[1])
    }
}

/// `chef-server-ctl ha-status` (or `private-chef-ctl ha-status`): its `[OK]`/`[WARN]`/`[ERROR]` lines and
/// exit status, with what they say about keepalived, the virtual IP and the HA services.
public struct HAStatus: Sendable, Equatable {
    public enum Level: String, Sendable {
        case ok = "OK"
        case warn = "WARN"
        case error = "ERROR"
    }

    public struct Line: Sendable, Equatable {
        public var level: Level
        public var message: String
    }

    public var lines: [Line]
    public var exitStatus: Int32

    /// `[OK] cluster status = master|backup`; nil when not shown (or inconsistent).
    public var clusterStatus: String? {
        for line in lines where line.level == .ok && line.message.hasPrefix("cluster status = ") {
            return String(line.message.dropFirst("cluster status = ".count)).trimmingCharacters(
                in: CharacterSet(charactersIn: " ."))
        }
        return nil
    }

    /// `[WARN] inconsistent cluster status, requested: X, current: Y, failover running?`: (requested, current).
    public var inconsistent: (requested: String, current: String)? {
        guard let line = lines.first(where: { $0.message.hasPrefix("inconsistent cluster status") }) else { return nil }
        func value(_ key: String) -> String {
            guard let range = line.message.range(of: key + ": ") else { return "?" }
            return String(line.message[range.upperBound...].prefix { $0 != "," && $0 != " " })
        }
        return (value("requested"), value("current"))
    }

    /// master, backup or transition, as keepalived's requested and current status say.
    public var keepalived: String? { inconsistent != nil ? "transition" : clusterStatus }

    /// True when a line says this node holds the VIP (`found VIP IP address`, `found VRRP address`).
    public var holdsVIP: Bool? {
        for line in lines {
            if line.message.hasPrefix("found VIP IP address") || line.message.hasPrefix("found VRRP address") {
                return true
            }
            if line.message.hasPrefix("did not find VIP IP address") { return false }
        }
        return nil
    }

    /// Errors known to be harmless: Chef Server 12.0.x reports `opscode-chef-mover is not running.` on a
    /// healthy master, though it runs only during upgrades (chef/chef-server#361; later 12.x skip hidden
    /// services). Each with why it is harmless.
    public static let harmlessErrors: [(prefix: String, why: String)] = [
        (
            "opscode-chef-mover is not running",
            "opscode-chef-mover runs only during upgrades; Chef Server 12.0.x reports it anyway (chef/chef-server#361)"
        )
    ]

    /// Whether the checks passed, judged from the lines: no error but the known harmless ones, no warning, and
    /// the closing line. Never from the exit status alone: it is the last failing check's code, and 12.0.x
    /// fails on a harmless line.
    public var passed: Bool {
        let closed = lines.contains {
            ($0.level == .ok && $0.message.hasPrefix("all checks passed"))
                || ($0.level == .error && $0.message.hasPrefix("ERRORS WERE DETECTED"))
        }
        return closed && significantErrors.isEmpty && !lines.contains { $0.level == .warn }
    }

    /// The `[ERROR]` lines, without the closing `ERRORS WERE DETECTED.`
    public var errors: [String] {
        lines.filter { $0.level == .error && !$0.message.hasPrefix("ERRORS WERE DETECTED") }.map(\.message)
    }

    /// The errors that say something is wrong: all but the known harmless ones.
    public var significantErrors: [String] {
        errors.filter { error in !Self.harmlessErrors.contains { error.hasPrefix($0.prefix) } }
    }

    /// The known harmless errors reported, each with why it is harmless.
    public var harmless: [(error: String, why: String)] {
        errors.compactMap { error in Self.harmlessErrors.first { error.hasPrefix($0.prefix) }.map { (error, $0.why) } }
    }

    /// `[ERROR] keepalived HA services not enabled, ...`: the machine is not configured as a keepalived pair
    /// (Chef Server 12.9 and later print only this; the DRBD pair was deprecated there).
    public var keepalivedNotEnabled: Bool {
        lines.contains { $0.level == .error && $0.message.hasPrefix("keepalived HA services not enabled") }
    }

    /// `[ERROR] cannot check HA status if you haven't completed a reconfigure`: a node not reconfigured yet
    /// (a secondary being set up).
    public var notReconfigured: Bool {
        lines.contains { $0.level == .error && $0.message.hasPrefix("cannot check HA status if you haven't completed") }
    }

    /// Services on the wrong node: `X is running, and I am not master` (should be stopped here) and
    /// `X is not running correctly, and I am master` (should run here).
    public var misplacedServices: [(service: String, running: Bool)] {
        lines.filter { $0.level == .error }.compactMap { line in
            let message = line.message
            if let range = message.range(of: " is running, and I am not master") {
                return (String(message[..<range.lowerBound]), true)
            }
            if let range = message.range(of: " is not running correctly, and I am master") {
                return (String(message[..<range.lowerBound]), false)
            }
            return nil
        }
    }

    /// Parses the output; lines without a `[LEVEL]` prefix (blank lines, notes) are skipped.
    public static func parse(_ text: String, exitStatus: Int32) throws -> HAStatus {
        var lines: [Line] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            for level in [Level.ok, .warn, .error] where line.hasPrefix("[\(level.rawValue)]") {
                lines.append(
                    Line(
                        level: level,
                        message: line.dropFirst(level.rawValue.count + 2).trimmingCharacters(in: .whitespaces)))
            }
        }
        guard !lines.isEmpty else {
            throw ParseError.unrecognised("ha-status (no [OK], [WARN] or [ERROR] lines)", ParseError.excerpt(text))
        }
        return HAStatus(lines: lines, exitStatus: exitStatus)
    }
}
