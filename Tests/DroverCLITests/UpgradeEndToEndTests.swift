import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

@Suite(
    "drover upgrade, plan, status and exec against the simulated cluster", needsSandbox,
    .timeLimit(.minutes(3 * TestTime.factor)))
struct UpgradeEndToEndTests {
    @Test func rollingUpgradeKeepsTheOrderingInvariants() async throws {
        try await SandboxCluster.with { cluster in
            let before = try await cluster.state()
            let originalLeader = try #require(before.leader)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
            #expect(output.stdout.contains("Succeeded"))
            #expect(output.stdout.contains("cluster failover: ON"))
            // Progress as `step N/TOTAL`, the total counted from the cluster as the run found it.
            let steps = output.stdout.split(separator: "\n").compactMap { line -> String? in
                guard let range = line.range(of: #"step \d+/\d+ "#, options: .regularExpression) else { return nil }
                return String(line[range]).trimmingCharacters(in: .whitespaces)
            }
            #expect(
                steps.first == "step 1/\(steps.count)" && steps.last == "step \(steps.count)/\(steps.count)", "\(steps)"
            )

            let log = (await cluster.log()).filter { $0.event == "started" }
            let after = try await cluster.state()
            // Every node at the target version, failover on, nothing leaderless beyond elections.
            #expect(after.nodes.allSatisfy { $0.runningVersion == "2.3.16" })
            #expect(after.clusterFailover)
            #expect(after.outages.isEmpty, "the leader was never upgraded in place")
            #expect(after.currentLeader != nil && after.currentLeader?.name != originalLeader)

            // Failover off before any follower is touched.
            let failoverCommands = log.filter { $0.command.hasPrefix("chef-backend-ctl set-cluster-failover") }
            let firstInstall = try #require(log.first { $0.command.hasPrefix("dpkg -i") })
            #expect(failoverCommands.first?.command == "chef-backend-ctl set-cluster-failover off")
            #expect(failoverCommands.first!.time < firstInstall.time)

            // Never a second node disrupted before the first has fully rejoined.
            var spans: [(node: String, start: Date, end: Date)] = []
            var open: [String: Date] = [:]
            for transition in after.transitions where !transition.to.hasPrefix("leader:") {
                if transition.from == "synced" { open[transition.node] = transition.time }
                if transition.to == "synced", let start = open.removeValue(forKey: transition.node) {
                    spans.append((transition.node, start, transition.time))
                }
            }
            #expect(open.isEmpty, "every disrupted node came back")
            #expect(Set(spans.map(\.node)) == ["be1", "be2", "be3"])
            let ordered = spans.sorted { $0.start < $1.start }
            for (earlier, later) in zip(ordered, ordered.dropFirst()) {
                #expect(earlier.end <= later.start, "\(later.node) was disrupted before \(earlier.node) had rejoined")
            }

            // The leader last, with --failover, while failover is on; failover on at the end.
            let leaderUpgrade = try #require(log.first { $0.command == "chef-backend-ctl upgrade --failover" })
            #expect(leaderUpgrade.node == originalLeader)
            let followerUpgrades = log.filter { $0.command == "chef-backend-ctl upgrade" }
            #expect(
                followerUpgrades.count == 2
                    && followerUpgrades.allSatisfy { $0.node != originalLeader && $0.time < leaderUpgrade.time })
            #expect(
                failoverCommands.last { $0.time < leaderUpgrade.time }?.command
                    == "chef-backend-ctl set-cluster-failover on")
            #expect(failoverCommands.last?.command == "chef-backend-ctl set-cluster-failover on")

            // Running it again finds nothing to do.
            let again = try await cluster.drover(["upgrade", "--yes"])
            #expect(again.status == 0 && again.stdout.contains("Nothing to do"))
        }
    }

    @Test func planChangesNothingAndPrintsTheSteps() async throws {
        try await SandboxCluster.with { cluster in
            let text = try await cluster.drover(["plan"])
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("Discovered: leader be1; followers be2, be3"))
            #expect(plannedActions(text.stdout).contains("be2: chef-backend-ctl upgrade"))
            #expect(plannedActions(text.stdout).contains("be1: chef-backend-ctl upgrade --failover"))
            // What cannot be read is information, never a check that passed.
            #expect(text.stdout.contains("  [info] cluster-failover: not evaluated: "), "\(text.stdout)")
            #expect(!text.stdout.contains("[ok] cluster-failover"))
            let json = try await cluster.drover(["plan", "--format", "json"])
            #expect(json.status == 0)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            for key in ["playbook", "cluster", "discovered", "preflight", "steps"] {
                #expect(object[key] != nil, "plan has \(key)")
            }
            let discovered = try #require(object["discovered"] as? [String: Any])
            #expect(discovered["leader"] as? String == "be1")
            #expect(discovered["followers"] as? [String] == ["be2", "be3"])
            #expect((discovered["versions"] as? [String: String])?["be3"] == "2.3.15")
            for check in try #require(object["preflight"] as? [[String: Any]]) {
                #expect(
                    check["check"] is String && check["ok"] is Bool && check["detail"] is String
                        && check.keys.contains("node"))
                #expect((check["information"] as? Bool) == (check["check"] as? String == "cluster-failover"))
            }
            let steps = try #require(object["steps"] as? [[String: Any]])
            #expect(steps.count > 10)
            for step in steps {
                #expect(step["index"] is Int && step["action"] is String)
                #expect(step.keys.contains("node") && step.keys.contains("command") && step.keys.contains("waits_for"))
            }
            #expect(
                (await cluster.log()).filter { $0.event == "started" && $0.isMutating }.map(\.command) == [],
                "plan ran only read-only commands")
            #expect(try await cluster.state().nodes.allSatisfy { $0.runningVersion == "2.3.15" })
            let offline = try await Processes.offPool {
                try DroverBinary.runBlocking(["plan", "--offline", "--inventory", cluster.inventoryPath])
            }
            #expect(offline.status == 0 && offline.stdout.contains("<leader>"))
        }
    }

    @Test func jsonEventStreamFollowsTheSchema() async throws {
        // Rejoin waits of 30 s: once, with the whole suite running, one of 8 s ran out.
        try await SandboxCluster.with(rejoin: "30s") { cluster in
            let output = try await cluster.drover(["upgrade", "--yes", "--json"])
            #expect(
                output.status == 0,
                "\(output.stderr)\n\(output.stdout.split(separator: "\n").suffix(6).joined(separator: "\n"))")
            let formatter = ISO8601DateFormatter.withFraction
            let required: [String: [String]] = [
                "run_started": ["run_id", "playbook", "cluster"], "step_started": ["index", "step", "node"],
                "command_finished": ["node", "command", "exit_status", "duration_s"],
                "wait_progress": ["node", "predicate", "pending"],
                "wait_finished": ["node", "predicate", "ok", "duration_s"],
                "step_finished": ["index", "step", "outcome", "duration_s"],
                "run_finished": ["outcome", "exit_code"], "check_finished": ["check", "subject", "ok", "detail"],
                "confirmation_requested": ["node", "message"],
                "manual_step_requested": ["node", "instruction", "assumed_done"],
                "backup_written": ["node", "path", "bytes"],
            ]
            let lines = output.stdout.split(separator: "\n")
            var seen: Set<String> = []
            for line in lines {
                let event = try #require(
                    try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
                let name = try #require(event["event"] as? String)
                #expect((event["time"] as? String).flatMap(formatter.date) != nil, "RFC 3339 time in \(line)")
                let fields = try #require(required[name], "undocumented event \(name)")
                for field in fields { #expect(event[field] != nil, "\(name) has \(field)") }
                seen.insert(name)
            }
            #expect(
                seen.isSuperset(of: [
                    "run_started", "step_started", "command_finished", "wait_finished", "step_finished", "run_finished",
                ]))
            let last = try #require(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
            #expect(
                last["event"] as? String == "run_finished" && last["outcome"] as? String == "succeeded"
                    && last["exit_code"] as? Int == 0)
        }
    }

    @Test(
        "pre-flight refuses an unready cluster and changes nothing",
        arguments: [
            ("be2", "partially-synced", "unsynced-sentinel"), ("be3", "service-down:elasticsearch", "services"),
            ("be2", "disk-full", "disk"), ("be3", "unreachable", "reachable"),
        ])
    func preflightRefusal(node: String, fault: String, check: String) async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode(node, fault)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 2, "\(output.stdout)\n\(output.stderr)")
            #expect(output.stderr.contains("pre-flight failed: \(check)"))
            #expect(output.stderr.contains(node))
            #expect(output.stderr.contains("nothing was changed"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty)
            let plan = try await cluster.drover(["plan"])
            #expect(plan.status == 2 && plan.stdout.contains("[FAIL] \(check)"))
        }
    }

    @Test func missingPackageIsRefused() async throws {
        try await SandboxCluster.with { cluster in
            try FileManager.default.removeItem(
                atPath: cluster.sandbox.directory + "/nodes/be3/var/tmp/chef-backend_2.3.16-1_amd64.deb")
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 2)
            #expect(output.stderr.contains("pre-flight failed: package on be3"))
        }
    }

    @Test("a follower that fails stops the run before the third node", arguments: ["upgrade-fails", "never-syncs"])
    func failingFollower(fault: String) async throws {
        try await SandboxCluster.with(rejoin: "2s") { cluster in
            try await cluster.breakNode("be2", fault)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 1, "\(output.stdout)\n\(output.stderr)")
            #expect(output.stdout.contains("FAILED at step upgrade-follower on be2"))
            #expect(
                output.stdout.contains("!! cluster failover: OFF"),
                "the summary says prominently that failover stays off")
            #expect(
                output.stdout.contains("       drover run set-failover --set state=on --inventory"),
                "and how to turn it back on, through drover")
            let touched = (await cluster.log()).filter { $0.event == "started" && $0.isMutating }
            #expect(!touched.contains { $0.node == "be3" }, "the third node is never touched")
            #expect(!touched.contains { $0.node == "be1" && $0.command != "chef-backend-ctl set-cluster-failover off" })
            #expect(try await cluster.state().node("be3")?.runningVersion == "2.3.15")
        }
    }

    @Test func statusAndExec() async throws {
        try await SandboxCluster.with { cluster in
            let status = try await cluster.drover(["status"])
            #expect(status.status == 0)
            #expect(
                status.stdout.contains("be1 (") && status.stdout.contains("leader, version 2.3.15")
                    && status.stdout.contains("Healthy."))
            let json = try await cluster.drover(["status", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["leader"] as? String == "be1" && (object["nodes"] as? [Any])?.count == 3)

            let exec = try await cluster.drover(["exec", "--", "chef-backend-ctl", "status", "leaderl"])
            #expect(exec.status == 0)
            for node in ["be1", "be2", "be3"] { #expect(exec.stdout.contains("\(node)| leaderl")) }
            let one = try await cluster.drover(["exec", "--node", "be3", "--", "test -e /var/tmp/nothing"])
            #expect(one.status == 1 && one.stderr.contains("be3| exit status 1"))
            let unknown = try await cluster.drover(["exec", "--node", "be7", "--", "true"])
            #expect(unknown.status == 64 && unknown.stderr.contains("unknown node be7"))
        }
    }
}

@Suite("drover refuses bad input before contacting anything")
struct InputRefusalTests {
    @Test func invalidInventoryExits64WithFileLineAndKey() async throws {
        let path = try temporaryDirectory("inv") + "/bad.yml"
        try "cluster: c\nbackends:\n  - name: be1\n    host: 127.255.255.254\n    colour: blue\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        for arguments in [["plan"], ["upgrade", "--yes"], ["status"], ["exec", "--", "true"]] {
            let output = try await DroverBinary.run([arguments[0], "--inventory", path] + arguments.dropFirst())
            #expect(output.status == 64, "\(arguments)")
            #expect(output.stderr.contains("\(path):5: backends[0].colour: unknown key"), "\(output.stderr)")
        }
    }

    @Test func upgradeWithoutYesAndWithoutTerminalExits64() async throws {
        let path = try temporaryDirectory("inv") + "/inv.yml"
        try "cluster: c\nbackends:\n  - name: be1\n    host: 127.255.255.254\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let output = try await DroverBinary.run(["upgrade", "--inventory", path])
        #expect(output.status == 64)
        #expect(output.stderr.contains("--yes"))
    }

    @Test func playbooksAreListed() async throws {
        let output = try await DroverBinary.run(["playbooks"])
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(
            lines.first?.split(separator: " ", omittingEmptySubsequences: true) == [
                "PLAYBOOK", "SOURCE", "TOPOLOGY", "DESCRIPTION",
            ])
        let names = lines.dropFirst().map { $0.split(separator: " ").first.map(String.init) ?? "" }
        let expected: [String] = [
            "discard-node-data", "drbd-restart", "graceful-transition", "promote-node", "promote-secondary",
            "quorum-loss-recovery", "rebuild-partner", "reinstate-deposed-leader", "replace-failed-node", "resync-node",
            "set-failover", "set-node-failover", "upgrade", "upgrade-downtime-1-to-2", "upgrade-downtime-reindex",
            "upgrade-frontends",
        ]
        #expect(names == expected)
        let pair = try await DroverBinary.run(["playbooks", "--topology", "drbd-pair"])
        let pairNames: [String] = pair.stdout.split(separator: "\n").dropFirst().map {
            String($0.split(separator: " ").first ?? "")
        }
        #expect(
            pairNames == [
                "discard-node-data", "drbd-restart", "graceful-transition", "promote-secondary", "rebuild-partner",
            ])
        #expect(
            pair.stdout.split(separator: "\n").dropFirst().allSatisfy { $0.contains(" built-in  drbd-pair ") },
            "\(pair.stdout)")
    }

    @Test func invalidPlaybookIsRefusedWithFileAndLine() async throws {
        let path = try temporaryDirectory("pb") + "/bad.yml"
        try "name: bad\ndescription: d\nsteps:\n  - name: a\n    target: leader\n    run: echo {{nope}}\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let inventory = try temporaryDirectory("inv") + "/inv.yml"
        try "cluster: c\nbackends:\n  - name: be1\n    host: 127.255.255.254\n".write(
            toFile: inventory, atomically: true, encoding: .utf8)
        let output = try await DroverBinary.run(["plan", path, "--offline", "--inventory", inventory])
        #expect(output.status == 64)
        #expect(output.stderr.contains("\(path):6: steps[0].run: unknown placeholder {{nope}}"), "\(output.stderr)")
    }
}

@Suite("pre-flight and verification details", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct VerificationDetailTests {
    @Test func changedHostKeyRefusesBeforeAnyChange() async throws {
        try await SandboxCluster.with { cluster in
            // known_hosts records be1's address with be2's keys.
            let text = try String(contentsOfFile: cluster.sandbox.knownHostsPath, encoding: .utf8)
            let lines = text.split(separator: "\n").map(String.init)
            let be1 = try #require(cluster.sandbox.record()?.nodes[0].address)
            let be2 = try #require(cluster.sandbox.record()?.nodes[1].address)
            let forged = lines.filter { $0.hasPrefix(be2 + " ") }.map {
                $0.replacingOccurrences(of: be2 + " ", with: be1 + " ")
            }
            let rest = lines.filter { !$0.hasPrefix(be1 + " ") }
            try (rest + forged).joined(separator: "\n").appending("\n").write(
                toFile: cluster.sandbox.knownHostsPath, atomically: true, encoding: .utf8)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 2)
            #expect(output.stderr.contains("HOST KEY CHANGED") || output.stdout.contains("HOST KEY CHANGED"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty)
            #expect(
                !(await cluster.log()).contains { $0.node == "be1" }, "nothing ran on the host whose key did not match")
        }
    }

    @Test func packageChecksumMismatchIsRefused() async throws {
        try await SandboxCluster.with { cluster in
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            inventory = inventory.replacingOccurrences(
                of: "  version: 2.3.16\n", with: "  version: 2.3.16\n  sha256: \(String(repeating: "ab", count: 32))\n")
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 2)
            #expect(output.stderr.contains("differs from package.sha256"))
        }
    }

    @Test(
        "frontends are checked after the upgrade",
        arguments: [
            (
                200,
                #"{"status":"pong","upstreams":{"chef_sql":"pong","chef_elasticsearch":"pong","oc_chef_authz":"pong"}}"#,
                0, "HTTP 200, status pong"
            ),
            (
                500,
                #"{"status":"fail","upstreams":{"chef_sql":"pong","chef_elasticsearch":"fail","oc_chef_authz":"pong"}}"#,
                1, "failing upstreams: chef_elasticsearch"
            ),
        ])
    func frontends(status: Int, body: String, exit: Int32, expected: String) async throws {
        let stub = try HTTPStub(status: status, body: body)
        defer { stub.stop() }
        try await SandboxCluster.with { cluster in
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            inventory += "frontends:\n  - name: fe1\n    status_url: \(stub.url)\n"
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == exit, "\(output.stdout)")
            #expect(output.stdout.contains(expected))
        }
    }
}

@Suite("more pre-flight refusals", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct MorePreflightTests {
    @Test func inventoryMustListExactlyTheClustersNodes() async throws {
        try await SandboxCluster.with { cluster in
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            let be3 = try #require(cluster.sandbox.record()?.nodes[2].address)
            inventory = inventory.replacingOccurrences(of: "  - name: be3\n    host: \(be3)\n", with: "")
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 2)
            #expect(
                output.stderr.contains("pre-flight failed: membership")
                    && output.stderr.contains("not in the inventory: be3"))
        }
    }

    @Test func noLeaderIsRefused() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be1", "partition")
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 2)
            #expect(output.stderr.contains("pre-flight failed: roles: 0 leader"))
        }
    }

    @Test func downgradeIsRefused() async throws {
        try await SandboxCluster.with { cluster in
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            inventory = inventory.replacingOccurrences(of: "  version: 2.3.16\n", with: "  version: 2.3.14\n")
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            let output = try await cluster.drover(["upgrade", "--yes"])
            #expect(output.status == 2)
            #expect(
                output.stderr.contains("pre-flight failed: version on be1")
                    && output.stderr.contains("does not downgrade"))
        }
    }
}
