import Foundation

/// Removes secrets from everything Drover prints or writes: known secret values (passphrases, the
/// contents of chef-backend-secrets.json when seen), and the values of keys whose names contain
/// password, secret or token, in JSON (`"key": "value"`), Ruby (`key = 'value'`, `['key'] = "value"`)
/// and YAML/INI (`key: value`, `key=value`) forms.
public struct Redactor: Sendable {
    public static let mask = "[REDACTED]"
    private var values: [String]

    public init(secrets: [String] = []) {
        values = secrets.filter { $0.count >= 4 }
    }

    /// Secrets known from the environment: the SSH key passphrase.
    public static var standard: Redactor {
        Redactor(secrets: [ProcessInfo.processInfo.environment["DROVER_SSH_PASSPHRASE"]].compactMap { $0 })
    }

    static let patterns: [NSRegularExpression] = [
        #"("[^"\n]*(?:password|secret|token)[^"\n]*"\s*:\s*")([^"\n]*)(")"#,
        #"(\[?['"]?[A-Za-z0-9_.-]*(?:password|secret|token)[A-Za-z0-9_.-]*['"]?\]?\s*=\s*['"])([^'"\n]*)(['"])"#,
        #"(\b[A-Za-z0-9_.-]*(?:password|secret|token)[A-Za-z0-9_.-]*\s*[:=]\s*)([^\s'"{\[,;][^\s,;]*)()"#,
    ].map { try! NSRegularExpression(pattern: $0, options: [.caseInsensitive]) }

    /// `text` with every secret replaced by ``mask``.
    public func redact(_ text: String) -> String {
        var result = text
        for value in values where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: Self.mask)
        }
        for pattern in Self.patterns {
            let range = NSRange(result.startIndex..., in: result)
            result = pattern.stringByReplacingMatches(in: result, range: range, withTemplate: "$1\(Self.mask)$3")
        }
        return result
    }
}
