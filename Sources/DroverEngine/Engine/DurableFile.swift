import DroverCluster
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

/// Crash-safe file writes.
public enum DurableFile {
    public static func write(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RunStateError.unwritable(path, String(cString: strerror(errno))) }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            throw RunStateError.unwritable(path, String(cString: strerror(errno)))
        }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    /// Appends one line with a single O_APPEND write. Not fsync'd: a killed run loses nothing written
    /// (the kernel has it), and transcripts are written per command, on the run's path; the journal is
    /// what must survive a machine crash, and it is written with ``write(_:to:)``.
    public static func append(_ line: String, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        var bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
