import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// Lost, frozen and reset connections during an upgrade, against sandboxes whose `chef-backend-ctl upgrade`
/// behaves as a real program: it stops the node's services, works, and dies on its next write once its
/// connection is gone. Every run ends with every node at the target, healthy, failover on, never two
/// nodes disrupted, and no upgrade run twice on a node.
@Suite(
    "connection loss: commands outlive the session, drover reconnects", needsSandbox,
    .timeLimit(.minutes(5 * TestTime.factor)))
struct ConnectionLossTests {
    /// Keepalives every second, three unanswered: a frozen connection is lost after about 3 s.
    static let keepalive = "  keepalive_interval: 1s\n  keepalive_count: 3\n"

    @Test(
        "connections cut by killing the node's sshd processes: reconnected, the upgrade kept running",
        arguments: [
            ("be2", "chef-backend-ctl upgrade"), ("be1", "chef-backend-ctl upgrade --failover"),
        ])
    func cutDuringTheUpgrade(node: String, command: String) async throws {
        try await SandboxCluster.with(rejoin: "30s", fragile: 3, ssh: Self.keepalive) { cluster in
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(
                try await cluster.waitFor("\(node)| Upgrading: migrating", in: run.stdout), "\(node)'s upgrade started")
            #expect(!cluster.signalConnections(of: node, SIGKILL).isEmpty, "killed \(node)'s per-connection sshd")
            let status = await run.child.exitStatus()
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            #expect(status == 0, "\(stdout)")
            #expect(stdout.contains("\(node): connection lost ("), "the loss is said: \(stdout)")
            #expect(
                stdout.range(
                    of: "\(node): connection lost; reconnected after \\d+ s; `\(command)` (kept running|had finished)",
                    options: .regularExpression) != nil, "\(stdout)")
            // No output lost or repeated: every progress line once, in order.
            let progress = stdout.split(separator: "\n").filter { $0.contains("\(node)| Upgrading: migrating") }
            #expect(progress.count == 15 && progress.last?.hasSuffix("(15/15)") == true, "\(progress)")
            try await expectUpgradedSafely(cluster)
            #expect(await cluster.started(command, on: node) == 1, "the upgrade ran once on \(node)")
        }
    }

    /// A frontend's `chef-server-ctl upgrade` outlives its session as a backend's command does: the cut is said,
    /// the session made again, the upgrade followed to its end and never started twice.
    @Test func cutDuringAFrontendsUpgrade() async throws {
        try await SandboxCluster.with(rejoin: "\(15 * TestTime.factor)s", frontends: 2, fragile: 3, ssh: Self.keepalive)
        { cluster in
            let run = try cluster.start(["upgrade", "--frontends", "--yes"])
            #expect(
                try await cluster.waitFor("fe1| Upgrading: running the upgrade's recipes", in: run.stdout),
                "fe1's upgrade started")
            #expect(!cluster.signalConnections(of: "fe1", SIGKILL).isEmpty, "killed fe1's per-connection sshd")
            let status = await run.child.exitStatus()
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            #expect(status == 0, "\(stdout)")
            #expect(
                stdout.range(
                    of:
                        "fe1: connection lost; reconnected after \\d+ s; `[^`]*chef-server-ctl upgrade` (kept running|had finished)",
                    options: .regularExpression) != nil, "\(stdout)")
            let progress = stdout.split(separator: "\n").filter { $0.contains("fe1| Upgrading: running the upgrade's") }
            #expect(progress.count == 15 && progress.last?.hasSuffix("(15/15)") == true, "\(progress)")
            let state = try await cluster.state()
            #expect(state.frontends.allSatisfy { $0.runningVersion == "15.9.38" && $0.running }, "\(state.frontends)")
            let upgrades = (await cluster.log()).filter {
                $0.event == "started" && $0.node == "fe1" && $0.command.hasSuffix("chef-server-ctl upgrade")
            }
            #expect(upgrades.count == 1, "the upgrade ran once on fe1: \(upgrades.map(\.command))")
        }
    }

    @Test func aFrozenConnectionIsDetectedByKeepalivesAndReplaced() async throws {
        try await SandboxCluster.with(rejoin: "30s", fragile: 4, ssh: Self.keepalive) { cluster in
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("be2| Upgrading: migrating", in: run.stdout))
            let frozen = cluster.signalConnections(of: "be2", SIGSTOP)
            #expect(!frozen.isEmpty)
            #expect(
                try await cluster.waitFor("went unanswered", in: run.stdout, timeout: .seconds(60)),
                "noticed without closing")
            try await Task.sleep(for: .seconds(2))
            for pid in frozen { kill(pid, SIGCONT) }
            let status = await run.child.exitStatus()
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            #expect(status == 0, "\(stdout)")
            #expect(stdout.contains("be2: connection lost; reconnected after"))
            try await expectUpgradedSafely(cluster)
            #expect(await cluster.started("chef-backend-ctl upgrade", on: "be2") == 1)
        }
    }

    @Test func killedDroverThenResumeWaitsForTheCommandStillRunning() async throws {
        try await SandboxCluster.with(rejoin: "30s", fragile: 4, ssh: Self.keepalive) { cluster in
            #expect(
                try await cluster.killRun(
                    ["upgrade", "--yes"], at: "be2| Upgrading: migrating and restarting services (2/20)"))
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 0, "\(resume.stdout)\n\(resume.stderr)")
            #expect(
                resume.stdout.contains("`chef-backend-ctl upgrade` is still running on be2")
                    || resume.stdout.contains("`chef-backend-ctl upgrade` had already finished on be2"),
                "\(resume.stdout)")
            try await expectUpgradedSafely(cluster)
            #expect(await cluster.started("chef-backend-ctl upgrade", on: "be2") == 1, "never run twice")
            let installs = (await cluster.log()).filter {
                $0.event == "started" && $0.node == "be2" && $0.command.hasPrefix("dpkg -i")
                    && $0.command.hasSuffix("/chef-backend_2.3.16-1_amd64.deb")
            }
            #expect(installs.count == 1, "\(installs.map(\.command))")
        }
    }

    @Test func aStepThatFailedOnALostNodeIsResumedFromTheNodesRecord() async throws {
        try await SandboxCluster.with(rejoin: "30s", fragile: 6, ssh: Self.keepalive) { cluster in
            // A short command timeout bounds how long the run tries to reconnect.
            try await Processes.offPool {
                let text = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
                try text.replacingOccurrences(of: "command_timeout: 5m", with: "command_timeout: 8s")
                    .write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            }
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("be2| Upgrading: migrating", in: run.stdout))
            // be2's sshd goes away entirely: the listener first (so that no reconnect can slip in), then the
            // connections it had accepted.
            let listener = try #require(cluster.sandbox.record()?.nodes.first { $0.name == "be2" }?.pid)
            let connections = cluster.signalConnections(of: "be2", 0)
            try await Processes.offPool { Processes.stop(pid: listener) }
            for pid in connections { kill(pid, SIGKILL) }
            #expect(await run.child.exitStatus() == 1)
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            #expect(stdout.contains("could not be made again within"), "\(stdout)")
            #expect(stdout.contains("drover resume"))
            try await cluster.sandbox.heal("be2")
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 0, "not refused as an undisturbed node: \(resume.stdout)\n\(resume.stderr)")
            #expect(resume.stderr.contains("failed when it stopped: upgrade-follower on be2"), "\(resume.stderr)")
            #expect(
                resume.stdout.contains("`chef-backend-ctl upgrade` had already finished on be2"), "\(resume.stdout)")
            try await expectUpgradedSafely(cluster)
            #expect(await cluster.started("chef-backend-ctl upgrade", on: "be2") == 1, "its recorded status was used")
        }
    }

    @Test func aNodeLeftHalfDoneByADroppedSSHIsDiagnosedAndFinishedFirst() async throws {
        try await SandboxCluster.with(rejoin: "30s", fragile: 3) { cluster in
            // A person's ssh, dropped in the middle of the upgrade: the command dies on its next write.
            let out = cluster.scratch("ssh.out")
            let ssh = try Processes.spawn(
                "/usr/bin/ssh",
                [
                    "-F", cluster.sandbox.sshConfigPath, "be2",
                    "dpkg -i /var/tmp/chef-backend_2.3.16-1_amd64.deb && chef-backend-ctl upgrade",
                ],
                stdout: out, stderr: cluster.scratch("ssh.err"))
            #expect(try await cluster.waitFor("Upgrading: migrating", in: out))
            kill(ssh.pid, SIGKILL)
            _ = await ssh.exitStatus()
            let down = try await cluster.state()
            #expect(down.node("be2")?.upgradeUnfinished == true)
            try await Task.sleep(for: .seconds(4))
            #expect(
                try await cluster.state().node("be2")?.upgradeUnfinished == true, "the upgrade died with its connection"
            )
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.status == 1)
            #expect(
                diagnosis.stdout.contains("Situation: upgrade-interrupted: upgrade interrupted on be2"),
                "\(diagnosis.stdout)")
            #expect(diagnosis.stdout.contains("be2 has 2.3.16 installed (version manifest) but is waiting_for_leader"))
            #expect(diagnosis.stdout.contains("  Run:\n      drover upgrade --inventory"))
            #expect(!diagnosis.stdout.contains("service-down"), "its stopped services are not advised on one by one")
            let plan = try await cluster.drover(["plan"])
            #expect(plan.status == 0, "\(plan.stdout)\n\(plan.stderr)")
            #expect(
                plannedActions(plan.stdout).contains("1. finish-interrupted-upgrade be2: chef-backend-ctl upgrade"),
                "\(plan.stdout)")
            let since = Date()
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(upgrade.status == 0, "\(upgrade.stdout)\n\(upgrade.stderr)")
            let changes = (await cluster.log()).filter { $0.event == "started" && $0.isMutating && $0.time >= since }
            #expect(
                changes.first.map { "\($0.node) \($0.command)" } == "be2 chef-backend-ctl upgrade",
                "be2 first: \(changes.map(\.command))")
            try await expectUpgradedSafely(cluster)
        }
    }

    @Test func execStaysAttachedUnlessDetachedAndADetachedCommandOutlivesItsConnection() async throws {
        try await SandboxCluster.with(ssh: Self.keepalive) { cluster in
            // The commands wait for the test, not for a clock, so a busy machine cannot make them end before
            // their connection is cut. (A node's /var/tmp is its own: files there are made and read through drover.)
            let marker = "/var/tmp/drover-exec-\(UUID().uuidString.prefix(8))"
            let gate = marker + "-gate"
            let run = try cluster.start([
                "exec", "--node", "be2", "--detach", "--",
                "echo started; while [ ! -e \(gate) ]; do sleep 0.1; done; echo finished; touch \(marker); exit 3",
            ])
            #expect(try await cluster.waitFor("be2| started", in: run.stdout))
            cluster.signalConnections(of: "be2", SIGKILL)
            _ = try await cluster.drover(["exec", "--node", "be2", "--", "touch \(gate)"])
            #expect(await run.child.exitStatus() == 1, "the command's own status, not a connection error")
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            let stderr = try String(contentsOfFile: run.stderr, encoding: .utf8)
            #expect(stdout == "be2| started\nbe2| finished\n", "nothing lost or repeated: \(stdout)")
            #expect(
                stderr.contains("be2| connection lost") && stderr.contains("be2| reconnected after")
                    && stderr.contains("be2| exit status 3"),
                "\(stderr)")
            let check = try await cluster.drover(["exec", "--node", "be2", "--", "ls \(marker)"])
            #expect(check.stdout.contains("be2| \(marker)\n"), "the detached command finished: \(check.stdout)")
            // Attached (the default), a command dies with its connection at its next write, as real programs do.
            let attached = try cluster.start([
                "exec", "--node", "be2", "--",
                "echo $$ > \(marker)-pid; echo started; while :; do sleep 0.2; echo still here; done",
            ])
            #expect(try await cluster.waitFor("be2| started", in: attached.stdout))
            cluster.signalConnections(of: "be2", SIGKILL)
            #expect(await attached.child.exitStatus() != 0)
            // The nodes share this machine's processes (only their mounts are their own).
            let read = try await cluster.drover(["exec", "--node", "be2", "--", "cat \(marker)-pid"])
            let pid = try #require(
                pid_t(
                    read.stdout.replacingOccurrences(of: "be2| ", with: "").trimmingCharacters(
                        in: .whitespacesAndNewlines)))
            let ended = try await Processes.offPool { () -> Bool in
                let deadline = ContinuousClock.now + .seconds(15)
                while Processes.isAlive(pid), ContinuousClock.now < deadline { usleep(50_000) }
                return !Processes.isAlive(pid)
            }
            if !ended { kill(pid, SIGKILL) }
            #expect(ended, "the attached command did not outlive its session")
        }
    }

    @Test func eachOfAStepsCommandsHasItsOwnTimeoutAndATimeoutNamesTheCommand() async throws {
        try await SandboxCluster.with { cluster in
            try await Processes.offPool {
                let text = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
                try text.replacingOccurrences(of: "command_timeout: 5m", with: "command_timeout: 4s")
                    .write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            }
            let playbook = cluster.scratch("slow.yml")
            try """
            name: slow
            description: A quick command, then one that outlasts its timeout.
            steps:
              - name: slow
                description: Two commands in a row.
                target: leader
                actions:
                  - run: sleep 1; echo first done
                  - run: sleep 30
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let run = try await cluster.drover(["run", playbook, "--yes", "--json"])
            #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
            let events = run.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let finished = events.filter { $0["event"] as? String == "command_finished" }
            #expect(finished.count == 1 && finished.first?["exit_status"] as? Int == 0, "\(finished)")
            let failed = try #require(events.first { $0["event"] as? String == "step_finished" })
            // The second had 4 s of its own (not the 7 s the first left of two commands' time): it was given up
            // about 4 s after the first ended.
            func time(_ event: [String: Any]?) -> Date? {
                (event?["time"] as? String).flatMap { ISO8601DateFormatter.withFraction.date(from: $0) }
            }
            let gap = try #require(time(failed)).timeIntervalSince(try #require(time(finished.first)))
            #expect(gap >= 3.5 && gap < 6.5, "given up \(gap) s after the first command ended")
            let reason = failed["reason"] as? String ?? ""
            #expect(reason.contains("`sleep 30` on be1 did not finish within 4s (ssh.command_timeout)"), "\(reason)")
            #expect(
                reason.contains("drover-runs/") && !reason.contains("##drover-node-command##"),
                "names the record, not the script: \(reason)")
        }
    }

    @Test func recordsOlderThanThirtyDaysArePrunedWhenARunReleasesItsLock() async throws {
        try await SandboxCluster.with { cluster in
            let root = "/var/opt/chef-backend/drover-runs"
            let made = try await cluster.drover([
                "exec", "--node", "be1", "--",
                "mkdir -p \(root)/old-run \(root)/recent-run "
                    + "&& touch -d '31 days ago' \(root)/old-run && touch -d '29 days ago' \(root)/recent-run",
            ])
            #expect(made.status == 0, "\(made.stderr)")
            let playbook = cluster.scratch("hello.yml")
            try
                "name: hello\ndescription: One command on the leader.\nsteps:\n  - name: hello\n    description: Say hello.\n    target: leader\n    run: echo hello\n"
                .write(toFile: playbook, atomically: true, encoding: .utf8)
            let run = try await cluster.drover(["run", playbook, "--yes"])
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            // The release prunes in the background on the node: the run does not wait for it.
            var listing = ""
            for _ in 0..<100 {
                listing = try await cluster.drover(["exec", "--node", "be1", "--", "ls \(root)"]).stdout
                if !listing.contains("old-run") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(!listing.contains("old-run") && listing.contains("recent-run"), "\(listing)")
            #expect(listing.split(separator: "\n").count == 2, "this run's records are kept: \(listing)")
        }
    }

    @Test func detachedCommandsRunThroughSudoWithTheirWordsIntact() async throws {
        try await SandboxCluster.with(ssh: "  sudo: true\n") { cluster in
            let viaSudo = try await cluster.drover([
                "exec", "--node", "be1", "--detach", "--", "printenv", "SUDO_COMMAND",
            ])
            #expect(viaSudo.status == 0, "\(viaSudo.stderr)")
            #expect(
                viaSudo.stdout.contains("be1| /usr/bin/sh -c") || viaSudo.stdout.contains("be1| /bin/sh -c"),
                "\(viaSudo.stdout)")
            let quoted = try await cluster.drover([
                "exec", "--node", "be1", "--detach", "--", #"printf '%s|\n' "it's" 'a b' '$HOME'"#,
            ])
            #expect(quoted.stdout == "be1| it's|\nbe1| a b|\nbe1| $HOME|\n", "\(quoted.stdout)")
        }
    }

    @Test func thePairsMasterRecoverOutlivesACutConnection() async throws {
        try await SandboxCluster.with(topology: "drbd-pair", fragile: 3, ssh: Self.keepalive) { cluster in
            try await cluster.breakNode("be1", "drbd-primary-down")
            let run = try cluster.start(["run", "promote-secondary", "--set", "node=be2", "--yes"])
            #expect(
                try await cluster.waitFor("be2| ok: run: bookshelf", in: run.stdout),
                "master-recover is starting services")
            #expect(!cluster.signalConnections(of: "be2", SIGKILL).isEmpty)
            let status = await run.child.exitStatus()
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            #expect(status == 0, "\(stdout)")
            #expect(stdout.contains("be2: connection lost; reconnected after"), "\(stdout)")
            let lines = stdout.split(separator: "\n").filter { $0.contains("be2| ok: run: ") }
            #expect(lines.count == SimulatedPair.haServices.count, "each service's line once: \(lines)")
            let pair = try await cluster.pairState()
            #expect(pair.node("be2")?.current == "master" && pair.node("be2")?.vip == true)
            #expect(
                pair.node("be2")?.running == Set(SimulatedPair.haServices),
                "every service started: the command was not cut short")
            #expect(await cluster.started("chef-server-ctl master-recover", on: "be2") == 1)
            #expect(pair.violations.isEmpty, "\(pair.violations)")
        }
    }
}
