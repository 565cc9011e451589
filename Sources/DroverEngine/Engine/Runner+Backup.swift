import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

// The backup before the first change.
extension Runner {
    /// The backup before any change: the topology's backup command on its node, the new tarball read back
    /// (path and size) and recorded; a failed or empty backup stops the run with nothing changed.
    func takeBackup(index: Int, observation: T.Observation) async throws {
        let name = "backup"
        let command: BackupCommand
        do {
            guard let found = try topology.backupCommand(observation: observation) else {
                throw StepFailure(
                    step: name, node: nil, what: "Drover takes no backup of a \(inventory.topology.rawValue)",
                    advice: [])
            }
            command = found
        } catch let error as TargetError {
            throw StepFailure(
                step: name, node: nil, what: error.reason,
                advice: [NextStep("Check the cluster:", commands: ["drover status \(inventoryFlag)"])]
            )
        }
        let node = command.node
        let step = Playbook.Step(
            name: name,
            description:
                "Take a backup with \(command.command) on \(node) before any change; its tarball's path and size are recorded.",
            target: .node(node), actions: [.run(template: command.command)], line: 0)
        let started = Date()
        reporter.emit(
            Event(
                .stepStarted(
                    index: index, total: expectedSteps, step: name, node: node, description: step.description)))
        await recorder?.stepStarted(index: index, step: name, node: node, position: -1)
        let list =
            "find \(ShellQuote.quote(command.directory)) -maxdepth 1 -type f -printf '%s %p\\n' 2>/dev/null; true"
        func tarballs() async throws -> [String: Int] {
            let result = try await connection.run(node, list)
            var files: [String: Int] = [:]
            for line in result.stdoutText.split(separator: "\n") {
                let fields = line.split(separator: " ", maxSplits: 1)
                if fields.count == 2, let bytes = Int(fields[0]) { files[String(fields[1])] = bytes }
            }
            return files
        }
        do {
            let before = try await tarballs()
            try await runCommand(command.command, on: node, step: step, action: 1, changes: false)
            let after = try await tarballs()
            let new = after.filter { before[$0.key] != $0.value }.sorted { $0.key > $1.key }
            guard let written = new.first else {
                throw StepFailure(
                    step: name, node: node,
                    what: "`\(command.command)` on \(node) exited 0 but wrote no file in \(command.directory)",
                    advice: [NextStep(topology.logAdvice(node: node))])
            }
            guard written.value > 0 else {
                throw StepFailure(
                    step: name, node: node, what: "the backup \(written.key) on \(node) is empty (0 bytes)",
                    advice: [NextStep(topology.logAdvice(node: node))])
            }
            let record = Journal.Backup(node: node, path: written.key, bytes: written.value, taken: Date())
            backupTaken = record
            await recorder?.backupTaken(record)
            reporter.emit(Event(.backupWritten(node: node, path: written.key, bytes: written.value)))
        } catch let failure as StepFailure {
            reporter.emit(
                Event(
                    .stepFinished(
                        index: index, step: name, node: node, outcome: .failed, reason: failure.what,
                        duration: Date().timeIntervalSince(started))))
            await recorder?.stepFinished(step: name, node: node, status: .failed, reason: failure.what)
            throw failure
        } catch {
            let what = "\(node): \(error.localizedDescription)"
            reporter.emit(
                Event(
                    .stepFinished(
                        index: index, step: name, node: node, outcome: .failed, reason: what,
                        duration: Date().timeIntervalSince(started))))
            await recorder?.stepFinished(step: name, node: node, status: .failed, reason: what)
            throw StepFailure(step: name, node: node, what: what, advice: [])
        }
        reporter.emit(
            Event(
                .stepFinished(
                    index: index, step: name, node: node, outcome: .succeeded, reason: nil,
                    duration: Date().timeIntervalSince(started))))
        await recorder?.stepFinished(
            step: name, node: node, status: .succeeded, reason: backupTaken.map { "\($0.path) (\($0.bytes) bytes)" })
    }
}
