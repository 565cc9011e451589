import Foundation
import Testing

@testable import DroverReporting

/// The typed run events: each case's JSON fields read back to the same case, the documented JSON lines,
/// and the console's lines for each, against golden texts.
@Suite("run events: JSON round trip and rendering")
struct RunEventTests {
    /// One of every case, with optional fields both set and unset.
    static let every: [RunEvent] = [
        .runStarted(runID: "20261203T080000Z-ab12", playbook: "upgrade", cluster: "prod", targetVersion: "3.1.1"),
        .runStarted(runID: "r2", playbook: "set-failover", cluster: "prod", targetVersion: nil),
        .stepStarted(index: 3, total: 11, step: "upgrade-follower", node: "be2", description: "Upgrade a follower"),
        .stepStarted(index: 1, total: nil, step: "backup", node: "be2", description: "A backup"),
        .actionStarted(node: "be2", step: "upgrade-follower", command: "chef-backend-ctl upgrade"),
        .output(node: "be2", stream: "stderr", line: "Upgrading..."),
        .commandFinished(node: "be2", command: "chef-backend-ctl upgrade", exitStatus: 1, duration: 12.5),
        .waitProgress(node: "be2", predicate: "rejoined", pending: "be2 is not a follower yet", timeLeft: 252),
        .waitProgress(node: "be2", predicate: "rejoined", pending: "be2 is not a follower yet", timeLeft: nil),
        .waitFinished(node: "be2", predicate: "rejoined", ok: true, duration: 4.25, detail: nil, pending: nil),
        .waitFinished(node: "be2", predicate: "synced", ok: true, duration: 4, detail: "90% synced", pending: nil),
        .waitFinished(node: "be3", predicate: "rejoined", ok: false, duration: 300, detail: nil, pending: "be3 down"),
        .stepFinished(index: 3, step: "upgrade-follower", node: "be2", outcome: .succeeded, reason: nil, duration: 20),
        .stepFinished(
            index: 4, step: "verify", node: "be1", outcome: .skipped, reason: "already at 3.1.1", duration: 0),
        .runFinished(outcome: .failed, exitCode: 1, summary: "Failed at step 4.", duration: 61.5, preflight: nil),
        .runFinished(outcome: .refused, exitCode: 2, summary: nil, duration: nil, preflight: ["health be3: down"]),
        .connectionLost(node: "be1", reason: "reset", message: "be1: connection lost (reset)"),
        .reconnected(node: "be1", after: 3, commandState: "running", message: "be1: reconnected after 3 s"),
        .reconnected(node: "be1", after: 1, commandState: nil, message: "be1: reconnected after 1 s"),
        .note("be3 is reachable again"),
        .confirmationRequested(node: "be2", message: "This discards be2's data."),
        .manualStepRequested(node: "be3", instruction: "copy the secrets", assumedDone: false),
        .manualStepRequested(node: "be3", instruction: "copy the secrets", assumedDone: true),
        .backupWritten(node: "be2", path: "/var/opt/chef-backup/chef-backend-backup-1.tgz", bytes: 2_048),
        .checkFinished(check: "frontends", subject: "frontend fe1", ok: false, detail: "HTTP 502"),
        .fleetFinished(clusters: [
            .init(cluster: "a", inventory: "a.yml", outcome: "succeeded", exitCode: 0, runID: "r1"),
            .init(cluster: "b", inventory: "b.yml", outcome: "not started", exitCode: nil, runID: nil),
        ]),
        .writeProbe(
            WriteProbeReport(
                probe: "/usr/local/bin/write-check --quiet", probes: 40, failed: 3,
                windows: [
                    .init(
                        from: RFC3339.date("2026-12-03T08:00:01.250Z")!, to: RFC3339.date("2026-12-03T08:00:02.500Z")!,
                        open: false),
                    .init(
                        from: RFC3339.date("2026-12-03T08:00:09.000Z")!, to: RFC3339.date("2026-12-03T08:00:09.750Z")!,
                        open: true),
                ])),
    ]

    @Test(arguments: every)
    func eachEventReadsBackFromItsJSONFields(_ kind: RunEvent) throws {
        let time = try #require(RFC3339.date("2026-12-03T08:00:01.250Z"))
        let event = Event(kind, time: time, cluster: "prod")
        let read = try #require(Event(jsonLine: event.jsonLine), "\(event.jsonLine)")
        #expect(read == event)
    }

    @Test func theDocumentedEventsAreExactlyTheSchema() {
        let documented = Set(Self.every.filter(\.isDocumented).map(\.name))
        #expect(documented == RunEvent.documentedNames)
        #expect(!RunEvent.output(node: "be1", stream: "stdout", line: "x").isDocumented)
        #expect(!RunEvent.note("x").isDocumented)
    }

    @Test(arguments: [
        (
            RunEvent.runStarted(runID: "r1", playbook: "upgrade", cluster: "prod", targetVersion: nil),
            #"{"cluster":"prod","event":"run_started","playbook":"upgrade","run_id":"r1","target_version":null,"time":"2026-12-03T08:00:01.250Z"}"#
        ),
        (
            .waitFinished(node: "be2", predicate: "rejoined", ok: true, duration: 4.25, detail: nil, pending: nil),
            #"{"cluster":"prod","detail":null,"duration_s":4.250,"event":"wait_finished","node":"be2","ok":true,"predicate":"rejoined","time":"2026-12-03T08:00:01.250Z"}"#
        ),
        (
            .waitFinished(node: "be3", predicate: "rejoined", ok: false, duration: 300, detail: nil, pending: "down"),
            #"{"cluster":"prod","duration_s":300.000,"event":"wait_finished","node":"be3","ok":false,"pending":"down","predicate":"rejoined","time":"2026-12-03T08:00:01.250Z"}"#
        ),
        (
            .stepFinished(index: 2, step: "block-failover", node: "be1", outcome: .succeeded, reason: nil, duration: 1),
            #"{"cluster":"prod","duration_s":1.000,"event":"step_finished","index":2,"node":"be1","outcome":"succeeded","step":"block-failover","time":"2026-12-03T08:00:01.250Z"}"#
        ),
        (
            .reconnected(node: "be1", after: 2, commandState: nil, message: "m"),
            #"{"after_s":2.000,"cluster":"prod","command_state":null,"event":"reconnected","message":"m","node":"be1","time":"2026-12-03T08:00:01.250Z"}"#
        ),
    ])
    func documentedJSONLines(_ kind: RunEvent, _ line: String) throws {
        let time = try #require(RFC3339.date("2026-12-03T08:00:01.250Z"))
        #expect(Event(kind, time: time, cluster: "prod").jsonLine == line)
    }

    @Test(arguments: [
        (
            RunEvent.runStarted(runID: "r1", playbook: "upgrade", cluster: "prod", targetVersion: "3.1.1"),
            "drover: upgrade on cluster prod to 3.1.1 (run r1)\n"
        ),
        (
            .stepStarted(index: 3, total: 11, step: "upgrade-follower", node: "be2", description: "Upgrade a follower"),
            "[   1.2s] step 3/11 upgrade-follower on be2: Upgrade a follower\n"
        ),
        (
            .actionStarted(node: "be2", step: "s", command: "chef-backend-ctl upgrade"),
            "[   1.2s]   be2$ chef-backend-ctl upgrade\n"
        ),
        (.output(node: "be2", stream: "stdout", line: "done"), "           be2| done\n"),
        (.commandFinished(node: "be2", command: "c", exitStatus: 0, duration: 1), ""),
        (.commandFinished(node: "be2", command: "c", exitStatus: 3, duration: 1), "[   1.2s]   be2: exit status 3\n"),
        (
            .waitProgress(node: "be2", predicate: "rejoined", pending: "role leader", timeLeft: 252.4),
            "[   1.2s]   waiting for rejoined on be2: role leader; 4m12s left\n"
        ),
        (
            .waitFinished(node: "be2", predicate: "synced", ok: true, duration: 4.25, detail: "90%", pending: nil),
            "[   1.2s]   synced holds after 4.2s (90%)\n"
        ),
        (
            .waitFinished(node: "be2", predicate: "rejoined", ok: false, duration: 300, detail: nil, pending: "x"),
            "[   1.2s]   rejoined did not hold after 300.0s\n"
        ),
        (
            .stepFinished(index: 4, step: "verify", node: "be1", outcome: .skipped, reason: "not needed", duration: 0),
            "[   1.2s] step 4 verify skipped: not needed (0.0s)\n"
        ),
        (.runFinished(outcome: .succeeded, exitCode: 0, summary: "Done.", duration: 5, preflight: nil), "Done.\n"),
        (.note("be3 is reachable again"), "[   1.2s] be3 is reachable again\n"),
        (.confirmationRequested(node: "be2", message: "Discards be2."), "[   1.2s] be2: Discards be2.\n"),
        (
            .manualStepRequested(node: "be3", instruction: "copy the secrets", assumedDone: false),
            "[   1.2s] MANUAL (be3): copy the secrets\n"
        ),
        (
            .manualStepRequested(node: "be3", instruction: "copy the secrets", assumedDone: true),
            "[   1.2s] MANUAL (be3): copy the secrets\n[   1.2s] assumed done (--assume-done)\n"
        ),
        (
            .backupWritten(node: "be2", path: "/var/opt/chef-backup/b.tgz", bytes: 2_048),
            "[   1.2s] backup: be2:/var/opt/chef-backup/b.tgz (2.0 KB)\n"
        ),
        (
            .checkFinished(check: "frontends", subject: "frontend fe1", ok: true, detail: "HTTP 200, pong"),
            "[   1.2s] frontend fe1: HTTP 200, pong\n"
        ),
        (.connectionLost(node: "be1", reason: "r", message: "be1: lost"), "[   1.2s]   be1: lost\n"),
        (.reconnected(node: "be1", after: 1, commandState: nil, message: "be1: back"), "[   1.2s]   be1: back\n"),
    ])
    func theConsoleLineOfEachEvent(_ kind: RunEvent, _ text: String) {
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        let reporter = HumanReporter(colour: false, started: started)
        #expect(reporter.render(Event(kind, time: started.addingTimeInterval(1.25))) == text)
    }

    @Test func aStepOfSeveralNodesIsDescribedOnce() {
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        let reporter = HumanReporter(colour: false, started: started)
        let lines = ["be1", "be2", "be3"].enumerated().map { number, node in
            reporter.render(
                Event(
                    .stepStarted(
                        index: 6 + number, total: 11, step: "finish-elasticsearch-upgrade", node: node,
                        description: "A long description."), time: started))
        }
        #expect(
            lines == [
                "[   0.0s] step 6/11 finish-elasticsearch-upgrade on be1: A long description.\n",
                "[   0.0s] step 7/11 finish-elasticsearch-upgrade on be2\n",
                "[   0.0s] step 8/11 finish-elasticsearch-upgrade on be3\n",
            ])
    }

    @Test func aStepSkippedOnSeveralNodesForOneReasonSaysItOnce() {
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        let reporter = HumanReporter(colour: false, started: started)
        let lines = ["be1", "be2"].map { node in
            reporter.render(
                Event(
                    .stepFinished(
                        index: 6, step: "finish", node: node, outcome: .skipped, reason: "a long reason", duration: 0),
                    time: started))
        }
        #expect(
            lines == [
                "[   0.0s] step 6 finish skipped: a long reason (0.0s)\n",
                "[   0.0s] step 6 finish skipped: as above (0.0s)\n",
            ])
    }

    @Test func redactionReachesEveryTextButKeepsOutcomesAndNumbers() {
        let event = RunEvent.stepFinished(
            index: 2, step: "join", node: "be3", outcome: .failed, reason: "password=hunter2 refused", duration: 1)
        let redacted = event.mapTexts { $0.replacingOccurrences(of: "hunter2", with: "[REDACTED]") }
        #expect(
            redacted
                == .stepFinished(
                    index: 2, step: "join", node: "be3", outcome: .failed, reason: "password=[REDACTED] refused",
                    duration: 1))
        // A transform that would also change an outcome's word changes only the texts.
        #expect(
            event.mapTexts { $0.uppercased() }
                == .stepFinished(
                    index: 2, step: "JOIN", node: "BE3", outcome: .failed, reason: "PASSWORD=HUNTER2 REFUSED",
                    duration: 1))
    }

    @Test func notAnEventIsNil() {
        #expect(Event(jsonLine: "not json") == nil)
        #expect(Event(jsonLine: #"{"event":"unknown","time":"2026-12-03T08:00:00.000Z"}"#) == nil)
        #expect(Event(jsonLine: #"{"event":"step_started","time":"2026-12-03T08:00:00.000Z"}"#) == nil)
    }
}
