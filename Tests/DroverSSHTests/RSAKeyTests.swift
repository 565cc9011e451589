import DroverSSH
import DroverTestSupport
import Foundation
import Testing

/// RSA keys against Debian's OpenSSH 9.2, which refuses `ssh-rsa` (SHA-1) signatures by default: key files in
/// each format, with and without a passphrase, keys held by a real ssh-agent, a jump host, and an old server
/// that accepts only `ssh-rsa`. The servers log at DEBUG1, where sshd names each request's algorithm.
@Suite("RSA keys: rsa-sha2 signatures through libssh2 1.10", needsSSHD, .timeLimit(.minutes(3 * TestTime.factor)))
struct RSAKeyTests {
    /// RSA key files of every format Drover reads, generated once per test process.
    struct Keys: Sendable {
        /// Format name (as `ssh-keygen -m` takes it, `OpenSSH` for its own), encrypted or not, and the path.
        var files: [String: String]
        var publicKey: String
        var directory: String

        static func shared() throws -> Keys { try cached.get() }
        private static let cached = Result { try Keys() }

        private init() throws {
            directory = try temporaryDirectory("rsa-keys")
            var files: [String: String] = [:]
            // One key, written in each format: the server authorizes one public key.
            let base = directory + "/id_rsa"
            try Self.keygen(["-t", "rsa", "-b", "3072", "-N", "", "-C", "drover-test-rsa", "-f", base])
            publicKey = try String(contentsOfFile: base + ".pub", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            for format in ["OpenSSH", "PEM", "PKCS8"] {
                for encrypted in [false, true] {
                    let path = directory + "/id_rsa_\(format)\(encrypted ? "_encrypted" : "")"
                    try FileManager.default.copyItem(atPath: base, toPath: path)
                    // -p rewrites the key in place, with a passphrase (or none) and in the format asked for.
                    try Self.keygen(
                        ["-p", "-P", "", "-N", encrypted ? TestKeys.passphrase : "", "-f", path]
                            + (format == "OpenSSH" ? [] : ["-m", format]))
                    files["\(format)\(encrypted ? " encrypted" : "")"] = path
                }
            }
            self.files = files
        }

        private static func keygen(_ arguments: [String]) throws {
            let result = try Processes.run("/usr/bin/ssh-keygen", ["-q"] + arguments)
            guard result.status == 0 else { throw FixtureError.commandFailed("ssh-keygen", result.stderr) }
        }
    }

    /// A server that authorizes only the RSA key, logging each request's algorithm.
    static func server(extra: [String] = []) throws -> SSHServerConfiguration {
        SSHServerConfiguration(authorizedKeys: [try Keys.shared().publicKey], logLevel: "DEBUG1", extraConfig: extra)
    }

    static func options(_ server: SSHServer, identity: String?, agent: String? = nil) throws -> SSHOptions {
        var options = try testOptions(for: server)
        options.identityFiles = identity.map { [$0] } ?? []
        options.agentSocket = agent
        options.passphrase = PassphraseSource { _ in TestKeys.passphrase }
        return options
    }

    /// The algorithm of each session sshd accepted: that of the last key it was asked about (`publickey test
    /// pkalg ALGORITHM`, logged at DEBUG1) before `Accepted publickey`.
    static func accepted(_ server: SSHServer) -> [String] {
        var asked: String?
        var accepted: [String] = []
        for line in server.log.split(whereSeparator: \.isNewline) {
            if line.contains("userauth_pubkey: publickey test pkalg "), let range = line.range(of: "pkalg ") {
                asked = line[range.upperBound...].split(separator: " ").first.map(String.init)
            } else if line.contains("Accepted publickey"), let algorithm = asked {
                accepted.append(algorithm)
                asked = nil
            }
        }
        return accepted
    }

    @Test(
        "an RSA key file authenticates with rsa-sha2-512",
        arguments: ["OpenSSH", "PEM", "PKCS8", "PEM encrypted", "PKCS8 encrypted"])
    func keyFile(format: String) async throws {
        let keys = try Keys.shared()
        try await withSSHServer(try Self.server()) { server in
            let client = try await connect(server, try Self.options(server, identity: keys.files[format]))
            #expect(try await client.run("echo rsa").stdoutText == "rsa\n")
            await client.close()
            #expect(server.log.contains("Accepted publickey") && server.log.contains("ssh2: RSA"), "\(server.log)")
            #expect(Self.accepted(server) == ["rsa-sha2-512"], "\(server.log)")
        }
    }

    @Test func anEncryptedOpenSSHFormatKeySaysToUseTheAgentOrPEM() async throws {
        let keys = try Keys.shared()
        let file = try #require(keys.files["OpenSSH encrypted"])
        try await withSSHServer(try Self.server()) { server in
            let error = await expectSSHError { _ = try await connect(server, try Self.options(server, identity: file)) }
            guard case .authenticationFailed(_, _, _, let attempts) = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(attempts.count == 1)
            #expect(
                attempts.first?.reason.contains("ssh-add \(file)") == true
                    && attempts.first?.reason.contains("ssh-keygen -p -m PEM -f \(file)") == true,
                "\(attempts)")
        }
    }

    @Test func aWrongRSAKeyIsRefusedNamingTheAlgorithmsTried() async throws {
        let keys = try Keys.shared()
        let configuration = SSHServerConfiguration(authorizedKeys: [try TestKeys.shared().ed25519.publicKey])
        try await withSSHServer(configuration) { server in
            let error = await expectSSHError {
                _ = try await connect(server, try Self.options(server, identity: keys.files["PEM"]))
            }
            guard case .authenticationFailed(_, _, _, let attempts) = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(
                attempts.count == 1
                    && attempts[0].reason.contains("rsa-sha2-512, rsa-sha2-256 and ssh-rsa")
                    && attempts[0].reason.contains("authorized_keys"), "\(attempts)")
        }
    }

    @Test func anRSAKeyHeldOnlyByTheAgentSignsWithSHA2() async throws {
        let keys = try Keys.shared()
        let agent = try SSHAgent()
        defer { agent.stop() }
        try agent.add(try #require(keys.files["OpenSSH"]))
        try await withSSHServer(try Self.server()) { server in
            let client = try await connect(server, try Self.options(server, identity: nil, agent: agent.socketPath))
            #expect(try await client.run("true").succeeded)
            await client.close()
            #expect(Self.accepted(server) == ["rsa-sha2-512"], "\(server.log)")
        }
    }

    @Test func aServerThatAcceptsOnlySSHRSAIsStillReached() async throws {
        let keys = try Keys.shared()
        let agent = try SSHAgent()
        defer { agent.stop() }
        try agent.add(try #require(keys.files["OpenSSH"]))
        try await withSSHServer(try Self.server(extra: ["PubkeyAcceptedAlgorithms ssh-rsa"])) { server in
            for (identity, socket) in [(keys.files["PEM"], nil), (nil, agent.socketPath)] {
                let client = try await connect(server, try Self.options(server, identity: identity, agent: socket))
                #expect(try await client.run("true").succeeded)
                await client.close()
            }
            #expect(Self.accepted(server) == ["ssh-rsa", "ssh-rsa"], "\(server.log)")
        }
    }

    @Test func aJumpHostAndItsTargetBothTakeTheRSAKey() async throws {
        let keys = try Keys.shared()
        let file = try #require(keys.files["OpenSSH"])
        try await withSSHServers([try Self.server(), try Self.server()]) { servers in
            let (jump, target) = (servers[0], servers[1])
            let bastion = try await connect(jump, try Self.options(jump, identity: file))
            let client = try await SSHClient.connect(
                to: target.endpoint, options: try Self.options(target, identity: file), through: bastion)
            #expect(try await client.run("echo through").stdoutText == "through\n")
            await client.close()
            await bastion.close()
            #expect(Self.accepted(jump) == ["rsa-sha2-512"] && Self.accepted(target) == ["rsa-sha2-512"])
            #expect(target.log.contains("Accepted publickey"))
        }
    }
}
