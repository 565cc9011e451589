import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Testing

/// A topology the engine has never heard of (``ToyReplicaTopology``, in this folder only) goes through a plan, a
/// run stopped after its first step, its resume, and every record and report of the run.
@Suite("a third topology through the seam")
struct ToyReplicaEndToEndTests {
    /// A directory of the test's own, removed when it ends.
    static func inDirectory(_ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "drover-toy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await body(directory)
    }

    /// Runs `playbook` (or resumes `journal`) on `transport` with the records a drover keeps.
    static func run(
        _ playbook: Playbook, transport: ToyReplicaTransport, journal: Journal,
        stopRequested: @escaping @Sendable () -> Bool = { false }, resuming: Bool = false
    ) async throws -> (outcome: Runner<ToyReplicaTopology>.Outcome, journal: Journal) {
        let topology = ToyReplicaTopology(inventory: transport.inventory)
        let initial = transport.read()
        let recorder = try await RunRecorder(journal: journal, redactor: .standard)
        if !resuming {
            let plan = Plan.make(playbook: playbook, topology: topology, observation: initial)
            await recorder.savePlan(plan.document.json.serialized)
        }
        let reporter = RecordingReporter(console: CollectingReporter(), recorder: recorder, redactor: .standard)
        let runner = Runner(
            playbook: playbook, topology: topology, connection: transport, reporter: reporter, runID: journal.runID,
            recorder: recorder, resuming: resuming ? journal : nil, clock: ManualWaitClock(),
            stopRequested: stopRequested)
        let outcome = await runner.execute(initial: initial)
        await recorder.flush()
        return (outcome, recorder.current)
    }

    @Test func planRunResumeJournalJSONLinesJUnitAndTheHTMLReport() async throws {
        try await Self.inDirectory { directory in
            let inventory = try Inventory.parse(ToyReplica.inventoryText, file: directory + "/toy.yml")
            // Its built-in playbook, found by name in a library of its catalog: none of Drover's own.
            let library = PlaybookLibrary(topologies: ToyReplica.catalog, environment: [:])
            #expect(try library.all().map(\.name) == ["toy-switchover"])
            let playbook = try library.find("toy-switchover")
            let topology = ToyReplicaTopology(inventory: inventory)

            // The plan names each step's node from the live state, in the topology's words.
            let stop = Locked(false)
            let transport = ToyReplicaTransport(inventory: inventory) { _, command in
                if command == "update" { stop.withLock { $0 = true } }
            }
            let plan = Plan.make(playbook: playbook, topology: topology, observation: transport.read())
            let planText = PlanText.render(plan.document)
            #expect(planText.contains("primary: n1"), "\(planText)")
            for expected in ["update-replica", "n2", "hand-over", "n1", "n2 back in sync"] {
                #expect(planText.contains(expected), "\(expected) in \(planText)")
            }
            #expect(plan.preflight.map(\.check) == ["both-in-sync"] && plan.preflight.allSatisfy(\.ok))

            // A run asked to stop during its first step stops after it, verified.
            var journal = Journal(
                runID: "toy-1", playbook: playbook.name, playbookFile: playbook.file, cluster: inventory.cluster,
                inventoryFile: inventory.file, inventoryDigest: inventory.digest, targetVersion: nil, user: "tester",
                workstation: "toy", started: Date(), status: .running)
            journal.topology = inventory.topology.rawValue
            journal.path = directory + "/state/toy/toy-1/journal.json"
            let first = try await Self.run(
                playbook, transport: transport, journal: journal, stopRequested: { stop.withLock { $0 } })
            #expect(first.outcome.exitStatus == .interrupted, "\(first.outcome.summary)")
            #expect(transport.log == ["n2: update"])
            #expect(first.journal.status == .interrupted)
            #expect(first.journal.steps.map { "\($0.step) \($0.node) \($0.status)" } == ["update-replica n2 succeeded"])

            // Resumed from its journal as saved: the rest, and nothing twice.
            var saved = try #require(Journal.load(path: journal.path))
            saved.status = .running
            saved.finished = nil
            stop.withLock { $0 = false }
            let resumed = try await Self.run(playbook, transport: transport, journal: saved, resuming: true)
            #expect(resumed.outcome.exitStatus == .success, "\(resumed.outcome.summary)")
            #expect(transport.log == ["n2: update", "n1: hand-over", "n1: update"])
            let finished = try #require(Journal.load(path: journal.path))
            #expect(finished.status == .succeeded)
            #expect(
                finished.steps.map { "\($0.step) \($0.node) \($0.status)" } == [
                    "update-replica n2 succeeded", "hand-over n1 succeeded", "update-old-primary n1 succeeded",
                ])
            #expect(resumed.outcome.summary.contains("n2  primary  updated"), "\(resumed.outcome.summary)")

            // JSON Lines: every event of both attempts reads back as the type that wrote it.
            let eventLines = try String(contentsOfFile: finished.eventsPath, encoding: .utf8)
                .split(separator: "\n")
            let events = eventLines.compactMap { Event(jsonLine: $0) }
            #expect(!events.isEmpty && events.count == eventLines.count)
            let started = events.filter { if case .runStarted = $0.kind { true } else { false } }
            #expect(started.count == 2, "the run and its resume")
            #expect(
                events.contains {
                    if case .waitFinished("n1", "in-sync", true, _, _, _) = $0.kind { true } else { false }
                })

            // The transcript: each command, on its node.
            let transcript = try String(contentsOfFile: finished.transcriptPath, encoding: .utf8)
                .split(separator: "\n").compactMap { TranscriptRecord(jsonLine: $0) }
            #expect(transcript.map { "\($0.node): \($0.command)" } == transport.log)

            // JUnit: one test case per step run.
            let junit = JUnitReport.xml(finished, playbook: playbook)
            #expect(junit.components(separatedBy: "<testcase").count - 1 == 3, "\(junit)")
            #expect(junit.contains("hand-over") && junit.contains("failures=\"0\""), "\(junit)")

            // The HTML report, from the records, with this catalog.
            let data = RunReport.data(finished, topologies: ToyReplica.catalog)
            #expect(data.nodes == ["n1", "n2"])
            #expect(data.commands.count == 3 && data.waits.count == 3)
            let html = directory + "/report.html"
            try RunReport.write(finished, to: html, topologies: ToyReplica.catalog)
            let page = try String(contentsOfFile: html, encoding: .utf8)
            for expected in ["toy-switchover", "update-old-primary", "n2"] {
                #expect(page.contains(expected), "\(expected) in the report")
            }
        }
    }
}
