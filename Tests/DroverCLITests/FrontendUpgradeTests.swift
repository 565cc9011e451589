import DroverSSH
import DroverTestSupport
import Foundation
import SimulatedChefBackend
import Testing

/// `drover upgrade --frontends`: Chef's frontend upgrade, one frontend at a time, against the sandbox's
/// frontends (real sshd, simulated chef-server-ctl), judged from the simulator's log and state. The longest
/// (`--all`: three backends, two frontends, a resume) takes about 2.5 minutes alone on 2 cores.
@Suite("the frontend upgrade", needsSandbox, .timeLimit(.minutes(6 * TestTime.factor)))
struct FrontendUpgradeTests {
    static let target = "15.9.38"

    /// How long a frontend may take to serve again: a frontend's reading is four commands, and under a
    /// sanitizer each poll of two frontends takes seconds (TestTime.factor scales it there); beside the whole
    /// suite (the real data layer's servers included), 15 s was once too short.
    static let rejoin = "\(45 * TestTime.factor)s"

    /// At every moment some frontend served: the simulator's record of frontends starting and stopping.
    static func alwaysServed(_ state: SimulatedCluster) -> Bool {
        var serving = Set(state.frontends.map(\.name))
        for transition in state.frontendTransitions {
            if transition.serving { serving.insert(transition.frontend) } else { serving.remove(transition.frontend) }
            if serving.isEmpty { return false }
        }
        return true
    }

    /// The inventory's status URLs (the sandbox's frontends answer `/_status` over HTTP, as behind a load balancer).
    static func statusURLs(_ cluster: SandboxCluster) async throws -> [String] {
        let text = try await Processes.offPool { try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8) }
        return text.split(separator: "\n").compactMap { line in
            line.contains("status_url: ") ? line.components(separatedBy: "status_url: ").last : nil
        }
    }

    /// True when `url` (`http://ADDRESS[:PORT]/PATH`) answers `GET` with 200 within 5 seconds, as a load
    /// balancer's health check would wait. Blocking, with plain sockets: call it off the cooperative pool.
    /// (URLSession is not used: on Linux a cancelled request can leave its task waiting for ever.)
    static func answers(_ url: String) -> Bool {
        guard let parsed = URL(string: url), let host = parsed.host else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(parsed.port ?? 80).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return false }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return false }
        let request = Array("GET \(parsed.path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        var head = [UInt8]()
        while head.count < 12 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            head += buffer[0..<count]
        }
        return String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }

    /// Runs `body` while asking every frontend's `/_status` over HTTP every 50 ms (on a thread of its own);
    /// returns its result, how many rounds were asked and in how many no frontend answered 200.
    static func watchingStatus<T: Sendable>(
        _ urls: [String], _ body: () async throws -> T
    ) async throws -> (result: T, rounds: Int, unanswered: Int) {
        let done = Locked(false)
        let poller = Task {
            try await Processes.offPool { () -> (Int, Int) in
                var (rounds, unanswered) = (0, 0)
                while !done.withLock({ $0 }) {
                    let answered = urls.contains { answers($0) }
                    rounds += 1
                    if !answered { unanswered += 1 }
                    usleep(50_000)
                }
                return (rounds, unanswered)
            }
        }
        let result = try await body()
        done.withLock { $0 = true }
        let (rounds, unanswered) = try await poller.value
        return (result, rounds, unanswered)
    }

    /// Every frontend runs the target, serves, and was cleaned up once.
    static func expectUpgraded(_ state: SimulatedCluster, sourceLocation: SourceLocation = #_sourceLocation) {
        for frontend in state.frontends {
            #expect(
                frontend.installedVersion == target && frontend.runningVersion == target && frontend.running,
                "\(frontend.name): \(frontend)", sourceLocation: sourceLocation)
        }
        #expect(
            state.databaseMigrationLevel == FrontendInvocation.migrationLevel(target), sourceLocation: sourceLocation)
    }

    @Test func twoFrontendsAreUpgradedOneAtATimeWithTheAPIServedThroughout() async throws {
        try await SandboxCluster.with(rejoin: Self.rejoin, frontends: 2) { cluster in
            let plan = try await cluster.drover(["plan", "upgrade-frontends"])
            #expect(plan.status == 0, "\(plan.stdout)\n\(plan.stderr)")
            #expect(
                plan.stdout.contains("Plan: upgrade-frontends on cluster sandbox to chef-server-core \(Self.target)"))
            #expect(plan.stdout.contains("[ok] license"), "\(plan.stdout)")
            #expect(plan.stdout.contains("confirm-api-downtime on fe1: skip (2 frontends"), "\(plan.stdout)")
            #expect(plan.stdout.contains("fe1      ") && plan.stdout.contains("frontend"), "\(plan.stdout)")

            let saved = cluster.scratch("frontends-plan.json")
            let savedPlan = try await cluster.drover(["plan", "upgrade-frontends", "--out", saved])
            #expect(savedPlan.status == 0, "\(savedPlan.stderr)")

            // /_status over HTTP, asked all through the run: some frontend answers every time.
            let urls = try await Self.statusURLs(cluster)
            #expect(urls.count == 2)
            // The saved plan applies without --yes: with two frontends no step asks for a typed yes.
            let (run, rounds, unanswered) = try await Self.watchingStatus(urls) {
                try await DroverBinary.run(["apply", saved], environment: cluster.environment)
            }
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            #expect(rounds > 10 && unanswered == 0, "\(unanswered) of \(rounds) rounds had no frontend answering")
            #expect(run.stdout.contains("frontend fe1: HTTP 200, status pong"), "the status_url check: \(run.stdout)")
            let state = try await cluster.state()
            Self.expectUpgraded(state)
            #expect(state.frontends.allSatisfy { $0.cleanups == 1 })

            // A saved plan records the frontends' releases: applied after they changed, it is refused.
            let stale = try await DroverBinary.run(
                ["apply", saved, "--yes"], environment: cluster.environment)
            #expect(stale.status == 2, "\(stale.stdout)\n\(stale.stderr)")
            #expect(stale.stderr.contains("frontend.fe1.version: 14.0.65 -> \(Self.target)"), "\(stale.stderr)")
            #expect(Self.alwaysServed(state), "\(state.frontendTransitions)")
            #expect(state.nodes.allSatisfy { $0.runningVersion == "2.3.15" }, "the backends are not touched")

            // The order Chef documents, from the simulator's log.
            let log = (await cluster.log()).filter { $0.event == "started" }
            func first(_ node: String, _ prefix: String) -> Int? {
                log.firstIndex { $0.node == node && $0.command.hasPrefix(prefix) }
            }
            let firstUpgrade = try #require(first("fe1", "chef-server-ctl upgrade"))
            let copy = try #require(first("fe2", "mkdir -p /var/opt/opscode/upgrades"))
            let secondStop = try #require(first("fe2", "chef-server-ctl stop"))
            let secondUpgrade = try #require(first("fe2", "chef-server-ctl upgrade"))
            let firstStart = try #require(first("fe1", "chef-server-ctl start"))
            #expect(firstUpgrade < copy && copy < secondUpgrade, "the migration level is copied in between")
            #expect(firstStart < secondStop, "fe2 stops only once fe1 is started again")
            #expect(!log.contains { $0.node.hasPrefix("be") && $0.isMutating }, "nothing changes on the backends")

            // A second run has nothing to do.
            let again = try await cluster.drover(["upgrade", "--frontends", "--yes"])
            #expect(again.status == 0 && again.stdout.contains("every frontend already runs"), "\(again.stdout)")
        }
    }

    struct Fault: Sendable, CustomTestStringConvertible {
        var node: String
        var fault: String
        var step: String
        var testDescription: String { "\(fault) on \(node)" }
    }

    @Test(
        "a frontend that fails stops the run with the other serving, and resume finishes it",
        arguments: [
            Fault(node: "fe1", fault: "frontend-upgrade-fails", step: "upgrade-first-frontend"),
            Fault(node: "fe2", fault: "migration-level-not-copied", step: "upgrade-other-frontend"),
            Fault(node: "fe2", fault: "frontend-does-not-start", step: "upgrade-other-frontend"),
        ])
    func aFaultStopsCleanlyAndResumes(fault: Fault) async throws {
        try await SandboxCluster.with(rejoin: Self.rejoin, frontends: 2) { cluster in
            try await cluster.breakNode(fault.node, fault.fault)
            let run = try await cluster.drover(["upgrade", "--frontends", "--yes"])
            #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
            let output = run.stdout + run.stderr
            #expect(output.contains("FAILED at step \(fault.step) on \(fault.node)"), "\(output)")
            #expect(output.contains("drover resume --inventory"), "\(output)")
            #expect(output.contains("Read \(fault.node)'s logs: /var/log/opscode/"), "a frontend's own logs: \(output)")
            let stopped = try await cluster.state()
            let other = stopped.frontends.first { $0.name != fault.node }!
            #expect(other.running, "the other frontend serves")
            #expect(Self.alwaysServed(stopped), "\(stopped.frontendTransitions)")
            // diagnose reads the frontends too, and says to finish the run.
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.status == 1, "\(diagnosis.stdout)\(diagnosis.stderr)")
            #expect(
                diagnosis.stdout.contains("Situation: frontend-")
                    && diagnosis.stdout.contains("  Run:\n      drover resume --inventory "), "\(diagnosis.stdout)")

            try await cluster.sandbox.heal(fault.node)
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
            let state = try await cluster.state()
            Self.expectUpgraded(state)
            #expect(Self.alwaysServed(state), "\(state.frontendTransitions)")
        }
    }

    /// `drover status` reads each frontend with host (release, /_status, chef-server-ctl status), and
    /// `drover exec --node` reaches a frontend as the upgrade does.
    @Test func statusAndExecReachTheFrontends() async throws {
        try await SandboxCluster.with(rejoin: Self.rejoin, frontends: 2) { cluster in
            let hosts = try #require(cluster.sandbox.record()?.nodes.filter { $0.name.hasPrefix("fe") }.map(\.address))
            let status = try await cluster.drover(["status"])
            #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
            #expect(status.stdout.contains("fe1 (\(hosts[0])): frontend, chef-server-core 14.0.65, serving\n"))
            #expect(status.stdout.contains("fe2 (\(hosts[1])): frontend, chef-server-core 14.0.65, serving\n"))
            #expect(status.stdout.contains("\nHealthy.\n"), "\(status.stdout)")

            let stop = try await cluster.drover(["exec", "--node", "fe2", "--detach", "--", "chef-server-ctl", "stop"])
            #expect(stop.status == 0, "\(stop.stdout)\(stop.stderr)")
            #expect(stop.stdout.contains("fe2| "), "output prefixed by the frontend: \(stop.stdout)")
            let stopped = try await cluster.drover(["status"])
            #expect(stopped.status == 0, "every node was read: \(stopped.stdout)")
            #expect(stopped.stdout.contains("fe2 (\(hosts[1])): frontend, chef-server-core 14.0.65, NOT SERVING: "))
            #expect(stopped.stdout.contains("; stopped: "), "\(stopped.stdout)")
            #expect(stopped.stdout.contains("Backends healthy; not serving: fe2 (see above)."), "\(stopped.stdout)")
            let json = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(try await cluster.drover(["status", "--json"]).stdout.utf8))
                    as? [String: Any])
            #expect(json["frontends_serving"] as? Bool == false && json["healthy"] as? Bool == true)
            let frontends = try #require(json["frontends"] as? [[String: Any]])
            #expect(frontends.map { $0["serving"] as? Bool } == [true, false], "\(frontends)")
            #expect((frontends[1]["stopped_services"] as? [String])?.contains("nginx") == true)

            // diagnose names it, and its command, pasted, starts the frontend again.
            let diagnosis = try await cluster.drover(["diagnose"])
            #expect(diagnosis.status == 1, "\(diagnosis.stdout)")
            #expect(
                diagnosis.stdout.contains(
                    "Situation: frontend-not-serving: frontend fe2 does not serve: services are stopped"),
                "\(diagnosis.stdout)")
            #expect(diagnosis.stdout.contains("Note: fe1 serves the API meanwhile."), "\(diagnosis.stdout)")
            let command = try #require(
                diagnosis.stdout.split(separator: "\n").first { $0.contains("drover exec ") }?
                    .trimmingCharacters(in: .whitespaces))
            #expect(command == "drover exec --inventory \(cluster.inventoryPath) --node fe2 -- chef-server-ctl start")
            let start = try await Processes.offPool {
                try Processes.run(
                    "/bin/sh",
                    ["-c", command.replacingOccurrences(of: "drover exec", with: "'\(DroverBinary.path)' exec")],
                    environment: ProcessInfo.processInfo.environment.merging(cluster.environment) { $1 })
            }
            #expect(start.status == 0, "\(start.stdout)\(start.stderr)")
            #expect(
                try await cluster.drover(["diagnose"]).stdout.hasPrefix(
                    "Healthy: one leader (be1), two followers, every service healthy; frontends fe1, fe2 serve."))
            #expect(try await cluster.drover(["status"]).stdout.contains("\nHealthy.\n"))
            let unknown = try await cluster.drover(["exec", "--node", "fe9", "--", "true"])
            #expect(unknown.status == 64 && unknown.stderr.contains("has be1, be2, be3, fe1, fe2"), "\(unknown.stderr)")
        }
    }

    @Test func oneFrontendMeansDowntimeThatNeedsYes() async throws {
        try await SandboxCluster.with(rejoin: Self.rejoin, frontends: 1) { cluster in
            let plan = try await cluster.drover(["plan", "upgrade-frontends"])
            #expect(plan.stdout.contains("Chef Infra Server's API is unavailable"), "\(plan.stdout)")
            let refused = try await cluster.drover(["upgrade", "--frontends"])
            #expect(refused.status == 64, "\(refused.stdout)\n\(refused.stderr)")
            #expect(refused.stderr.contains("--yes"), "\(refused.stderr)")
            // A saved plan whose run asks for a typed yes is not applied without one.
            let saved = cluster.scratch("one-frontend-plan.json")
            #expect(try await cluster.drover(["plan", "upgrade-frontends", "--out", saved]).status == 0)
            let unapproved = try await DroverBinary.run(["apply", saved], environment: cluster.environment)
            #expect(unapproved.status == 64, "\(unapproved.stdout)\n\(unapproved.stderr)")
            #expect(unapproved.stderr.contains("need a typed yes") && unapproved.stderr.contains("--yes"))
            #expect(!(await cluster.log()).contains { $0.node == "fe1" && $0.event == "started" && $0.isMutating })
            let run = try await cluster.drover(["upgrade", "--frontends", "--yes"])
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            Self.expectUpgraded(try await cluster.state())
        }
    }

    @Test func theLicenseIsNeverAcceptedSilently() async throws {
        try await SandboxCluster.with(rejoin: Self.rejoin, frontends: 2) { cluster in
            try await Processes.offPool {
                let text = try String(contentsOfFile: cluster.inventoryPath, encoding: .utf8)
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).filter {
                    !$0.contains("accept_license")
                }
                try lines.joined(separator: "\n").write(
                    toFile: cluster.inventoryPath, atomically: true, encoding: .utf8)
            }
            let plan = try await cluster.drover(["plan", "upgrade-frontends"])
            #expect(plan.status == 2, "\(plan.stdout)")
            #expect(plan.stdout.contains("[FAIL] license"), "\(plan.stdout)")
            #expect(plan.stdout.contains("frontend_package.accept_license: true"), "\(plan.stdout)")
            let run = try await cluster.drover(["upgrade", "--frontends", "--yes"])
            #expect(run.status == 2 && run.stderr.contains("pre-flight failed: license"), "\(run.stderr)")
            #expect(
                !(await cluster.log()).contains { $0.node.hasPrefix("fe") && $0.event == "started" && $0.isMutating })
        }
    }

    @Test func allUpgradesTheBackendsThenTheFrontendsInOneRunThatResumes() async throws {
        try await SandboxCluster.with(rejoin: Self.rejoin, frontends: 2) { cluster in
            try await cluster.breakNode("fe2", "frontend-upgrade-fails")
            // plan --all plans what upgrade --all runs: the backends' steps, then the frontends'.
            let plan = try await cluster.drover(["plan", "--all"])
            #expect(plan.status == 0 && plan.stdout.contains("Plan: upgrade+upgrade-frontends"), "\(plan.stdout)")
            #expect(plannedActions(plan.stdout).contains("fe2: "), "\(plan.stdout)")
            let html = cluster.scratch("all.html")
            let run = try await cluster.drover(["upgrade", "--all", "--yes", "--html", html])
            #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
            #expect(run.stdout.contains("FAILED at step upgrade-other-frontend on fe2"), "\(run.stdout)")
            #expect(run.stdout.contains("drover upgrade --all --inventory"), "starting again is --all: \(run.stdout)")
            let failed = try await cluster.state()
            #expect(failed.nodes.allSatisfy { $0.runningVersion == "2.3.16" }, "the backends first")
            #expect(failed.frontends.first { $0.name == "fe1" }?.runningVersion == Self.target)
            let report = try await Processes.offPool { try String(contentsOfFile: html, encoding: .utf8) }
            #expect(report.contains(">fe1</text>") && report.contains(">fe2</text>"), "a lane per frontend")

            try await cluster.sandbox.heal("fe2")
            let resumed = try await cluster.drover(["resume", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
            // The resumed run keeps the plan's numbering: no backend step of the finished part comes back (the old
            // leader, a follower since the failover, is not a new upgrade-follower), and the numbers only grow.
            let numbers = NextCommandsTests.stepNumbers(resumed.stdout)
            #expect(!numbers.contains { $0.step.hasPrefix("upgrade-follower") }, "\(numbers)")
            #expect(numbers.map(\.index) == numbers.map(\.index).sorted(), "\(numbers)")
            #expect(numbers.last.map { $0.index == $0.total } == true, "\(numbers)")
            let state = try await cluster.state()
            Self.expectUpgraded(state)
            #expect(Self.alwaysServed(state), "\(state.frontendTransitions)")
            #expect(state.nodes.allSatisfy { $0.runningVersion == "2.3.16" })

            // Every backend change comes before the first frontend change, in one run.
            let log = (await cluster.log()).filter { $0.event == "started" && $0.isMutating }
            let lastBackend = try #require(log.lastIndex { $0.node.hasPrefix("be") })
            let firstFrontend = try #require(log.firstIndex { $0.node.hasPrefix("fe") })
            #expect(lastBackend < firstFrontend, "\(log.map { "\($0.node) \($0.command)" })")
            let runs = cluster.stateDirectory + "/sandbox"
            let journals = try await Processes.offPool {
                try FileManager.default.contentsOfDirectory(atPath: runs).map {
                    try String(contentsOfFile: runs + "/" + $0 + "/journal.json", encoding: .utf8)
                }
            }
            #expect(journals.count == 1 && journals[0].contains("upgrade+upgrade-frontends"), "one run, one journal")
        }
    }
}
