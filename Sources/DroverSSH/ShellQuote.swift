/// POSIX shell quoting for values placed into remote command lines.
public enum ShellQuote {
    /// Quotes `value` for a POSIX shell; plain words stay unquoted for readability.
    public static func quote(_ value: String) -> String {
        // `#` starts a comment only at the start of a word (an Ansible inventory's FILE#GROUP stays plain).
        if !value.isEmpty, !value.hasPrefix("#"), value.unicodeScalars.allSatisfy({ safe.contains($0) || $0 == "#" }) {
            return value
        }
        return "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Quotes each argument and joins them with spaces.
    public static func join(_ arguments: [String]) -> String {
        arguments.map(quote).joined(separator: " ")
    }

    private static let safe = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_+=:,./-".unicodeScalars)
}
