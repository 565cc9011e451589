import DroverSSH
import DroverTestSupport
import Foundation
import Testing

@Suite("at a terminal", .enabled(if: SSHServer.isAvailable, Comment(rawValue: SSHServer.unavailableReason)), .timeLimit(.minutes(2)))
struct TerminalTests {
    @Test func encryptedKeyPassphraseIsAskedOnTheTerminal() async throws {
        let keys = try TestKeys.shared()
        try await withSSHServer { server in
            let directory = try temporaryDirectory("tty")
            let knownHosts = try server.writeKnownHosts(in: directory)
            let inventory = directory + "/inv.yml"
            try """
                cluster: tty
                ssh:
                  user: \(SSHOptions.currentUser)
                  port: \(server.port)
                  identity_files: [\(keys.encrypted.privateKey)]
                  known_hosts: \(knownHosts)
                backends:
                  - name: n1
                    host: \(server.address)
                """.write(toFile: inventory, atomically: true, encoding: .utf8)
            let environment = ProcessInfo.processInfo.environment
                .filter { $0.key != "DROVER_SSH_PASSPHRASE" && $0.key != "SSH_AUTH_SOCK" }
                .merging(["NO_COLOR": "1"]) { $1 }
            let result = try await Processes.offPool {
                try PseudoTerminal.run(DroverBinary.path, ["exec", "--inventory", inventory, "--", "echo", "hello-from-n1"],
                                       environment: environment, answers: [("Passphrase for \(keys.encrypted.privateKey): ", TestKeys.passphrase)])
            }
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("Passphrase for \(keys.encrypted.privateKey)"))
            #expect(result.output.contains("n1| hello-from-n1"))
            #expect(!result.output.contains(TestKeys.passphrase), "the passphrase is not echoed")
        }
    }
}
