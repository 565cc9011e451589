import DroverReporting
import Foundation

/// Questions to the operator on standard input, read on their own thread (never the cooperative pool).
public enum Terminal {
    /// Prints `prompt` and reads one line; nil without a terminal or at end of input.
    public static func ask(_ prompt: String) async -> String? {
        guard isatty(0) == 1 else { return nil }
        Output.stdout(prompt)
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: readLine()?.trimmingCharacters(in: .whitespaces))
            }
        }
    }
}
