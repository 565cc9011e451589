import DroverSSH
import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// The legacy DRBD/keepalived pair, end to end through the built drover against a two-node sandbox.
@Suite("the DRBD pair: status, diagnose and its runbooks", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct DRBDPairTests {
    static func with<T>(_ body: (SandboxCluster) async throws -> T) async throws -> T {
        try await SandboxCluster.with(topology: "drbd-pair", body)
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not one JSON object: \(text)")
    }

    /// Commands that changed something on the nodes (the simulator's log), after `since`.
    static func mutating(_ cluster: SandboxCluster, since: Date = .distantPast) async -> [String] {
        await cluster.log().filter { $0.event == "started" && $0.isMutating && $0.time >= since }.map {
            "\($0.node): \($0.command)"
        }
    }

    /// The invariants the engine guarantees held throughout: the simulator records every breach.
    static func expectInvariants(_ cluster: SandboxCluster, forced: [String] = []) async throws {
        let pair = try await cluster.pairState()
        #expect(pair.violations.isEmpty, "\(pair.violations)")
        #expect(pair.forcedPromotions == forced)
        #expect(!(pair.nodes.allSatisfy { $0.role == "Primary" }), "two Primaries")
    }

    @Test func aHealthyPairIsReadOnlyAndShowsEveryFact() async throws {
        try await Self.with { cluster in
            let text = try await cluster.drover(["status"])
            #expect(text.status == 0, "\(text.stdout)\(text.stderr)")
            #expect(text.stdout.contains("primary be1, VIP on be1"))
            #expect(
                text.stdout.contains("be1 (")
                    && text.stdout.contains(
                        "DRBD Primary, peer Secondary; Connected; disk UpToDate, peer disk UpToDate; oos 0 KiB")
            )
            #expect(text.stdout.contains("keepalived master; VIP held; ha-status passed"))
            #expect(text.stdout.contains("keepalived backup; VIP not held; ha-status passed"))
            #expect(text.stdout.contains("Situation: healthy: be1 is Primary and master"))
            let status = try Self.json(try await cluster.drover(["status", "--json"]).stdout)
            #expect(
                status["situation"] as? String == "healthy" && status["primary"] as? String == "be1"
                    && status["vip_holder"] as? String == "be1")
            let nodes = try #require(status["nodes"] as? [[String: Any]])
            let drbd = try #require(nodes.first?["drbd"] as? [String: Any])
            #expect(
                drbd["role"] as? String == "Primary" && drbd["peer_role"] as? String == "Secondary"
                    && drbd["connection"] as? String == "Connected")
            #expect(
                drbd["disk"] as? String == "UpToDate" && drbd["peer_disk"] as? String == "UpToDate"
                    && drbd["out_of_sync_kib"] as? Int == 0)
            #expect(nodes.last?["keepalived"] as? String == "backup" && nodes.last?["holds_vip"] as? Bool == false)
            #expect((nodes.last?["ha_status"] as? [String: Any])?["passed"] as? Bool == true)
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(
                diagnosis.status == 0 && diagnosis.stdout.hasPrefix("Healthy: be1 is Primary and master"),
                "\(diagnosis.stdout)")
            let plan = try await cluster.drover(["plan", "graceful-transition"])
            #expect(
                plan.status == 0 && plannedActions(plan.stdout).contains("be1: chef-server-ctl stop keepalived"),
                "\(plan.stdout)")
            let commands = await cluster.log().filter { $0.event == "started" }.map(\.command)
            #expect(
                Set(commands.map { $0.split(separator: " ").prefix(2).joined(separator: " ") })
                    .isSubset(of: [
                        "cat /proc/drbd", "drbdadm role", "chef-server-ctl ha-status", "uname -n",
                        "cat /var/opt/opscode/drover.lock/owner",
                    ]), "\(Set(commands))")
            #expect(await Self.mutating(cluster).isEmpty)
        }
    }

    struct Scenario: Sendable, CustomTestStringConvertible {
        var node: String
        var fault: String
        var values: [String] = []
        var situation: String
        var says: [String]
        var exit: Int32 = 1
        var testDescription: String { "\(fault) on \(node)" }
    }

    static let scenarios: [Scenario] = [
        Scenario(
            node: "be2", fault: "drbd-secondary-down", situation: "secondary-down",
            says: [
                "the primary be1 keeps serving", "drover run drbd-restart --inventory INVENTORY --set node=be2",
                "stays DUnknown",
            ]),
        Scenario(
            node: "be1", fault: "drbd-primary-down", situation: "primary-down",
            says: [
                "be2 is Secondary with all the data",
                "drover run promote-secondary --inventory INVENTORY --set node=be2",
            ]),
        Scenario(
            node: "be1", fault: "drbd-primary-lost-unsynced", situation: "primary-lost-unsynced",
            says: [
                "DATA LOSS", "drover run rebuild-partner --inventory INVENTORY --set survivor=be2 --set new=be1",
                "Never promote be2 plainly",
            ]),
        Scenario(
            node: "be1", fault: "drbd-both-secondary", values: ["361540", "0"], situation: "both-secondary",
            says: ["drover run promote-secondary --inventory INVENTORY --set node=be2", "be1 oos 361540, be2 oos 0"]),
        Scenario(
            node: "be1", fault: "drbd-split-brain", situation: "split-brain",
            says: ["both nodes are DRBD Primary", "touch nothing"]),
        Scenario(
            node: "be2", fault: "drbd-resyncing", situation: "resyncing",
            says: [
                "be2 is SyncTarget", "% done, finishing in 0:",
                "then check again:\n      drover diagnose --inventory INVENTORY",
            ]),
        Scenario(
            node: "be1", fault: "keepalived-transition", situation: "transition-in-progress",
            says: [
                "requested backup, current master",
                "Wait and check again (a failover takes up to the inventory's timeouts.transition, ",
                "):\n      drover diagnose --inventory INVENTORY\n",
            ]),
        Scenario(
            node: "be2", fault: "services-misplaced", situation: "services-misplaced",
            says: [
                "nginx runs on be2, which is not master", "opscode-erchef runs on be2",
                "  Run:\n      drover exec --inventory INVENTORY --node be2 -- chef-server-ctl stop nginx && drover exec --inventory INVENTORY --node be2 -- chef-server-ctl stop opscode-erchef",
            ]),
        // What real releases print (issue 21): a secondary not reconfigured yet; Chef Server 12.9 and later.
        Scenario(
            node: "be2", fault: "not-reconfigured", situation: "not-reconfigured",
            says: [
                "be2 has not completed a reconfigure: ha-status cannot check it",
                "[ERROR] cannot check HA status if you haven't completed a reconfigure",
                "  Run:\n      drover exec --inventory INVENTORY --node be2 -- chef-server-ctl reconfigure",
            ]),
        Scenario(
            node: "be1", fault: "chef-server-12.9", situation: "not-a-keepalived-pair",
            says: [
                "be1, be2 are not configured as a keepalived pair: ha-status says keepalived HA services are not enabled",
                "set topology: chef-backend in the inventory",
            ]),
    ]

    @Test("diagnose names the situation from live nodes", arguments: scenarios)
    func situation(_ scenario: Scenario) async throws {
        try await Self.with { cluster in
            try await cluster.sandbox.breakNode(scenario.node, fault: scenario.fault, values: scenario.values)
            let started = Date()
            let text = try await cluster.drover(["diagnose"])
            #expect(text.status == scenario.exit, "\(text.stdout)\(text.stderr)")
            #expect(
                text.stdout.hasPrefix("Situation: \(scenario.situation): "),
                "the identifier in the text:\n\(text.stdout)")
            for fragment in scenario.says {
                let expected = fragment.replacingOccurrences(of: "INVENTORY", with: cluster.inventoryPath)
                #expect(text.stdout.contains(expected), "\(expected) not in:\n\(text.stdout)")
            }
            let json = try Self.json(try await cluster.drover(["diagnose", "--json"]).stdout)
            #expect(json["situation"] as? String == scenario.situation && json["healthy"] as? Bool == false)
            let status = try await cluster.drover(["status", "--json"])
            #expect(try Self.json(status.stdout)["situation"] as? String == scenario.situation)
            #expect(await Self.mutating(cluster, since: started).isEmpty, "diagnose and status change nothing")
        }
    }

    @Test(
        "releases whose ha-status differs: no DRBD lines on Chef Server 12, opscode-chef-mover on 12.0.x",
        arguments: ["chef-server-12", "chef-server-12.0"])
    func releasesWhoseHAStatusDiffers(_ release: String) async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be1", release)
            // Status and diagnose read DRBD from /proc/drbd and drbdadm, not from ha-status's lines.
            let status = try await cluster.drover(["status"])
            #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
            #expect(status.stdout.contains("keepalived master; VIP held; ha-status passed"), "\(status.stdout)")
            #expect(status.stdout.contains("Situation: healthy: be1 is Primary and master"))
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.status == 0 && diagnosis.stdout.hasPrefix("Healthy: "), "\(diagnosis.stdout)")
            if release == "chef-server-12.0" {
                // A healthy master's harmless error is said to be harmless, never a reason.
                #expect(
                    status.stdout.contains(
                        "[ERROR] opscode-chef-mover is not running. (known and harmless: opscode-chef-mover runs only during upgrades"
                    ), "\(status.stdout)")
                #expect(
                    diagnosis.stdout.contains(
                        "be1: ha-status reports `opscode-chef-mover is not running.`: known and harmless"),
                    "\(diagnosis.stdout)")
                let json = try Self.json(try await cluster.drover(["status", "--json"]).stdout)
                let nodes = try #require(json["nodes"] as? [[String: Any]])
                let ha = try #require(nodes.first?["ha_status"] as? [String: Any])
                #expect(ha["passed"] as? Bool == true && (ha["errors"] as? [String])?.isEmpty == true)
                #expect(ha["harmless_errors"] as? [String] == ["opscode-chef-mover is not running."])
            }
            // graceful-transition does not refuse for it: the pair fails over and back.
            let run = try await cluster.drover(["run", "graceful-transition", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            try await Self.expectInvariants(cluster)
        }
    }

    @Test func neitherNodeReadableIsExitTwo() async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be2", "drbd-secondary-down")
            try await cluster.breakNode("be1", "drbd-primary-down")
            let text = try await cluster.drover(["diagnose"])
            #expect(text.status == 2 && text.stdout.hasPrefix("Cannot tell"), "\(text.stdout)\(text.stderr)")
            #expect(
                try Self.json(try await cluster.drover(["diagnose", "--json"]).stdout)["readable"] as? Bool == false)
        }
    }

    @Test func gracefulTransitionMovesThePrimaryAndBack() async throws {
        try await Self.with { cluster in
            // The plan names the node each step will run on: keepalived starts again on the old primary.
            let plan = try await cluster.drover(["plan", "graceful-transition"])
            #expect(
                plannedActions(plan.stdout).contains("stop-keepalived be1: chef-server-ctl stop keepalived")
                    && plannedActions(plan.stdout).contains("stand-by be1: chef-server-ctl start keepalived"),
                "\(plan.stdout)")
            let run = try await cluster.drover([
                "run", "graceful-transition", "--yes", "--junit", cluster.scratch("junit.xml"),
            ])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(
                run.stdout.contains("be1$ chef-server-ctl stop keepalived")
                    && run.stdout.contains("be1$ chef-server-ctl start keepalived"))
            var pair = try await cluster.pairState()
            #expect(
                pair.node("be2")?.role == "Primary" && pair.node("be2")?.vip == true
                    && pair.node("be1")?.role == "Secondary")
            #expect(pair.node("be1")?.keepalived == true)
            #expect(try await cluster.drover(["diagnose"]).status == 0)
            // And back, as the next maintenance window would.
            let back = try await cluster.drover(["run", "graceful-transition", "--yes", "--json"])
            #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
            #expect(back.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix("{") }, "--json prints only events")
            pair = try await cluster.pairState()
            #expect(pair.node("be1")?.role == "Primary" && pair.node("be1")?.vip == true)
            let runs = try await DroverBinary.run(["runs"], environment: cluster.environment)
            let rows = runs.stdout.split(separator: "\n").map {
                $0.split(separator: " ", omittingEmptySubsequences: true)
            }
            #expect(
                rows.first == ["RUN", "ID", "CLUSTER", "PLAYBOOK", "STATUS", "STARTED", "DURATION"], "\(runs.stdout)")
            #expect(rows.filter { $0.count > 3 && $0[2] == "graceful-transition" && $0[3] == "succeeded" }.count == 2)
            #expect(FileManager.default.fileExists(atPath: cluster.scratch("junit.xml")))
            try await Self.expectInvariants(cluster)
        }
    }

    @Test func gracefulTransitionRefusesAnUnhealthyPair() async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be2", "drbd-resyncing")
            let started = Date()
            let run = try await cluster.drover(["run", "graceful-transition", "--yes"])
            #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
            #expect(
                run.stderr.contains("pre-flight failed: pair: resyncing") && run.stderr.contains("nothing was changed"))
            #expect(await Self.mutating(cluster, since: started).isEmpty)
        }
    }

    @Test func thePrimaryIsDownAndTheSecondaryIsPromoted() async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be1", "drbd-primary-down")
            let run = try await cluster.drover(["run", "promote-secondary", "--set", "node=be2", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(
                run.stdout.contains("be2$ drbdadm primary pc0")
                    && run.stdout.contains("be2$ chef-server-ctl master-recover"))
            let pair = try await cluster.pairState()
            #expect(
                pair.node("be2")?.role == "Primary" && pair.node("be2")?.current == "master"
                    && pair.node("be2")?.vip == true)
            let status = try await cluster.drover(["status"])
            #expect(status.status == 2 && status.stdout.contains("be1") && status.stdout.contains("UNREACHABLE"))
            #expect(status.stdout.contains("Situation: secondary-down"), "\(status.stdout)")
            try await Self.expectInvariants(cluster)
            // The old primary comes back, Secondary, and resyncs from be2 once restarted.
            try await cluster.sandbox.heal("be1")
            #expect(try await cluster.drover(["run", "drbd-restart", "--set", "node=be1", "--yes"]).status == 0)
            try await Self.expectInvariants(cluster)
        }
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var label: String
        var fault: (node: String, name: String, values: [String])?
        var arguments: [String]
        var says: String
        var testDescription: String { label }
    }

    static let refusals: [Refusal] = [
        Refusal(
            label: "promote an Inconsistent disk", fault: ("be1", "drbd-primary-lost-unsynced", []),
            arguments: ["run", "promote-secondary", "--set", "node=be2"],
            says: "precondition disk-uptodate does not hold (be2's disk is Inconsistent)"),
        Refusal(
            label: "promote while the peer is Primary", fault: nil,
            arguments: ["run", "promote-secondary", "--set", "node=be2"],
            says: "precondition peer-not-primary does not hold"),
        Refusal(
            label: "restart DRBD on the primary", fault: nil,
            arguments: ["run", "drbd-restart", "--set", "node=be1"],
            says: "precondition not-primary does not hold (be1 is Primary)"),
        Refusal(
            label: "discard the lower oos", fault: ("be1", "drbd-both-secondary", ["5000", "100"]),
            arguments: ["run", "discard-node-data", "--set", "node=be2"],
            says: "be2 has the lower oos (100 KiB against 5000 on be1)"),
        Refusal(
            label: "discard the only UpToDate disk", fault: ("be2", "drbd-resyncing", []),
            arguments: ["run", "discard-node-data", "--set", "node=be1"], says: "be1 is Primary"),
        // Aimed at a node that cannot be reached: refused at pre-flight, not announced and left to time out.
        Refusal(
            label: "restart DRBD on an unreachable node", fault: ("be2", "drbd-secondary-down", []),
            arguments: ["run", "drbd-restart", "--set", "node=be2"],
            says: "[FAIL] target-reachable be2: step 1 (restart-drbd) acts on be2, which cannot be reached"),
        Refusal(
            label: "discard a node whose peer is down", fault: ("be1", "drbd-primary-down", []),
            arguments: ["run", "discard-node-data", "--set", "node=be2"],
            says: "be1's DRBD state cannot be read, so be2 may hold the only copy"),
    ]

    @Test("refusals change nothing (exit 2)", arguments: refusals)
    func refusal(_ refusal: Refusal) async throws {
        try await Self.with { cluster in
            if let fault = refusal.fault {
                try await cluster.sandbox.breakNode(fault.node, fault: fault.name, values: fault.values)
            }
            let started = Date()
            let run = try await cluster.drover(refusal.arguments + ["--yes"])
            #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains(refusal.says), "\(refusal.says) not in:\n\(run.stdout)")
            #expect(await Self.mutating(cluster, since: started).isEmpty)
            try await Self.expectInvariants(cluster)
        }
    }

    /// Two inventory nodes that answer as one machine (here a clone: be2 took be1's name; as well one machine
    /// listed by two of its addresses): read so, it would look like two Primaries and invite discarding "the
    /// other" node's data. Each node's own name (`uname -n`) tells: diagnose and status name the inventory
    /// error, every runbook refuses at pre-flight, nothing changes.
    @Test func twoNodesThatAnswerAsOneMachineAreAnInventoryErrorNotASplitBrain() async throws {
        try await Self.with { cluster in
            let renamed = try await cluster.drover(["exec", "--node", "be2", "--", "hostname", "be1"])
            #expect(renamed.status == 0, "\(renamed.stdout)\(renamed.stderr)")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.status == 1, "\(diagnosis.stdout)\(diagnosis.stderr)")
            #expect(
                diagnosis.stdout.hasPrefix(
                    "Situation: inventory-mismatch: two inventory nodes answer as one machine: be2"),
                "\(diagnosis.stdout)")
            #expect(
                diagnosis.stdout.contains("leads to the machine named be1 (uname -n), as be1's host"),
                "\(diagnosis.stdout)")
            #expect(!diagnosis.stdout.contains("drover run "), "no runbook is offered: \(diagnosis.stdout)")
            let status = try await cluster.drover(["status"])
            #expect(status.stdout.contains("inventory-mismatch"), "\(status.stdout)")
            let started = Date()
            for arguments in [["run", "graceful-transition"], ["run", "discard-node-data", "--set", "node=be2"]] {
                let run = try await cluster.drover(arguments + ["--yes"])
                #expect(run.status == 2, "\(arguments): \(run.stdout)\(run.stderr)")
                #expect(run.stdout.contains("[FAIL] identity be2:"), "\(run.stdout)")
            }
            #expect(await Self.mutating(cluster, since: started).isEmpty)
            try await Self.expectInvariants(cluster)
        }
    }

    @Test func aSecondaryStuckAtDUnknownIsRestartedAndResyncs() async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be2", "drbd-secondary-down")
            try await cluster.sandbox.heal("be2")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(
                diagnosis.stdout.contains("the secondary be2 is up but DRBD is not connected"), "\(diagnosis.stdout)")
            // A resync long enough to be under way when the wait ends, however busy the machine.
            let store = cluster.sandbox.pairStore
            try await Processes.offPool { try store.update { pair, _ in pair.syncSeconds = 2000 } }
            let run = try await cluster.drover(["run", "drbd-restart", "--set", "node=be2", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains("be2$ drbdadm down pc0") && run.stdout.contains("be2$ drbdadm up pc0"))
            #expect(
                run.stdout.contains("connected holds after") && run.stdout.contains("resync "),
                "the resync's progress is reported: \(run.stdout)")
            try await Self.expectInvariants(cluster)
        }
    }

    @Test func aLostUnsyncedPrimaryIsRebuilt() async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be1", "drbd-primary-lost-unsynced")
            // The new host in be1's place, built and with DRBD started (what the manual step asks for).
            try await cluster.sandbox.heal("be1", fresh: true)
            let plan = try await cluster.drover([
                "plan", "rebuild-partner", "--set", "survivor=be2", "--set", "new=be1",
            ])
            #expect(plannedActions(plan.stdout).contains("be2: drbdadm primary --force pc0"), "\(plan.stdout)")
            let refused = try await cluster.drover([
                "run", "rebuild-partner", "--set", "survivor=be2", "--set", "new=be1", "--yes",
            ])
            #expect(refused.status == 64 && refused.stderr.contains("manual steps"), "\(refused.stderr)")
            let run = try await cluster.drover([
                "run", "rebuild-partner", "--set", "survivor=be2", "--set", "new=be1", "--yes", "--assume-done",
            ])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains("DATA LOSS: forcing be2 to DRBD primary"))
            let commands = await Self.mutating(cluster)
            #expect(
                commands == [
                    "be2: chef-server-ctl stop", "be2: drbdadm primary --force pc0", "be2: drbdadm connect pc0",
                    "be2: chef-server-ctl master-recover",
                ], "\(commands)")
            let pair = try await cluster.pairState()
            #expect(
                pair.node("be2")?.role == "Primary" && pair.node("be2")?.current == "master"
                    && pair.node("be1")?.disk == "UpToDate")
            try await Self.expectInvariants(cluster, forced: ["be2"])
            #expect(try await cluster.drover(["diagnose"]).status == 0, "be2 serves, be1 is its in-sync secondary")
        }
    }

    @Test func bothSecondaryIsResolvedByPromotingOrDiscarding() async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be1", "drbd-both-secondary", "5000", "100")
            let discard = try await cluster.drover(["run", "discard-node-data", "--set", "node=be1", "--yes"])
            #expect(discard.status == 0, "\(discard.stdout)\(discard.stderr)")
            let wiped = await Self.mutating(cluster)
            #expect(
                wiped == [
                    "be1: drbdadm down pc0", "be1: drbdadm wipe-md pc0", "be1: drbdadm create-md pc0",
                    "be1: drbdadm up pc0",
                ], "\(wiped)")
            let promote = try await cluster.drover(["run", "promote-secondary", "--set", "node=be2", "--yes"])
            #expect(promote.status == 0, "\(promote.stdout)\(promote.stderr)")
            let pair = try await cluster.pairState()
            #expect(pair.node("be2")?.role == "Primary" && pair.node("be2")?.current == "master")
            try await Self.expectInvariants(cluster)
        }
    }

    /// The next command diagnose prints is pasted into a shell as it is, from an inventory in a folder whose
    /// name has a space and a quote.
    @Test(
        "the printed command runs as printed, from a path with spaces",
        arguments: [
            ("be1", "drbd-both-secondary", ["0", "0"], " --yes"), ("be2", "services-misplaced", [], ""),
        ])
    func thePrintedCommandRunsAsPrinted(node: String, fault: String, values: [String], approval: String) async throws {
        try await Self.with { cluster in
            try await cluster.sandbox.breakNode(node, fault: fault, values: values)
            let folder = cluster.scratch("my pair's inventory")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let inventory = folder + "/legacy ha.yml"
            try FileManager.default.copyItem(atPath: cluster.inventoryPath, toPath: inventory)
            let environment = try DroverBinary.environment(cluster.environment)
            let diagnosis = try await Processes.offPool {
                try Processes.run(DroverBinary.path, ["diagnose", "--inventory", inventory], environment: environment)
            }
            let lines = diagnosis.stdout.split(separator: "\n")
            let runLine = try #require(lines.firstIndex { $0 == "  Run:" }, "\(diagnosis.stdout)")
            let command = lines[runLine + 1].trimmingCharacters(in: .whitespaces)
            #expect(command.hasPrefix("drover "))
            #expect(command.contains("--inventory '"), "quoted: \(command)")
            let script = "drover() { \(ShellQuote.quote(DroverBinary.path)) \"$@\"; }; \(command)\(approval)"
            let run = try await Processes.offPool {
                try Processes.run("/bin/bash", ["-c", script], environment: environment)
            }
            #expect(run.status == 0, "\(command)\n\(run.stdout)\(run.stderr)")
            let after = try await Processes.offPool {
                try Processes.run(DroverBinary.path, ["diagnose", "--inventory", inventory], environment: environment)
            }
            #expect(after.status == 0 && after.stdout.hasPrefix("Healthy"), "\(after.stdout)")
            try await Self.expectInvariants(cluster)
        }
    }

    /// Pairs form fleets as clusters do: every pair read or run, each under its own name and lock.
    @Test func severalPairsAtOnce() async throws {
        try await SandboxFleet.with(["pair-a", "pair-b"], topology: "drbd-pair") { fleet in
            let status = try await fleet.drover(["status", "--inventories", fleet.inventories])
            #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
            #expect(
                status.stdout.contains("Pair pair-a (DRBD resource pc0)")
                    && status.stdout.contains("Pair pair-b (DRBD resource pc0)"))
            let run = try await fleet.drover([
                "run", "graceful-transition", "--inventories", fleet.inventories, "--yes",
            ])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            for name in fleet.names {
                #expect(
                    run.stdout.split(separator: "\n").contains {
                        $0.hasPrefix(name + " ") && $0.contains(" succeeded ")
                    }, "\(run.stdout)")
                let pair = try await fleet[name].pairState()
                #expect(pair.node("be2")?.role == "Primary" && pair.node("be1")?.role == "Secondary", "\(name) moved")
                try await Self.expectInvariants(fleet[name])
            }
        }
    }

    /// DRBD taken down on one node while its peer is Secondary: diagnose says drbd-down, and the restart it
    /// prints runs (a node whose resource is Unconfigured is not Primary), leaving both Secondary.
    @Test func drbdDownOnOneNodeIsRestarted() async throws {
        try await Self.with { cluster in
            try await cluster.breakNode("be1", "drbd-both-secondary", "0", "0")
            let down = try await cluster.drover(["exec", "--node", "be1", "--", "drbdadm", "down", "pc0"])
            #expect(down.status == 0, "\(down.stdout)\(down.stderr)")
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.stdout.hasPrefix("Situation: drbd-down: "), "\(diagnosis.stdout)")
            #expect(
                diagnosis.stdout.contains(
                    "  Run:\n      drover run drbd-restart --inventory \(cluster.inventoryPath) --set node=be1"),
                "\(diagnosis.stdout)")
            let restart = try await cluster.drover(["run", "drbd-restart", "--set", "node=be1", "--yes"])
            #expect(restart.status == 0, "\(restart.stdout)\(restart.stderr)")
            let after = try await cluster.drover(["diagnose", "--json"])
            #expect(try Self.json(after.stdout)["situation"] as? String == "both-secondary", "\(after.stdout)")
            try await Self.expectInvariants(cluster)
        }
    }

    @Test func aPlaybookOfTheOtherTopologyIsRefused() async throws {
        try await Self.with { cluster in
            let upgrade = try await cluster.drover(["upgrade", "--yes"])
            #expect(
                upgrade.status == 64 && upgrade.stderr.contains("upgrade is a playbook for chef-backend clusters"),
                "\(upgrade.stderr)")
            #expect(upgrade.stderr.contains("graceful-transition"))
            let chef = try await cluster.drover(["run", "graceful-transition", "--yes"], environment: [:])
            #expect(chef.status == 0, "the pair's own playbooks run: \(chef.stderr)")
        }
    }

    @Test func theNewPartnerIsBuiltWhileTheRunWaitsForIt() async throws {
        try await SandboxCluster.with(rejoin: "60s", topology: "drbd-pair") { cluster in
            try await cluster.breakNode("be1", "drbd-primary-lost-unsynced")
            let run = try cluster.start([
                "run", "rebuild-partner", "--set", "survivor=be2", "--set", "new=be1", "--yes", "--assume-done",
            ])
            #expect(
                try await cluster.waitFor("waiting for waiting-for-connection on be1", in: run.stdout),
                "the run waits for the new host")
            // The operator finishes building be1 while drover waits: it is connected to, host key verified.
            try await cluster.sandbox.heal("be1", fresh: true)
            let status = await run.child.exitStatus()
            let output = (try? String(contentsOfFile: run.stdout, encoding: .utf8)) ?? ""
            #expect(status == 0, "\(output)")
            #expect(output.contains("be1 is reachable again"))
            let pair = try await cluster.pairState()
            #expect(pair.node("be2")?.role == "Primary" && pair.node("be2")?.current == "master")
            try await Self.expectInvariants(cluster, forced: ["be2"])
        }
    }

    @Test func aSavedPlanAppliesOnlyToThePairItSaw() async throws {
        try await Self.with { cluster in
            let path = cluster.scratch("transition.plan.json")
            let plan = try await cluster.drover(["plan", "graceful-transition", "--out", path])
            #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
            let apply = try await DroverBinary.run(["apply", path], environment: cluster.environment)
            #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
            #expect(try await cluster.pairState().node("be2")?.role == "Primary")
            let stale = try await DroverBinary.run(["apply", path], environment: cluster.environment)
            #expect(stale.status == 2 && stale.stderr.contains("~ primary: be1 -> be2"), "\(stale.stderr)")
        }
    }

    @Test func anotherRunsLockRefusesThePair() async throws {
        try await Self.with { cluster in
            let lock =
                "mkdir /var/opt/opscode/drover.lock && printf 'run_id=other-run\\nuser=alice\\nhost=laptop\\n' > /var/opt/opscode/drover.lock/owner"
            #expect(try await cluster.drover(["exec", "--node", "be2", "--", lock]).status == 0)
            let status = try await cluster.drover(["status"])
            #expect(status.stdout.contains("Lock: be2 is locked by run other-run (alice@laptop"), "\(status.stdout)")
            let started = Date()
            let run = try await cluster.drover(["run", "graceful-transition", "--yes"])
            #expect(run.status == 3 && run.stderr.contains("drover unlock --inventory"), "\(run.stderr)")
            #expect(await Self.mutating(cluster, since: started).filter { !$0.contains("drover.lock") }.isEmpty)
        }
    }

    @Test func aTransitionKilledMidWayIsResumed() async throws {
        // Seconds-long failovers (scale 1), so that the run is killed while it waits.
        try await SandboxCluster.with(scale: 1, rejoin: "60s", topology: "drbd-pair") { cluster in
            // A failover long enough for the run to be seen waiting for it, however busy the machine.
            let store = cluster.sandbox.pairStore
            try await Processes.offPool { try store.update { pair, _ in pair.failoverSeconds = 12 } }
            let run = try cluster.start(["run", "graceful-transition", "--yes"])
            #expect(try await cluster.waitFor("waiting for transitioned on be1", in: run.stdout))
            kill(run.child.pid, SIGKILL)
            _ = await run.child.exitStatus()
            let other = try await cluster.drover(["run", "graceful-transition", "--yes"])
            #expect(other.status == 3, "the killed run's lock holds: \(other.stderr)")
            // The failover finishes while nobody watches: the primary role has moved when resume starts.
            let deadline = ContinuousClock.now + .seconds(60)
            while try await cluster.pairState().node("be2")?.role != "Primary" && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 0, "\(resume.stdout)\(resume.stderr)")
            #expect(resume.stderr.contains("in flight when it stopped: stop-keepalived on be1"), "\(resume.stderr)")
            let stops = await cluster.log().filter {
                $0.event == "started" && $0.command == "chef-server-ctl stop keepalived"
            }.map(\.node)
            // The step in flight is re-run on be1 only, never on the new primary; its command's record on be1
            // shows it finished, so it is not run a second time.
            #expect(stops == ["be1"], "\(stops)")
            #expect(
                resume.stdout.contains("`chef-server-ctl stop keepalived` had already finished on be1"),
                "\(resume.stdout)")
            let pair = try await cluster.pairState()
            #expect(
                pair.node("be2")?.role == "Primary" && pair.node("be2")?.vip == true
                    && pair.node("be1")?.keepalived == true)
            #expect(try await cluster.drover(["diagnose"]).status == 0)
            try await Self.expectInvariants(cluster)
        }
    }
}
