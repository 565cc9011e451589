import ArgumentParser

/// The `drover` command: parses arguments and calls into the Drover libraries.
struct Drover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drover",
        abstract: "Upgrade and repair Chef Backend high-availability clusters (and the legacy DRBD pairs) over SSH.",
        discussion: """
            Drover connects to every backend of a Chef Backend cluster over SSH (libssh2), \
            discovers the leader, refuses to start on an unhealthy cluster, and runs the documented \
            procedures with live verification.

            SSH keys: ed25519, ECDSA and RSA, from key files or ssh-agent; RSA signs with \
            rsa-sha2-512 or rsa-sha2-256 (ssh-rsa only for servers that know nothing else).

            EXIT CODES (what each means for a command: drover help COMMAND; the README's table):
              0    success
              1    a step failed after changes began: the cluster needs attention
              2    refused before any change (pre-flight, unreachable node, host key)
              3    another run holds the cluster's lock
              64   usage error or invalid input (inventory, playbook, arguments)
              130  interrupted
            """,
        version: DroverVersion.current,
        subcommands: [
            PlanCommand.self, UpgradeCommand.self, RunCommand.self, StatusCommand.self, DiagnoseCommand.self,
            ExecCommand.self,
            PlaybooksCommand.self, ResumeCommand.self, ApplyCommand.self, UnlockCommand.self, RunsCommand.self,
            ShowCommand.self,
            InventoryCommand.self,
        ]
    )
}

/// The version `drover --version` prints.
enum DroverVersion {
    static let current = "0.1.0-dev"
}
