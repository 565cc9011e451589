import Foundation

/// A named situation with the evidence for it and what to do.
public struct Situation: Sendable {
    public var id: String
    public var summary: String
    public var evidence: [String]
    /// The command to run, complete with its parameters; nil when only advice can be given.
    public var command: String?
    /// Words for the operator, after the command (a note); commands they name are in ``adviceCommands``.
    public var advice: String?
    /// The commands the advice names, each printed alone on its line.
    public var adviceCommands: [String]
    /// The safe reading, said before the command when the command is the second branch (destructive, and
    /// only for when the safe reading does not hold), with how to tell.
    public var first: String?
    /// The command that tells whether the safe reading holds (`drover status ...`).
    public var firstCommand: String?
    /// When the command applies, when it is the second branch (`be3 is lost for good`).
    public var commandCondition: String?

    public init(
        id: String, summary: String, evidence: [String], command: String?, advice: String?, first: String? = nil,
        firstCommand: String? = nil, commandCondition: String? = nil, adviceCommands: [String] = []
    ) {
        self.adviceCommands = adviceCommands
        self.id = id
        self.summary = summary
        self.evidence = evidence
        self.command = command
        self.advice = advice
        self.first = first
        self.firstCommand = firstCommand
        self.commandCondition = commandCondition
    }
}
