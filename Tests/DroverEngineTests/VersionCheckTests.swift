import DroverReporting
import Foundation
import Testing

@testable import DroverChefBackend
@testable import DroverEngine

/// The backends' and the frontends' release check: read, and never a downgrade.
@Suite("version check")
struct VersionCheckTests {
    @Test(
        "installed against the target",
        arguments: [
            ("2.3.15", true, "2.3.15 → 2.3.16", nil), ("2.3.16", true, "at 2.3.16", nil),
            ("2.10.0", false, "2.10.0 is newer than the target 2.3.16", "2.10.0 is newer"),
            (nil, false, "not read", "read it"),
        ] as [(String?, Bool, String, String?)])
    func versionCheck(installed: String?, ok: Bool, detail: String, fix: String?) {
        let check = VersionCheck.check(
            "version", node: "be1", installed: installed, target: "2.3.16", unread: ("not read", "read it"),
            atTarget: { "at \($0)" }, downgradeFix: { "\($0) is newer" })
        #expect(check.ok == ok && check.detail == detail && check.fix == fix && check.node == "be1")
    }
}
