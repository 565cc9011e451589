import DroverSSH
import DroverTestSupport
import Foundation
import Testing

/// `ssh.sudo: true` runs every remote command through `sudo -n`; here root logs in, so sudo never asks.
@Suite(
    "ssh.sudo", .enabled(if: SSHServer.isAvailable, Comment(rawValue: SSHServer.unavailableReason)),
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sudo") && getuid() == 0,
        "needs root and sudo (`apt-get install -y sudo`; `make test` installs it)"),
    .timeLimit(.minutes(3 * TestTime.factor)))
struct SudoTests {
    @Test func commandsRunThroughSudoWithTheirArgumentsIntact() async throws {
        let keys = try TestKeys.shared()
        try await withSSHServer { server in
            let inventory = try server.writeInventory(
                cluster: "sudo", identityFile: keys.ed25519.privateKey, sshSettings: ["sudo: true"])
            let environment = ["SSH_AUTH_SOCK": ""]
            // sudo sets SUDO_COMMAND to what it ran: proof the command went through `sudo -n sh -c`.
            let viaSudo = try await DroverBinary.run(
                ["exec", "--inventory", inventory, "--", "printenv", "SUDO_COMMAND"], environment: environment)
            #expect(viaSudo.status == 0, "\(viaSudo.stderr)")
            #expect(
                viaSudo.stdout.contains("n1| /usr/bin/sh -c") || viaSudo.stdout.contains("n1| /bin/sh -c"),
                "\(viaSudo.stdout)")
            // Like ssh, exec's words form one shell command; the wrapping must hand it to sh unchanged.
            let quoted = try await DroverBinary.run(
                ["exec", "--inventory", inventory, "--", #"printf '%s|\n' "it's" 'a b' '$HOME'"#],
                environment: environment)
            #expect(quoted.status == 0, "\(quoted.stderr)")
            #expect(
                quoted.stdout.contains("n1| it's|") && quoted.stdout.contains("n1| a b|")
                    && quoted.stdout.contains("n1| $HOME|"), "\(quoted.stdout)")
            let failing = try await DroverBinary.run(
                ["exec", "--inventory", inventory, "--", "exit 7"], environment: environment)
            #expect(failing.status != 0, "a failing command fails through sudo too")
        }
    }
}
