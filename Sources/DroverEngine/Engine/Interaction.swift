/// How a run may talk to its operator.
public struct Interaction: Sendable {
    /// `--yes`: destructive steps need no typed confirmation.
    public var yes: Bool
    /// `--assume-done`: manual steps count as done without asking.
    public var assumeDone: Bool
    /// Asks the operator a question and returns the line typed, or nil when nobody can answer (no terminal,
    /// end of input): the command layer decides how (the terminal, a test's script).
    public var ask: @Sendable (_ question: String) async -> String?

    public init(
        yes: Bool, assumeDone: Bool, ask: @escaping @Sendable (_ question: String) async -> String? = { _ in nil }
    ) {
        self.yes = yes
        self.assumeDone = assumeDone
        self.ask = ask
    }
}
