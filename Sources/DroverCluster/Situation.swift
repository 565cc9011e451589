import Foundation

/// A named situation with the evidence for it and what to do.
public struct Situation: Sendable {
    public var id: String
    public var summary: String
    public var evidence: [String]
    /// The command to run, complete with its parameters; nil when only advice can be given.
    public var command: String?
    public var advice: String?

    public init(id: String, summary: String, evidence: [String], command: String?, advice: String?) {
        self.id = id
        self.summary = summary
        self.evidence = evidence
        self.command = command
        self.advice = advice
    }
}
