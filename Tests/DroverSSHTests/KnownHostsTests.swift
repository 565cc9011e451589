import DroverTestSupport
import Foundation
import Testing

@testable import DroverSSH

@Suite("known_hosts parsing and matching")
struct KnownHostsTests {
    // An ed25519 public key blob in base64 (any well-formed blob will do for matching).
    static let keyA = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    static let keyB = "AAAAC3NzaC1lZDI1NTE5AAAAIBm9hS9Y2NVR2ETnYPeGX4K3UaHFWBl6e9gUuW7EknV0"

    var blobA: [UInt8] { Array(Data(base64Encoded: Self.keyA)!) }
    var blobB: [UInt8] { Array(Data(base64Encoded: Self.keyB)!) }

    @Test(
        "host field uses [host]:port except on port 22",
        arguments: [
            ("10.0.0.1", 22, "10.0.0.1"), ("10.0.0.1", 2222, "[10.0.0.1]:2222"), ("::1", 22, "::1"),
            ("::1", 2200, "[::1]:2200"),
        ])
    func hostField(host: String, port: Int, expected: String) {
        #expect(KnownHosts.hostField(host: host, port: port) == expected)
    }

    @Test func plainEntryMatchesAndOtherKeyIsChanged() {
        let file = KnownHosts(path: "kh", contents: "# comment\n\n[10.0.0.1]:2222 ssh-ed25519 \(Self.keyA)\n")
        #expect(file.verify(host: "10.0.0.1", port: 2222, keyBlob: blobA) == .match)
        #expect(file.verify(host: "10.0.0.1", port: 2222, keyBlob: blobB) == .changed(line: 3))
        #expect(
            file.verify(host: "10.0.0.1", port: 22, keyBlob: blobA) == .unknown,
            "a [host]:port entry does not cover port 22")
        #expect(file.verify(host: "10.0.0.2", port: 2222, keyBlob: blobA) == .unknown)
    }

    @Test func severalNamesWildcardsAndNegation() {
        let file = KnownHosts(path: "kh", contents: "be1,10.0.0.*,!10.0.0.9 ssh-ed25519 \(Self.keyA)\n")
        #expect(file.verify(host: "be1", port: 22, keyBlob: blobA) == .match)
        #expect(file.verify(host: "10.0.0.7", port: 22, keyBlob: blobA) == .match)
        #expect(file.verify(host: "10.0.0.9", port: 22, keyBlob: blobA) == .unknown)
    }

    @Test func hashedEntryMatches() {
        let salt: [UInt8] = Array(0..<20)
        let hash = Digest.hmacSHA1(key: salt, data: Array("[127.0.0.5]:2222".utf8))
        let line = "|1|\(Data(salt).base64EncodedString())|\(Data(hash).base64EncodedString()) ssh-ed25519 \(Self.keyA)"
        let file = KnownHosts(path: "kh", contents: line)
        #expect(file.verify(host: "127.0.0.5", port: 2222, keyBlob: blobA) == .match)
        #expect(file.verify(host: "127.0.0.6", port: 2222, keyBlob: blobA) == .unknown)
    }

    @Test func severalKeyTypesPerHostAreListedInOrder() {
        let file = KnownHosts(
            path: "kh",
            contents: """
                h ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA==
                h ssh-ed25519 \(Self.keyA)
                h ssh-ed25519 \(Self.keyA)
                """)
        #expect(file.keyTypes(host: "h", port: 22) == ["ecdsa-sha2-nistp256", "ssh-ed25519"])
        #expect(file.verify(host: "h", port: 22, keyBlob: blobA) == .match)
    }

    @Test func revokedKeyIsRefusedAndCertAuthorityIgnored() {
        let file = KnownHosts(
            path: "kh",
            contents: """
                @cert-authority * ssh-ed25519 \(Self.keyB)
                @revoked h ssh-ed25519 \(Self.keyA)
                h ssh-ed25519 \(Self.keyA)
                """)
        #expect(file.verify(host: "h", port: 22, keyBlob: blobA) == .revoked(line: 2))
        #expect(file.verify(host: "other", port: 22, keyBlob: blobB) == .unknown)
    }

    @Test func fingerprintMatchesSSHKeygen() throws {
        let keys = try TestKeys.shared()
        let fields = keys.ed25519.publicKey.split(separator: " ")
        let blob = Array(Data(base64Encoded: String(fields[1]))!)
        let output = try Processes.run(
            "/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", keys.ed25519.privateKey + ".pub"])
        #expect(output.stdout.contains(KnownHosts.fingerprint(ofBlob: blob)))
        #expect(KnownHosts.keyType(ofBlob: blob) == "ssh-ed25519")
    }

    @Test func appendCreatesFileAndKeepsLinesSeparate() throws {
        let path = try temporaryDirectory("append") + "/sub/known_hosts"
        try KnownHosts.append("a ssh-ed25519 \(Self.keyA)", to: path)
        try "a ssh-ed25519 \(Self.keyA)\nb ssh-ed25519 \(Self.keyB)".write(
            toFile: path, atomically: true, encoding: .utf8)
        try KnownHosts.append("c ssh-ed25519 \(Self.keyA)", to: path)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.last == "c ssh-ed25519 \(Self.keyA)")
    }

    @Test(
        "glob",
        arguments: [
            ("*", "x", true), ("10.0.?.1", "10.0.5.1", true), ("10.0.?.1", "10.0.55.1", false),
            ("*.example.com", "a.example.com", true), ("a*b*c", "axxbyyc", true), ("a*b", "ac", false),
        ])
    func glob(pattern: String, text: String, expected: Bool) {
        #expect(KnownHosts.glob(pattern, text) == expected)
    }

    /// Nodes connecting in parallel under accept-new each add a line: none is lost or torn, and a file that
    /// did not end in a newline gets one first.
    @Test func parallelAppendsKeepEveryLineWhole() async throws {
        let path = try temporaryDirectory("kh") + "/known_hosts"
        try "[10.0.0.1]:22 ssh-ed25519 AAAA".write(toFile: path, atomically: true, encoding: .utf8)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await Processes.offPool {
                        try KnownHosts.append(
                            "[10.1.0.\(index)]:22 ssh-ed25519 \(String(repeating: "K", count: 500))", to: path)
                    }
                }
            }
            try await group.waitForAll()
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(
            lines.count == 41
                && lines.allSatisfy { $0.hasSuffix("AAAA") || $0.hasSuffix(String(repeating: "K", count: 500)) })
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600 || mode == 0o644)
    }
}

@Suite("private key inspection and shell quoting")
struct KeyAndQuotingTests {
    @Test func detectsTypeAndEncryption() throws {
        let keys = try TestKeys.shared()
        func info(_ path: String) throws -> PrivateKeyInfo? {
            PrivateKeyInfo(contents: try String(contentsOfFile: path, encoding: .utf8))
        }
        #expect(try info(keys.ed25519.privateKey)?.keyType == "ssh-ed25519")
        #expect(try info(keys.ed25519.privateKey)?.encrypted == false)
        #expect(try info(keys.encrypted.privateKey)?.encrypted == true)
        #expect(try info(keys.encrypted.privateKey)?.keyType == "ssh-ed25519")
        #expect(try info(keys.rsa.privateKey)?.isRSA == true)
        #expect(try info(keys.ecdsa.privateKey)?.keyType == "ecdsa")
        #expect(PrivateKeyInfo(contents: "not a key") == nil)
    }

    @Test(
        "shell quoting",
        arguments: [
            ("plain", "plain"), ("/var/tmp/a.deb", "/var/tmp/a.deb"), ("", "''"), ("two words", "'two words'"),
            ("it's", "'it'\\''s'"), ("$(reboot)", "'$(reboot)'"), ("a;b", "'a;b'"), ("ünï", "'ünï'"),
            ("hosts.ini#chef_backend", "hosts.ini#chef_backend"), ("#comment", "'#comment'"),
        ])
    func quoting(value: String, expected: String) throws {
        #expect(ShellQuote.quote(value) == expected)
        let echoed = try Processes.run("/bin/sh", ["-c", "printf %s " + ShellQuote.quote(value)])
        #expect(echoed.stdout == value)
    }
}
