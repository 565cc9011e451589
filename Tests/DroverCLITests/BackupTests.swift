import DroverTestSupport
import Foundation
import Testing

/// `--backup`, `package.backup: true` and the downtime paths' default.
@Suite("a backup before the first change", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct BackupTests {
    @Test func backupIsTakenOnAFollowerBeforeAnyChangeAndRecorded() async throws {
        try await SandboxCluster.with { cluster in
            let plan = try await cluster.drover(["plan", "upgrade", "--backup"])
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(plan.stdout.contains("Backup: chef-backend-ctl backup on be2 before any change"), "\(plan.stdout)")
            #expect(plannedActions(plan.stdout).contains(" 1. backup be2: chef-backend-ctl backup"), "\(plan.stdout)")
            let upgrade = try await cluster.drover(["upgrade", "--backup", "--yes"])
            #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
            let summary = try #require(
                upgrade.stdout.range(
                    of: #"Backup: be2:/var/opt/chef-backup/\S+\.tgz \(17 bytes\), taken before any change"#,
                    options: .regularExpression), "\(upgrade.stdout)")
            let path = String(upgrade.stdout[summary].split(separator: " ")[1].dropFirst(4))
            let log = (await cluster.log()).filter { $0.event == "started" && $0.isMutating }
            #expect(
                log.first?.command == "chef-backend-ctl backup" && log.first?.node == "be2",
                "first of all: \(log.prefix(2).map(\.command))")
            let journal = try #require(StateReader.journal(in: cluster.stateDirectory))
            let record = try #require(
                (try JSONSerialization.jsonObject(with: Data(journal.utf8)) as? [String: Any])?["backup"]
                    as? [String: Any])
            #expect(
                record["path"] as? String == path && record["bytes"] as? Int == 17
                    && record["node"] as? String == "be2", "\(record)")
            // The tarball is on the node where the journal says it is.
            let listed = try await cluster.drover(["exec", "--node", "be2", "--", "ls", path])
            #expect(listed.status == 0, "\(listed.stderr)")
        }
    }

    @Test func inventoryAsksForABackupAndNoBackupOverridesIt() async throws {
        try await SandboxCluster.with { cluster in
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            inventory = inventory.replacingOccurrences(
                of: "  version: 2.3.16\n", with: "  version: 2.3.16\n  backup: true\n")
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let json = try await cluster.drover(["plan", "upgrade", "--format", "json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["backup"] as? Bool == true)
            let off = try await cluster.drover(["plan", "upgrade", "--no-backup", "--format", "json"])
            let offObject = try #require(
                try JSONSerialization.jsonObject(with: Data(off.stdout.utf8)) as? [String: Any])
            #expect(offObject["backup"] as? Bool == false)
            // A saved plan takes its backup when applied.
            let saved = cluster.scratch("backup-plan.json")
            let plan = try await cluster.drover(["plan", "upgrade", "--out", saved])
            #expect(plan.status == 0, "\(plan.stderr)")
            let apply = try await DroverBinary.run(["apply", saved, "--yes"], environment: cluster.environment)
            #expect(apply.status == 0, "\(apply.stdout)\n\(apply.stderr)")
            #expect(apply.stdout.contains("Backup: be2:/var/opt/chef-backup/"), "\(apply.stdout)")
        }
    }

    @Test("a failed or empty backup stops the run before any change", arguments: ["backup-fails", "backup-empty"])
    func failedBackupChangesNothing(fault: String) async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be2", fault)
            let upgrade = try await cluster.drover(["upgrade", "--backup", "--yes"])
            #expect(upgrade.status == 2, "\(upgrade.stdout)\n\(upgrade.stderr)")
            #expect(upgrade.stdout.contains("FAILED at step backup on be2"), "\(upgrade.stdout)")
            #expect(upgrade.stdout.contains(fault == "backup-empty" ? "is empty (0 bytes)" : "exited with status 1"))
            let changes = (await cluster.log()).filter {
                $0.event == "started" && $0.isMutating && $0.command != "chef-backend-ctl backup"
            }
            #expect(changes.isEmpty, "nothing but the backup ran: \(changes.map(\.command))")
            #expect(!(try await cluster.drover(["status"])).stdout.contains("Lock:"), "the lock is released")
            #expect(
                upgrade.stdout.contains(
                    "Nothing was changed. When a backup works, start again (or with --no-backup, without one):\n       drover upgrade"
                ), "\(upgrade.stdout)")
            // A run without its backup must not go on by resuming.
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(
                resume.status == 0 && resume.stdout.contains("Nothing to resume"), "\(resume.stdout)\n\(resume.stderr)")
        }
    }

    @Test func downtimePathsTakeABackupByDefault() async throws {
        try await SandboxCluster.with(versions: ("1.4.6", "2.3.16")) { cluster in
            let json = try await cluster.drover(["plan", "upgrade", "--format", "json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["backup"] as? Bool == true, "\(json.stdout)")
            let off = try await cluster.drover(["plan", "upgrade", "--no-backup"])
            #expect(off.stdout.contains("!! No backup before this downtime upgrade (--no-backup) !!"), "\(off.stdout)")
        }
    }
}
