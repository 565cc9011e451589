import DroverReporting
import DroverSSH
import Foundation

/// Questions to the operator on standard input, read on their own thread (never the cooperative pool).
public enum Terminal {
    /// The longest answer kept; the rest of a longer line is read and dropped.
    static let answerLimit = 4096

    /// Prints `prompt` (on stderr: stdout carries results, JSON Lines with `--json`) and reads one line; nil
    /// without a terminal, at end of input, or once `cancelled` says so (an interrupt at the prompt: the
    /// question is withdrawn, not answered).
    public static func ask(_ prompt: String, cancelled: @escaping @Sendable () -> Bool = { false }) async -> String? {
        guard isatty(0) == 1 else { return nil }
        Output.stderr(prompt)
        let line = try? await BlockingWork.run { readLine(cancelled: cancelled) }
        return (line ?? nil)?.trimmingCharacters(in: .whitespaces)
    }

    /// One line of standard input without its newline, waiting in short polls so that `cancelled` is seen within
    /// a tenth of a second; nil at end of input or once cancelled.
    static func readLine(cancelled: () -> Bool) -> String? {
        var bytes: [UInt8] = []
        while !cancelled() {
            var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready < 0 && errno != EINTR { return nil }
            guard ready > 0 else { continue }
            var byte: UInt8 = 0
            let count = read(0, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            if bytes.count < answerLimit { bytes.append(byte) }
        }
        return nil
    }
}
