import DroverSSH
import Foundation

extension Inventory {
    /// A write probe (`probe:`): a command or URL, answered on the workstation, that succeeds while the
    /// cluster accepts writes. A run polls it and says how long writes failed, and when.
    public struct Probe: Sendable, Equatable {
        public enum Target: Sendable, Equatable {
            /// A program and its arguments, run without a shell; exit status 0 means writes succeed.
            case command([String])
            /// An HTTP(S) URL; a 2xx answer means writes succeed.
            case url(String)
        }

        public var target: Target
        /// How often the probe is asked (`interval`, default 1 s).
        public var interval: Duration = .seconds(1)
        /// How long one answer may take before it counts as a failure (`timeout`, default 2 s).
        public var timeout: Duration = .seconds(2)

        public init(target: Target, interval: Duration = .seconds(1), timeout: Duration = .seconds(2)) {
            (self.target, self.interval, self.timeout) = (target, interval, timeout)
        }

        /// The probe as the console names it.
        public var description: String {
            switch target {
            case .command(let argv): return ShellQuote.join(argv)
            case .url(let url): return url
            }
        }
    }

    /// The most arguments, and bytes per argument or URL, a probe may have.
    static let probeLimits = (arguments: 64, bytes: 4096)

    /// Reads `probe:`: exactly one of `command` (a list: program, then arguments) and `url` (http or https),
    /// with `interval` and `timeout` from 100 ms to a minute.
    static func parseProbe(_ section: StrictYAML) throws -> Probe {
        try section.rejectUnknownKeys(["command", "url", "interval", "timeout"])
        let target: Probe.Target
        switch (try section.stringList("command"), try section.string("url")) {
        case (let argv?, nil):
            guard let program = argv.first, !program.isEmpty else {
                throw section.error(
                    "command",
                    "give the program and its arguments as a list, e.g. [/usr/local/bin/write-check, --quiet]")
            }
            guard argv.count <= probeLimits.arguments else {
                throw section.error("command", "\(argv.count) arguments; at most \(probeLimits.arguments)")
            }
            for argument in argv where !Self.isPlainText(argument, limit: probeLimits.bytes) {
                throw section.error(
                    "command",
                    "an argument is empty, longer than \(probeLimits.bytes) bytes or holds a control character")
            }
            target = .command(argv)
        case (nil, let url?):
            guard url.utf8.count <= probeLimits.bytes, Self.isPlainText(url, limit: probeLimits.bytes),
                let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
                !(parsed.host ?? "").isEmpty
            else {
                throw section.error("url", "'\(url.prefix(80))' is not an http:// or https:// URL with a host")
            }
            target = .url(url)
        case (nil, nil):
            throw section.error(nil, "give the probe a command (a list) or a url")
        default:
            throw section.error("url", "give the probe a command or a url, not both")
        }
        var probe = Probe(target: target)
        probe.interval = try section.duration("interval", within: .milliseconds(100)...(.seconds(60))) ?? probe.interval
        probe.timeout = try section.duration("timeout", within: .milliseconds(100)...(.seconds(60))) ?? probe.timeout
        return probe
    }

    /// Non-empty, within `limit` bytes, without control characters (C0, DEL, C1).
    static func isPlainText(_ text: String, limit: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= limit
            && !text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }
}
