import DroverReporting
import Foundation

/// How a run may talk to its operator.
public struct Interaction: Sendable {
    /// `--yes`: destructive steps need no typed confirmation.
    public var yes: Bool
    /// `--assume-done`: manual steps count as done without asking.
    public var assumeDone: Bool

    public init(yes: Bool, assumeDone: Bool) {
        self.yes = yes
        self.assumeDone = assumeDone
    }
}

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
