import ArgumentParser
import DroverSandbox
import Foundation

/// `drover-sandbox`: a simulated three-node Chef Backend cluster behind real sshd, for development,
/// tests, the demo and runbook rehearsal.
@main
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drover-sandbox",
        abstract: "Run a simulated three-node Chef Backend cluster behind real OpenSSH servers.",
        discussion: """
            Each node is a real sshd on its own loopback address (port 22) in its own mount namespace, so \
            /opt/chef-backend, /var/opt/chef-backend, /etc/chef-backend, /var/tmp and /root are private to \
            it. Needs root. Rehearse with: ssh -F DIR/ssh_config be1 chef-backend-ctl status
            """,
        subcommands: [Up.self, Down.self, Status.self, Break.self, Heal.self, Load.self]
    )
}

/// The options every sandbox command shares.
struct SandboxOptions: ParsableArguments {
    // No default value here: argument-parser would print it again after the help's own default.
    @Option(help: "The sandbox's directory (default: $DROVER_SANDBOX_DIR or /tmp/drover-sandbox).")
    var dir: String?

    /// The directory given, else `$DROVER_SANDBOX_DIR`, else /tmp/drover-sandbox.
    var directory: String {
        dir ?? ProcessInfo.processInfo.environment["DROVER_SANDBOX_DIR"] ?? "/tmp/drover-sandbox"
    }

    var sandbox: Sandbox { Sandbox(directory: directory) }
}

/// Prints an error to stderr and exits 1 (the sandbox's errors carry their own fix).
func fail(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("drover-sandbox: \(error.localizedDescription)\n".utf8))
    return ExitCode.failure
}
