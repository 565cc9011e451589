import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

// Waits (a predicate polled until it holds) and the frontend check.
extension Runner {
    /// Polls until the predicate holds for `stable_polls` consecutive readings, the last of them a full
    /// reading of every node, or the timeout passes. The polls before the confirming ones read only what
    /// the predicate needs (the topology's focused reading); the first poll starts at once.
    func wait(_ predicate: String, node: String, timeout: Duration, step: Playbook.Step) async throws {
        let started = clock.now
        let deadline = started + timeout
        let stablePolls = inventory.timeouts.stablePolls
        var consecutive = 0
        var lastPending = ""
        // A full reading taken moments ago with nothing run since (the previous wait's last) is the first poll.
        var carried = lastReading.flatMap { clock.now - $0.at <= Self.readingReuseLimit ? $0 : nil }
        while true {
            // Sessions lost while waiting are made again (each on its backoff), and a node being rebuilt while
            // the run waits for it is connected to as soon as it answers.
            await reconnectLost()
            if connection.failures[node] != nil, await connection.reconnect(node) {
                reporter.emit(Event(.note("\(node) is reachable again")))
            }
            var pollStarted = clock.now
            // Confirming: the reading that may end the wait reads every node.
            let confirming = consecutive >= max(1, stablePolls - 1)
            let focused =
                confirming || carried != nil ? nil : await topology.observe(connection, forWait: predicate, node: node)
            let full = focused == nil
            // Only a reading taken in this wait may end it.
            var taken = true
            let observation: T.Observation
            if let focused {
                observation = focused
            } else if let reading = carried {
                observation = reading.observation
                pollStarted = reading.at
                carried = nil
                taken = false
            } else {
                let everyNode = await topology.observe(connection, full: false, checksum: false)
                observation = everyNode
            }
            let criteria = topology.criteria(predicate, node: node, observation: observation)
            let pending = criteria.filter { !$0.holds }.map(\.detail).joined(separator: "; ")
            if pending.isEmpty {
                consecutive += 1
                if full && taken && consecutive >= stablePolls {
                    lastReading = Reading(observation: observation, at: clock.now)
                    // Criteria named "note" always hold; they say what was seen (a resync's progress).
                    let notes = criteria.filter { $0.name == "note" }.map(\.detail).joined(separator: "; ")
                    reporter.emit(
                        Event(
                            .waitFinished(
                                node: node, predicate: predicate, ok: true,
                                duration: (clock.now - started).secondsValue,
                                detail: notes.isEmpty ? nil : notes, pending: nil)))
                    return
                }
            } else {
                consecutive = 0
                if pending != lastPending {
                    reporter.emit(
                        Event(
                            .waitProgress(
                                node: node, predicate: predicate, pending: pending,
                                timeLeft: max(0, (deadline - clock.now).secondsValue))))
                    lastPending = pending
                }
            }
            if clock.now >= deadline {
                reporter.emit(
                    Event(
                        .waitFinished(
                            node: node, predicate: predicate, ok: false,
                            duration: (clock.now - started).secondsValue, detail: nil, pending: pending)))
                throw StepFailure(
                    step: step.name, node: node,
                    what:
                        "\(predicate) did not hold on \(node) within \(DurationText.format(timeout)): \(pending.isEmpty ? "not stable for \(stablePolls) polls" : pending)",
                    advice: topology.waitTimeoutAdvice(predicate: predicate, timeout: timeout)
                        + [NextStep("See why on \(node): \(topology.logAdvice(node: node))")])
            }
            // Polls start every poll_interval (the reading's own time counts).
            try await clock.sleep(until: pollStarted + inventory.timeouts.pollInterval)
        }
    }

    /// Runs a `check:` of the topology; the first subject that fails stops the run.
    func check(_ name: String, step: Playbook.Step) async throws {
        var failed: CheckOutcome?
        await topology.runCheck(name) { outcome in
            reporter.emit(
                Event(.checkFinished(check: name, subject: outcome.subject, ok: outcome.ok, detail: outcome.detail)))
            if !outcome.ok, failed == nil { failed = outcome }
        }
        if let failed {
            throw StepFailure(step: step.name, node: nil, what: failed.failure, advice: [NextStep(failed.advice)])
        }
    }
}
