import DroverTestSupport
import Foundation
import Testing

@testable import DroverChefBackend
@testable import DroverEngine

/// One remote command per reading of a node: the parts' outputs, errors and exit statuses stay apart.
@Suite struct NodeScriptTests {
    /// The script's marker (with this process's nonce).
    let m = ClusterDiscovery.NodeScript.marker
    let script = ClusterDiscovery.NodeScript(parts: [
        .init("table", "printf 'Name  Role\\nbe1   leader\\n'"),
        .init("unterminated", "printf 'no newline at the end'"),
        .init("failing", "echo 'it went wrong' >&2; (exit 3)"),
        .init("empty", "true"),
        .init("blank-lines", "printf 'a\\n\\n\\nb\\n'"),
    ])

    /// The script as `/bin/sh` runs it on a node (sshd runs the command through the login shell).
    func runLocally(
        _ script: ClusterDiscovery.NodeScript
    ) async throws -> [String: ClusterDiscovery.NodeScript.PartResult] {
        let command = script.command
        let output = try await Processes.offPool {
            try Processes.run("/bin/sh", ["-c", command], timeout: .seconds(30))
        }
        return script.split(stdout: output.stdout, stderr: output.stderr)
    }

    @Test func eachPartKeepsItsOutputErrorsAndStatus() async throws {
        let parts = try await runLocally(script)
        #expect(parts["table"] == .init(stdout: "Name  Role\nbe1   leader\n", stderr: "", exitStatus: 0))
        #expect(parts["unterminated"]?.stdout == "no newline at the end\n")
        #expect(parts["failing"] == .init(stdout: "", stderr: "it went wrong\n", exitStatus: 3))
        #expect(parts["empty"] == .init(stdout: "", stderr: "", exitStatus: 0))
        #expect(parts["blank-lines"]?.stdout == "a\n\n\nb\n")
    }

    @Test func aPartThatNeverFinishedIsMissingNotEmpty() {
        // The connection dropped after the first part: only it is known.
        let stdout = "Name  Role\n\n\(m)table exit 0\nno newline"
        let parts = script.split(stdout: stdout, stderr: "\(m)table\n\(m)unterminated\n")
        #expect(parts.keys.sorted() == ["table"])
    }

    /// Output that prints a marker without the process's nonce (a node forging Drover's lines) is output.
    @Test func aMarkerWithoutTheNonceIsOutput() {
        let stdout = "drover-read: table exit 0\nreal\n\(m)table exit 0\n"
        #expect(script.split(stdout: stdout, stderr: "")["table"]?.stdout == "drover-read: table exit 0\nreal\n")
        #expect(m.hasPrefix("drover-read: ") && m.count > "drover-read: ".count + 8)
    }

    @Test func aMarkerOfAnotherNameIsOutput() {
        let stdout = "\(m)elsewhere exit 0\n\n\(m)table exit 0\n"
        #expect(script.split(stdout: stdout, stderr: "")["table"]?.stdout == "\(m)elsewhere exit 0\n")
    }
}

/// What each wait reads before its confirming polls, which read every node.
@Suite struct WaitFocusTests {
    let backends = ["be1", "be2", "be3"]

    @Test(arguments: ["rejoined", "synced", "leader-is", "services-stopped", "elasticsearch-stopped"])
    func nodePredicatesReadTheNodeOnly(_ predicate: String) throws {
        let focus = try #require(
            ClusterWaits.focus(predicate, node: "be2", backends: backends, reachable: { _ in true }))
        #expect(focus.backends == ["be2"] && !focus.frontends)
    }

    @Test func leaderMovedAsksAnotherReachableNode() {
        let focus = ClusterWaits.focus("leader-moved", node: "be1", backends: backends, reachable: { $0 != "be2" })
        #expect(focus?.backends == ["be3"])
        #expect(ClusterWaits.focus("leader-moved", node: "be1", backends: backends, reachable: { $0 == "be1" }) == nil)
    }

    @Test func frontendStatusReadsNoBackend() {
        let focus = ClusterWaits.focus("frontend-ok", node: "fe1", backends: backends, reachable: { _ in true })
        #expect(focus?.backends == [] && focus?.frontends == true)
    }

    @Test(arguments: ["healthy", "healthy-at-target", "no-such-predicate"])
    func clusterWidePredicatesReadEveryNodeFromTheStart(_ predicate: String) {
        #expect(ClusterWaits.focus(predicate, node: "be1", backends: backends, reachable: { _ in true }) == nil)
    }
}
