import Foundation

/// Command templates: `{{name}}` placeholders replaced by shell-quoted values.
public enum Template {
    static let known: Set<String> = ["node", "node.host"]

    static func placeholders(in template: String) -> [String] {
        var result: [String] = []
        var rest = Substring(template)
        while let open = rest.range(of: "{{"), let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex)
        {
            result.append(rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces))
            rest = rest[close.upperBound...]
        }
        return result
    }

    /// Fills `template`; every value is shell-quoted, except `raw` ones (flag texts the playbook itself
    /// defines, never operator input).
    ///
    /// One pass over the template: each `{{NAME}}` (spaces inside allowed) is replaced where it stands, and a
    /// value is never read again, so a `{{` inside a value stays text (it cannot reopen a placeholder inside an
    /// earlier quoted value).
    public static func render(
        _ template: String, values: [String: String], raw: [String: String] = [:], quote: (String) -> String
    ) -> String {
        var result = ""
        var rest = Substring(template)
        while let open = rest.range(of: "{{"), let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex)
        {
            result += rest[..<open.lowerBound]
            let placeholder = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            result += raw[placeholder] ?? quote(values[placeholder] ?? "")
            rest = rest[close.upperBound...]
        }
        return result + rest
    }
}
