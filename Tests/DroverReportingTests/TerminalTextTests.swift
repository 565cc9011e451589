import Testing

@testable import DroverReporting

/// Output captured from a program that draws for a terminal (chef-backend-ctl's progress indicators) reads as
/// the terminal would show it.
@Suite("terminal text")
struct TerminalTextTests {
    @Test(arguments: [
        ("plain text", "plain text"),
        (
            "\u{1B}[?25l[          ]   0%\r[#####     ]  50%\r[##########] 100%\r\u{1B}[2K\u{1B}[?25hRestarting services",
            "Restarting services"
        ),
        ("Upgrading [####      ] 40%\r", "Upgrading [####      ] 40%"),
        ("\u{1B}[1;32mOK\u{1B}[0m done", "OK done"),
        ("\u{1B}]0;window title\u{07}after", "after"),
        ("tab\tkept\u{7F}", "tab\tkept"),
        ("\u{1B}(Bcharset", "charset"),
        ("line\r\n", "line"),
        // 8-bit C1 controls: OSC, DCS, APC and PM strings up to ST (0x9C) or BEL, a bare CSI, any other C1.
        ("\u{9D}0;title\u{9C}after", "after"), ("\u{90}q\u{1B}\\after", "after"), ("\u{9F}apc\u{07}ok", "ok"),
        ("\u{9E}pm\u{9C}ok", "ok"), ("\u{9B}31mred", "red"), ("a\u{85}b", "ab"),
        ("\u{1B}P1$r\u{1B}\\after", "after"), ("\u{1B}_apc\u{1B}\\ok", "ok"),
    ])
    func aLineReadsAsTheTerminalShowsIt(_ captured: String, _ readable: String) {
        #expect(TerminalText.readable(captured) == readable)
        #expect(
            !TerminalText.readable(captured).unicodeScalars.contains {
                $0.value == 0x1B || $0.value == 0x0D || (0x80...0x9F).contains($0.value)
            })
    }

    @Test func linesAreKept() {
        let text = "Upgrading chef-backend\n\u{1B}[2K[###] 30%\rRestarting services\nWaiting"
        #expect(TerminalText.readableLines(text) == "Upgrading chef-backend\nRestarting services\nWaiting")
    }
}
