import DroverCluster
import DroverReporting
import Foundation

/// One row of `chef-backend-ctl status`.
public struct ServiceRow: Sendable, Equatable {
    public var service: String
    public var localStatus: String
    /// The distributed (cluster-wide) status, e.g. `leader: 1; waiting: 0; follower: 2; total: 3`.
    public var distributed: String

    public var isRunning: Bool { localStatus.hasPrefix("running") }

    /// The `key: value` pairs of the distributed status (`nodes online` → `3/3`).
    public var fields: [String: String] {
        var result: [String: String] = [:]
        for part in distributed.split(separator: ";") {
            guard let colon = part.firstIndex(of: ":") else { continue }
            result[part[..<colon].trimmingCharacters(in: .whitespaces)] = part[part.index(after: colon)...]
                .trimmingCharacters(in: .whitespaces)
        }
        return result
    }

    /// An integer field (`waiting` → 0); nil when absent or not a number.
    public func count(_ key: String) -> Int? { fields[key].flatMap { Int($0) } }

    /// A `N/M` field (`nodes online` → (3, 3)).
    public func fraction(_ key: String) -> (Int, Int)? {
        guard let value = fields[key] else { return nil }
        let parts = value.split(separator: "/")
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]) else { return nil }
        return (a, b)
    }
}

/// `chef-backend-ctl status`, parsed from its documented text form.
///
/// Tolerant by design: rows in any order, extra rows (`epmd`), extra columns, and the `System`/`disks`
/// table that follows a blank line are accepted; only the `Service` table is read.
public struct StatusReport: Sendable, Equatable {
    public var rows: [String: ServiceRow]

    public init(rows: [String: ServiceRow]) { self.rows = rows }

    public subscript(_ service: String) -> ServiceRow? { rows[service] }

    public static func parse(_ text: String) throws -> StatusReport {
        var rows: [String: ServiceRow] = [:]
        var inServiceTable = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let cells = splitColumns(line)
            if cells.first == "Service" {
                inServiceTable = true
                continue
            }
            if cells.isEmpty || (cells.first == "System") {
                inServiceTable = false
                continue
            }
            guard inServiceTable, cells.count >= 2 else { continue }
            let service = cells[0]
            rows[service] = ServiceRow(
                service: service, localStatus: cells[1], distributed: cells.count >= 3 ? cells[cells.count - 1] : "")
        }
        guard !rows.isEmpty else { throw ParseError.unrecognised("chef-backend-ctl status", ParseError.excerpt(text)) }
        return StatusReport(rows: rows)
    }
}

/// One node as `chef-backend-ctl cluster-status` lists it.
public struct ClusterMember: Sendable, Equatable {
    public var name: String
    public var ip: String
    public var guid: String
    /// leaderl's role: `leader`, `follower`, `waiting_for_leader`, ...
    public var role: String
    public var postgres: String
    public var elasticsearch: String
}

/// `chef-backend-ctl cluster-status`, parsed from its documented text form (columns by header name;
/// extra columns are ignored).
public enum ClusterStatusTable {
    public static func parse(_ text: String) throws -> [ClusterMember] {
        let lines = text.split(separator: "\n").map(String.init)
        guard let headerIndex = lines.firstIndex(where: { splitColumns($0).first == "Name" }) else {
            throw ParseError.unrecognised("chef-backend-ctl cluster-status", ParseError.excerpt(text))
        }
        let header = splitColumns(lines[headerIndex])
        func column(_ name: String) throws -> Int {
            guard let index = header.firstIndex(of: name) else {
                throw ParseError.unrecognised(
                    "chef-backend-ctl cluster-status (no \(name) column)", ParseError.excerpt(text))
            }
            return index
        }
        let name = try column("Name")
        let ip = try column("IP")
        let guid = try column("GUID")
        let role = try column("Role")
        let pg = header.firstIndex(of: "PG")
        let es = header.firstIndex(of: "ES")
        return lines[(headerIndex + 1)...].compactMap { line in
            let cells = splitColumns(line)
            guard cells.count > max(name, ip, guid, role) else { return nil }
            return ClusterMember(
                name: cells[name], ip: cells[ip], guid: cells[guid], role: cells[role],
                postgres: pg.flatMap { $0 < cells.count ? cells[$0] : nil } ?? "",
                elasticsearch: es.flatMap { $0 < cells.count ? cells[$0] : nil } ?? "")
        }
    }
}

/// Reads `build_version` from `/opt/chef-backend/version-manifest.json`.
public enum VersionManifest {
    public static func buildVersion(
        _ json: String, path: String = "/opt/chef-backend/version-manifest.json"
    ) throws
        -> String
    {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let version = object["build_version"] as? String, !version.isEmpty
        else {
            throw ParseError.unrecognised("\(path) (no build_version)", ParseError.excerpt(json))
        }
        return version
    }
}

/// Reads the available space from `df -Pk PATH` (POSIX format), in MiB.
public enum DiskFree {
    public static func availableMB(_ output: String) throws -> Int {
        let lines = output.split(separator: "\n")
        guard lines.count >= 2 else { throw ParseError.unrecognised("df -Pk", ParseError.excerpt(output)) }
        let fields = lines[lines.count - 1].split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 4, let kilobytes = Int(fields[3]) else {
            throw ParseError.unrecognised("df -Pk", ParseError.excerpt(output))
        }
        return kilobytes / 1024
    }
}

/// Splits a table line into cells separated by two or more spaces (cells themselves have single spaces).
func splitColumns(_ line: String) -> [String] {
    line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// Compares dotted versions numerically (`2.3.16` > `2.3.9`).
public func compareVersions(_ a: String, _ b: String) -> ComparisonResult {
    let x = a.split(separator: ".").map { Int($0) ?? 0 }
    let y = b.split(separator: ".").map { Int($0) ?? 0 }
    for index in 0..<max(x.count, y.count) {
        let l = index < x.count ? x[index] : 0
        let r = index < y.count ? y[index] : 0
        if l != r { return l < r ? .orderedAscending : .orderedDescending }
    }
    return .orderedSame
}
