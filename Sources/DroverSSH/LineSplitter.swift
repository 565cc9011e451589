import Foundation

/// Splits a stream of bytes into lines for streaming callbacks, in time linear in the bytes and memory bounded
/// by ``lineLimit``: a longer line is kept in part, with what was cut counted.
struct LineSplitter {
    /// The longest line passed on whole (bytes); the rest of a longer one is counted, not kept.
    static let lineLimit = 16 * 1024

    let stream: OutputLine.Stream
    /// The current line's bytes so far (at most ``lineLimit``).
    private var pending: [UInt8] = []
    /// Bytes of the current line dropped past ``lineLimit``.
    private var cut = 0

    init(stream: OutputLine.Stream) { self.stream = stream }

    mutating func feed(_ bytes: ArraySlice<UInt8>, to handler: (@Sendable (OutputLine) -> Void)?) {
        guard let handler else { return }
        var start = bytes.startIndex
        while start < bytes.endIndex {
            guard let newline = Self.newline(in: bytes[start...]) else {
                keep(bytes[start...])
                return
            }
            keep(bytes[start..<newline])
            emit(to: handler)
            start = newline + 1
        }
    }

    /// The index of the first `\n` in `bytes` (memchr: a 20 MB line is scanned as fast in a debug or
    /// sanitized build as in a release one).
    static func newline(in bytes: ArraySlice<UInt8>) -> Int? {
        bytes.withUnsafeBytes { raw -> Int? in
            guard let base = raw.baseAddress, let hit = memchr(base, 0x0A, raw.count) else { return nil }
            return bytes.startIndex + base.distance(to: UnsafeRawPointer(hit))
        }
    }

    mutating func flush(to handler: (@Sendable (OutputLine) -> Void)?) {
        guard let handler, !pending.isEmpty || cut > 0 else { return }
        emit(to: handler)
    }

    private mutating func keep(_ bytes: ArraySlice<UInt8>) {
        let room = max(0, Self.lineLimit - pending.count)
        pending.append(contentsOf: bytes.prefix(room))
        cut += max(0, bytes.count - room)
    }

    private mutating func emit(to handler: @Sendable (OutputLine) -> Void) {
        if cut == 0, pending.last == UInt8(ascii: "\r") { pending.removeLast() }
        var text = String(decoding: pending, as: UTF8.self)
        if cut > 0 { text += " [… \(cut) more bytes of this line not shown]" }
        handler(OutputLine(stream: stream, text: text))
        pending.removeAll(keepingCapacity: true)
        cut = 0
    }
}

/// A command's output as kept in memory: up to ``limit`` bytes, the rest counted (the node's own record of a
/// detached command keeps it all).
struct BoundedOutput {
    static let limit = 8 * 1024 * 1024

    private(set) var data: [UInt8] = []
    private(set) var dropped = 0

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        let room = max(0, Self.limit - data.count)
        data.append(contentsOf: bytes.prefix(room))
        dropped += max(0, bytes.count - room)
    }

    /// The bytes kept, and a last line saying how many were not.
    var result: [UInt8] {
        guard dropped > 0 else { return data }
        return data + Array("\n[drover: \(dropped) more bytes of output not kept in memory]\n".utf8)
    }
}
