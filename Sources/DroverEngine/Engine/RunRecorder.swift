import DroverCluster
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

/// Records a run: its journal after every step, every command with its output (redacted) in the
/// transcript, and every event in events.jsonl.
///
/// Every write happens in order on one serial dispatch queue, never on Swift's cooperative pool (a
/// journal save fsyncs). Journal updates are awaited, so each is durable before the run goes on;
/// transcript and event lines are queued, and ``flush()`` waits for them. The queues are the process's
/// few: a fleet's clusters take turns on them, so their records take at most that many threads, not one
/// per cluster, and one cluster's fsync does not hold up every other's.
public final class RunRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var journal: Journal
    private static let writers = (0..<4).map { DispatchQueue(label: "drover.run-recorder.\($0)") }
    private static let nextWriter = Mutex(0)
    private let writer: DispatchQueue = RunRecorder.nextWriter.withLock { next in
        defer { next = (next + 1) % RunRecorder.writers.count }
        return RunRecorder.writers[next]
    }
    public let redactor: Redactor

    /// Starts recording: the journal is written before this returns.
    public init(journal: Journal, redactor: Redactor) async throws {
        self.journal = journal
        self.redactor = redactor
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer.async { continuation.resume(with: Result { try journal.save() }) }
        }
    }

    public var current: Journal { lock.withLock { journal } }

    /// Changes the journal and returns once the change is on disk.
    func update(_ body: (inout Journal) -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.withLock {
                body(&journal)
                let snapshot = journal
                writer.async {
                    try? snapshot.save()
                    continuation.resume()
                }
            }
        }
    }

    /// Returns once every queued transcript and event line is written.
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            writer.async { continuation.resume() }
        }
    }

    /// `position`: the step's place in the playbook (-1 for the backup taken before the first step).
    func stepStarted(index: Int, step: String, node: String, position: Int? = nil) async {
        await update {
            var record = Journal.Step(
                index: index, step: step, node: node, status: .started, started: Date(), commandsStarted: false)
            record.position = position
            $0.steps.append(record)
        }
    }

    /// Records, durably, that the step's first command is about to start on its node (once per step); throws when
    /// that cannot be written, so that no command starts that a resumed run would not know of.
    func commandsStarting(step: String, node: String) async throws {
        let steps = current.steps
        guard let position = steps.lastIndex(where: { $0.step == step && $0.node == node }),
            steps[position].commandsStarted == false
        else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            lock.withLock {
                if let position = journal.steps.lastIndex(where: { $0.step == step && $0.node == node }) {
                    journal.steps[position].commandsStarted = true
                }
                let snapshot = journal
                writer.async { continuation.resume(with: Result { try snapshot.save() }) }
            }
        }
    }

    func stepFinished(step: String, node: String, status: Journal.Step.Status, reason: String?) async {
        await update { journal in
            guard let position = journal.steps.lastIndex(where: { $0.step == step && $0.node == node }) else { return }
            journal.steps[position].status = status
            journal.steps[position].finished = Date()
            journal.steps[position].reason = reason.map(redactor.redact)
        }
    }

    /// Keeps the plan the run starts from beside its journal (once: a resumed run keeps the first).
    public func savePlan(_ text: String) async {
        let path = current.planPath
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            writer.async {
                if !FileManager.default.fileExists(atPath: path) { try? DurableFile.write(Data(text.utf8), to: path) }
                continuation.resume()
            }
        }
    }

    func pinned(_ targets: [String: [String]]) async {
        await update { $0.pinnedTargets = targets }
    }

    func backupTaken(_ backup: Journal.Backup) async {
        await update { $0.backup = backup }
    }

    func failoverSet(_ state: String, step: String) async {
        await update {
            $0.failover = state
            $0.failoverStep = step
        }
    }

    func finished(status: Journal.Status, exitCode: Int32, summary: String) async {
        await update {
            $0.status = status
            $0.exitCode = exitCode
            $0.finished = Date()
            $0.summary = redactor.redact(summary)
        }
    }

    /// One command of the transcript: node, command, start and end, exit status, stdout and stderr.
    func command(
        node: String, command: String, started: Date, finished: Date, exitStatus: Int32?, signal: String?,
        stdout: String, stderr: String, error: String?, gaps: [String] = []
    ) {
        let record = TranscriptRecord(
            node: node, command: redactor.redact(command), started: started, finished: finished,
            exitStatus: exitStatus.map(Int.init), signal: signal,
            stdout: redactor.redact(TerminalText.readableLines(stdout)),
            stderr: redactor.redact(TerminalText.readableLines(stderr)), error: error.map(redactor.redact), gaps: gaps)
        let path = current.transcriptPath
        writer.async { DurableFile.append(record.json.serialized, to: path) }
    }

    /// Appends an event, redacted already by its fields (``RecordingReporter``): redacting its JSON text
    /// again could cut through the JSON.
    func event(_ event: Event) {
        guard event.kind.isDocumented else { return }
        let line = event.jsonLine
        let path = current.eventsPath
        writer.async { DurableFile.append(line, to: path) }
    }
}
