import Foundation
import Synchronization

/// Removes secrets from everything Drover prints or writes, in one pass over the text, in time linear in its
/// length whatever it holds:
/// - known secret values (the SSH key passphrase);
/// - private keys: a PEM block from `-----BEGIN ... PRIVATE KEY-----` to its `-----END ... PRIVATE KEY-----`,
///   also written on one line with `\n` escapes (JSON); a block with no end in the text to the end of it;
/// - the password of a URL (`postgres://user:PASSWORD@host`);
/// - the value of a key whose name holds password, passwd, passphrase, secret, token or credential, or ends in
///   `_key`, `-key`, `_pass` or `-pass`, in the forms Chef nodes print them: JSON (`"key": "value"`, also
///   `\"`-escaped inside a JSON string), YAML and INI (`key: value`, `key: "value"`, `key=value`), Ruby
///   (`key = 'value'`, `key 'value'`, `['key'] = "value"`, `:key => "value"`), Erlang terms
///   (`{key, "value"}`) and command-line options (`--password value`, `--password=value`).
///
/// Each value is replaced by ``mask``; the text around it (quotes, separators) is kept, so a redacted JSON
/// text stays valid JSON. Not recognised: a secret printed with no key naming it (a bare value on its own
/// line, unless it is a known value or inside a PEM block).
public struct Redactor: Sendable {
    public static let mask = "[REDACTED]"
    private var values: [String]

    public init(secrets: [String] = []) {
        values = secrets.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    /// Secrets known from the environment: the SSH key passphrase.
    public static var standard: Redactor {
        Redactor(secrets: [ProcessInfo.processInfo.environment["DROVER_SSH_PASSPHRASE"]].compactMap { $0 })
    }

    /// `text` with every secret replaced by ``mask``.
    public func redact(_ text: String) -> String {
        var result = text
        for value in values where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: Self.mask)
        }
        var scanner = Scanner(Array(result.utf8))
        guard scanner.run() else { return result }
        return String(decoding: scanner.output, as: UTF8.self)
    }

    /// True when `line` opens a PEM private key block that it does not close: the lines after it, up to the
    /// one that closes it, are the key's body (see ``StreamState``).
    static func opensPrivateKey(_ line: String) -> Bool {
        guard let begin = line.range(of: "-----BEGIN "), line[begin.upperBound...].contains("PRIVATE KEY-----")
        else { return false }
        return !line[begin.upperBound...].contains("-----END ")
    }

    /// Where each stream of lines (a node's stdout, say) stands: inside a PEM private key opened on an earlier
    /// line, every line is masked until the one that closes it.
    public final class StreamState: Sendable {
        private let open = Mutex<Set<String>>([])

        public init() {}

        /// `line` of the stream `stream`, redacted.
        public func redact(_ line: String, stream: String, with redactor: Redactor) -> String {
            let inside = open.withLock { $0.contains(stream) }
            if inside {
                if line.contains("-----END ") && line.contains("PRIVATE KEY-----") {
                    open.withLock { _ = $0.remove(stream) }
                }
                return Redactor.mask
            }
            if Redactor.opensPrivateKey(line) { open.withLock { _ = $0.insert(stream) } }
            return redactor.redact(line)
        }
    }
}

/// The one pass of ``Redactor/redact(_:)`` over UTF-8 bytes: every rule looks ahead a bounded distance or
/// consumes what it reads, so the pass is linear.
private struct Scanner {
    let bytes: [UInt8]
    var output: [UInt8] = []
    /// Bytes before this were copied to the output, or masked.
    var copied = 0
    var changed = false

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static let mask = Array(Redactor.mask.utf8)
    /// Key words anywhere in a key's name, lowercase.
    static let words: [[UInt8]] = ["password", "passwd", "passphrase", "secret", "token", "credential"].map {
        Array($0.utf8)
    }
    /// Key words that must end a key's name (`superuser_key`, `db_pass`; not `host_key_checking`).
    static let endings: [[UInt8]] = ["_key", "-key", "_pass", "-pass"].map { Array($0.utf8) }
    static let pemBegin = Array("-----BEGIN ".utf8)
    static let pemEnd = Array("-----END ".utf8)
    static let privateKey = Array("PRIVATE KEY-----".utf8)
    static func isKeyByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) || byte == 0x5f
            || byte == 0x2d || byte == 0x2e
    }

    static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte }

    func matches(_ word: [UInt8], at index: Int, caseInsensitive: Bool = true) -> Bool {
        guard index + word.count <= bytes.count else { return false }
        for offset in 0..<word.count {
            let byte = bytes[index + offset]
            if (caseInsensitive ? Self.lower(byte) : byte) != word[offset] { return false }
        }
        return true
    }

    /// The first index at or after `start` where `word` begins (case-sensitive), or nil.
    func find(_ word: [UInt8], from start: Int, before limit: Int? = nil) -> Int? {
        let end = min(limit ?? bytes.count, bytes.count) - word.count
        guard start <= end else { return nil }
        var index = start
        while index <= end {
            if bytes[index] == word[0], matches(word, at: index, caseInsensitive: false) { return index }
            index += 1
        }
        return nil
    }

    /// Copies the bytes up to `start`, masks those up to `end` (`quoted`: as a JSON string).
    mutating func replace(_ start: Int, _ end: Int, quoted: Bool = false) {
        output.append(contentsOf: bytes[copied..<start])
        if quoted { output.append(0x22) }
        output.append(contentsOf: Self.mask)
        if quoted { output.append(0x22) }
        copied = end
        changed = true
    }

    /// Scans the text; false when nothing was redacted. Names are read a whole one at a time (a run of
    /// letters, digits, `_`, `-`, `.`), each once.
    mutating func run() -> Bool {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x2d, let next = privateKeyBlock(at: index) {
                index = next
            } else if byte == 0x3a, let next = urlPassword(at: index) {
                index = next
            } else if Self.isKeyByte(byte) {
                var end = index + 1
                while end < bytes.count, Self.isKeyByte(bytes[end]) { end += 1 }
                // A private key's marker glued to a name (`x-----BEGIN ...`): `-----BEGIN` ends the name (a blank
                // follows it), so it is looked for at the name's end only, never searched for again.
                let marker = end - (Self.pemBegin.count - 1)
                if marker > index, end < bytes.count, bytes[end] == 0x20, matches(Self.pemBegin, at: marker) {
                    end = marker
                }
                index = keyValue(index, end) ?? end
            } else {
                index += 1
            }
        }
        guard changed else { return false }
        output.append(contentsOf: bytes[copied...])
        return true
    }

    /// `-----BEGIN ... PRIVATE KEY-----` up to its end marker (or the end of the text), masked whole.
    mutating func privateKeyBlock(at index: Int) -> Int? {
        guard matches(Self.pemBegin, at: index, caseInsensitive: false),
            find(Self.privateKey, from: index + Self.pemBegin.count, before: index + 80) != nil
        else { return nil }
        var end = bytes.count
        var search = index + Self.pemBegin.count
        while let close = find(Self.pemEnd, from: search) {
            let label = close + Self.pemEnd.count
            if let tail = find(Self.privateKey, from: label, before: label + 64) {
                end = tail + Self.privateKey.count
                break
            }
            search = label
        }
        replace(index, end)
        return end
    }

    /// `scheme://user:PASSWORD@host`: the password masked.
    mutating func urlPassword(at index: Int) -> Int? {
        guard index + 2 < bytes.count, bytes[index + 1] == 0x2f, bytes[index + 2] == 0x2f else { return nil }
        let start = index + 3
        var colon: Int?
        var cursor = start
        while cursor < bytes.count, cursor - start < 256 {
            let byte = bytes[cursor]
            if byte == 0x40 { break }
            if byte == 0x2f || byte <= 0x20 || byte == 0x22 || byte == 0x27 || byte == 0x3f || byte == 0x23 {
                return start
            }
            if byte == 0x3a && colon == nil { colon = cursor }
            cursor += 1
        }
        guard cursor < bytes.count, bytes[cursor] == 0x40, let colon, colon + 1 < cursor else { return start }
        replace(colon + 1, cursor)
        return cursor
    }

    /// True when the name `start..<end` names a secret: a key word anywhere in it, or an ending at its end.
    func namesSecret(_ start: Int, _ end: Int) -> Bool {
        for word in Self.endings where end - start >= word.count && matches(word, at: end - word.count) {
            return true
        }
        var index = start
        while index < end {
            let first = Self.lower(bytes[index])
            if first == 0x70 || first == 0x73 || first == 0x74 || first == 0x63 {
                for word in Self.words where index + word.count <= end && matches(word, at: index) { return true }
            }
            index += 1
        }
        return false
    }

    /// The name `keyStart..<keyEnd`, when it names a secret, and its value: the value masked. Returns where
    /// scanning goes on (after the value), or nil to go on after the name.
    mutating func keyValue(_ keyStart: Int, _ keyEnd: Int) -> Int? {
        guard namesSecret(keyStart, keyEnd) else { return nil }
        let flag = bytes[keyStart] == 0x2d
        // The name's own quotes or brackets: `"key"`, `'key'`, `\"key\"`, `['key']`, `:key`.
        var cursor = keyEnd
        var opener: UInt8?
        if keyStart > 0, bytes[keyStart - 1] == 0x22 || bytes[keyStart - 1] == 0x27 { opener = bytes[keyStart - 1] }
        if let quote = opener {
            // Closed by the same quote (escaped as it was opened), or the quote was not the name's.
            let escapedName = cursor < bytes.count && bytes[cursor] == 0x5c ? 1 : 0
            if cursor + escapedName < bytes.count, bytes[cursor + escapedName] == quote {
                cursor += escapedName + 1
            } else {
                opener = nil
            }
        }
        if cursor < bytes.count, bytes[cursor] == 0x5d { cursor += 1 }
        let erlang =
            (keyStart > 0 && bytes[keyStart - 1] == 0x7b)
            || (keyStart > 1 && opener != nil && bytes[keyStart - 2] == 0x7b)
        let afterName = cursor
        cursor = skipBlanks(cursor)
        guard cursor < bytes.count else { return nil }
        // The separator: `:` (not `://`), `=`, `=>`, `,` in an Erlang tuple; or none before a quoted value or a
        // flag's value.
        var separated = false
        switch bytes[cursor] {
        case 0x3a:
            if cursor + 1 < bytes.count, bytes[cursor + 1] == 0x3a { return nil }
            separated = true
            cursor += 1
        case 0x3d:
            separated = true
            cursor += 1
            if cursor < bytes.count, bytes[cursor] == 0x3e { cursor += 1 }
        case 0x2c where erlang:
            separated = true
            cursor += 1
        default: break
        }
        cursor = skipBlanks(cursor)
        guard cursor < bytes.count else { return nil }
        // A flag's value or an unseparated one follows a blank: `--password x`, `db_password 'x'`.
        if !separated && cursor == afterName { return nil }
        var quote: UInt8?
        var escaped = false
        if bytes[cursor] == 0x5c, cursor + 1 < bytes.count, bytes[cursor + 1] == 0x22 || bytes[cursor + 1] == 0x27 {
            escaped = true
            cursor += 1
        }
        if bytes[cursor] == 0x22 || bytes[cursor] == 0x27 { quote = bytes[cursor] }
        guard quote != nil || separated || flag else { return nil }
        let valueStart = quote == nil ? cursor : cursor + 1
        // Refused before the value is read, so that no text is read twice: one masked already, or a structure
        // (`password: {`, `secrets = [`), which is not a value.
        guard valueStart < bytes.count, !matches(Self.mask, at: valueStart, caseInsensitive: false) else { return nil }
        if quote == nil, bytes[valueStart] == 0x7b || bytes[valueStart] == 0x5b { return nil }
        var valueEnd = valueStart
        var backslashes = 0
        if let quote {
            while valueEnd < bytes.count, bytes[valueEnd] != 0x0a {
                // The closing quote: escaped like the opening one (`\"`, an odd run of backslashes before it),
                // or not escaped at all (an even run: `"C:\\"` ends at its last quote).
                if bytes[valueEnd] == quote, (backslashes % 2 == 1) == escaped { break }
                backslashes = bytes[valueEnd] == 0x5c ? backslashes + 1 : 0
                valueEnd += 1
            }
        } else {
            while valueEnd < bytes.count {
                let byte = bytes[valueEnd]
                if byte <= 0x20 || byte == 0x2c || byte == 0x3b || byte == 0x7d || byte == 0x5d || byte == 0x29
                    || byte == 0x22 || byte == 0x27
                    || (byte == 0x5c && valueEnd + 1 < bytes.count && bytes[valueEnd + 1] == 0x22)
                {
                    break
                }
                valueEnd += 1
            }
        }
        if escaped, valueEnd < bytes.count, bytes[valueEnd] == quote { valueEnd -= 1 }
        guard valueEnd > valueStart else { return nil }
        // A JSON number or literal (`"token": 42`) becomes a string, so that the JSON stays valid.
        replace(
            valueStart, valueEnd,
            quoted: quote == nil && opener == 0x22 && !(keyStart > 1 && bytes[keyStart - 2] == 0x5c))
        return valueEnd
    }

    func skipBlanks(_ start: Int) -> Int {
        var cursor = start
        while cursor < bytes.count, bytes[cursor] == 0x20 || bytes[cursor] == 0x09 { cursor += 1 }
        return cursor
    }
}
