import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

@Suite("diagnose and the recovery playbooks", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct RecoveryTests {
    @Test func healthyClusterNeedsNothing() async throws {
        try await SandboxCluster.with { cluster in
            let output = try await cluster.drover(["diagnose"])
            #expect(output.status == 0 && output.stdout.hasPrefix("Healthy"))
            let json = try await cluster.drover(["diagnose", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["healthy"] as? Bool == true && (object["situations"] as? [Any])?.isEmpty == true)
        }
    }

    @Test(
        "diagnose names the situation",
        arguments: [
            ("be3", "unreachable", "one node is down or unreachable: be3", "drover run replace-failed-node"),
            ("be1", "two-nodes-lost", "two nodes lost", "drover run quorum-loss-recovery"),
            (
                "be2", "service-down:elasticsearch", "elasticsearch is down on be2",
                "one of three nodes may lose Elasticsearch"
            ),
        ])
    func situations(node: String, fault: String, summary: String, advice: String) async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode(node, fault)
            let output = try await cluster.drover(["diagnose"])
            #expect(output.status == 1, "\(output.stdout)\(output.stderr)")
            #expect(output.stdout.contains(summary) && output.stdout.contains(advice), "\(output.stdout)")
        }
    }

    @Test func aNodeDownIsFirstWaitedForAndReplacedOnlyIfLostForGood() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "unreachable")
            let output = try await cluster.drover(["diagnose"])
            #expect(output.status == 1, "\(output.stdout)\(output.stderr)")
            let text = output.stdout
            let inventory = "--inventory \(cluster.inventoryPath)"
            // The safe reading leads, with how to tell; the destructive command is the second branch.
            let first = try #require(text.range(of: "  First: if be3 is down for a while"), "\(text)")
            let destructive = try #require(text.range(of: "  Only if be3 is lost for good, run:\n"), "\(text)")
            #expect(first.lowerBound < destructive.lowerBound)
            #expect(text.contains("it reconnects and syncs from the leader by itself. Tell when it is back"))
            #expect(text.contains("\n      drover status \(inventory)\n"), "the check, alone on its line")
            #expect(
                text.contains(
                    "\n      drover run replace-failed-node \(inventory) --set failed=be3 --set replacement=be3\n"))
            #expect(!text.contains("  Run: "), "no command glued to words")
        }
    }

    /// be1's `host:` leads nowhere, or be1's and be2's are swapped: the cluster lists be1 healthy at its own
    /// address. Diagnose names the inventory error (never "down", never replace-failed-node), and every playbook
    /// refuses before any change.
    @Test("a wrong host is an inventory error, not a dead node", arguments: ["nowhere", "be2"])
    func wrongHost(pointsAt: String) async throws {
        try await SandboxCluster.with { cluster in
            let state = try await cluster.state()
            let be1 = try #require(state.node("be1")?.ip)
            let be2 = try #require(state.node("be2")?.ip)
            let wrong = pointsAt == "be2" ? be2 : LoopbackAddresses.next(port: 22)
            let original = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            var edited = original.replacingOccurrences(of: "host: \(be1)\n", with: "host: WRONG\n")
            if pointsAt == "be2" { edited = edited.replacingOccurrences(of: "host: \(be2)\n", with: "host: \(be1)\n") }
            try edited.replacingOccurrences(of: "host: WRONG\n", with: "host: \(wrong)\n")
                .write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let diagnosis = try await cluster.drover(["diagnose"])
            let text = diagnosis.stdout
            #expect(diagnosis.status == 1, "\(text)\(diagnosis.stderr)")
            #expect(
                text.contains(
                    "the inventory does not name the machines the cluster knows: be1\(pointsAt == "be2" ? ", be2" : "")"
                ),
                "\(text)")
            let detail =
                pointsAt == "be2"
                ? "be1: the inventory says \(wrong), which reaches a machine that publishes \(wrong) (the cluster's be2), but the cluster knows be1 at \(be1)"
                : "be1: the inventory says \(wrong), the cluster knows be1 at \(be1) and sees it healthy"
            #expect(text.contains(detail), "\(text)")
            #expect(!text.contains("replace-failed-node") && !text.contains("down or unreachable"), "\(text)")
            #expect(text.contains("\n      drover status --inventory \(cluster.inventoryPath)\n"), "\(text)")
            let before = (await cluster.log()).count
            let runbook = try await cluster.drover([
                "run", "replace-failed-node", "--set", "failed=be1", "--set", "replacement=be1", "--yes",
                "--assume-done",
            ])
            #expect(runbook.status == 2, "\(runbook.stdout)\(runbook.stderr)")
            #expect(runbook.stderr.contains("pre-flight failed: identity on be1: \(detail)"), "\(runbook.stderr)")
            #expect(runbook.stderr.contains("fix: correct host: for be1 in \(cluster.inventoryPath):"))
            #expect(!runbook.stderr.contains("target-reachable"), "the wrong host is the one cause: \(runbook.stderr)")
            let status = try await cluster.drover(["status"])
            #expect(status.stdout.contains("The inventory does not name the machines the cluster knows: \(detail)"))
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(upgrade.status == 2 && upgrade.stderr.contains("pre-flight failed: identity on be1"))
            let changed = (await cluster.log()).dropFirst(before).filter { $0.event == "started" && $0.isMutating }
            #expect(changed.isEmpty, "nothing was changed: \(changed.map(\.command))")
            // The inventory put right, the same cluster is healthy: nothing was ever down.
            try original.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            #expect(try await cluster.drover(["diagnose"]).status == 0)
        }
    }

    /// Diagnose during a live upgrade whose drover was killed: the command still running on its node is named
    /// with its pid and age (never "interrupted"), the run with its dead process; once the command ended, the
    /// run is the thing to resume, and resume follows the command's record instead of starting it again.
    @Test func diagnoseTellsLiveWorkFromInterruptedWork() async throws {
        try await SandboxCluster.with(rejoin: "30s", fragile: 6) { cluster in
            #expect(
                try await cluster.killRun(["upgrade", "--yes"], at: "be2| Upgrading"), "the upgrade started on be2")
            let during = try await cluster.drover(["diagnose"])
            #expect(during.status == 1, "\(during.stdout)\(during.stderr)")
            #expect(during.stdout.contains("Situation: run-interrupted: run "), "\(during.stdout)")
            #expect(during.stdout.contains("stopped without finishing: its drover process (pid "), "\(during.stdout)")
            #expect(
                during.stdout.contains(
                    "Situation: command-running: `chef-backend-ctl upgrade` is still running on be2 (pid "),
                "\(during.stdout)")
            #expect(!during.stdout.contains("upgrade interrupted on be2"), "a live command is not interrupted")
            let status = try await cluster.drover(["status"])
            #expect(status.stdout.contains("Lock: "), "\(status.stdout)")
            #expect(
                status.stdout.hasSuffix(
                    "Why, and what to do:\n    drover diagnose --inventory \(cluster.inventoryPath)\n"))
            // Once the command ended: the run to continue, with the one command that does it.
            let deadline = ContinuousClock.now + .seconds(60)
            var after = during
            while ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(500))
                after = try await cluster.drover(["diagnose"])
                if !after.stdout.contains("command-running") { break }
            }
            #expect(after.stdout.contains("Situation: run-interrupted: "), "\(after.stdout)")
            #expect(after.stdout.contains("\n  Run:\n      drover resume --inventory \(cluster.inventoryPath)\n"))
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(await cluster.started("chef-backend-ctl upgrade", on: "be2") == 1, "followed, not run again")
            #expect(try await cluster.drover(["diagnose"]).status == 0)
        }
    }

    /// A destructive step (an `rm`, not safe to run blindly again) whose drover was killed while its command ran:
    /// the command's record on the node shows it still running, then finished, so resume follows it instead of
    /// refusing for ever, and it runs once.
    @Test func aDestructiveStepKilledMidCommandIsFollowedNotRepeated() async throws {
        try await SandboxCluster.with { cluster in
            let playbook = cluster.scratch("destructive.yml")
            try """
            name: destructive
            description: A destructive command that takes a moment.
            preflight: basic
            steps:
              - name: remove-marker
                target: node:be2
                run: echo removing; rm -f /var/tmp/marker; sleep 2; echo removed
              - name: after
                target: node:be2
                run: echo after
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            #expect(try await cluster.killRun(["run", playbook, "--yes"], at: "be2| removing"), "killed mid-command")
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(
                resumed.stdout.contains("re-running remove-marker on be2, whose commands' records on be2 show none"))
            let started = (await cluster.log()).filter {
                $0.event == "started" && $0.node == "be2" && $0.command.hasPrefix("rm -f")
            }
            #expect(started.count == 1, "run once: \(started.map(\.command))")
        }
    }

    /// A destructive step killed while its first command (`again: true`, safe to repeat) ran: its destructive
    /// command has no record on the node, in a records directory the run made when it took the lock, so it
    /// never started and resume runs it, once. Without that directory (records pruned, a node rebuilt) resume
    /// cannot know, and refuses.
    @Test(arguments: [true, false])
    func aDestructiveCommandThatNeverStartedIsRunOnResume(recordsKept: Bool) async throws {
        try await SandboxCluster.with { cluster in
            let playbook = cluster.scratch("never-started.yml")
            try """
            name: never-started
            description: A safe command that takes a moment, then a destructive one.
            preflight: basic
            steps:
              - name: remove-marker
                target: node:be2
                actions:
                  - run: echo preparing; sleep 3; echo prepared
                    again: true
                  - run: rm -f /var/tmp/marker
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let run = try cluster.start(["run", playbook, "--yes"])
            let reached = try await cluster.waitFor("be2| preparing", in: run.stdout)
            kill(run.child.pid, SIGKILL)
            _ = await run.child.exitStatus()
            #expect(reached)
            if !recordsKept {
                // The run's header: `drover: PLAYBOOK on cluster NAME (run RUN_ID)`.
                let header = try String(contentsOfFile: run.stdout, encoding: .utf8)
                let runID = try #require(
                    header.range(of: "(run ").map { header[$0.upperBound...].prefix { $0 != ")" } })
                let wiped = try await cluster.drover([
                    "exec", "--node", "be2", "--", "rm -rf /var/opt/chef-backend/drover-runs/\(runID)",
                ])
                #expect(wiped.status == 0, "\(wiped.stdout)\(wiped.stderr)")
            }
            let resumed = try await cluster.drover(["resume", "--yes"])
            let removals = (await cluster.log()).filter {
                $0.event == "started" && $0.node == "be2" && $0.command.hasPrefix("rm -f /var/tmp/marker")
            }
            if recordsKept {
                #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
                #expect(removals.count == 1, "run once: \(removals.map(\.command))")
            } else {
                #expect(resumed.status == 2, "refused, nothing changed: \(resumed.stdout)\(resumed.stderr)")
                #expect(resumed.stdout.contains("no records of this run on be2"), "\(resumed.stdout)")
                #expect(removals.isEmpty)
            }
        }
    }

    /// A records directory planted as a symbolic link (to a directory another user controls): no command runs
    /// through it; the step fails naming it, and the link's target stays empty.
    @Test func aRecordsDirectoryPlantedAsASymlinkIsRefused() async throws {
        try await SandboxCluster.with { cluster in
            let node = cluster.sandbox.directory + "/nodes/be2"
            let elsewhere = cluster.scratch("elsewhere")
            try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                atPath: node + "/var/opt/chef-backend/drover-runs", withDestinationPath: elsewhere)
            let run = try await cluster.drover(["exec", "--node", "be2", "--detach", "--", "echo hi"])
            #expect(run.status != 0, "\(run.stdout)\(run.stderr)")
            #expect(
                (run.stdout + run.stderr).contains("drover-runs is a symbolic link or not owned by root"),
                "\(run.stdout)\(run.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
        }
    }

    /// While a run goes on, diagnose says it runs (its drover's pid) and a resume of it is refused: two drovers
    /// would drive one cluster (a resume may take its own run's lock over).
    @Test func aRunStillGoingOnIsNotResumedOverIt() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "30s") { cluster in
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("step 2/", in: run.stdout), "the run reached its second step")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.stdout.contains("Situation: run-running: run "), "\(diagnosis.stdout)")
            #expect(diagnosis.stdout.contains("is running: drover, pid \(run.child.pid), on this workstation"))
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 3, "\(resume.stdout)\(resume.stderr)")
            #expect(resume.stderr.contains("is still running: drover, pid \(run.child.pid)"), "\(resume.stderr)")
            #expect(await run.child.exitStatus() == 0, "the run itself went on undisturbed")
            try await expectUpgradedSafely(cluster)
        }
    }

    /// An election that stalls during the leader's `upgrade --failover` leaves no leader: an outage, which the
    /// run's summary, its JSON and its HTML report flag, not only a failed wait.
    @Test func aStalledElectionIsFlaggedAsAnOutage() async throws {
        try await SandboxCluster.with(rejoin: "4s") { cluster in
            try await cluster.breakNode("be1", "election-stalls")
            let html = cluster.scratch("stalled.html")
            let run = try await cluster.drover(["upgrade", "--yes", "--json", "--html", html])
            #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
            let finished = try #require(
                run.stdout.split(separator: "\n").last { $0.contains("\"run_finished\"") }.map(String.init))
            let event = try #require(try JSONSerialization.jsonObject(with: Data(finished.utf8)) as? [String: Any])
            let summary = try #require(event["summary"] as? String, "\(finished)")
            #expect(summary.contains("!! OUTAGE: no node leads ("), "\(summary)")
            let report = try String(contentsOfFile: html, encoding: .utf8)
            #expect(report.contains("<p class=\"warning\">!! OUTAGE: no node leads"), "flagged in the report's header")
        }
    }

    @Test func partitionIsHealedByPromotingANode() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be1", "partition")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.status == 1 && diagnosis.stdout.contains("every node is waiting_for_leader"))
            #expect(
                diagnosis.stdout.contains(
                    "drover run promote-node --inventory \(cluster.inventoryPath) --set node=NODE"))
            let plan = try await cluster.drover(["plan", "promote-node", "--set", "node=be2"])
            #expect(plannedActions(plan.stdout).contains("be2: chef-backend-ctl promote be2"))
            let run = try await cluster.drover(["run", "promote-node", "--set", "node=be2", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            let state = try await cluster.state()
            #expect(state.currentLeader?.name == "be2" && state.members.allSatisfy { $0.phase == .synced })
            #expect(try await cluster.drover(["diagnose"]).status == 0)
        }
    }

    @Test func deposedLeaderIsReinstated() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be1", "deposed-leader")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.stdout.contains("deposed leader held down by no-start-pgsql"))
            let command = "drover run reinstate-deposed-leader --inventory \(cluster.inventoryPath) --set node=be1"
            #expect(diagnosis.stdout.contains(command))
            let run = try await cluster.drover(["run", "reinstate-deposed-leader", "--set", "node=be1", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(
                run.stdout.contains("Deleting /var/opt/chef-backend/leaderl/data/no-start-pgsql on be1"),
                "the destructive step says what and why")
            let state = try await cluster.state()
            #expect(state.currentLeader?.name == "be1" && state.members.allSatisfy { $0.phase == .synced })
            #expect(
                !FileManager.default.fileExists(
                    atPath: cluster.sandbox.directory + "/nodes/be1/var/opt/chef-backend/leaderl/data/no-start-pgsql"))
        }
    }

    /// reinstate-deposed-leader killed once its `rm` of no-start-pgsql ran: the step's precondition (the
    /// sentinel present) held when it started; resumed, the step re-attaches to its finished command instead of
    /// failing on what its own command did.
    @Test func aStepKilledAfterItsOwnCommandChangedItsPreconditionIsResumed() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be1", "deposed-leader")
            let sentinel = cluster.sandbox.directory + "/nodes/be1/var/opt/chef-backend/leaderl/data/no-start-pgsql"
            let run = try cluster.start(["run", "reinstate-deposed-leader", "--set", "node=be1", "--yes"])
            let gone = try await Processes.offPool { () -> Bool in
                let deadline = ContinuousClock.now + .seconds(60)
                while FileManager.default.fileExists(atPath: sentinel), ContinuousClock.now < deadline {
                    usleep(2_000)
                }
                return !FileManager.default.fileExists(atPath: sentinel)
            }
            kill(run.child.pid, SIGKILL)
            _ = await run.child.exitStatus()
            #expect(gone, "the run's rm removed the sentinel")
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            let state = try await cluster.state()
            #expect(state.currentLeader?.name == "be1" && state.members.allSatisfy { $0.phase == .synced })
            #expect(await cluster.started("rm /var/opt/chef-backend/leaderl/data/no-start-pgsql", on: "be1") == 1)
        }
    }

    @Test("a partially synced node is re-synced", arguments: [false, true])
    func resync(walGone: Bool) async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "partially-synced")
            if walGone { try await cluster.breakNode("be3", "wal-gone") }
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.stdout.contains("be3 did not finish syncing"))
            #expect(
                diagnosis.stdout.contains("drover run resync-node --inventory \(cluster.inventoryPath) --set node=be3"))
            var arguments = ["run", "resync-node", "--set", "node=be3", "--yes"]
            if walGone { arguments += ["--set", "force_basebackup=true"] }
            let run = try await cluster.drover(arguments)
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(
                (await cluster.log()).contains {
                    $0.command.contains("pgsql-follow") && $0.command.contains("--force-basebackup")
                } == walGone)
            let state = try await cluster.state()
            #expect(state.node("be3")?.phase == .synced && !state.node("be3")!.servicesDown.contains("leaderl"))
            #expect(
                !FileManager.default.fileExists(
                    atPath: cluster.sandbox.directory + "/nodes/be3/var/opt/chef-backend/leaderl/data/unsynced"))
        }
    }

    @Test func resyncOfTheLeaderIsRefusedAndChangesNothing() async throws {
        try await SandboxCluster.with { cluster in
            let run = try await cluster.drover(["run", "resync-node", "--set", "node=be1", "--yes"])
            #expect(run.status == 2, "refused before any change")
            #expect(run.stdout.contains("precondition not-leader does not hold"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty)
        }
    }

    @Test func failoverCanBeSetAndMixedVersionsAreDiagnosed() async throws {
        try await SandboxCluster.with { cluster in
            #expect(try await cluster.drover(["run", "set-failover", "--set", "state=off", "--yes"]).status == 0)
            #expect(try await cluster.state().clusterFailover == false)
            #expect(try await cluster.drover(["run", "set-failover", "--set", "state=on", "--yes"]).status == 0)
            #expect(try await cluster.state().clusterFailover == true)
            _ = try await cluster.drover([
                "exec", "--node", "be2", "--",
                "dpkg -i /var/tmp/chef-backend_2.3.16-1_amd64.deb && chef-backend-ctl upgrade",
            ])
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(
                diagnosis.stdout.contains("versions are mixed")
                    && diagnosis.stdout.contains("drover upgrade --inventory"))
        }
    }

    @Test func parametersAreValidatedBeforeAnythingIsContacted() async throws {
        try await SandboxCluster.with { cluster in
            for (arguments, message) in [
                (["run", "resync-node", "--yes"], "required"),
                (["run", "resync-node", "--set", "node=be9", "--yes"], "'be9' is not a backend"),
                (
                    ["run", "resync-node", "--set", "node=be2", "--set", "colour=blue", "--yes"],
                    "has no parameter colour"
                ),
                (["run", "set-failover", "--set", "state=maybe", "--yes"], "must be on or off"),
                (["run", "set-failover", "--set", "state", "--yes"], "--set takes KEY=VALUE"),
            ] {
                let output = try await cluster.drover(arguments)
                #expect(output.status == 64, "\(arguments)")
                #expect(output.stderr.contains(message), "\(output.stderr)")
            }
            #expect((await cluster.log()).isEmpty, "nothing was contacted")
        }
    }
}

@Suite("runbooks with replacement machines", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct ReplacementTests {
    /// Plays the operator's part of the manual steps: a new machine with chef-backend, and the secrets.
    func prepare(_ cluster: SandboxCluster, _ node: String, secretsFrom source: String) async throws {
        try await cluster.sandbox.heal(node, fresh: true)
        let root = cluster.sandbox.directory + "/nodes/"
        try FileManager.default.copyItem(
            atPath: root + source + "/etc/chef-backend/chef-backend-secrets.json",
            toPath: root + node + "/etc/chef-backend/chef-backend-secrets.json")
    }

    @Test func failedNodeIsReplaced() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "unreachable")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(
                diagnosis.stdout.contains(
                    "drover run replace-failed-node --inventory \(cluster.inventoryPath) --set failed=be3 --set replacement=be3"
                ))
            try await prepare(cluster, "be3", secretsFrom: "be1")
            let run = try await cluster.drover([
                "run", "replace-failed-node", "--set", "failed=be3", "--set", "replacement=be3", "--yes",
                "--assume-done",
            ])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            let started = (await cluster.log()).filter { $0.event == "started" }.map(\.command)
            #expect(started.contains("chef-backend-ctl backup --force -y"), "a backup first")
            let remove = try #require(started.firstIndex(of: "chef-backend-ctl remove-node be3 -y"))
            let join = try #require(started.firstIndex { $0.hasPrefix("chef-backend-ctl join-cluster") })
            #expect(remove < join)
            let state = try await cluster.state()
            #expect(
                state.members.count == 3 && state.members.allSatisfy { $0.phase == .synced }
                    && state.currentLeader != nil)
            #expect(try await cluster.drover(["diagnose"]).status == 0)
        }
    }

    /// replace-failed-node's join fails after its own remove-node (the replacement lacks the secrets file): the
    /// run's own removal is what its resume expects, so `resume` joins the node once the cause is fixed; the
    /// "start again" line carries the run's --set values.
    @Test func aReplacementWhoseJoinFailedIsResumed() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "unreachable")
            try await cluster.sandbox.heal("be3", fresh: true)
            let failed = try await cluster.drover([
                "run", "replace-failed-node", "--set", "failed=be3", "--set", "replacement=be3", "--yes",
                "--assume-done",
            ])
            #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
            // The replacement must run the cluster's release, not the inventory's upgrade target (2.3.16).
            #expect(failed.stdout.contains("Install chef-backend 2.3.15 (the release the cluster runs) on be3"))
            #expect(
                failed.stdout.contains(
                    "drover run replace-failed-node --inventory \(cluster.inventoryPath) --set failed=be3 --set replacement=be3 --yes"
                ), "\(failed.stdout)")
            let root = cluster.sandbox.directory + "/nodes/"
            try FileManager.default.copyItem(
                atPath: root + "be1/etc/chef-backend/chef-backend-secrets.json",
                toPath: root + "be3/etc/chef-backend/chef-backend-secrets.json")
            let resumed = try await cluster.drover(["resume", "--yes", "--assume-done"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            let started = (await cluster.log()).filter { $0.event == "started" }.map(\.command)
            #expect(started.filter { $0 == "chef-backend-ctl remove-node be3 -y" }.count == 1, "removed once")
            let state = try await cluster.state()
            #expect(state.members.count == 3 && state.members.allSatisfy { $0.phase == .synced })
        }
    }

    @Test func quorumIsRecoveredFromTheSurvivor() async throws {
        try await SandboxCluster.with { cluster in
            // create-cluster --quorum-loss-recovery is refused while two members still answer.
            let refused = try await cluster.drover([
                "run", "quorum-loss-recovery", "--set", "survivor=be1", "--set", "new1=be2", "--set", "new2=be3",
                "--yes", "--assume-done",
            ])
            #expect(refused.status == 2 && refused.stdout.contains("precondition quorum-lost does not hold"))
            #expect(!(await cluster.log()).contains { $0.command.contains("create-cluster") })

            try await cluster.breakNode("be1", "two-nodes-lost")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.stdout.contains("--set survivor=be1 --set new1=be2 --set new2=be3"))
            try await prepare(cluster, "be2", secretsFrom: "be1")
            try await prepare(cluster, "be3", secretsFrom: "be1")
            let run = try await cluster.drover([
                "run", "quorum-loss-recovery", "--set", "survivor=be1", "--set", "new1=be2", "--set", "new2=be3",
                "--yes", "--assume-done",
            ])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            let joins = (await cluster.log()).filter {
                $0.event == "started" && $0.command.hasPrefix("chef-backend-ctl join-cluster")
            }
            #expect(joins.map(\.node) == ["be2", "be3"], "one node at a time")
            let state = try await cluster.state()
            #expect(
                state.currentLeader?.name == "be1" && state.members.count == 3
                    && state.members.allSatisfy { $0.phase == .synced })
        }
    }
}

@Suite("failover left off", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct FailoverLeftOffTests {
    @Test func diagnoseNamesFailoverLeftOffBySomeRunAndSetFailoverFixesIt() async throws {
        try await SandboxCluster.with(scale: 0.5, rejoin: "20s") { cluster in
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("Cluster failover disabled.", in: run.stdout))
            kill(run.child.pid, SIGINT)
            #expect(await run.child.exitStatus() == 130)
            #expect(try await cluster.state().clusterFailover == false)
            let diagnosis = try await cluster.drover(["diagnose", "--state-dir", cluster.stateDirectory])
            #expect(diagnosis.status == 1)
            #expect(diagnosis.stdout.contains("cluster failover was left off by run"))
            let state = try await cluster.state()
            if Set(state.nodes.map(\.runningVersion)).count == 1 {
                #expect(
                    diagnosis.stdout.contains(
                        "drover run set-failover --inventory \(cluster.inventoryPath) --set state=on"))
            }
            #expect(try await cluster.drover(["run", "set-failover", "--set", "state=on", "--yes"]).status == 0)
            #expect(try await cluster.state().clusterFailover)
            #expect(
                try await cluster.drover([
                    "run", "set-node-failover", "--set", "node=be3", "--set", "state=off", "--yes",
                ]).status == 0)
            #expect(try await cluster.state().node("be3")?.nodeFailover == false)
        }
    }
}
