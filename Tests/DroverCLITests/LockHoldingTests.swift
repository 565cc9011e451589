import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// The lock while a run holds it, and the package between pre-flight and its install: what a second
/// workstation (or a person on a node) does meanwhile stops the run before its next change.
@Suite("the lock and the package during a run", needsSandbox, .timeLimit(.minutes(4 * TestTime.factor)))
struct LockHoldingTests {
    @Test func anUnlockDuringARunStopsItBeforeItsNextChange() async throws {
        try await SandboxCluster.with(scale: 0.3) { cluster in
            // be2's step waits for a file the test makes once the unlock is done, however slow the machine.
            let gate = cluster.scratch("gate")
            let playbook = cluster.scratch("two-changes.yml")
            try """
            name: two-changes
            description: Change be2, then be3.
            steps:
              - name: first
                target: node:be2
                run: "while [ ! -e \(gate) ]; do sleep 0.1; done"
              - name: second
                target: node:be3
                run: chef-backend-ctl set-node-failover off
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let run = try cluster.start(["run", playbook, "--yes"])
            #expect(try await cluster.waitFor("be2$ while", in: run.stdout))
            let first = try String(contentsOfFile: run.stdout, encoding: .utf8)
            let runID = try #require(
                first.range(of: #"\(run [0-9][0-9A-Za-z-]+\)"#, options: .regularExpression).map {
                    String(first[$0].dropFirst(5).dropLast())
                })
            let unlock = try await cluster.drover(["unlock", "--run-id", runID, "--yes"])
            #expect(unlock.status == 0 && unlock.stdout.contains("Lock removed"), "\(unlock.stderr)")
            _ = FileManager.default.createFile(atPath: gate, contents: nil)
            let status = await run.child.exitStatus()
            let output =
                (try String(contentsOfFile: run.stdout, encoding: .utf8))
                + (try String(contentsOfFile: run.stderr, encoding: .utf8))
            #expect(status == 1, "\(output)")
            #expect(output.contains("the cluster lock of this run is gone on"), "\(output)")
            #expect(output.contains("stopped before second's next command on be3"), "\(output)")
            #expect(output.contains("drover resume --inventory"), "the next command is printed")
            #expect(await cluster.started("chef-backend-ctl set-node-failover off", on: "be3") == 0, "\(output)")
        }
    }

    @Test func aPackageChangedAfterPreflightIsNeverInstalled() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s") { cluster in
            let name = "chef-backend_2.3.16-1_amd64.deb"
            let be3Package = cluster.sandbox.directory + "/nodes/be3/var/tmp/" + name
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("upgrade-follower on be2", in: run.stdout))
            // Still a chef-backend 2.3.16 package to the installer, but not the file pre-flight read.
            let original = try String(contentsOfFile: be3Package, encoding: .utf8)
            try (original + "# swapped after pre-flight\n").write(toFile: be3Package, atomically: true, encoding: .utf8)
            let status = await run.child.exitStatus()
            let output =
                (try String(contentsOfFile: run.stdout, encoding: .utf8))
                + (try String(contentsOfFile: run.stderr, encoding: .utf8))
            #expect(status == 1, "\(output)")
            #expect(output.contains("is not the package pre-flight checked"), "\(output)")
            let installs = (await cluster.log()).filter {
                $0.event == "started" && $0.node == "be3" && $0.command.hasPrefix("dpkg -i")
            }
            #expect(installs.isEmpty, "\(installs.map(\.command))")
            #expect(await cluster.started("chef-backend-ctl upgrade", on: "be3") == 0)
            // be2's install ran from a copy only root could write, which is gone.
            let be2 = (await cluster.log()).first { $0.node == "be2" && $0.command.hasPrefix("dpkg -i") }
            #expect(be2?.command.hasPrefix("dpkg -i /var/tmp/drover-install.") == true, "\(be2?.command ?? "none")")
            let left = try FileManager.default.contentsOfDirectory(
                atPath: cluster.sandbox.directory + "/nodes/be2/var/tmp")
            #expect(!left.contains { $0.hasPrefix("drover-install.") }, "\(left)")
            // A resume installs only what the run first checked: still refused, then done once it is back.
            let refused = try await cluster.drover(["resume", "--yes"])
            #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
            #expect((refused.stdout + refused.stderr).contains("is not the package pre-flight checked"))
            try original.write(toFile: be3Package, atomically: true, encoding: .utf8)
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            try await expectUpgradedSafely(cluster)
        }
    }

    /// A runbook made for lost nodes starts with be2 and be3 down: the lock is held on be1 alone, saying so, and
    /// taken on be2 when it is back, before anything runs there.
    @Test func aLockOnFewerThanAMajorityIsSaidAndTakenOnNodesAsTheyComeBack() async throws {
        try await SandboxCluster.with(scale: 0.3) { cluster in
            try await cluster.breakNode("be2", "unreachable")
            try await cluster.breakNode("be3", "unreachable")
            let playbook = cluster.scratch("come-back.yml")
            try """
            name: come-back
            description: Run something on be1, then on be2 once it is back.
            preflight: none
            steps:
              - name: first
                target: node:be1
                run: sleep 3
              - name: bring-back
                target: node:be2
                actions:
                  - manual: Start be2 again.
              - name: second
                target: node:be2
                run: cat /var/opt/chef-backend/drover.lock/owner
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let run = try cluster.start(["run", playbook, "--yes", "--assume-done"])
            #expect(try await cluster.waitFor("be1$ sleep 3", in: run.stdout))
            try await cluster.sandbox.heal("be2")
            let status = await run.child.exitStatus()
            let output =
                (try String(contentsOfFile: run.stdout, encoding: .utf8))
                + (try String(contentsOfFile: run.stderr, encoding: .utf8))
            #expect(status == 0, "\(output)")
            #expect(
                output.contains(
                    "the cluster lock is held on 1 of 3 backends: be2, be3 cannot be reached or locked yet"),
                "\(output)")
            #expect(output.contains("be2: reachable again; the cluster lock is taken there too"), "\(output)")
            // What be2's command printed: the lock there, this run's, before it ran.
            #expect(output.contains("be2| run_id="), "\(output)")
            #expect(!(try await cluster.drover(["status"])).stdout.contains("Lock:"), "released at the end")
        }
    }

    /// Two workstations see different nodes: the second reaches only be3, which the first run has locked.
    @Test func aSecondWorkstationThatReachesOnlyOneNodeIsRefusedThere() async throws {
        try await SandboxCluster.with(scale: 1, rejoin: "60s") { cluster in
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("upgrade-follower on be2", in: run.stdout))
            // The second workstation's inventory: be1 and be2 at addresses nothing answers on.
            let inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            let lines = inventory.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var other: [String] = []
            var current = ""
            for line in lines {
                if let name = line.firstMatch(of: /^  - name: (\S+)/)?.1 { current = String(name) }
                if current == "be1" || current == "be2", line.hasPrefix("    port:") || line.hasPrefix("    host:") {
                    // Ports nothing listens on: the connection is refused at once.
                    other.append(
                        line.hasPrefix("    host:") ? "    host: 127.0.0.1\n    port: \(current == "be1" ? 9 : 7)" : "")
                    continue
                }
                other.append(line)
            }
            let otherPath = cluster.scratch("other-workstation.yml")
            try other.joined(separator: "\n").write(toFile: otherPath, atomically: true, encoding: .utf8)
            let playbook = cluster.scratch("touch-be3.yml")
            try """
            name: touch-be3
            description: Change be3 from a workstation that reaches only be3.
            preflight: none
            steps:
              - name: change
                target: node:be3
                run: chef-backend-ctl set-node-failover off
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            // Another workstation: its own records (the same cluster name), this machine's known hosts.
            let arguments = [
                "run", playbook, "--inventory", otherPath, "--state-dir", cluster.scratch("other-state"), "--yes",
            ]
            let environment = try DroverBinary.environment(cluster.environment)
            let second = try await Processes.offPool {
                try Processes.run(DroverBinary.path, arguments, environment: environment)
            }
            #expect(second.status == 3, "\(second.stdout)\(second.stderr)")
            #expect(second.stderr.contains("locked by run"), "\(second.stderr)")
            #expect(await cluster.started("chef-backend-ctl set-node-failover off", on: "be3") == 0)
            kill(run.child.pid, SIGINT)
            _ = await run.child.exitStatus()
        }
    }
}
