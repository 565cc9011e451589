import DroverReporting
import DroverSSH
import Foundation

/// Questions to the operator on standard input, read on their own thread (never the cooperative pool).
public enum Terminal {
    /// Prints `prompt` and reads one line; nil without a terminal or at end of input.
    public static func ask(_ prompt: String) async -> String? {
        guard isatty(0) == 1 else { return nil }
        Output.stdout(prompt)
        let line = try? await BlockingWork.run { readLine()?.trimmingCharacters(in: .whitespaces) }
        return line ?? nil
    }
}
