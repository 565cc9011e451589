import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation
import Testing

@testable import DroverEngine

/// The runner against a scripted in-memory cluster (``ScriptedTransport``, ``ScriptedTopology``): the order of
/// steps and commands, waits, skips, retargeting after a failover, failures, a stop request and resume
/// decisions, with no SSH and no sandbox.
@Suite("runner: steps, waits, skips, retargeting, failures, stops and resumes")
struct RunnerTests {
    static let inventoryText = """
        cluster: scripted
        package:
          path: /var/tmp/chef-backend_2.3.16-1_amd64.deb
        backends:
          - { name: be1, host: 10.0.0.1 }
          - { name: be2, host: 10.0.0.2 }
          - { name: be3, host: 10.0.0.3 }
        timeouts:
          rejoin: 5s
          poll_interval: 10ms
          stable_polls: 1
        """

    /// A rolling upgrade in the shape of Chef's: block failover, each follower upgraded and waited for, the
    /// leader failed over and waited for, failover unblocked on whoever leads then.
    static let playbookText = """
        name: scripted-upgrade
        description: A rolling upgrade of a scripted cluster.
        steps:
          - name: block-failover
            target: leader
            run: set-failover off
          - name: upgrade-follower
            target: each-follower
            skip_if: at-target-version
            actions:
              - run: upgrade
              - wait: rejoined
          - name: failover-leader
            target: leader
            skip_if: at-target-version
            actions:
              - run: failover
              - wait: rejoined
          - name: unblock-failover
            target: leader
            run: set-failover on
        """

    struct Run {
        var transport: ScriptedTransport
        var reporter: CollectingReporter
        var outcome: Runner<ScriptedTopology>.Outcome
    }

    static func run(
        playbook text: String = playbookText,
        versions: [String: String] = ["be1": "2.3.15", "be2": "2.3.15", "be3": "2.3.15"],
        leader: String = "be1", rejoinReadings: Int = 2, resuming: Journal? = nil,
        inventory inventoryText: String = inventoryText, clock: any WaitClock = SystemWaitClock(),
        stopRequested: @escaping @Sendable () -> Bool = { false },
        beforeCommand: @escaping @Sendable (String, String) -> Void = { _, _ in }
    ) async throws -> Run {
        let inventory = try Inventory.parse(inventoryText, file: "/scripted/inventory.yml")
        let playbook = try Playbook.parse(text, file: "/scripted/playbook.yml", topologies: .drover)
        let transport = ScriptedTransport(
            inventory: inventory, leader: leader, versions: versions, rejoinReadings: rejoinReadings,
            beforeCommand: beforeCommand)
        let topology = ScriptedTopology(inventory: inventory)
        let reporter = CollectingReporter()
        let runner = Runner(
            playbook: playbook, topology: topology, connection: transport, reporter: reporter, runID: "run-1",
            resuming: resuming, clock: clock, stopRequested: stopRequested)
        let outcome = await runner.execute(initial: transport.read())
        return Run(transport: transport, reporter: reporter, outcome: outcome)
    }

    @Test func aRollingUpgradeRunsItsStepsInOrderAndWaitsForEachNode() async throws {
        let run = try await Self.run()
        #expect(run.outcome.exitStatus == .success, "\(run.outcome.summary)")
        #expect(
            run.transport.log == [
                "be1: set-failover off", "be2: upgrade", "be3: upgrade", "be1: failover", "be2: set-failover on",
            ])
        #expect(
            run.reporter.steps == [
                "block-failover be1 succeeded", "upgrade-follower be2 succeeded", "upgrade-follower be3 succeeded",
                "failover-leader be1 succeeded", "unblock-failover be2 succeeded",
            ])
        // Each upgraded node was waited for until it was back, and the wait said so.
        let waits = run.reporter.all.compactMap { event -> String? in
            if case .waitFinished(let node, let predicate, let ok, _, _, _) = event {
                return "\(node) \(predicate) \(ok)"
            }
            return nil
        }
        #expect(waits == ["be2 rejoined true", "be3 rejoined true", "be1 rejoined true"])
        #expect(run.reporter.all.contains { if case .waitProgress(node: "be2", _, _, _) = $0 { true } else { false } })
        // The console's `step N/TOTAL`: five steps expected, five run.
        let numbers = run.reporter.all.compactMap { event -> String? in
            if case .stepStarted(let index, let total, _, _, _) = event { return "\(index)/\(total ?? 0)" }
            return nil
        }
        #expect(numbers == ["1/5", "2/5", "3/5", "4/5", "5/5"])
        #expect(run.outcome.summary.contains("cluster failover: ON (last set by Drover in step unblock-failover)"))
    }

    @Test func aNodeAlreadyAtTheTargetIsSkippedWithItsReason() async throws {
        let run = try await Self.run(versions: ["be1": "2.3.15", "be2": "2.3.16", "be3": "2.3.15"])
        #expect(run.outcome.exitStatus == .success)
        #expect(!run.transport.log.contains("be2: upgrade"))
        #expect(run.reporter.steps.contains("upgrade-follower be2 skipped"))
        #expect(
            run.reporter.all.contains {
                if case .stepFinished(_, "upgrade-follower", "be2", .skipped, "already at 2.3.16", _) = $0 {
                    true
                } else {
                    false
                }
            })
    }

    @Test func aStepOfTheLeaderFollowsTheLeaderWhenItMoved() async throws {
        // No wait between the two steps: the second's node was chosen from the reading before the failover,
        // and the runner's reading right before the step finds the new leader.
        let text = """
            name: scripted-failover
            description: Fail over, then unblock on the leader.
            steps:
              - name: failover-leader
                target: leader
                run: failover
              - name: unblock-failover
                target: leader
                run: set-failover on
            """
        let run = try await Self.run(playbook: text)
        #expect(run.outcome.exitStatus == .success, "\(run.outcome.summary)")
        #expect(run.transport.log == ["be1: failover", "be2: set-failover on"])
        #expect(run.reporter.steps == ["failover-leader be1 succeeded", "unblock-failover be2 succeeded"])
    }

    @Test func aFailedCommandStopsTheRunAndTouchesNoOtherNode() async throws {
        let text = Self.playbookText.replacingOccurrences(of: "- run: upgrade\n", with: "- run: fail\n")
        #expect(text != Self.playbookText)
        let run = try await Self.run(playbook: text)
        #expect(run.outcome.exitStatus == .failedAfterChanges, "failover was already blocked: changes began")
        #expect(run.transport.log == ["be1: set-failover off", "be2: fail"])
        #expect(run.reporter.steps == ["block-failover be1 succeeded", "upgrade-follower be2 failed"])
        #expect(run.outcome.summary.contains("FAILED at step upgrade-follower on be2"))
        #expect(run.outcome.summary.contains("Read be2's scripted log"), "the topology's advice")
        #expect(run.outcome.summary.contains("!! cluster failover: OFF"), "left off, and said loudly")
        #expect(
            run.outcome.summary.contains("To stop here instead, turn failover back on"),
            "the way back, in the topology's words")
    }

    @Test func aWaitThatNeverHoldsFailsAfterItsTimeoutNamingWhatDidNotHold() async throws {
        let text = Self.playbookText.replacingOccurrences(
            of: "      - run: upgrade\n      - wait: rejoined\n",
            with: "      - run: upgrade\n      - wait: rejoined\n        timeout: 200ms\n")
        #expect(text != Self.playbookText)
        let run = try await Self.run(playbook: text, rejoinReadings: 1_000)
        #expect(run.outcome.exitStatus == .failedAfterChanges)
        #expect(run.transport.log == ["be1: set-failover off", "be2: upgrade"], "be3 is never touched")
        #expect(run.outcome.summary.contains("rejoined did not hold on be2 within"))
        #expect(
            run.reporter.all.contains {
                if case .waitFinished("be2", "rejoined", false, _, _, "be2 is out of the cluster") = $0 {
                    true
                } else {
                    false
                }
            })
    }

    /// A wait's clock is the runner's: a 10-minute timeout polled every 30 s is reached at once on a test's
    /// clock, with the times it reports on that clock.
    @Test(.timeLimit(.minutes(1))) func aTenMinuteWaitTimesOutOnTheRunnersClock() async throws {
        let text = Self.playbookText.replacingOccurrences(
            of: "      - run: upgrade\n      - wait: rejoined\n",
            with: "      - run: upgrade\n      - wait: rejoined\n        timeout: 10m\n")
        let inventory = Self.inventoryText.replacingOccurrences(of: "poll_interval: 10ms", with: "poll_interval: 30s")
        #expect(text != Self.playbookText && inventory != Self.inventoryText)
        let clock = ManualWaitClock()
        let run = try await Self.run(playbook: text, rejoinReadings: 1_000_000, inventory: inventory, clock: clock)
        #expect(run.outcome.exitStatus == .failedAfterChanges)
        #expect(run.outcome.summary.contains("rejoined did not hold on be2 within 10m"))
        let waited = run.reporter.all.compactMap { event -> Double? in
            if case .waitFinished("be2", "rejoined", false, let duration, _, _) = event { return duration }
            return nil
        }
        #expect(waited.count == 1 && (600..<631).contains(waited.first ?? 0), "\(waited)")
        #expect(clock.sleeps == 20, "one poll every 30 s for 10 minutes")
    }

    @Test func aStopRequestEndsTheRunAfterTheStepInFlight() async throws {
        let stop = Locked(false)
        let run = try await Self.run(
            stopRequested: { stop.withLock { $0 } },
            beforeCommand: { node, command in if command == "upgrade" { stop.withLock { $0 = true } } })
        #expect(run.outcome.exitStatus == .interrupted)
        #expect(
            run.transport.log == ["be1: set-failover off", "be2: upgrade"], "be2's step finished, nothing after it")
        #expect(run.reporter.steps.last == "upgrade-follower be2 succeeded", "the step in flight was verified")
        #expect(run.outcome.summary.contains("STOPPED at your request"))
    }

    @Test func anAbortDuringAWaitSaysWhichNodeMayBeMidStep() async throws {
        // A second interrupt cancels the run's task: here while it waits for be2, which never comes back.
        let upgraded = AsyncStream.makeStream(of: Void.self)
        let task = Task {
            try await Self.run(
                rejoinReadings: 1_000_000,
                beforeCommand: { _, command in if command == "upgrade" { upgraded.continuation.yield() } })
        }
        for await _ in upgraded.stream { break }
        task.cancel()
        let run = try await task.value
        #expect(run.outcome.exitStatus == .interrupted)
        #expect(run.transport.log == ["be1: set-failover off", "be2: upgrade"])
        #expect(run.outcome.summary.contains("ABORTED during upgrade-follower on be2; be2 may be mid-upgrade"))
    }

    @Test func aResumedRunSkipsWhatItFinishedAndRerunsTheStepInFlightFirst() async throws {
        var journal = Journal(
            runID: "run-0", playbook: "scripted-upgrade", playbookFile: "/scripted/playbook.yml", cluster: "scripted",
            inventoryFile: "/scripted/inventory.yml", inventoryDigest: "", targetVersion: "2.3.16", user: "u",
            workstation: "w", started: Date(), status: .interrupted)
        let at = Date()
        journal.steps = [
            .init(index: 1, step: "block-failover", node: "be1", status: .succeeded, started: at, finished: at),
            .init(index: 2, step: "upgrade-follower", node: "be2", status: .succeeded, started: at, finished: at),
            .init(index: 3, step: "upgrade-follower", node: "be3", status: .started, started: at),
        ]
        let run = try await Self.run(
            versions: ["be1": "2.3.15", "be2": "2.3.16", "be3": "2.3.15"], resuming: journal)
        #expect(run.outcome.exitStatus == .success, "\(run.outcome.summary)")
        #expect(
            run.transport.log == ["be3: upgrade", "be1: failover", "be2: set-failover on"],
            "be3's step in flight first; block-failover and be2 not repeated")
        let numbers = run.reporter.all.compactMap { event -> String? in
            if case .stepStarted(let index, let total, _, _, _) = event { return "\(index)/\(total ?? 0)" }
            return nil
        }
        #expect(numbers == ["3/5", "4/5", "5/5"], "numbered on from the two steps done, as the plan numbers them")
        #expect(
            run.reporter.all.contains {
                if case .note(let text) = $0 { text.contains("re-running upgrade-follower on be3") } else { false }
            })
    }

    @Test func aStepInFlightThatIsNotSafeToRepeatIsNotRepeated() async throws {
        let text = """
            name: scripted-destroy
            description: One destructive step.
            steps:
              - name: wipe
                target: node:be3
                run: destroy
            """
        var journal = Journal(
            runID: "run-0", playbook: "scripted-destroy", playbookFile: "", cluster: "scripted",
            inventoryFile: "/scripted/inventory.yml", inventoryDigest: "", targetVersion: nil, user: "u",
            workstation: "w", started: Date(), status: .interrupted)
        journal.steps = [.init(index: 1, step: "wipe", node: "be3", status: .started, started: Date())]
        let run = try await Self.run(playbook: text, resuming: journal)
        #expect(run.outcome.exitStatus != .success)
        // Only its records were read (they could not tell that nothing would run twice): nothing was run again.
        #expect(run.transport.log.allSatisfy { $0.contains("wipe.be3.$a.status") }, "nothing was run again")
        #expect(run.outcome.summary.contains("not safe to repeat"))
    }

    /// A run stopped right after `--backup`'s own step (named `backup`, with no position) has not gone past a
    /// playbook step that is also named `backup`: every step of the playbook still runs, in order.
    @Test func aBackupStepOfTheSameNameIsNotProgress() async throws {
        let text = """
            name: scripted-resync
            description: Stop, back up, follow, in that order.
            steps:
              - name: stop
                target: node:be3
                run: stop leaderl
              - name: backup
                target: leader
                run: backup
              - name: follow
                target: node:be3
                run: pgsql-follow
            """
        var journal = Journal(
            runID: "run-0", playbook: "scripted-resync", playbookFile: "", cluster: "scripted",
            inventoryFile: "/scripted/inventory.yml", inventoryDigest: "", targetVersion: nil, user: "u",
            workstation: "w", started: Date(), status: .interrupted)
        let at = Date()
        var backup = Journal.Step(index: 1, step: "backup", node: "be2", status: .succeeded, started: at, finished: at)
        backup.position = -1
        journal.steps = [backup]
        let run = try await Self.run(playbook: text, resuming: journal)
        #expect(run.outcome.exitStatus == .success, "\(run.outcome.summary)")
        #expect(run.transport.log == ["be3: stop leaderl", "be1: backup", "be3: pgsql-follow"], "\(run.transport.log)")
    }

    /// A run that had reached a later step (by its recorded position) does not come back to an earlier one whose
    /// role now names another node: after the failover, the old leader is a follower, not a new follower to
    /// upgrade.
    @Test func aStepGonePastIsNotRunAgainForItsRolesNewNodes() async throws {
        var journal = Journal(
            runID: "run-0", playbook: "scripted-upgrade", playbookFile: "/scripted/playbook.yml", cluster: "scripted",
            inventoryFile: "/scripted/inventory.yml", inventoryDigest: "", targetVersion: "2.3.16", user: "u",
            workstation: "w", started: Date(), status: .interrupted)
        let at = Date()
        func step(
            _ index: Int, _ name: String, _ node: String, _ position: Int, _ status: Journal.Step.Status
        )
            -> Journal.Step
        {
            var record = Journal.Step(index: index, step: name, node: node, status: status, started: at, finished: at)
            record.position = position
            return record
        }
        journal.steps = [
            step(1, "block-failover", "be1", 0, .succeeded), step(2, "upgrade-follower", "be2", 1, .succeeded),
            step(3, "upgrade-follower", "be3", 1, .succeeded), step(4, "failover-leader", "be1", 2, .succeeded),
            step(5, "unblock-failover", "be2", 3, .started),
        ]
        // be2 leads now; be1 (the old leader, upgraded by failover-leader) is a follower.
        let run = try await Self.run(
            versions: ["be1": "2.3.16", "be2": "2.3.16", "be3": "2.3.16"], leader: "be2", resuming: journal)
        #expect(run.outcome.exitStatus == .success, "\(run.outcome.summary)")
        #expect(run.transport.log == ["be2: set-failover on"], "only the step in flight: \(run.transport.log)")
        let steps = run.reporter.all.compactMap { event -> String? in
            if case .stepStarted(_, _, let step, let node, _) = event { return "\(step) \(node)" }
            return nil
        }
        #expect(steps == ["unblock-failover be2"], "\(steps)")
    }
}
