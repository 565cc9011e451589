import Foundation

/// One pre-flight check's outcome.
public struct PreflightCheck: Sendable, Equatable {
    public init(check: String, node: String?, ok: Bool, detail: String, fix: String?) {
        self.check = check
        self.node = node
        self.ok = ok
        self.detail = detail
        self.fix = fix
    }

    public var check: String
    public var node: String?
    public var ok: Bool
    public var detail: String
    /// How to fix a failed check.
    public var fix: String?
    /// Information, not a check: what could not be evaluated (shown as `[info]`, never as passed; it does not
    /// stop a run).
    public var information = false

    /// Something a plan says that is not a check that passed or failed.
    public static func information(_ check: String, node: String? = nil, _ detail: String) -> PreflightCheck {
        var item = PreflightCheck(check: check, node: node, ok: true, detail: detail, fix: nil)
        item.information = true
        return item
    }
}
