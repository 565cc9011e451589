import Foundation

/// Paths inside this repository, for tests that read its fixtures.
public enum Repository {
    /// The repository's root directory.
    public static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// The contents of a file under `Fixtures/`.
    public static func fixture(_ relativePath: String) throws -> String {
        try String(
            contentsOf: root.appendingPathComponent("Fixtures").appendingPathComponent(relativePath), encoding: .utf8)
    }
}
