import DroverReporting
import Foundation

extension Journal {
    /// Writes the journal durably: temporary file, fsync, rename, fsync of the directory.
    public func save() throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try DurableFile.write(try Self.encoder.encode(self), to: path)
    }
}
