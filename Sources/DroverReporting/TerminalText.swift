/// What a terminal would show of a line a program wrote for one: chef-backend-ctl draws progress indicators
/// (release notes 1.3.2), so captured output carries carriage returns and ANSI sequences. The console, the
/// transcript, JUnit and the HTML report keep the readable text.
public enum TerminalText {
    /// The text after the line's last carriage return (what overwrote the rest), without ANSI escape sequences
    /// (CSI such as `ESC[2K`, OSC such as a window title, two-character escapes) or other control characters
    /// (tabs are kept).
    public static func readable(_ line: String) -> String {
        guard line.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) else {
            return line
        }
        // A carriage return moves back to the start: what follows overwrites what came before. Text that
        // ends with one (a redraw about to start) keeps what was last drawn.
        var segments = line.split(separator: "\r", omittingEmptySubsequences: false).map(String.init)
        while segments.count > 1, stripped(segments.last!).isEmpty { segments.removeLast() }
        return stripped(segments.last ?? "")
    }

    /// Each line of `text` made readable, the lines kept.
    public static func readableLines(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { readable(String($0)) }.joined(
            separator: "\n")
    }

    /// `text` without escape sequences and control characters.
    static func stripped(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var scalars = text.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            switch scalar.value {
            case 0x1B:
                guard let next = scalars.next() else { break }
                if next == "[" {
                    // CSI: parameters and intermediates, then a final byte in @...~.
                    while let byte = scalars.next(), !(0x40...0x7E).contains(byte.value) {}
                } else if next == "]" {
                    // OSC: up to BEL or ESC \.
                    while let byte = scalars.next(), byte.value != 0x07 {
                        if byte.value == 0x1B {
                            _ = scalars.next()
                            break
                        }
                    }
                } else if ["P", "X", "^", "_"].contains(next) {
                    // DCS, SOS, PM, APC: a string up to ST (ESC \) or BEL.
                    skipString(&scalars)
                } else if (0x20...0x2F).contains(next.value) {
                    // An escape with intermediates (`ESC ( B`, a character set): up to its final byte.
                    while let byte = scalars.next(), !(0x30...0x7E).contains(byte.value) {}
                }
            // Any other: a two-character escape, both dropped.
            case 0x9B:
                while let byte = scalars.next(), !(0x40...0x7E).contains(byte.value) {}
            case 0x90, 0x98, 0x9D, 0x9E, 0x9F:
                // The 8-bit DCS, SOS, OSC, PM and APC: a string up to ST (0x9C, ESC \) or BEL.
                skipString(&scalars)
            case 0x09:
                result.append(scalar)
            case 0..<0x20, 0x7F...0x9F:
                break
            default:
                result.append(scalar)
            }
        }
        return String(result)
    }

    /// Skips a control string's body and its terminator: ST (0x9C or ESC \\) or BEL.
    private static func skipString(_ scalars: inout String.UnicodeScalarView.Iterator) {
        while let byte = scalars.next() {
            if byte.value == 0x07 || byte.value == 0x9C { return }
            if byte.value == 0x1B {
                _ = scalars.next()
                return
            }
        }
    }
}
