/// One of the next things to do that a run's summary lists under `Next:`: what to do, in words, and the commands
/// that do it, each on a line of its own so that it can be pasted as printed.
public struct NextStep: Sendable, Equatable {
    public var text: String
    public var commands: [String]

    public init(_ text: String, commands: [String] = []) {
        self.text = text
        self.commands = commands
    }

    /// The summary's lines: `  N. words`, then each command indented on its own line.
    public static func lines(_ steps: [NextStep]) -> [String] {
        var lines: [String] = []
        for (number, step) in steps.enumerated() {
            lines.append("  \(number + 1). \(step.text)")
            lines += step.commands.map { "       \($0)" }
        }
        return lines
    }

    /// Reads the steps back from a summary (the lines after `Next:`), for the HTML report.
    public static func parse(summary: String) -> [NextStep] {
        guard let next = summary.range(of: "\nNext:\n") else { return [] }
        var steps: [NextStep] = []
        for line in summary[next.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("  ") else { break }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let dot = trimmed.firstIndex(of: "."), !trimmed[..<dot].isEmpty, trimmed[..<dot].allSatisfy(\.isNumber),
                !line.hasPrefix("     ")
            {
                steps.append(
                    NextStep(String(trimmed[trimmed.index(after: dot)...]).trimmingCharacters(in: .whitespaces)))
            } else if !steps.isEmpty {
                steps[steps.count - 1].commands.append(trimmed)
            }
        }
        return steps
    }
}
