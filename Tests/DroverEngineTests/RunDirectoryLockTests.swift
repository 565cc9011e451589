import DroverTestSupport
import Foundation
import Testing

@testable import DroverEngine

/// The lock of a run's directory on the workstation: taken once per process, never through a planted link.
@Suite("the run directory lock", .timeLimit(.minutes(1)))
struct RunDirectoryLockTests {
    @Test func isTakenOnceAndWritesThisProcessesPid() throws {
        let directory = try temporaryDirectory("runlock") + "/run"
        #expect(try RunDirectoryLock.take(directory) == nil)
        #expect(try RunDirectoryLock.take(directory) == nil, "already this process's")
        let pid = try String(contentsOfFile: directory + "/drover.pid", encoding: .utf8)
        #expect(pid == "\(getpid())\n")
        let mode =
            try FileManager.default.attributesOfItem(atPath: directory + "/drover.pid")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func aLinkPlantedAtTheLockFileIsRefusedNotFollowed() throws {
        let base = try temporaryDirectory("runlock")
        let directory = base + "/run"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: directory + "/drover.pid", withDestinationPath: base + "/elsewhere")
        #expect(throws: RunDirectoryLock.Unusable.self) { try RunDirectoryLock.take(directory) }
        #expect(!FileManager.default.fileExists(atPath: base + "/elsewhere"), "nothing created through the link")
        do {
            _ = try RunDirectoryLock.take(directory)
        } catch {
            #expect(
                error.localizedDescription.contains("drover.pid")
                    && error.localizedDescription.contains("symbolic link"))
        }
    }
}
