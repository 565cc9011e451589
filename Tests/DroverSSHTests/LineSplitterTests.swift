import Testing

@testable import DroverSSH

/// Lines from a command's output: linear in its bytes, a long line kept in part with what was cut counted.
@Suite("line splitting", .timeLimit(.minutes(1)))
struct LineSplitterTests {
    final class Lines: @unchecked Sendable {
        var texts: [String] = []
    }

    static func split(_ chunks: [[UInt8]]) -> [String] {
        let lines = Lines()
        var splitter = LineSplitter(stream: .stdout)
        for chunk in chunks { splitter.feed(chunk[...], to: { lines.texts.append($0.text) }) }
        splitter.flush(to: { lines.texts.append($0.text) })
        return lines.texts
    }

    @Test func linesAcrossChunksAndCarriageReturns() {
        #expect(Self.split([Array("a\r\nb".utf8), Array("c\n\nd".utf8)]) == ["a", "bc", "", "d"])
    }

    /// 20 MB in one line, fed 64 KiB at a time: one line, its first 16 KiB and the count of the rest.
    @Test func aTwentyMegabyteLineIsKeptInPart() {
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
        let lines = Self.split(Array(repeating: chunk, count: 320) + [Array("\nafter\n".utf8)])
        #expect(lines.count == 2 && lines[1] == "after")
        let cut = 320 * 64 * 1024 - LineSplitter.lineLimit
        #expect(
            lines[0] == String(repeating: "x", count: LineSplitter.lineLimit)
                + " [… \(cut) more bytes of this line not shown]")
    }

    @Test func manyShortLinesInOneChunk() {
        let text = String(repeating: "line\n", count: 200_000)
        #expect(Self.split([Array(text.utf8)]).count == 200_000)
    }

    @Test func outputKeptInMemoryIsBounded() {
        var output = BoundedOutput()
        let chunk = [UInt8](repeating: 0x61, count: 1024 * 1024)
        for _ in 0..<10 { output.append(chunk[...]) }
        #expect(output.data.count == BoundedOutput.limit && output.dropped == 2 * 1024 * 1024)
        #expect(
            String(decoding: output.result.suffix(80), as: UTF8.self).contains("2097152 more bytes of output not kept"))
    }
}
