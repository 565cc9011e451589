import DroverSSH
import Foundation

/// OpenSSH client configuration (`~/.ssh/config`, `/etc/ssh/ssh_config`), read as ssh reads it for the
/// keywords that decide how Drover connects: `Host` blocks with `*`, `?` and `!` patterns, the first value
/// of each keyword winning (every `IdentityFile` counts), `Include` (with globs; relative to `~/.ssh` or
/// `/etc/ssh`), `Match` blocks skipped with a warning.
///
/// Used: `HostName`, `User`, `Port`, `IdentityFile` (`%h %u %r %d ~` expanded), `IdentitiesOnly`,
/// `IdentityAgent`, `UserKnownHostsFile`, `StrictHostKeyChecking`, `ConnectTimeout`, `ServerAliveInterval`,
/// `ServerAliveCountMax`.
/// `ProxyJump` (one or several hops, `user@host:port`, `none`). `ProxyCommand` and `CertificateFile` are
/// errors naming the file and line: Drover cannot honour them. Other keywords are ignored.
public struct SSHConfig: Sendable {
    /// One keyword line, with the Host patterns it is under (each list must match).
    struct Entry: Sendable {
        var keyword: String
        var arguments: [String]
        var file: String
        var line: Int
        var conditions: [[String]]
    }

    /// A value ssh_config gave, and where.
    public struct Setting: Sendable, Equatable {
        public var value: String
        public var source: String
    }

    var entries: [Entry] = []
    /// `Match` blocks skipped, as warnings naming the file and line.
    public var warnings: [String] = []

    static let used: Set<String> = [
        "hostname", "user", "port", "identityfile", "identitiesonly", "identityagent",
        "userknownhostsfile", "stricthostkeychecking", "connecttimeout", "serveraliveinterval", "serveralivecountmax",
        "proxyjump",
    ]
    static let refused: [String: String] = [
        "proxycommand":
            "Drover connects with libssh2 and cannot run a ProxyCommand; reach the host directly, or give ssh.config_file: none",
        "certificatefile":
            "Drover cannot authenticate with an OpenSSH certificate; use a plain ed25519 or ECDSA key (IdentityFile)",
    ]

    /// Reads `files` in order (a missing file is skipped, as ssh does).
    public static func load(_ files: [String]) throws -> SSHConfig {
        var config = SSHConfig()
        for file in files {
            let expanded = UserAccount.expandingTilde(file)
            guard FileManager.default.fileExists(atPath: expanded) else { continue }
            try config.read(
                expanded,
                relativeTo: expanded.hasPrefix("/etc/ssh") ? "/etc/ssh" : UserAccount.expandingTilde("~/.ssh"),
                conditions: [], depth: 0)
        }
        return config
    }

    /// Parses one file's text (for tests); `Include` is read relative to `base`.
    public static func parse(_ text: String, file: String, base: String = "/nonexistent") throws -> SSHConfig {
        var config = SSHConfig()
        try config.read(text: text, file: file, relativeTo: base, conditions: [], depth: 0)
        return config
    }

    private mutating func read(_ file: String, relativeTo base: String, conditions: [[String]], depth: Int) throws {
        guard let data = FileManager.default.contents(atPath: file) else { return }
        try read(
            text: String(decoding: data, as: UTF8.self), file: file, relativeTo: base, conditions: conditions,
            depth: depth)
    }

    private mutating func read(
        text: String, file: String, relativeTo base: String, conditions outer: [[String]], depth: Int
    ) throws {
        guard depth < 16 else {
            throw InputError(file: file, line: 0, key: "Include", message: "Include nests too deeply (a loop?)")
        }
        var block: [String]? = nil
        var skipping = false
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let words = try Self.words(line, file: file, line: number)
            guard let first = words.first else { continue }
            let keyword = first.lowercased()
            let arguments = Array(words.dropFirst())
            switch keyword {
            case "host":
                block = arguments
                skipping = false
                continue
            case "match":
                warnings.append(
                    "\(file):\(number): Match blocks are not read; Drover skips this one up to the next Host or Match")
                skipping = true
                continue
            default:
                break
            }
            if skipping { continue }
            let conditions = outer + (block.map { [$0] } ?? [])
            if keyword == "include" {
                for pattern in arguments {
                    let expanded = UserAccount.expandingTilde(pattern)
                    let path = expanded.hasPrefix("/") ? expanded : (base as NSString).appendingPathComponent(expanded)
                    for included in Self.glob(path) {
                        try read(included, relativeTo: base, conditions: conditions, depth: depth + 1)
                    }
                }
                continue
            }
            if Self.refused[keyword] != nil, arguments.first?.lowercased() != "none" {
                // An error only for the hosts it applies to (see resolve).
                entries.append(
                    Entry(keyword: keyword, arguments: arguments, file: file, line: number, conditions: conditions))
                continue
            }
            guard Self.used.contains(keyword) else { continue }
            guard !arguments.isEmpty else {
                throw InputError(file: file, line: number, key: first, message: "\(first) needs a value")
            }
            entries.append(
                Entry(keyword: keyword, arguments: arguments, file: file, line: number, conditions: conditions))
        }
    }

    /// Keyword and arguments: whitespace or one `=` between them, double quotes around an argument.
    static func words(_ line: String, file: String, line number: Int) throws -> [String] {
        var text = Substring(line)
        var words: [String] = []
        // `Keyword=value` and `Keyword = value`.
        if let end = text.firstIndex(where: { $0 == " " || $0 == "\t" || $0 == "=" }) {
            words.append(String(text[..<end]))
            text = text[end...].drop { $0 == " " || $0 == "\t" }
            if text.first == "=" { text = text.dropFirst().drop { $0 == " " || $0 == "\t" } }
        } else {
            return [line]
        }
        var current = ""
        var quoted = false
        var inWord = false
        for character in text {
            if character == "\"" {
                quoted.toggle()
                inWord = true
            } else if !quoted && (character == " " || character == "\t") {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if quoted {
            throw InputError(file: file, line: number, key: words.first, message: "a double quote is not closed")
        }
        if inWord { words.append(current) }
        return words
    }

    static func glob(_ pattern: String) -> [String] {
        guard pattern.contains(where: { "*?[".contains($0) }) else { return [pattern] }
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }
    }

    /// True when `host` matches a `Host` line's patterns: one of them, and none of its negated ones.
    static func matches(_ host: String, _ patterns: [String]) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if fnmatch(String(pattern.dropFirst()), host, 0) == 0 { return false }
            } else if fnmatch(pattern, host, 0) == 0 {
                matched = true
            }
        }
        return matched
    }

    /// What the configuration says for `host` (the name given to ssh): each keyword's first value, every
    /// IdentityFile. Throws for a keyword Drover cannot honour.
    public func resolve(_ host: String) throws -> [String: [Setting]] {
        var settings: [String: [Setting]] = [:]
        for entry in entries where entry.conditions.allSatisfy({ Self.matches(host, $0) }) {
            if let refusal = Self.refused[entry.keyword] {
                throw InputError(
                    file: entry.file, line: entry.line, key: entry.keyword, message: "for \(host): \(refusal)")
            }
            let setting = Setting(value: entry.arguments.joined(separator: " "), source: "\(entry.file):\(entry.line)")
            if entry.keyword == "identityfile" {
                settings["identityfile", default: []].append(setting)
            } else if settings[entry.keyword] == nil {
                settings[entry.keyword] = [setting]
            }
        }
        return settings
    }

    /// `%h` (the remote host), `%r` (the remote user), `%u` (the local user), `%d` (the local home), `%%`
    /// and a leading `~`.
    public static func expand(_ text: String, host: String, remoteUser: String) -> String {
        var out = ""
        var percent = false
        for character in text {
            if percent {
                switch character {
                case "h": out += host
                case "r": out += remoteUser
                case "u": out += UserAccount.name
                case "d": out += UserAccount.expandingTilde("~")
                case "%": out += "%"
                default: out += "%" + String(character)
                }
                percent = false
            } else if character == "%" {
                percent = true
            } else {
                out.append(character)
            }
        }
        return UserAccount.expandingTilde(out)
    }
}
