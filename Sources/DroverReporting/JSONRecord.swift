import Foundation

/// How every record Drover keeps or prints is written and read: a `Codable` type, encoded to a ``JSONValue``
/// (``JSONValueEncoder``) and serialised by ``JSONValue/serialized`` (compact, sorted keys, three decimals), and
/// read back with `JSONDecoder`. Dates are RFC 3339 with milliseconds both ways.
public enum JSONRecord {
    /// The record as one JSON value.
    public static func value(_ record: some Encodable) -> JSONValue {
        do {
            return try JSONValueEncoder().encode(record)
        } catch {
            preconditionFailure("a record failed to encode: \(error)")
        }
    }

    /// The record as one line of JSON.
    public static func line(_ record: some Encodable) -> String { value(record).serialized }

    /// Reads a record of type `T` from JSON text.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = RFC3339.date(text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not an RFC 3339 time"))
            }
            return date
        }
        return try decoder.decode(type, from: data)
    }

    /// Reads one line; nil when it is not a record of type `T`.
    public static func decode<T: Decodable>(_ type: T.Type, line: some StringProtocol) -> T? {
        try? decode(type, from: Data(String(line).utf8))
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .array(let values): try container.encode(values)
        case .object(let object): try container.encode(object)
        }
    }
}

/// Encodes an `Encodable` value to a ``JSONValue``: what ``JSONRecord`` writes with. A `Date` becomes its RFC 3339
/// text and a ``JSONValue`` stays as it is.
public struct JSONValueEncoder {
    public init() {}

    public func encode(_ value: some Encodable) throws -> JSONValue {
        try JSONTreeEncoder.value(of: value, at: [])
    }
}

/// A node of the value being encoded: containers are filled after they are handed out, so they are references.
private final class JSONTree {
    enum Kind {
        case value(JSONValue)
        case object([String: JSONTree])
        case array([JSONTree])
    }

    var kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    var resolved: JSONValue {
        switch kind {
        case .value(let value): return value
        case .object(let object): return .object(object.mapValues(\.resolved))
        case .array(let array): return .array(array.map(\.resolved))
        }
    }
}

private final class JSONTreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var root: JSONTree?

    init(codingPath: [any CodingKey]) { self.codingPath = codingPath }

    /// The JSON of one value: dates and JSON values directly, anything else through its own `encode(to:)`.
    static func value(of value: some Encodable, at path: [any CodingKey]) throws -> JSONValue {
        if let date = value as? Date { return .string(RFC3339.string(date)) }
        if let json = value as? JSONValue { return json }
        let encoder = JSONTreeEncoder(codingPath: path)
        try value.encode(to: encoder)
        return encoder.root?.resolved ?? .object([:])
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let tree = root ?? JSONTree(.object([:]))
        root = tree
        return KeyedEncodingContainer(Keyed<Key>(tree: tree, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let tree = root ?? JSONTree(.array([]))
        root = tree
        return Unkeyed(tree: tree, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(encoder: self) }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let tree: JSONTree
        let codingPath: [any CodingKey]

        private func set(_ value: JSONTree, _ key: Key) {
            if case .object(var object) = tree.kind {
                object[key.stringValue] = value
                tree.kind = .object(object)
            }
        }

        mutating func encodeNil(forKey key: Key) throws { set(JSONTree(.value(.null)), key) }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            set(JSONTree(.value(try JSONTreeEncoder.value(of: value, at: codingPath + [key]))), key)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type, forKey key: Key
        ) -> KeyedEncodingContainer<NestedKey> {
            let child = JSONTree(.object([:]))
            set(child, key)
            return KeyedEncodingContainer(Keyed<NestedKey>(tree: child, codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let child = JSONTree(.array([]))
            set(child, key)
            return Unkeyed(tree: child, codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder { JSONTreeEncoder(codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { JSONTreeEncoder(codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let tree: JSONTree
        let codingPath: [any CodingKey]
        var count: Int {
            if case .array(let array) = tree.kind { return array.count }
            return 0
        }

        private func append(_ value: JSONTree) {
            if case .array(var array) = tree.kind {
                array.append(value)
                tree.kind = .array(array)
            }
        }

        mutating func encodeNil() throws { append(JSONTree(.value(.null))) }

        mutating func encode<T: Encodable>(_ value: T) throws {
            append(JSONTree(.value(try JSONTreeEncoder.value(of: value, at: codingPath))))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type
        ) -> KeyedEncodingContainer<NestedKey> {
            let child = JSONTree(.object([:]))
            append(child)
            return KeyedEncodingContainer(Keyed<NestedKey>(tree: child, codingPath: codingPath))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let child = JSONTree(.array([]))
            append(child)
            return Unkeyed(tree: child, codingPath: codingPath)
        }

        mutating func superEncoder() -> any Encoder { JSONTreeEncoder(codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let encoder: JSONTreeEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }

        private func set(_ value: JSONValue) { encoder.root = JSONTree(.value(value)) }

        mutating func encodeNil() throws { set(.null) }
        mutating func encode(_ value: Bool) throws { set(.bool(value)) }
        mutating func encode(_ value: String) throws { set(.string(value)) }
        mutating func encode(_ value: Double) throws { set(.double(value)) }
        mutating func encode(_ value: Float) throws { set(.double(Double(value))) }
        mutating func encode(_ value: Int) throws { set(.int(value)) }
        mutating func encode(_ value: Int8) throws { set(.int(Int(value))) }
        mutating func encode(_ value: Int16) throws { set(.int(Int(value))) }
        mutating func encode(_ value: Int32) throws { set(.int(Int(value))) }
        mutating func encode(_ value: Int64) throws { set(.int(Int(value))) }
        mutating func encode(_ value: UInt) throws { set(.int(Int(clamping: value))) }
        mutating func encode(_ value: UInt8) throws { set(.int(Int(value))) }
        mutating func encode(_ value: UInt16) throws { set(.int(Int(value))) }
        mutating func encode(_ value: UInt32) throws { set(.int(Int(value))) }
        mutating func encode(_ value: UInt64) throws { set(.int(Int(clamping: value))) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            set(try JSONTreeEncoder.value(of: value, at: codingPath))
        }
    }
}
