/// Splits a stream of bytes into lines for streaming callbacks.
struct LineSplitter {
    let stream: OutputLine.Stream
    private var pending: [UInt8] = []

    init(stream: OutputLine.Stream) { self.stream = stream }

    mutating func feed(_ bytes: ArraySlice<UInt8>, to handler: (@Sendable (OutputLine) -> Void)?) {
        guard let handler else { return }
        pending.append(contentsOf: bytes)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            handler(OutputLine(stream: stream, text: String(decoding: line, as: UTF8.self)))
            pending.removeSubrange(...newline)
        }
    }

    mutating func flush(to handler: (@Sendable (OutputLine) -> Void)?) {
        guard let handler, !pending.isEmpty else { return }
        handler(OutputLine(stream: stream, text: String(decoding: pending, as: UTF8.self)))
        pending.removeAll()
    }
}
