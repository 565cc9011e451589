import Foundation

/// Carries one result from the thread that computed it to the task awaiting it, through a lock.
///
/// A continuation alone also orders the two, but ThreadSanitizer does not always see that order and
/// reports the result's memory as raced; a lock it sees every time.
final class Handoff<T: Sendable>: Sendable {
    private let result = Locked<Result<T, any Error>?>(nil)

    /// Stores the result; called once, on the computing thread, before the continuation is resumed.
    func put(_ value: Result<T, any Error>) {
        result.withLock { $0 = value }
    }

    /// The stored result, returned or thrown; called by the awaiting task after it resumed.
    func take() throws -> T {
        guard let value = result.withLock({ $0 }) else { preconditionFailure("Handoff taken before it was put") }
        return try value.get()
    }
}
