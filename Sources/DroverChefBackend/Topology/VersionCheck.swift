import DroverCluster
import DroverEngine
import DroverReporting
import Foundation

/// The pre-flight check that a node's installed release can go to the target: read, and never newer (Drover
/// does not downgrade). The backends' `version` and the frontends' `frontend-version` checks.
enum VersionCheck {
    /// - Parameters:
    ///   - unread: the detail and fix when the installed release could not be read.
    ///   - atTarget: the detail for a node already at the target.
    ///   - downgradeFix: the fix for a node newer than the target.
    static func check(
        _ name: String, node: String, installed: String?, target: String, unread: (detail: String, fix: String),
        atTarget: (String) -> String, downgradeFix: (String) -> String
    ) -> PreflightCheck {
        guard let installed else {
            return PreflightCheck(check: name, node: node, ok: false, detail: unread.detail, fix: unread.fix)
        }
        switch compareVersions(installed, target) {
        case .orderedSame:
            return PreflightCheck(check: name, node: node, ok: true, detail: atTarget(installed), fix: nil)
        case .orderedAscending:
            return PreflightCheck(check: name, node: node, ok: true, detail: "\(installed) → \(target)", fix: nil)
        case .orderedDescending:
            return PreflightCheck(
                check: name, node: node, ok: false, detail: "\(installed) is newer than the target \(target)",
                fix: downgradeFix(installed))
        }
    }
}
