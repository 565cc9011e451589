import Foundation

/// A value guarded by a lock: `withLock` gives exclusive access to it.
///
/// Built on `NSLock` (a pthread mutex) rather than `Synchronization.Mutex`: ThreadSanitizer intercepts
/// pthread mutexes, but cannot see the happens-before edges of `Mutex`, whose slow path runs in the
/// uninstrumented runtime, so `make sanitize thread` would report every access `Mutex` guards.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    /// Runs `body` with the value, holding the lock.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
