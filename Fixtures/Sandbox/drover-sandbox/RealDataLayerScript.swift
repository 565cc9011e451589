import Foundation

/// Where datalayer.py is: beside the simulator (as `make install` puts it), or in the repository the
/// simulator was built in (`.build/CONFIGURATION/chef-backend-sim`).
enum RealDataLayerScript {
    static let name = "datalayer.py"

    struct NotFound: LocalizedError {
        var errorDescription: String? {
            "datalayer.py is neither beside chef-backend-sim nor in the repository it was built in (Fixtures/RealServices)"
        }
    }

    static func find(besides simulator: String) -> String? {
        var directory = URL(fileURLWithPath: simulator).deletingLastPathComponent()
        let beside = directory.appendingPathComponent(name).path
        if FileManager.default.isReadableFile(atPath: beside) { return beside }
        for _ in 0..<5 {
            directory = directory.deletingLastPathComponent()
            let candidate = directory.appendingPathComponent("Fixtures/RealServices/" + name).path
            if FileManager.default.isReadableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
