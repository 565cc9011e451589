import Foundation

/// Client key pairs generated once per process with ssh-keygen.
public struct TestKeys: Sendable {
    /// A private key path and its public key line.
    public struct Pair: Sendable {
        public var privateKey: String
        public var publicKey: String
    }

    /// The passphrase of ``encrypted``.
    public static let passphrase = "correct horse battery staple"

    public var ed25519: Pair
    public var ecdsa: Pair
    /// An ed25519 key encrypted with ``passphrase``.
    public var encrypted: Pair
    /// An RSA key (OpenSSH format).
    public var rsa: Pair
    public var directory: String

    /// Generates (once) and returns the keys.
    public static func shared() throws -> TestKeys {
        try cached.get()
    }

    private static let cached: Result<TestKeys, any Error> = Result {
        try TestKeys(generateIn: temporaryDirectory("keys"))
    }

    private init(generateIn directory: String) throws {
        self.directory = directory
        func generate(_ name: String, _ type: [String], passphrase: String = "") throws -> Pair {
            let path = directory + "/" + name
            let result = try Processes.run(
                "/usr/bin/ssh-keygen", ["-q"] + type + ["-N", passphrase, "-C", "drover-test-\(name)", "-f", path])
            guard result.status == 0 else { throw FixtureError.commandFailed("ssh-keygen", result.stderr) }
            return Pair(
                privateKey: path,
                publicKey: try String(contentsOfFile: path + ".pub", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines))
        }
        ed25519 = try generate("id_ed25519", ["-t", "ed25519"])
        ecdsa = try generate("id_ecdsa", ["-t", "ecdsa", "-b", "256", "-m", "PEM"])
        encrypted = try generate("id_encrypted", ["-t", "ed25519"], passphrase: Self.passphrase)
        rsa = try generate("id_rsa", ["-t", "rsa", "-b", "2048"])
    }
}

/// A fresh private directory under the system temporary directory.
public func temporaryDirectory(_ label: String) throws -> String {
    _ = pruneStaleTemporaryDirectories
    let base = FileManager.default.temporaryDirectory.appendingPathComponent(
        "drover-\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(
        at: base, withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
    return base.path
}

/// Once per test process: removes `drover-*` directories of earlier runs untouched for two days. A test removes
/// its own on success; those a failure kept stay long enough to read, without /tmp filling up run after run.
private let pruneStaleTemporaryDirectories: Void = {
    let root = FileManager.default.temporaryDirectory.path
    let cutoff = Date().addingTimeInterval(-2 * 24 * 3600)
    // Only names temporaryDirectory makes (`drover-LABEL-` and 8 hex digits): never a sandbox a person started.
    let made = try? NSRegularExpression(pattern: "^drover-[A-Za-z0-9-]+-[0-9A-F]{8}$")
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    where made?.firstMatch(in: entry, range: NSRange(entry.startIndex..., in: entry)) != nil {
        let path = root + "/" + entry
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == .typeDirectory,
            let modified = attributes[.modificationDate] as? Date, modified < cutoff
        else { continue }
        try? FileManager.default.removeItem(atPath: path)
    }
}()

/// Errors of the test fixtures.
public enum FixtureError: LocalizedError {
    case commandFailed(String, String)
    case serverDidNotStart(String, String)
    case unavailable(String)
    /// A program did not exit in time: what it was, how long it had, and what it wrote to stderr.
    case timedOut(String)

    public var errorDescription: String? {
        switch self {
        case .timedOut(let message): return message
        case .commandFailed(let command, let output): return "\(command) failed: \(output)"
        case .serverDidNotStart(let address, let log): return "sshd on \(address) did not start:\n\(log)"
        case .unavailable(let message): return message
        }
    }
}
