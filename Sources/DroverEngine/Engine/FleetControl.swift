import Synchronization

/// What a fleet's clusters share while they run: whether they should stop after their step in flight
/// (a first interrupt, or `--fail-fast` after a failure) and how to abort them (a second interrupt).
public final class FleetControl: Sendable {
    /// The fleet of the current task, when it runs one cluster of several.
    @TaskLocal public static var current: FleetControl?

    public enum StopReason: Int, Sendable {
        case none = 0
        case interrupt, failFast
    }

    private let reason = Atomic<Int>(0)
    private let aborts = Mutex<[@Sendable () -> Void]>([])
    private let aborted = Atomic<Bool>(false)

    public init() {}

    /// True once the clusters should stop after the step in flight.
    public var stopRequested: Bool { reason.load(ordering: .sequentiallyConsistent) != 0 }

    public var stopReason: StopReason { StopReason(rawValue: reason.load(ordering: .sequentiallyConsistent)) ?? .none }

    /// Asks every cluster to stop after its step in flight; the first reason given is kept.
    public func stop(_ why: StopReason) {
        _ = reason.compareExchange(expected: 0, desired: why.rawValue, ordering: .sequentiallyConsistent)
    }

    /// Registers how to abort a running cluster (cancel its run's task).
    public func onAbort(_ abort: @escaping @Sendable () -> Void) {
        let already = aborts.withLock { list -> Bool in
            list.append(abort)
            return aborted.load(ordering: .sequentiallyConsistent)
        }
        if already { abort() }
    }

    /// Aborts every running cluster at once.
    public func abort() {
        stop(.interrupt)
        let list = aborts.withLock { list -> [@Sendable () -> Void] in
            aborted.store(true, ordering: .sequentiallyConsistent)
            return list
        }
        for abort in list { abort() }
    }
}
