/// The clock a run's waits read and sleep on: the continuous clock in a run, a test's own clock in tests (so
/// a wait's 10-minute timeout is tested in milliseconds).
///
/// Instants are the continuous clock's, so readings and deadlines taken on either compare.
public protocol WaitClock: Sendable {
    /// Now.
    var now: ContinuousClock.Instant { get }
    /// Returns at `deadline` (a test's clock moves its time there), or throws when the task is cancelled.
    func sleep(until deadline: ContinuousClock.Instant) async throws
}

/// The continuous clock: real time, counting while the machine sleeps.
public struct SystemWaitClock: WaitClock {
    public init() {}
    public var now: ContinuousClock.Instant { .now }
    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await Task.sleep(until: deadline, clock: .continuous)
    }
}
