import DroverTestSupport
import Foundation
import Testing

/// A node that cannot be reached is said once, with its cause and fix; what depends on it is not evaluated,
/// instead of failing again with a wrong fix.
@Suite("root causes, not cascades", needsSandbox, .timeLimit(.minutes(3 * TestTime.factor)))
struct RootCauseTests {
    @Test func aNodeDownAtPreflightIsSaidOnce() async throws {
        try await SandboxCluster.with { cluster in
            try await cluster.breakNode("be3", "unreachable")
            let inventory = "--inventory \(cluster.inventoryPath)"

            let plan = try await cluster.drover(["plan"])
            #expect(plan.status == 2, "\(plan.stdout)\(plan.stderr)")
            let text = plan.stdout
            #expect(text.contains("  [FAIL] reachable be3: "), "\(text)")
            #expect(text.contains("fix: make be3 reachable over SSH (the error says how), then retry"))
            #expect(text.contains("Not read: be3; what the plan shows of it (role, version, services) is unknown"))
            #expect(
                text.contains(
                    "  [info] roles: not evaluated: be3 could not be reached (see reachable above; drover diagnose \(inventory))"
                ),
                "\(text)")
            #expect(text.contains("  [info] path: not evaluated: the installed version of be3 could not be read"))
            #expect(text.contains("Path: unknown"))
            #expect(!text.contains("every node already runs"), "an unread version is never a reason")
            let failed = text.split(separator: "\n").filter { $0.contains("[FAIL]") }
            #expect(failed.count == 1, "one root cause, no cascade: \(failed)")
            #expect(!text.contains("missing from the cluster: be3") && !text.contains("1 followers"))

            let run = try await cluster.drover(["upgrade", "--yes"])
            #expect(run.status == 2)
            let stderr = run.stderr
            #expect(stderr.contains("drover: pre-flight failed: reachable on be3: "), "\(stderr)")
            #expect(
                stderr.contains("\n  fix: make be3 reachable over SSH (the error says how), then retry\n"),
                "the fix on its own line")
            #expect(!stderr.contains("; fix:"))
            #expect(
                stderr.contains(
                    "drover: why a node cannot be reached or read, and what to do: drover diagnose \(inventory)\n"))
            #expect(!stderr.contains("pre-flight failed: membership") && !stderr.contains("pre-flight failed: roles"))
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty, "nothing changed")

            // status says the one cause too, and where to look next.
            let status = try await cluster.drover(["status"])
            #expect(status.status == 2, "\(status.stdout)\(status.stderr)")
            #expect(
                status.stdout.contains(
                    "Not healthy: be3 could not be reached (see above); the others are healthy but for it, and see it out of the cluster.\n"
                ), "\(status.stdout)")
            #expect(
                status.stdout.hasSuffix("Why, and what to do:\n    drover diagnose \(inventory)\n"), "\(status.stdout)")
        }
    }

    /// A follower only Drover cannot reach (its host key changed): the cluster still counts it in, so the others'
    /// services are healthy, the plan's steps are not a promise, and the ssh-keygen command stands alone.
    @Test func aChangedHostKeyIsTheOneCause() async throws {
        try await SandboxCluster.with { cluster in
            let be2 = try #require(cluster.sandbox.record()?.nodes[1].address)
            let be3 = try #require(cluster.sandbox.record()?.nodes[2].address)
            let lines = try String(contentsOfFile: cluster.sandbox.knownHostsPath, encoding: .utf8)
                .split(separator: "\n").map(String.init)
            // known_hosts gives be2's address be3's keys.
            let forged = lines.filter { $0.hasPrefix(be3 + " ") }.map {
                $0.replacingOccurrences(of: be3 + " ", with: be2 + " ")
            }
            try (lines.filter { !$0.hasPrefix(be2 + " ") } + forged).joined(separator: "\n").appending("\n")
                .write(toFile: cluster.sandbox.knownHostsPath, atomically: true, encoding: .utf8)
            let known = cluster.sandbox.knownHostsPath

            let plan = try await cluster.drover(["plan"])
            #expect(plan.status == 2, "\(plan.stdout)\(plan.stderr)")
            let text = plan.stdout
            let failed = text.split(separator: "\n").filter { $0.contains("[FAIL]") }
            #expect(failed.count == 1 && failed.first?.contains("[FAIL] reachable be2: ") == true, "\(text)")
            #expect(
                text.contains("\n           ssh-keygen -R \(be2) -f \(known)\n         fix: make be2 reachable"),
                "\(text)")
            for node in ["be1", "be3"] {
                #expect(
                    text.contains(
                        "  [info] services \(node): healthy, and the cluster counts be2 in: only Drover could not reach it"
                    ),
                    "\(text)")
            }
            #expect(text.contains("Path: unknown\n  because the installed version of be2 could not be read"), "\(text)")
            #expect(
                text.contains(
                    "Steps of upgrade (the path is unknown until every node is read; a run may take others):"),
                "\(text)")

            let run = try await cluster.drover(["upgrade", "--yes"])
            #expect(run.status == 2)
            #expect(run.stderr.contains("\n      ssh-keygen -R \(be2) -f \(known)\n  fix: "), "\(run.stderr)")
            #expect(!run.stderr.contains("pre-flight failed: services"), "\(run.stderr)")
            #expect((await cluster.log()).filter { $0.event == "started" && $0.isMutating }.isEmpty, "nothing changed")

            // The printed command, pasted, is the fix (with ssh-keyscan's answer added back, as a person would).
            let pasted = try await Processes.offPool {
                try Processes.run("/bin/sh", ["-c", "ssh-keygen -R \(be2) -f \(known)"])
            }
            #expect(pasted.status == 0, "\(pasted.stderr)")
            let real = lines.filter { $0.hasPrefix(be2 + " ") }.joined(separator: "\n") + "\n"
            let handle = try #require(FileHandle(forWritingAtPath: known))
            handle.seekToEndOfFile()
            handle.write(Data(real.utf8))
            try handle.close()
            let again = try await cluster.drover(["plan"])
            #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        }
    }
}
