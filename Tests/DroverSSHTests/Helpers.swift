import DroverSSH
import DroverTestSupport
import Foundation
import Logging
import Testing

/// Trait for tests that need a real OpenSSH server.
let needsSSHD = Testing.ConditionTrait.enabled(
    if: SSHServer.isAvailable, Comment(rawValue: SSHServer.unavailableReason))

/// Options that authenticate with the shared ed25519 test key and trust `server` via a fresh known_hosts.
func testOptions(for server: SSHServer, identity: String? = nil) throws -> SSHOptions {
    let keys = try TestKeys.shared()
    return SSHOptions(
        user: UserAccount.name,
        identityFiles: [identity ?? keys.ed25519.privateKey],
        agentSocket: nil,
        passphrase: .none,
        knownHostsFile: try server.writeKnownHosts(),
        hostKeyPolicy: .strict,
        connectTimeout: .seconds(5),
        sessionTimeout: .seconds(10)
    )
}

func connect(
    _ server: SSHServer, _ options: SSHOptions? = nil, logger: Logger = Logger(label: "test")
) async throws -> SSHClient {
    try await SSHClient.connect(to: server.endpoint, options: options ?? testOptions(for: server), logger: logger)
}

/// Expects `body` to throw an ``SSHError`` and returns it.
func expectSSHError(
    _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
) async -> SSHError? {
    do {
        try await body()
        Issue.record("expected an SSHError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SSHError {
        return error
    } catch {
        Issue.record("expected an SSHError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Collects streamed lines with the time each arrived.
final class LineRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [(OutputLine, ContinuousClock.Instant)] = []

    var handler: @Sendable (OutputLine) -> Void {
        { line in self.lock.withLock { self.storage.append((line, .now)) } }
    }

    var lines: [(OutputLine, ContinuousClock.Instant)] { lock.withLock { storage } }
}

/// The server's per-connection sshd processes (its listener's descendants named sshd), by pid.
func connectionProcesses(of server: SSHServer) -> [pid_t] {
    Processes.descendants(of: server.pid).filter { pid in
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines) == "sshd"
    }
}
