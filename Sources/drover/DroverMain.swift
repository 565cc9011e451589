import ArgumentParser
import DroverReporting
import Foundation

/// The entry point: a misspelt subcommand is answered with the subcommand meant, before the arguments are parsed
/// (the parser would otherwise complain about whatever option follows it), then `drover` runs.
@main
enum DroverMain {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, let message = CommandSuggestion.unknownSubcommand(first, known: subcommands) {
            Output.diagnostic(message)
            exit(ExitStatus.usage.rawValue)
        }
        await Drover.main()
    }

    /// The subcommands `drover` knows, and `help`.
    static var subcommands: [String] {
        Drover.configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"]
    }
}

/// "Did you mean" for a word that names no subcommand.
enum CommandSuggestion {
    /// Why `word` is refused, with the nearest subcommand; nil when it is a subcommand or an option.
    static func unknownSubcommand(_ word: String, known: [String]) -> String? {
        guard !word.hasPrefix("-"), !known.contains(word) else { return nil }
        let nearest = known.map { ($0, distance(word, $0)) }.min { $0.1 < $1.1 }
        let suggestion = nearest.flatMap { $0.1 <= max(2, word.count / 3) ? " Did you mean '\($0.0)'?" : nil } ?? ""
        return "unknown command '\(TerminalText.readable(word))'.\(suggestion) The commands: drover --help"
    }

    /// The edit distance (insertions, deletions, substitutions, and swaps of neighbours) between two short words.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.prefix(64))
        let b = Array(b.prefix(64))
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var rows = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { rows[i][0] = i }
        for j in 0...b.count { rows[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
                }
            }
        }
        return rows[a.count][b.count]
    }
}
