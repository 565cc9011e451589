import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Checks the invariants a finished upgrade must keep: every node at the target, failover on, no
/// outage, and never two nodes disrupted at once.
func expectUpgradedSafely(_ cluster: SandboxCluster, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let state = try await cluster.state()
    #expect(state.nodes.allSatisfy { $0.runningVersion == "2.3.16" }, sourceLocation: sourceLocation)
    #expect(state.clusterFailover, "failover on at the end", sourceLocation: sourceLocation)
    #expect(state.outages.isEmpty, sourceLocation: sourceLocation)
    #expect(
        state.currentLeader != nil && state.members.allSatisfy { $0.phase == .synced }, sourceLocation: sourceLocation)
    var spans: [(node: String, start: Date, end: Date)] = []
    var open: [String: Date] = [:]
    for transition in state.transitions where !transition.to.hasPrefix("leader:") {
        if transition.from == "synced" { open[transition.node] = transition.time }
        if transition.to == "synced", let start = open.removeValue(forKey: transition.node) {
            spans.append((transition.node, start, transition.time))
        }
    }
    let ordered = spans.sorted { $0.start < $1.start }
    for (earlier, later) in zip(ordered, ordered.dropFirst()) {
        #expect(
            earlier.end <= later.start, "\(later.node) disrupted before \(earlier.node) had rejoined",
            sourceLocation: sourceLocation)
    }
    let upgrades = (await cluster.log()).filter {
        $0.event == "started" && $0.command.hasPrefix("chef-backend-ctl upgrade")
    }
    let failoverUpgrade = upgrades.first { $0.command.hasSuffix("--failover") }
    #expect(failoverUpgrade != nil, "the leader went with --failover", sourceLocation: sourceLocation)
}

@Suite(
    "safety rails: journal, resume, lock, interrupts, transcripts", needsSandbox,
    .timeLimit(.minutes(5 * TestTime.factor)))
struct SafetyRailTests {
    @Test(
        "SIGKILL, then resume, finishes the upgrade safely",
        arguments: [
            "upgrade-follower on be2", "upgrade-follower on be3", "be3$ chef-backend-ctl upgrade",
            "upgrade-leader on be1", "unblock-failover on be1",
        ])
    func killThenResume(killPoint: String) async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s") { cluster in
            #expect(try await cluster.killRun(["upgrade", "--yes"], at: killPoint), "reached the kill point")
            // The lock stays for resume to take over; a different run is refused with exit 3.
            let other = try await cluster.drover(["upgrade", "--yes"])
            #expect(other.status == 3, "\(other.stderr)")
            #expect(other.stderr.contains("locked by run") && other.stderr.contains("drover unlock"))
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 0, "\(resume.stdout)\n\(resume.stderr)")
            #expect(resume.stderr.contains("Found run") && resume.stderr.contains("first:"))
            try await expectUpgradedSafely(cluster)
            let status = try await cluster.drover(["status"])
            #expect(!status.stdout.contains("Lock:"), "the lock is released at the end")
            let again = try await cluster.drover(["resume", "--yes"])
            #expect(again.status == 0 && again.stdout.contains("Nothing to resume"))
        }
    }

    @Test func resumeRefusesWhenAnotherNodeWasDisturbed() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "120s") { cluster in
            // be3 never finishes syncing, so the run is still in its step when it is killed, however slowly
            // this test gets to the kill on a loaded machine.
            try await cluster.breakNode("be3", "never-syncs")
            #expect(try await cluster.killRun(["upgrade", "--yes"], at: "waiting for rejoined on be3"))
            try await cluster.breakNode("be1", "partially-synced")
            let before = (await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 2, "\(resume.stderr)")
            #expect(resume.stderr.contains("undisturbed on be1"))
            #expect(
                (await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count == before,
                "nothing changed")
        }
    }

    @Test func aLockThatCannotBeCreatedSaysWhereAndWhy() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s") { cluster in
            // be3's /var/opt/chef-backend is gone (its bind mount now shows a removed directory): mkdir fails.
            let root = cluster.sandbox.directory + "/nodes/be3/var/opt/chef-backend"
            try await Processes.offPool { try FileManager.default.removeItem(atPath: root) }
            let since = Date()
            let run = try await cluster.drover(["upgrade", "--yes"])
            #expect(run.status == 2, "\(run.stdout)\n\(run.stderr)")
            #expect(
                run.stderr.contains(
                    "cannot take the cluster lock on be3: cannot create /var/opt/chef-backend/drover.lock"),
                "\(run.stderr)")
            #expect(run.stderr.contains("No such file or directory") && run.stderr.contains("nothing was changed"))
            #expect(
                !run.stderr.contains("unknown (?@?)") && !run.stderr.contains("drover unlock"), "not told it is locked")
            let changes = (await cluster.log()).filter { $0.event == "started" && $0.isMutating && $0.time >= since }
            #expect(changes.isEmpty, "\(changes.map(\.command))")
            #expect(
                !(try await cluster.drover(["status"])).stdout.contains("Lock:"), "the lock taken on be1 was released")
        }
    }

    @Test func concurrentRunIsRefusedAndStaleLockCanBeRemoved() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s") { cluster in
            let first = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("upgrade-follower on be2", in: first.stdout))
            let second = try await cluster.drover(["upgrade", "--yes"])
            #expect(second.status == 3)
            #expect(
                second.stderr.range(of: #"locked by run \S+ \(root@"#, options: .regularExpression) != nil,
                "names the holder")
            #expect(second.stderr.contains("ago"), "and the lock's age")
            kill(first.child.pid, SIGKILL)
            _ = await first.child.exitStatus()
            let runID = try #require(
                second.stderr.range(of: #"--run-id \S+"#, options: .regularExpression).map {
                    String(second.stderr[$0].dropFirst(9))
                })
            let refused = try await cluster.drover(["unlock", "--run-id", runID])
            #expect(refused.status == 64, "no confirmation without a terminal or --yes")
            let unlock = try await cluster.drover(["unlock", "--run-id", runID, "--yes"])
            #expect(unlock.status == 0 && unlock.stdout.contains("Lock removed"))
            #expect(!(try await cluster.drover(["status"])).stdout.contains("Lock:"))
        }
    }

    /// Two resumes of one stopped run, one second apart (a CI retry, a second terminal): the second is refused
    /// at once (exit 3), naming the first's pid, and the first finishes alone.
    @Test func twoResumesOfOneRunCannotBothDriveIt() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "30s", fragile: 3) { cluster in
            #expect(try await cluster.killRun(["upgrade", "--yes"], at: "be2| Upgrading: migrating"))
            let first = try cluster.start(["resume", "--yes"])
            #expect(try await cluster.waitFor("Found run", in: first.stderr), "the first resume chose the run")
            let second = try await cluster.drover(["resume", "--yes"])
            #expect(second.status == 3, "\(second.stdout)\(second.stderr)")
            #expect(
                second.stderr.contains(
                    "is still running: drover, pid \(first.child.pid), on this workstation"),
                "\(second.stderr)")
            #expect(await first.child.exitStatus() == 0)
            try await expectUpgradedSafely(cluster)
            #expect(await cluster.started("chef-backend-ctl upgrade", on: "be2") == 1, "never run twice")
        }
    }

    /// A lock whose owner file is missing (a drover cut off while it took the lock, before Drover took it in one
    /// step) is said to be one, with the command that clears it alone on its line; an empty one is taken over.
    @Test func aLockWithoutAnOwnerIsNamedAndClearedByThePrintedCommand() async throws {
        try await SandboxCluster.with { cluster in
            let lock = cluster.sandbox.directory + "/nodes/be2/var/opt/chef-backend/drover.lock"
            try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
            try "".write(toFile: lock + "/stray", atomically: true, encoding: .utf8)
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.stdout.contains("a lock without an owner is held on be2"), "\(diagnosis.stdout)")
            let refused = try await cluster.drover(["upgrade", "--yes"])
            #expect(refused.status == 3, "\(refused.stdout)\(refused.stderr)")
            #expect(refused.stderr.contains("be2 holds a lock directory without an owner"), "\(refused.stderr)")
            let command = "    drover unlock --inventory \(cluster.inventoryPath) --ownerless\n"
            #expect(refused.stderr.contains(command), "alone on its line: \(refused.stderr)")
            let cleared = try await cluster.drover(["unlock", "--ownerless"])
            #expect(cleared.status == 0 && cleared.stdout.contains("on be2"), "\(cleared.stdout)\(cleared.stderr)")
            // An owner file that names no run Drover could have written is ownerless too, and cleared the same way.
            try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
            try "run_id=$(reboot)\nuser=x\n".write(toFile: lock + "/owner", atomically: true, encoding: .utf8)
            let garbled = try await cluster.drover(["upgrade", "--yes"])
            #expect(garbled.status == 3 && garbled.stderr.contains(command), "\(garbled.stderr)")
            let clearedAgain = try await cluster.drover(["unlock", "--ownerless"])
            #expect(clearedAgain.stdout.contains("on be2"), "\(clearedAgain.stdout)\(clearedAgain.stderr)")
            #expect(!FileManager.default.fileExists(atPath: lock))
            // An empty lock directory (what a cut-off take used to leave) is taken over by the next run.
            try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
            let run = try await cluster.drover(["run", "set-failover", "--set", "state=on", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: lock), "released at the end")
        }
    }

    /// A run killed in its first moments (lock taken, no journal yet): never "finished". Its lock names a drover
    /// of this workstation that is gone, so resume and the next run say so, with the unlock that continues.
    @Test func aRunKilledBeforeItsJournalLeavesALockThatIsExplained() async throws {
        try await SandboxCluster.with { cluster in
            let gone = try Processes.spawn("/bin/true", [])
            _ = await gone.exitStatus()
            let runID = "20260101T000000Z-dead00"
            let owner =
                "run_id=\(runID)\nuser=root\nhost=\(ProcessInfo.processInfo.hostName)\nstarted=2026-01-01T00:00:00.000Z\npid=\(gone.pid)\n"
            for node in ["be1", "be2", "be3"] {
                let lock = cluster.sandbox.directory + "/nodes/\(node)/var/opt/chef-backend/drover.lock"
                try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
                try owner.write(toFile: lock + "/owner", atomically: true, encoding: .utf8)
            }
            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 2, "\(resume.stdout)\(resume.stderr)")
            #expect(!resume.stdout.contains("finished") && !resume.stderr.contains("finished"), "\(resume.stderr)")
            #expect(
                resume.stderr.contains("whose drover (pid \(gone.pid)) on this workstation is gone")
                    && resume.stderr.contains("changed nothing"), "\(resume.stderr)")
            let unlock = "    drover unlock --inventory \(cluster.inventoryPath) --run-id \(runID)\n"
            #expect(resume.stderr.contains(unlock), "\(resume.stderr)")
            let refused = try await cluster.drover(["upgrade", "--yes"])
            #expect(refused.status == 3 && refused.stderr.contains(unlock), "\(refused.stderr)")
            #expect(try await cluster.drover(["unlock", "--run-id", runID, "--yes"]).status == 0)
            #expect(try await cluster.drover(["run", "set-failover", "--set", "state=on", "--yes"]).status == 0)
        }
    }

    @Test func firstInterruptFinishesTheStepThenStops() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s") { cluster in
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("be2$ chef-backend-ctl upgrade", in: run.stdout))
            kill(run.child.pid, SIGINT)
            #expect(await run.child.exitStatus() == 130)
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            let stderr = try String(contentsOfFile: run.stderr, encoding: .utf8)
            #expect(stderr.contains("Press Ctrl-C again to abort now"))
            #expect(stdout.contains("STOPPED") && stdout.contains("drover resume"))
            // When the signal lands depends on the machine's load; what must hold: after Drover saw it, the
            // step in flight finished with its verification and no other step started.
            let notice = try #require(
                stdout.range(of: "interrupt received: stopping after the step in flight"), "\(stdout)")
            let after = stdout[notice.upperBound...]
            #expect(
                after.range(of: #"\] step \d+ \S+ on "#, options: .regularExpression) == nil,
                "no step started after the interrupt")
            let lastStep = try #require(
                stdout.range(
                    of: #"step \d+ upgrade-follower (succeeded|failed|interrupted)"#,
                    options: [.regularExpression, .backwards]))
            #expect(stdout[lastStep].hasSuffix("succeeded"), "the step in flight finished and was verified")
            let touched = Set(
                (await cluster.log()).filter { $0.isMutating && $0.command.hasPrefix("chef-backend-ctl upgrade") }.map(
                    \.node))
            let state = try await cluster.state()
            #expect(touched.allSatisfy { state.node($0)?.phase == .synced }, "every node touched is back in sync")
            #expect(!(try await cluster.drover(["status"])).stdout.contains("Lock:"), "lock released")
            let runs = try await Processes.offPool {
                try DroverBinary.runBlocking(["runs", "--state-dir", cluster.stateDirectory])
            }
            #expect(runs.stdout.contains(" interrupted "))
            #expect(try await cluster.drover(["resume", "--yes"]).status == 0)
            try await expectUpgradedSafely(cluster)
        }
    }

    @Test func secondInterruptAbortsAtOnce() async throws {
        try await SandboxCluster.with(scale: 1, rejoin: "120s") { cluster in
            // be2 never finishes syncing, so its wait lasts until both interrupts have landed, however loaded
            // the machine is.
            try await cluster.breakNode("be2", "never-syncs")
            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("waiting for rejoined on be2", in: run.stdout))
            let pid = run.child.pid
            // The second signal goes only once Drover has seen the first: two SIGINTs pending at once
            // would be delivered as one.
            kill(pid, SIGINT)
            #expect(try await cluster.waitFor("interrupt received", in: run.stdout))
            kill(pid, SIGINT)
            #expect(await run.child.exitStatus() == 130)
            let stdout = try String(contentsOfFile: run.stdout, encoding: .utf8)
            // Which step was in flight depends on when the signals landed on a loaded machine; the summary
            // must name that step's node as the one that may be mid-upgrade.
            let aborted = stdout.range(
                of: #"ABORTED during upgrade-follower on (be\d); (be\d) may be mid-upgrade"#,
                options: .regularExpression)
            #expect(aborted != nil, "\(stdout)")
            if let aborted {
                let words = stdout[aborted].split(separator: " ")
                #expect(words[4].dropLast() == words[5], "the summary names the node whose step was in flight")
            }
            #expect(stdout.contains("drover resume"))
            #expect(!(try await cluster.drover(["status"])).stdout.contains("Lock:"), "lock released")
            let journal = try #require(StateReader.journal(in: cluster.stateDirectory))
            #expect(journal.contains(#""status" : "interrupted""#))
        }
    }

    @Test func transcriptsAreCompleteAndFreeOfSecrets() async throws {
        try await SandboxCluster.with { cluster in
            let planted = "planted-\(UUID().uuidString)"
            for node in ["be1", "be2", "be3"] {
                let secrets = cluster.sandbox.directory + "/nodes/\(node)/etc/chef-backend/chef-backend-secrets.json"
                try
                    #"{"postgresql":{"db_superuser_password":"\#(planted)","replication_password":"\#(planted)-r"},"etcd":{"initial_cluster_token":"\#(planted)-t"}}"#
                    .write(toFile: secrets, atomically: true, encoding: .utf8)
                // The other forms nodes print secrets in (issue 29): quoted YAML, options, URLs, Erlang terms,
                // Ruby hashes, a PEM private key on lines of its own and one inside a JSON string.
                let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\(planted)\n-----END RSA PRIVATE KEY-----"
                try [
                    "db_password: \"\(planted)\"", "chef-backend-ctl join-cluster --password \(planted) -y",
                    "postgres://opscode:\(planted)@10.0.0.1/opscode_chef", "{db_pass,\"\(planted)\"},",
                    "node['secret_access_key'] = \"\(planted)\"", pem,
                    #"{"superuser_key":"\#(pem.replacingOccurrences(of: "\n", with: "\\n"))\n","port":5432}"#,
                ].joined(separator: "\n").appending("\n").write(
                    toFile: cluster.sandbox.directory + "/nodes/\(node)/etc/chef-backend/leak.txt", atomically: true,
                    encoding: .utf8)
            }
            let playbook = (cluster.sandbox.directory as NSString).deletingLastPathComponent + "/leaky.yml"
            try """
            name: leaky
            description: Prints secrets, to prove they are redacted.
            preflight: basic
            steps:
              - name: show-secrets
                target: all
                actions:
                  - run: cat /etc/chef-backend/chef-backend-secrets.json
                  - run: "echo password: \(planted); echo api_token=\(planted)"
                  - run: cat /etc/chef-backend/leak.txt
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let junit = cluster.stateDirectory + "/junit.xml"
            let output = try await cluster.drover(
                ["run", playbook, "--yes", "--junit", junit, "--html", cluster.stateDirectory + "/report.html"],
                environment: ["DROVER_SSH_PASSPHRASE": planted + "-pass"])
            #expect(output.status == 0, "\(output.stderr)")
            #expect(!output.stdout.contains(planted) && !output.stderr.contains(planted), "console output is redacted")
            #expect(output.stdout.contains("[REDACTED]"))
            var files = 0
            let enumerator = FileManager.default.enumerator(atPath: cluster.stateDirectory)
            while let name = enumerator?.nextObject() as? String {
                let path = cluster.stateDirectory + "/" + name
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue
                else { continue }
                files += 1
                let contents = try String(contentsOfFile: path, encoding: .utf8)
                #expect(!contents.contains(planted), "\(name) holds no secret")
            }
            #expect(files >= 4, "journal, transcript, events and the JUnit report were written")
            for report in [junit, cluster.stateDirectory + "/report.html"] {
                let mode = try FileManager.default.attributesOfItem(atPath: report)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(report) is its owner's only, like the journal")
            }
            let transcript = try #require(StateReader.file("transcript.jsonl", in: cluster.stateDirectory))
            let commands = transcript.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(commands.count == 9, "every command of the run is in the transcript")
            let events = try #require(StateReader.file("events.jsonl", in: cluster.stateDirectory))
            for line in events.split(separator: "\n") {
                #expect(
                    (try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "every event stays JSON: \(line)"
                )
            }
            #expect(transcript.contains(#"db_password: \"[REDACTED]\""#), "redacted in place, the rest kept")
            let exec = try await cluster.drover(["exec", "--node", "be2", "--", "cat /etc/chef-backend/leak.txt"])
            #expect(exec.status == 0 && exec.stdout.contains("[REDACTED]"), "\(exec.stdout)\(exec.stderr)")
            #expect(!exec.stdout.contains(planted), "drover exec redacts too: \(exec.stdout)")
            for command in commands {
                for key in ["node", "command", "started", "finished", "exit_status", "stdout", "stderr"] {
                    #expect(command[key] != nil, "\(key)")
                }
            }
            #expect(commands.contains { ($0["stdout"] as? String)?.contains("db_superuser_password") == true })
            let show = try await Processes.offPool {
                try DroverBinary.runBlocking([
                    "show", String(try #require(StateReader.runID(in: cluster.stateDirectory))), "--state-dir",
                    cluster.stateDirectory,
                ])
            }
            #expect(show.status == 0 && show.stdout.contains("Transcript: "))
        }
    }

    /// A step that prints a 2 MB line and a 20 MB line of letters: it succeeds, each line shown in part with
    /// what was cut counted (it once took minutes, with redaction and line splitting quadratic).
    @Test func hugeLinesAreShownInPartAndDoNotStallTheRun() async throws {
        try await SandboxCluster.with { cluster in
            let playbook = cluster.scratch("loud.yml")
            try """
            name: loud
            description: Prints two very long lines.
            preflight: basic
            steps:
              - name: print
                target: node:be2
                run: "head -c 2000000 /dev/zero | tr '\\\\0' a; echo; head -c 20000000 /dev/zero | tr '\\\\0' b; echo; echo done"
            """.write(toFile: playbook, atomically: true, encoding: .utf8)
            let run = try await cluster.drover(["run", playbook, "--yes"])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("[… \(2_000_000 - 16 * 1024) more bytes of this line not shown]"))
            #expect(run.stdout.contains("[… \(20_000_000 - 16 * 1024) more bytes of this line not shown]"))
            #expect(run.stdout.contains("be2| done"))
            #expect(run.stdout.utf8.count < 1_000_000, "the console got the lines in part")
        }
    }

    @Test func junitReportIsValidAndRecordsFailures() async throws {
        try await SandboxCluster.with(rejoin: "2s") { cluster in
            try await cluster.breakNode("be2", "upgrade-fails")
            let junit = cluster.stateDirectory + "/report.xml"
            let output = try await cluster.drover(["upgrade", "--yes", "--junit", junit])
            #expect(output.status == 1)
            let document = try XMLDocument(contentsOf: URL(fileURLWithPath: junit))
            let suite = try #require(try document.nodes(forXPath: "/testsuites/testsuite").first as? XMLElement)
            let cases = try document.nodes(forXPath: "//testcase")
            #expect(cases.count == 2, "block-failover on be1 and upgrade-follower on be2")
            #expect(suite.attribute(forName: "failures")?.stringValue == "1")
            let failure = try #require(try document.nodes(forXPath: "//testcase/failure").first as? XMLElement)
            #expect(failure.attribute(forName: "message")?.stringValue?.contains("chef-backend-ctl upgrade") == true)
        }
    }
}

/// Reads what a run left in a state directory.
enum StateReader {
    static func file(_ name: String, in state: String) -> String? {
        let enumerator = FileManager.default.enumerator(atPath: state)
        while let entry = enumerator?.nextObject() as? String {
            if entry.hasSuffix("/" + name) { return try? String(contentsOfFile: state + "/" + entry, encoding: .utf8) }
        }
        return nil
    }

    static func journal(in state: String) -> String? { file("journal.json", in: state) }

    static func runID(in state: String) -> Substring? {
        let enumerator = FileManager.default.enumerator(atPath: state)
        while let entry = enumerator?.nextObject() as? String {
            if entry.hasSuffix("/journal.json") { return entry.split(separator: "/").dropLast().last }
        }
        return nil
    }
}

@Suite("package upload", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct PackageUploadTests {
    @Test func uploadsWhereMissingSkipsIdenticalFilesAndNeverDuringPlan() async throws {
        try await SandboxCluster.with(scale: 0.3, rejoin: "20s") { cluster in
            let name = "chef-backend_2.3.16-1_amd64.deb"
            let local = cluster.scratch("upload/") + name
            try FileManager.default.createDirectory(
                atPath: (local as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: cluster.sandbox.directory + "/nodes/be1/var/tmp/" + name, toPath: local)
            let be3Package = cluster.sandbox.directory + "/nodes/be3/var/tmp/" + name
            try FileManager.default.removeItem(atPath: be3Package)
            var inventory = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
            inventory = inventory.replacingOccurrences(
                of: "  version: 2.3.16\n", with: "  version: 2.3.16\n  upload: \(local)\n")
            try inventory.write(toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)

            let plan = try await cluster.drover(["plan"])
            #expect(plan.status == 0 && plan.stdout.contains("the run uploads it from \(local) first"))
            #expect(!FileManager.default.fileExists(atPath: be3Package), "plan never uploads")
            #expect(!(await cluster.log()).contains { $0.event == "sftp" })

            let run = try cluster.start(["upgrade", "--yes"])
            #expect(try await cluster.waitFor("upgrade-follower on be2", in: run.stdout))
            kill(run.child.pid, SIGKILL)
            _ = await run.child.exitStatus()
            let first = try String(contentsOfFile: run.stdout, encoding: .utf8)
            #expect(first.contains("on be3: uploaded and verified"))
            #expect(
                first.contains("on be1: already holds an identical file")
                    && first.contains("on be2: already holds an identical file"))
            #expect(FileManager.default.contents(atPath: be3Package) == FileManager.default.contents(atPath: local))

            let resume = try await cluster.drover(["resume", "--yes"])
            #expect(resume.status == 0, "\(resume.stderr)")
            for node in ["be1", "be2", "be3"] {
                #expect(resume.stdout.contains("on \(node): already holds an identical file"))
            }
            try await expectUpgradedSafely(cluster)
        }
    }
}

@Suite("saved plans", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct SavedPlanTests {
    func apply(_ cluster: SandboxCluster, _ plan: String, _ extra: [String] = []) async throws -> Processes.Output {
        try await cluster.drover(["apply", plan] + extra)
    }

    @Test func applyRunsExactlyTheSavedPlan() async throws {
        try await SandboxCluster.with { cluster in
            let planFile = cluster.scratch("plan.json")
            let planned = try await cluster.drover(
                ["plan", "--out", planFile], environment: ["DROVER_SSH_PASSPHRASE": "plan-secret-passphrase"])
            #expect(planned.status == 0 && planned.stderr.contains("drover apply \(planFile)"))
            let text = try String(contentsOfFile: planFile, encoding: .utf8)
            #expect(
                text.contains("\"fingerprint\"") && text.contains("node.be1.guid") && text.contains("package_sha256"))
            #expect(
                !text.contains("sandbox-secret") && !text.contains("plan-secret-passphrase"),
                "a plan file holds no secret")
            // --yes is accepted, as Terraform accepts -auto-approve with a plan file.
            let applied = try await apply(cluster, planFile, ["--yes"])
            #expect(applied.status == 0, "\(applied.stdout)\n\(applied.stderr)")
            try await expectUpgradedSafely(cluster)
        }
    }

    @Test func staleSavedPlanIsRefusedWithTheChanges() async throws {
        try await SandboxCluster.with { cluster in
            let planFile = cluster.scratch("plan.json")
            #expect(try await cluster.drover(["plan", "--out", planFile]).status == 0)
            #expect(
                try await cluster.drover(["exec", "--node", "be1", "--", "chef-backend-ctl promote be2"]).status == 0)
            #expect(
                try await cluster.drover([
                    "exec", "--node", "be3", "--", "dpkg -i /var/tmp/chef-backend_2.3.16-1_amd64.deb",
                ]).status == 0)
            let before = (await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count
            let applied = try await apply(cluster, planFile)
            #expect(applied.status == 2)
            #expect(applied.stderr.contains("~ leader: be1 -> be2"))
            #expect(applied.stderr.contains("~ node.be1.role: leader -> follower"))
            #expect(applied.stderr.contains("~ node.be3.version: 2.3.15 -> 2.3.16"))
            #expect(applied.stderr.contains("nothing was changed"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.count == before)
        }
    }

    @Test func aPlanWithDestructiveStepsNeedsYesWithoutATerminal() async throws {
        try await SandboxCluster.with { cluster in
            let planFile = cluster.scratch("resync-plan.json")
            _ = try await cluster.drover(["plan", "resync-node", "--set", "node=be2", "--out", planFile])
            let plan = try await Processes.offPool { try String(contentsOfFile: planFile, encoding: .utf8) }
            #expect(plan.contains(#""parameters":{"node":"be2"}"#), "the plan keeps its --set values: \(plan)")
            let before = (await cluster.log()).count
            let refused = try await apply(cluster, planFile)
            #expect(refused.status == 64, "\(refused.stderr)")
            #expect(refused.stderr.contains("drover apply \(planFile) --yes"), "\(refused.stderr)")
            #expect((await cluster.log()).count == before, "nothing was contacted")
        }
    }
}
