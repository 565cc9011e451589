import Synchronization

@testable import DroverEngine

/// A test's clock for the runner's waits: a sleep moves its time to the deadline at once, and counts.
final class ManualWaitClock: WaitClock {
    private let state: Mutex<(now: ContinuousClock.Instant, sleeps: Int)>

    init(start: ContinuousClock.Instant = .now) { state = Mutex((start, 0)) }

    var now: ContinuousClock.Instant { state.withLock { $0.now } }
    /// How many times the runner slept on it.
    var sleeps: Int { state.withLock { $0.sleeps } }

    func sleep(until deadline: ContinuousClock.Instant) async throws {
        try Task.checkCancellation()
        state.withLock {
            $0.now = max($0.now, deadline)
            $0.sleeps += 1
        }
        await Task.yield()
    }
}
