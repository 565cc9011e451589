import Foundation
import Testing

@testable import DroverSSH

@Suite("session threads")
struct SessionThreadTests {
    @Test func finishAndWaitRunsQueuedJobsThenStopsTheThread() async {
        let thread = SessionThread(name: "test", closedError: .closed(host: "h", port: 22))
        let ran = Locked<[Int]>([])
        for index in 1...3 {
            thread.submit {
                usleep(20_000)
                ran.withLock { $0.append(index) }
            }
        }
        await thread.finishAndWait()
        #expect(ran.withLock { $0 } == [1, 2, 3], "queued jobs ran, in order, before the thread stopped")
        #expect(!thread.submit {}, "no work is accepted once the thread is finishing")
        await #expect(throws: SSHError.closed(host: "h", port: 22)) { try await thread.perform { 1 } }
        await thread.finishAndWait()  // a second close returns at once
    }
}
