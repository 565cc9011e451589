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
}
