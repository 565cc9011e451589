import Foundation

/// An OpenSSH `known_hosts` file: plain and hashed (`|1|`) entries, `[host]:port` names, wildcards,
/// negations and the `@revoked` marker (`@cert-authority` lines are read and ignored).
public struct KnownHosts: Sendable {
    /// One key line of the file.
    public struct Entry: Sendable, Equatable {
        /// How an entry names its hosts.
        public enum Names: Sendable, Equatable {
            /// Comma-separated patterns, possibly with `*`, `?` and `!` negation.
            case patterns([String])
            /// A HashKnownHosts entry: HMAC-SHA1 of the name keyed with `salt`.
            case hashed(salt: [UInt8], hash: [UInt8])
        }

        /// A marker at the start of the line.
        public enum Marker: Sendable, Equatable { case none, revoked, certAuthority }

        public var line: Int
        public var marker: Marker
        public var names: Names
        public var keyType: String
        public var keyBase64: String
    }

    /// The outcome of checking a presented host key.
    public enum Verdict: Sendable, Equatable {
        case match
        case unknown
        /// The host is recorded with a different key of the same type (or only with other key types).
        case changed(line: Int)
        case revoked(line: Int)
    }

    public let path: String
    public private(set) var entries: [Entry]

    /// Reads `path`; a missing file is an empty one.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            self.init(path: path, contents: "")
            return
        }
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
            throw SSHError.knownHostsUnusable(path: path, reason: "not readable")
        }
        try? handle.close()
        self.init(path: path, contents: String(decoding: data, as: UTF8.self))
    }

    /// Parses `contents` as if read from `path`.
    public init(path: String, contents: String) {
        self.path = path
        var parsed: [Entry] = []
        for (index, rawLine) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var fields = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            var marker = Entry.Marker.none
            if first.hasPrefix("@") {
                marker = first == "@revoked" ? .revoked : first == "@cert-authority" ? .certAuthority : .none
                fields.removeFirst()
            }
            guard fields.count >= 3 else { continue }
            let names: Entry.Names
            if fields[0].hasPrefix("|1|") {
                let parts = fields[0].split(separator: "|", omittingEmptySubsequences: true)
                guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])),
                    let hash = Data(base64Encoded: String(parts[2]))
                else { continue }
                names = .hashed(salt: Array(salt), hash: Array(hash))
            } else {
                names = .patterns(fields[0].split(separator: ",").map(String.init))
            }
            parsed.append(
                Entry(
                    line: index + 1, marker: marker, names: names,
                    keyType: fields[1], keyBase64: fields[2]))
        }
        entries = parsed
    }

    /// The name OpenSSH records for a host: `host` on port 22, `[host]:port` otherwise.
    public static func hostField(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    /// A known_hosts line recording `keyBlob` for the host.
    public static func line(host: String, port: Int, keyBlob: [UInt8]) -> String {
        "\(hostField(host: host, port: port)) \(keyType(ofBlob: keyBlob) ?? "unknown") \(Data(keyBlob).base64EncodedString())"
    }

    /// OpenSSH's `SHA256:` fingerprint of a public key blob.
    public static func fingerprint(ofBlob blob: [UInt8]) -> String {
        let encoded = Data(Digest.sha256(blob)).base64EncodedString()
        return "SHA256:" + encoded.trimmingCharacters(in: CharacterSet(charactersIn: "="))
    }

    /// The algorithm name stored at the start of an SSH public key blob.
    public static func keyType(ofBlob blob: [UInt8]) -> String? {
        var reader = WireReader(blob)
        return reader.readString().map { String(decoding: $0, as: UTF8.self) }
    }

    /// The key types recorded for the host, in file order, without duplicates.
    public func keyTypes(host: String, port: Int) -> [String] {
        var seen: [String] = []
        for entry in entries where entry.marker == .none && matches(entry, host: host, port: port) {
            if !seen.contains(entry.keyType) { seen.append(entry.keyType) }
        }
        return seen
    }

    /// Checks the key the host presented.
    public func verify(host: String, port: Int, keyBlob: [UInt8]) -> Verdict {
        let presented = Data(keyBlob).base64EncodedString()
        let presentedType = Self.keyType(ofBlob: keyBlob) ?? ""
        let relevant = entries.filter { $0.marker != .certAuthority && matches($0, host: host, port: port) }
        if let revoked = relevant.first(where: { $0.marker == .revoked && $0.keyBase64 == presented }) {
            return .revoked(line: revoked.line)
        }
        let keys = relevant.filter { $0.marker == .none }
        if keys.contains(where: { $0.keyBase64 == presented }) { return .match }
        if let sameType = keys.first(where: { $0.keyType == presentedType }) { return .changed(line: sameType.line) }
        if let other = keys.first { return .changed(line: other.line) }
        return .unknown
    }

    /// Appends a line to the file, creating it (mode 600) and its directory when missing: one `write` with
    /// `O_APPEND` under an exclusive `flock`, so nodes connecting in parallel (and other programs that lock it)
    /// never interleave their lines. Blocking: called on a session's own thread.
    public static func append(_ line: String, to path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw SSHError.knownHostsUnusable(path: path, reason: error.localizedDescription)
        }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SSHError.knownHostsUnusable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else {
            throw SSHError.knownHostsUnusable(path: path, reason: "cannot lock it: \(String(cString: strerror(errno)))")
        }
        defer { flock(descriptor, LOCK_UN) }
        // A file that does not end in a newline gets one first, so the new line stands alone.
        var text = line + "\n"
        let size = lseek(descriptor, 0, SEEK_END)
        if size > 0 {
            let reader = open(path, O_RDONLY | O_CLOEXEC)
            var last: UInt8 = 0
            if reader >= 0 {
                if pread(reader, &last, 1, size - 1) == 1, last != UInt8(ascii: "\n") { text = "\n" + text }
                close(reader)
            }
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw SSHError.knownHostsUnusable(path: path, reason: String(cString: strerror(errno)))
        }
    }

    private func matches(_ entry: Entry, host: String, port: Int) -> Bool {
        let name = Self.hostField(host: host, port: port)
        switch entry.names {
        case .hashed(let salt, let hash):
            return Digest.hmacSHA1(key: salt, data: Array(name.utf8)) == hash
        case .patterns(let patterns):
            var positive = false
            for pattern in patterns {
                if pattern.hasPrefix("!") {
                    if Self.glob(String(pattern.dropFirst()).lowercased(), name.lowercased()) { return false }
                } else if Self.glob(pattern.lowercased(), name.lowercased()) {
                    positive = true
                }
            }
            return positive
        }
    }

    /// OpenSSH-style wildcard match: `*` any run, `?` one character.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern)
        let t = Array(text)
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// Reads SSH wire-format strings and integers (RFC 4251).
struct WireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func readUInt32() -> UInt32? {
        guard offset + 4 <= bytes.count else { return nil }
        defer { offset += 4 }
        return bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func readString() -> [UInt8]? {
        guard let length = readUInt32().map(Int.init), offset + length <= bytes.count else { return nil }
        defer { offset += length }
        return Array(bytes[offset..<offset + length])
    }

    mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard offset + count <= bytes.count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
}
