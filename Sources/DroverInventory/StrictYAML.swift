import Foundation
import Yams

/// A YAML mapping read strictly: every key must be known, every error names the file, line and key.
public struct StrictYAML {
    public let file: String
    let node: Node
    let path: String
    private var used: Set<String> = []

    /// The largest input file read (bytes): anything larger is no inventory or playbook.
    public static let sizeLimit = 1024 * 1024
    /// The most YAML nodes a file may expand to (its aliases followed).
    public static let nodeLimit = 100_000

    /// Parses `text` (read from `file`) and returns its top-level mapping.
    public static func load(_ text: String, file: String) throws -> StrictYAML {
        guard text.utf8.count <= sizeLimit else {
            throw InputError(
                file: file, line: 0, key: nil, message: "larger than \(sizeLimit / 1024) KiB; this is not an inventory")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw InputError(
                file: file, line: Self.line(of: error), key: nil, message: "not valid YAML: \(Self.describe(error))")
        }
        guard let node, node.mapping != nil else {
            throw InputError(file: file, line: 1, key: nil, message: "expected a YAML mapping (key: value lines)")
        }
        // Aliases can make a small file a huge tree: count the nodes (stopping at the limit) before reading it.
        var budget = nodeLimit
        var stack = [node]
        while let next = stack.popLast() {
            budget -= 1
            guard budget >= 0 else {
                throw InputError(
                    file: file, line: next.mark?.line ?? 1, key: nil,
                    message:
                        "expands to more than \(nodeLimit) values (YAML aliases repeated?); this is not an inventory or playbook"
                )
            }
            if let mapping = next.mapping { stack += mapping.flatMap { [$0.key, $0.value] } }
            if let sequence = next.sequence { stack += sequence }
        }
        return StrictYAML(file: file, node: node, path: "")
    }

    /// A mapping built from data (nodes, not text).
    static func built(_ node: Node, file: String) -> StrictYAML { StrictYAML(file: file, node: node, path: "") }

    init(file: String, node: Node, path: String) {
        self.file = file
        self.node = node
        self.path = path
    }

    public var line: Int { node.mark?.line ?? 1 }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func value(_ key: String) -> Node? {
        node.mapping?.first { $0.key.string == key }?.value
    }

    func lineOf(_ key: String) -> Int {
        node.mapping?.first { $0.key.string == key }?.key.mark?.line ?? line
    }

    /// An error at `key` of this mapping.
    public func error(_ key: String?, _ message: String) -> InputError {
        InputError(
            file: file, line: key.map(lineOf) ?? line, key: key.map(keyPath) ?? (path.isEmpty ? nil : path),
            message: message)
    }

    /// Fails on keys not in `known`, naming them and listing the allowed ones.
    public func rejectUnknownKeys(_ known: [String]) throws {
        for (key, _) in node.mapping ?? [:] {
            let name = key.string ?? "?"
            if !known.contains(name) {
                throw InputError(
                    file: file, line: key.mark?.line ?? line, key: keyPath(name),
                    message: "unknown key; allowed here: \(known.joined(separator: ", "))")
            }
        }
    }

    public func has(_ key: String) -> Bool { value(key) != nil }

    public func string(_ key: String) throws -> String? {
        guard let node = value(key) else { return nil }
        guard let scalar = node.scalar else { throw error(key, "expected a single value, not a list or mapping") }
        return scalar.string
    }

    public func requiredString(_ key: String) throws -> String {
        guard let value = try string(key), !value.isEmpty else {
            throw error(nil, "missing required key '\(keyPath(key))'")
        }
        return value
    }

    public func int(_ key: String) throws -> Int? {
        guard let text = try string(key) else { return nil }
        guard let value = Int(text) else {
            throw error(key, "expected a whole number, not '\(text.prefix(40))'")
        }
        return value
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "expected true or false, not '\(text)'")
        }
    }

    /// A duration such as `500ms`, `10s`, `5m` or `1h`, within `range` (a value outside it is refused, naming
    /// the range).
    public func duration(_ key: String, within range: ClosedRange<Duration>) throws -> Duration? {
        guard let text = try string(key) else { return nil }
        guard let value = DurationText.parse(text) else {
            throw error(key, "'\(text)' is not a duration; write a number with ms, s, m or h (500ms, 10s, 5m, 1h)")
        }
        guard range.contains(value) else {
            throw error(
                key,
                "\(text) is out of range; write from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound))"
            )
        }
        return value
    }

    public func stringList(_ key: String) throws -> [String]? {
        guard let node = value(key) else { return nil }
        if let scalar = node.scalar { return [scalar.string] }
        guard let sequence = node.sequence else { throw error(key, "expected a list") }
        return try sequence.map { item in
            guard let scalar = item.scalar else { throw error(key, "expected a list of plain values") }
            return scalar.string
        }
    }

    public func mapping(_ key: String) throws -> StrictYAML? {
        guard let node = value(key) else { return nil }
        guard node.mapping != nil else { throw error(key, "expected a mapping (nested key: value lines)") }
        return StrictYAML(file: file, node: node, path: keyPath(key))
    }

    public func mappingList(_ key: String) throws -> [StrictYAML]? {
        guard let node = value(key) else { return nil }
        guard let sequence = node.sequence else {
            throw error(key, "expected a list of entries (lines starting with '- ')")
        }
        return try sequence.enumerated().map { index, item in
            guard item.mapping != nil else {
                throw InputError(
                    file: file, line: item.mark?.line ?? lineOf(key), key: "\(keyPath(key))[\(index)]",
                    message: "expected a mapping")
            }
            return StrictYAML(file: file, node: item, path: "\(keyPath(key))[\(index)]")
        }
    }

    /// The line to fix: where libyaml noticed the problem, except for a quoted scalar or a flow collection left
    /// open, which it notices only where the file goes on (or ends): the line where that construct starts.
    static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(let context, _, let mark, _), .parser(let context, _, let mark, _),
            .composer(let context, _, let mark, _):
            return unclosed(context).map(\.mark.line) ?? mark.line
        case .reader(_, let offset?, _, let yaml):
            // A character libyaml refuses (a control character): its line, counted up to its byte offset.
            return yaml.utf8.prefix(offset).reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        default: return 1
        }
    }

    static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            guard let context = unclosed(context) else { return problem }
            // `while parsing a flow sequence` → `the flow sequence`.
            let construct = context.text.range(of: " a ").map { String(context.text[$0.upperBound...]) } ?? context.text
            return "\(problem) (the \(construct) that starts here is not closed)"
        case .reader(let problem, _, let value, _):
            return "\(problem) (character U+\(String(UInt32(bitPattern: value), radix: 16, uppercase: true)))"
        default: return "\(error)"
        }
    }

    /// The context of an error inside a construct that spans lines until it is closed.
    private static func unclosed(_ context: YamlError.Context?) -> YamlError.Context? {
        guard let context, ["quoted scalar", "flow"].contains(where: { context.text.contains($0) }) else { return nil }
        return context
    }
}

/// Invalid input (inventory, playbook, parameters): names the file, line and key, and the fix.
public struct InputError: LocalizedError, Equatable, Sendable {
    public var file: String
    public var line: Int
    public var key: String?
    public var message: String

    public init(file: String, line: Int, key: String?, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    /// `file:line: key: message`; without the line when there is none (line 0).
    public var errorDescription: String? {
        "\(file)\(line > 0 ? ":\(line)" : ""): \(key.map { "\($0): " } ?? "")\(message)"
    }
}

/// Durations written as `500ms`, `10s`, `5m`, `1h`.
public enum DurationText {
    /// The longest duration written anywhere (a year): anything longer is no timeout but a typo, and the
    /// conversion to milliseconds stays far from overflow.
    public static let limit: Duration = .seconds(366 * 86400)

    /// The duration, or nil for text that is not one or is longer than ``limit``.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.count <= 20, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                let value = Double(number), value >= 0, value * factor <= 366 * 86400
            else { return nil }
            return .milliseconds(Int64((value * factor * 1000).rounded()))
        }
        return nil
    }

    /// `1h`, `5m`, `10s`, `500ms`: the shortest exact form.
    public static func format(_ duration: Duration) -> String {
        let ms = Int64(duration.components.seconds) * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms % 3_600_000 == 0 && ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 && ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension InputError {
    /// Reads an input file whole; when it cannot, the error names the file and the system's reason
    /// (`No such file or directory`, `Permission denied`, `Is a directory`).
    public static func read(_ path: String, what: String) throws -> Data {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw InputError(file: path, line: 0, key: nil, message: "cannot read the \(what): Is a directory")
        }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw InputError(file: path, line: 0, key: nil, message: "cannot read the \(what): \(reason)")
        }
        close(descriptor)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError(file: path, line: 0, key: nil, message: "cannot read the \(what)")
        }
        return data
    }
}
