import DroverInventory
import DroverReporting
import Foundation
import Testing

@testable import DroverEngine

/// A saved plan is one `Codable` record: written and read by the same type, with its file and key named when a
/// file is not one.
@Suite("saved plans")
struct SavedPlanTests {
    static let plan = SavedPlan(
        playbook: "upgrade", playbookSource: .file("/playbooks/upgrade.yml"), playbookDigest: "ab12",
        parameters: ["replacement": "be2"], inventoryFile: "/etc/drover/prod.yml", inventoryDigest: "cd34",
        cluster: "prod", created: RFC3339.date("2026-12-03T08:00:01.250Z")!,
        fingerprint: ["leader": "be1", "node.be1.version": "2.3.15"],
        plan: .object(["backup": .bool(true), "steps": .array([.object(["index": .int(1), "action": "confirm"])])]),
        backup: true)

    /// A saved plan's file, removed when the test ends.
    static func file(_ text: String, _ body: (String) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "drover-plan-\(UUID().uuidString).json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(path)
    }

    @Test func aSavedPlanReadsBackAsWritten() throws {
        let line = Self.plan.json.serialized
        #expect(line.hasPrefix(#"{"cluster":"prod","created":"2026-12-03T08:00:01.250Z","fingerprint":"#))
        #expect(
            line.contains(#""format":"drover-plan/2""#) && line.contains(#""playbook_source":"/playbooks/upgrade.yml""#)
        )
        try Self.file(line) { path in
            let read = try SavedPlan.load(path: path)
            #expect(read.playbook == "upgrade" && read.playbookSource == .file("/playbooks/upgrade.yml"))
            #expect(read.parameters == Self.plan.parameters && read.fingerprint == Self.plan.fingerprint)
            #expect(read.created == Self.plan.created && read.plan == Self.plan.plan)
            #expect(read.backup == true && read.asksForConfirmation)
            #expect(read.json == Self.plan.json)
        }
    }

    @Test(
        arguments: [
            ("{}", nil as String?, "not a saved Drover plan (drover-plan/2)"),
            (#"{"format":"drover-plan/1"}"#, nil, "not a saved Drover plan"),
            ("not json", nil, "not a saved Drover plan"),
            (#"{"format":"drover-plan/2","playbook":"upgrade"}"#, "playbook_source", "missing from the saved plan"),
            (
                #"{"format":"drover-plan/2","playbook":5,"playbook_source":"built-in"}"#, "playbook",
                "missing from the saved plan"
            ),
        ])
    func aFileThatIsNotOneNamesWhy(text: String, key: String?, message: String) throws {
        try Self.file(text) { path in
            let error = try #require(throws: InputError.self) { try SavedPlan.load(path: path) }
            #expect(error.file == path && error.key == key, "\(error.localizedDescription)")
            #expect(error.localizedDescription.contains(message), "\(error.localizedDescription)")
        }
    }
}
