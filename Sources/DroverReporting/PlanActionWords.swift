/// A plan's action in the words every rendering of a plan uses (the text plan, JSON `text`, the HTML report):
/// `skip (why)`, `wait PREDICATE`, `check WHAT`, `confirm ...`, `manual ...`, or the command.
public enum PlanActionWords {
    public static func text(action: String, detail: String?, command: String?) -> String {
        switch action {
        case "skip": return "skip (\(detail ?? ""))"
        case "wait", "check", "confirm", "manual": return "\(action) \(detail ?? "")"
        default: return command.flatMap { $0.isEmpty ? nil : $0 } ?? action
        }
    }
}
