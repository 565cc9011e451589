import DroverCluster
import Foundation

/// The result of `drover diagnose` for any topology.
public struct Diagnosis: Sendable {
    /// False when too little could be read to tell (exit 2).
    public var readable: Bool
    public var situations: [Situation]
    /// What to say when no situation was found.
    public var healthyText: String
    /// Why nothing could be told, when not readable.
    public var unreadableText: String = ""
    /// Extra top-level JSON fields.
    public var extra: [String: JSONValue] = [:]

    public init(
        readable: Bool, situations: [Situation], healthyText: String, unreadableText: String = "",
        extra: [String: JSONValue] = [:]
    ) {
        self.readable = readable
        self.situations = situations
        self.healthyText = healthyText
        self.unreadableText = unreadableText
        self.extra = extra
    }

    /// 0 healthy, 1 needs action, 2 could not read enough to tell.
    public var exitStatus: ExitStatus { !readable ? .refused : (situations.isEmpty ? .success : .failedAfterChanges) }
}

/// Renders a diagnosis for people and as one JSON object.
public enum DiagnosisReport {
    public static func text(_ diagnosis: Diagnosis) -> String {
        guard diagnosis.readable else { return diagnosis.unreadableText }
        guard !diagnosis.situations.isEmpty else { return diagnosis.healthyText }
        var lines: [String] = []
        for situation in diagnosis.situations {
            lines +=
                ["Situation: \(situation.id): \(situation.summary)", "  Evidence:"]
                + situation.evidence.map { "    - \($0)" }
            // Every command alone on its line, so that it pastes as printed.
            if let first = situation.first {
                lines.append("  First: \(first)")
                if let command = situation.firstCommand { lines.append("      \(command)") }
            }
            if let command = situation.command {
                lines.append(situation.commandCondition.map { "  Only if \($0), run:" } ?? "  Run:")
                lines.append("      \(command)")
            }
            if let advice = situation.advice {
                lines.append("  Note: \(advice)")
                lines += situation.adviceCommands.map { "      \($0)" }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func json(_ diagnosis: Diagnosis, cluster: String) -> String {
        var object: [String: JSONValue] = [
            "cluster": .string(cluster), "healthy": .bool(diagnosis.exitStatus == .success),
            "readable": .bool(diagnosis.readable),
            "situations": .array(
                diagnosis.situations.map { situation in
                    .object([
                        "id": .string(situation.id), "summary": .string(situation.summary),
                        "evidence": .array(situation.evidence.map { .string($0) }),
                        "command": .optional(situation.command),
                        "advice": .optional(situation.advice),
                        "advice_commands": .array(situation.adviceCommands.map { .string($0) }),
                        "first": .optional(situation.first),
                        "first_command": .optional(situation.firstCommand),
                        "command_condition": .optional(situation.commandCondition),
                    ])
                }),
        ]
        object.merge(diagnosis.extra) { $1 }
        return JSONValue.object(object).serialized + "\n"
    }
}
