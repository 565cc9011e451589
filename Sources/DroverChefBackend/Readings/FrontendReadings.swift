import DroverCluster
import DroverReporting
import Foundation

/// A Chef Infra Server frontend's files and outputs that its upgrade reads (reference §16, §20).
public enum FrontendPaths {
    /// The installed release: JSON with `build_version`, as on every omnibus product.
    public static let manifest = "/opt/opscode/version-manifest.json"
    /// The database migration level the first upgraded frontend reached; copied to the others before theirs.
    public static let migrationLevel = "/var/opt/opscode/upgrades/migration-level"
    /// Where Chef Infra Server keeps its data (the free space a frontend upgrade needs).
    public static let data = "/var/opt/opscode"
    /// Each service's log (runit's svlogd), as `chef-server-ctl tail` follows them.
    public static let logs = "/var/log/opscode/*/current"
}

/// One service line of `chef-server-ctl status` (runit: `run: nginx: (pid 1234) 56s; run: log: ...`).
public struct FrontendService: Sendable, Equatable {
    public var name: String
    /// `run`, `down`, `fail`, `warning`...: runit's word for the service itself (its log service aside).
    public var state: String
    public var line: String

    public var isRunning: Bool { state == "run" }

    public init(name: String, state: String, line: String) {
        (self.name, self.state, self.line) = (name, state, line)
    }
}

/// Reads `chef-server-ctl status`: one line per service, in runit's documented form; other lines (headers,
/// warnings, control sequences) are passed over.
public enum FrontendServices {
    public static func parse(_ output: String) throws -> [FrontendService] {
        var services: [FrontendService] = []
        for raw in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = stripControlSequences(String(raw)).trimmingCharacters(in: .whitespaces)
            let fields = line.split(separator: ":", maxSplits: 2).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 3, ["run", "down", "fail", "finish", "warning", "timeout"].contains(fields[0]),
                !fields[1].isEmpty, !fields[1].contains(" ")
            else { continue }
            services.append(FrontendService(name: fields[1], state: fields[0], line: line))
        }
        guard !services.isEmpty else {
            throw ParseError.unrecognised("chef-server-ctl status (no service lines)", ParseError.excerpt(output))
        }
        return services
    }

    /// The text without ANSI escape sequences.
    static func stripControlSequences(_ text: String) -> String {
        text.replacingOccurrences(of: "\u{1B}\\[[0-9;?]*[A-Za-z]", with: "", options: .regularExpression)
    }
}

extension FrontendStatusBody {
    /// Each upstream's answer in a `/_status` body (`chef_sql` → `pong`).
    public static func upstreams(_ json: String) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let upstreams = object["upstreams"] as? [String: Any]
        else { return [:] }
        return upstreams.compactMapValues { $0 as? String }
    }
}
