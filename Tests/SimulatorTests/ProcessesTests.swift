import Foundation
import Testing

@testable import DroverTestSupport

/// The fixtures stop processes by pid only, and only the process they mean: pids are reused (32,768 of them
/// on a small machine, a few thousand processes a test run), and a stale one may name another program or a
/// thread of the test process itself.
@Suite("test processes are stopped by pid, never a pid reused")
struct ProcessesTests {
    @Test func aReapedChildIsForgottenByTheExitHook() async throws {
        let child = try Processes.spawn("/bin/true", [])
        #expect(Processes.isRegistered(child.pid))
        #expect(await child.exitStatus() == 0)
        #expect(!Processes.isRegistered(child.pid), "its pid may be another process's by the time the tests exit")
    }

    @Test func aProcessSeenEarlierIsNotSignalledOnceItsPidNamesAnother() async throws {
        let child = try Processes.spawn("/bin/sleep", ["30"])
        let seen = try #require(Processes.identity(of: child.pid))
        try await Processes.offPool {
            Processes.stop(ProcessIdentity(pid: seen.pid, started: seen.started + 1), grace: .milliseconds(50))
        }
        #expect(child.isRunning, "a pid started at another time is another process")
        try await Processes.offPool { Processes.stop(seen, grace: .seconds(2)) }
        #expect(!child.isRunning)
        #expect(!Processes.isRegistered(child.pid))
    }
}
