/// Escaping for HTML and XML text and attribute values.
public enum Markup {
    /// `& < > " '` as entities; control characters other than newline and tab (which XML 1.0 forbids)
    /// as spaces.
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            case let c where c.value < 0x20 && c != "\n" && c != "\t": result += " "
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
