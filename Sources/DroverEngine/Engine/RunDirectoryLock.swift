import DroverSSH
import Foundation
import Synchronization

/// An exclusive `flock` on a run's directory on this workstation, held until the process exits: two drovers
/// resuming one run (a CI retry, a second terminal) cannot both drive it, whatever the timing.
public enum RunDirectoryLock {
    /// The descriptors of the locks this process holds (kept open until it exits).
    private static let held = Mutex<[String: Int32]>([:])

    /// The lock file cannot be opened (a symbolic link planted at it, permissions): no run proceeds unlocked.
    public struct Unusable: LocalizedError, Sendable {
        public var path: String
        public var cause: String

        public var errorDescription: String? {
            "cannot lock the run's directory: \(path): \(cause). Remove or fix \(path) (it must be a regular file "
                + "owned by you, never a symbolic link), then run again; nothing was changed"
        }
    }

    /// Takes the lock of `directory` (created if missing); nil when taken (or already held by this process),
    /// else the pid written by its holder (0 when unknown); throws ``Unusable`` when the lock file cannot be
    /// opened. Blocking file work: run it off the cooperative pool (``takeOffPool(_:)``).
    public static func take(_ directory: String) throws -> Int32? {
        if held.withLock({ $0[directory] != nil }) { return nil }
        try? FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = directory + "/drover.pid"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw Unusable(path: path, cause: String(cString: strerror(errno))) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(descriptor, &buffer, buffer.count, 0)
            close(descriptor)
            let text = String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
            return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBufferPointer { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        held.withLock { $0[directory] = descriptor }
        return nil
    }

    /// ``take(_:)`` on a thread of its own.
    public static func takeOffPool(_ directory: String) async throws -> Int32? {
        try await BlockingWork.run { try take(directory) }
    }
}
