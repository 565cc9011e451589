import DroverTestSupport
import Foundation
import Testing

@Suite("drover command line, run as a binary")
struct CommandLineTests {
    @Test func printsVersion() async throws {
        let output = try await DroverBinary.run(["--version"])
        #expect(output.status == 0)
        #expect(
            output.stdout.trimmingCharacters(in: .whitespacesAndNewlines).range(
                of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil)
    }

    @Test func helpListsExitCodesAndKeyAdvice() async throws {
        let output = try await DroverBinary.run(["--help"])
        #expect(output.status == 0)
        for code in [
            "0    success", "1    a step failed", "2    refused before any change", "3    another run holds",
            "64   usage error", "130  interrupted",
        ] {
            #expect(output.stdout.contains(code), "help lists exit code line: \(code)")
        }
        #expect(output.stdout.contains("ed25519"))
    }

    @Test func helpSaysEachDefaultOnce() async throws {
        let output = try await DroverBinary.run(["help", "plan"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("The playbook. (default: upgrade)"), "\(output.stdout)")
        #expect(output.stdout.components(separatedBy: "(default: upgrade)").count == 2)
    }

    @Test func aNegativeParallelIsNamedWithItsValue() async throws {
        let output = try await DroverBinary.run(["plan", "--parallel", "-1", "--inventory", "x.yml"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("--parallel must be at least 1, not -1"), "\(output.stderr)")
        #expect(!output.stderr.contains("Missing value"))
    }

    @Test(arguments: [
        ("/nonexistent/inventory.yml", "No such file or directory"), ("/tmp", "Is a directory"),
        ("/nonexistent/hosts.ini#backends", "No such file or directory"),
    ])
    func anUnreadableInventorySaysTheSystemsReason(_ path: String, _ reason: String) async throws {
        let output = try await DroverBinary.run(["status", "--inventory", path])
        #expect(output.status == 64)
        let file = path.split(separator: "#").first.map(String.init) ?? path
        #expect(
            output.stderr
                == "drover: invalid inventory: \(file): cannot read the \(path.contains("#") ? "Ansible inventory" : "inventory file"): \(reason)\n",
            "\(output.stderr)")
    }

    @Test func playbooksAreATableWithAHeader() async throws {
        let output = try await DroverBinary.run(["playbooks"])
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("PLAYBOOK ") == true, "\(output.stdout)")
        // Every row's columns start where the header's do.
        let header = String(lines[0])
        let sourceColumn = try #require(header.range(of: "SOURCE")).lowerBound.utf16Offset(in: header)
        for line in lines.dropFirst() {
            let row = String(line)
            #expect(row.count > sourceColumn && row.dropFirst(sourceColumn - 2).hasPrefix("  "), "\(row)")
            #expect(row.dropFirst(sourceColumn).first != " ", "\(row)")
        }
    }

    @Test(arguments: [
        ("status", "2 when a node (a backend, or a frontend with host) could not be reached or read"),
        ("diagnose", "1 when something needs action"),
        ("upgrade", "130 when interrupted"), ("run", "3 when another run holds the lock"),
        ("unlock", "1 when it could not be removed"), ("plan", "2 when pre-flight would refuse"),
    ])
    func eachCommandsHelpSaysWhatItsExitCodesMean(_ command: String, _ meaning: String) async throws {
        let output = try await DroverBinary.run(["help", command])
        #expect(output.status == 0)
        #expect(output.stdout.replacingOccurrences(of: "\n", with: " ").contains(meaning), "\(output.stdout)")
    }

    /// A misspelt subcommand or option is answered with the word meant, and changes nothing (exit 64).
    @Test(
        "did you mean",
        arguments: [
            (["upgarde", "-i", "x.yml"], "unknown command 'upgarde'. Did you mean 'upgrade'?"),
            (["stauts"], "unknown command 'stauts'. Did you mean 'status'?"),
            (["status", "--inventroy", "x.yml"], "Unknown option '--inventroy'. Did you mean '--inventory'?"),
            (["status"], "give --inventory FILE (one or more times) or --inventories DIR (see drover status --help)"),
        ])
    func misspeltWordsAreNamed(arguments: [String], message: String) async throws {
        let output = try await DroverBinary.run(arguments)
        #expect(output.status == 64)
        #expect(output.stderr.contains(message), "\(output.stderr)")
    }

    /// `plan --all` and `plan --frontends` plan what `upgrade --all` and `upgrade --frontends` run.
    @Test func planTakesUpgradesFlags() async throws {
        let both = try await DroverBinary.run(["plan", "--all", "--frontends", "--inventory", "x.yml"])
        #expect(both.status == 64 && both.stderr.contains("give one of --frontends and --all"), "\(both.stderr)")
        let named = try await DroverBinary.run(["plan", "set-failover", "--all", "--inventory", "x.yml"])
        #expect(named.status == 64 && named.stderr.contains("not both"), "\(named.stderr)")
        let help = try await DroverBinary.run(["help", "plan"])
        #expect(help.stdout.contains("--all") && help.stdout.contains("--frontends"))
    }

    @Test func unknownArgumentIsAUsageError() async throws {
        let output = try await DroverBinary.run(["--no-such-flag"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("--no-such-flag"))
        #expect(output.stdout.isEmpty, "diagnostics go to stderr")
    }

    @Test(
        "a playbook runs only on inventories of its topology",
        arguments: [
            (
                "cluster: c\nbackends:\n  - name: be1\n    host: 127.255.255.254\n", "graceful-transition",
                "graceful-transition is a playbook for drbd-pair clusters", "upgrade"
            ),
            (
                "cluster: p\ntopology: drbd-pair\nbackends:\n  - { name: be1, host: 127.255.255.253 }\n  - { name: be2, host: 127.255.255.254 }\n",
                "resync-node", "resync-node is a playbook for chef-backend clusters", "promote-secondary"
            ),
        ])
    func playbookOfAnotherTopology(inventory text: String, playbook: String, says: String, fits: String) async throws {
        let inventory = try temporaryDirectory("topology") + "/inventory.yml"
        try text.write(toFile: inventory, atomically: true, encoding: .utf8)
        for arguments in [["plan", playbook, "--offline"], ["run", playbook, "--yes"]] {
            let output = try await DroverBinary.run(arguments + ["--inventory", inventory])
            #expect(output.status == 64, "\(output.stderr)")
            #expect(output.stderr.contains(says) && output.stderr.contains(fits), "\(output.stderr)")
        }
    }

    @Test(
        "an invalid inventory is refused once, naming file, line and key, by every command that reads it",
        arguments: [
            ["status"], ["diagnose"], ["plan", "graceful-transition"], ["run", "graceful-transition", "--yes"],
            ["upgrade", "--yes"],
            ["resume", "--yes"], ["inventory", "show"], ["exec", "--", "true"],
        ])
    func invalidInventoryIsSaidOnce(command: [String]) async throws {
        let inventory = try temporaryDirectory("invalid") + "/pair.yml"
        try
            "cluster: p\ntopology: drbd-pair\ndrbd:\n  ctrl: chef-server-ctl\nbackends:\n  - { name: be1, host: 127.255.255.253 }\n  - { name: be2, host: 127.255.255.254 }\n"
            .write(toFile: inventory, atomically: true, encoding: .utf8)
        let separator = command.firstIndex(of: "--") ?? command.count
        let output = try await DroverBinary.run(
            Array(command[..<separator]) + ["--inventory", inventory] + command[separator...])
        #expect(output.status == 64, "\(output.stderr)")
        let said =
            output.stderr.components(separatedBy: "pair.yml:4: drbd.ctrl: unknown key; allowed here: resource, ctl")
            .count - 1
        #expect(said == 1, "said \(said) times:\n\(output.stderr)")
    }
}
