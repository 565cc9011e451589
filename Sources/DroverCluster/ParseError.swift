import Foundation

/// Output that does not have the documented form.
public enum ParseError: LocalizedError, Equatable {
    case unrecognised(String, String)

    public var errorDescription: String? {
        switch self {
        case .unrecognised(let what, let excerpt): return "cannot read the output of \(what): \(excerpt)"
        }
    }

    /// The start of an output that could not be read, for the error's message.
    public static func excerpt(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "(empty)" : String(trimmed.prefix(200))
    }
}
