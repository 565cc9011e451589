import DroverTestSupport
import Foundation
import Testing

/// The sandbox upgraded from what a workstation already has: an Ansible inventory, an OpenSSH config; and
/// `drover inventory show` explaining both.
@Suite(
    "inventories as the workstation has them: Ansible, ssh_config", needsSandbox,
    .timeLimit(.minutes(3 * TestTime.factor)))
struct WorkstationInventoryTests {
    /// An INI inventory of the sandbox: the hosts in `chef_backend`, Drover's settings as its variables.
    static func hosts(for cluster: SandboxCluster) async throws -> String {
        let state = try await cluster.state()
        let directory = cluster.sandbox.directory
        var text = "[chef_backend]\n"
        for node in state.nodes { text += "\(node.name) ansible_host=\(node.ip)\n" }
        text += """
            [chef_backend:vars]
            drover_cluster=sandbox
            drover_package_path=/var/tmp/chef-backend_2.3.16-1_amd64.deb
            drover_package_version=2.3.16
            drover_ssh_known_hosts=\(directory)/known_hosts
            drover_timeouts_rejoin=8s
            drover_timeouts_failover=8s
            drover_timeouts_poll_interval=200ms
            ansible_ssh_private_key_file=\(directory)/id_ed25519
            [all:vars]
            ansible_user=root

            """
        let path = cluster.scratch("hosts.ini")
        let written = text
        try await Processes.offPool { try written.write(toFile: path, atomically: true, encoding: .utf8) }
        return path
    }

    @Test func theSandboxUpgradesFromAnAnsibleInventory() async throws {
        try await SandboxCluster.with { cluster in
            let hosts = try await Self.hosts(for: cluster)
            let environment = cluster.environment
            let show = try await DroverBinary.run(
                ["inventory", "show", "--inventory", hosts, "--group", "chef_backend", "--json"],
                environment: environment)
            #expect(show.status == 0, "\(show.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
            let nodes = object["nodes"] as? [[String: Any]] ?? []
            #expect(nodes.map { $0["name"] as? String } == ["be1", "be2", "be3"])
            let host = nodes.first?["host"] as? [String: String]
            #expect(host?["source"] == "\(hosts):2 (ansible_host)", "\(String(describing: host))")
            #expect((nodes.first?["user"] as? [String: String])?["source"]?.hasSuffix("(ansible_user)") == true)

            let run = try await DroverBinary.run(
                ["upgrade", "--inventory", hosts, "--group", "chef_backend", "--yes"], environment: environment)
            #expect(run.status == 0, "\(run.stdout.suffix(1500))\n\(run.stderr)")
            let state = try await cluster.state()
            #expect(state.nodes.allSatisfy { $0.runningVersion == "2.3.16" })
            // The commands Drover prints name the inventory as --inventory takes it.
            let status = try await DroverBinary.run(
                ["status", "--inventory", "\(hosts)#chef_backend"], environment: environment)
            #expect(status.status == 0 && status.stdout.contains("Healthy."), "\(status.stderr)")
        }
    }

    /// An inventory that names the sandbox's nodes as ssh_config does: everything else comes from there.
    static func aliasInventory(configFile: String) -> String {
        """
        cluster: sandbox
        ssh:
          config_file: \(configFile)
        package:
          path: /var/tmp/chef-backend_2.3.16-1_amd64.deb
        backends:
          - name: be1
            host: be1
          - name: be2
            host: be2
          - name: be3
            host: be3
        timeouts:
          rejoin: 8s
          failover: 8s
          poll_interval: 200ms

        """
    }

    @Test func theSandboxUpgradesWithNothingButItsOpenSSHConfig() async throws {
        try await SandboxCluster.with { cluster in
            // The inventory names the nodes as ssh_config does; HostName, User, IdentityFile, IdentitiesOnly,
            // UserKnownHostsFile and StrictHostKeyChecking come from the sandbox's ssh_config.
            let inventory = cluster.scratch("by-alias.yml")
            let text = Self.aliasInventory(configFile: "\(cluster.sandbox.directory)/ssh_config")
            try await Processes.offPool { try text.write(toFile: inventory, atomically: true, encoding: .utf8) }
            let environment = cluster.environment
            let show = try await DroverBinary.run(
                ["inventory", "show", "--inventory", inventory], environment: environment)
            #expect(
                show.status == 0 && show.stdout.contains("(HostName of be1)") && show.stdout.contains("(IdentityFile)")
                    && show.stdout.contains("(UserKnownHostsFile)"), "\(show.stdout)\n\(show.stderr)")
            let run = try await DroverBinary.run(
                ["upgrade", "--inventory", inventory, "--yes"], environment: environment)
            #expect(run.status == 0, "\(run.stdout.suffix(1500))\n\(run.stderr)")
            #expect(try await cluster.state().nodes.allSatisfy { $0.runningVersion == "2.3.16" })
        }
    }

    /// Writes an ssh_config that reaches the sandbox's nodes through `bastion` (the sandbox's own Host blocks
    /// say where each node is; `nodeLines` come first for the nodes, `bastionLines` are the bastion's, its host
    /// keys in `knownHosts` or a new file) and an inventory naming the nodes by alias; returns the inventory.
    static func throughBastion(
        _ cluster: SandboxCluster, _ bastion: SSHServer, name: String, nodeLines: [String] = [],
        bastionLines: [String], knownHosts: String? = nil
    ) async throws -> String {
        let knownHosts = try knownHosts ?? bastion.writeKnownHosts()
        let config = cluster.scratch("ssh_config_\(name)")
        let inventory = cluster.scratch("\(name).yml")
        let configText =
            (["Host be1 be2 be3", "  ProxyJump bastion"] + nodeLines.map { "  " + $0 }
            + [
                "Include \(cluster.sandbox.directory)/ssh_config", "Host bastion", "  HostName \(bastion.address)",
                "  Port \(bastion.port)", "  User root",
            ] + bastionLines.map { "  " + $0 } + ["  UserKnownHostsFile \(knownHosts)", ""]).joined(separator: "\n")
        let inventoryText = aliasInventory(configFile: config)
        try await Processes.offPool {
            try configText.write(toFile: config, atomically: true, encoding: .utf8)
            try inventoryText.write(toFile: inventory, atomically: true, encoding: .utf8)
        }
        return inventory
    }

    /// A user whose only key is RSA, against OpenSSH 9.2 (which refuses ssh-rsa signatures): the bastion and
    /// every node authorize that key alone, and the upgrade goes through.
    @Test func aUserWithOnlyAnRSAKeyUpgradesTheSandboxThroughABastion() async throws {
        try await SandboxCluster.with { cluster in
            let keys = try await Processes.offPool { try TestKeys.shared() }
            let state = try await cluster.state()
            try await Processes.offPool {
                for node in state.nodes {
                    try (keys.rsa.publicKey + "\n").write(
                        toFile: "\(cluster.sandbox.directory)/sshd/\(node.name)/authorized_keys", atomically: true,
                        encoding: .utf8)
                }
            }
            let bastionConfiguration = SSHServerConfiguration(authorizedKeys: [keys.rsa.publicKey])
            try await withSSHServers([bastionConfiguration]) { servers in
                let bastion = servers[0]
                let rsaOnly = ["IdentityFile \(keys.rsa.privateKey)", "IdentitiesOnly yes"]
                let inventory = try await Self.throughBastion(
                    cluster, bastion, name: "rsa-through-bastion", nodeLines: rsaOnly, bastionLines: rsaOnly)
                let run = try await DroverBinary.run(
                    ["upgrade", "--inventory", inventory, "--yes"], environment: cluster.environment)
                #expect(run.status == 0, "\(run.stdout.suffix(1500))\n\(run.stderr)")
                #expect(try await cluster.state().nodes.allSatisfy { $0.runningVersion == "2.3.16" })
                #expect(bastion.log.contains("Accepted publickey") && bastion.log.contains("ssh2: RSA"))
                for node in state.nodes {
                    let log =
                        (try? String(
                            contentsOfFile: "\(cluster.sandbox.directory)/sshd/\(node.name)/sshd.log", encoding: .utf8))
                        ?? ""
                    #expect(log.contains("ssh2: RSA SHA256:"), "\(node.name) accepted the RSA key")
                }

                // The same key held only by ssh-agent, no key file named: drover asks the agent for SHA-2.
                let agent = try await Processes.offPool { try SSHAgent() }
                defer { agent.stop() }
                try await Processes.offPool { try agent.add(keys.rsa.privateKey) }
                // The first value wins in ssh_config: `IdentitiesOnly no` before the sandbox's own `yes`.
                let agentInventory = try await Self.throughBastion(
                    cluster, bastion, name: "rsa-agent-through-bastion", nodeLines: ["IdentitiesOnly no"],
                    bastionLines: [])
                var environment = cluster.environment
                environment["SSH_AUTH_SOCK"] = agent.socketPath
                let status = try await DroverBinary.run(
                    ["status", "--inventory", agentInventory], environment: environment)
                #expect(status.status == 0 && status.stdout.contains("Healthy."), "\(status.stdout)\n\(status.stderr)")
            }
        }
    }

    @Test func theSandboxUpgradesThroughABastionWithNothingButAnOpenSSHConfig() async throws {
        try await SandboxCluster.with { cluster in
            try await withSSHServers([SSHServerConfiguration(logLevel: "DEBUG1")]) { servers in
                let bastion = servers[0]
                let keys = try await Processes.offPool { try TestKeys.shared() }
                let knownHosts = try bastion.writeKnownHosts()
                let inventory = try await Self.throughBastion(
                    cluster, bastion, name: "through-bastion",
                    bastionLines: ["IdentityFile \(keys.ed25519.privateKey)", "IdentitiesOnly yes"],
                    knownHosts: knownHosts)
                let environment = cluster.environment
                let show = try await DroverBinary.run(
                    ["inventory", "show", "--inventory", inventory], environment: environment)
                #expect(
                    show.status == 0 && show.stdout.contains("root@\(bastion.address):\(bastion.port)")
                        && show.stdout.contains("(ProxyJump)"),
                    "\(show.stdout)\n\(show.stderr)")
                let run = try await DroverBinary.run(
                    ["upgrade", "--inventory", inventory, "--yes"], environment: environment)
                #expect(run.status == 0, "\(run.stdout.suffix(1500))\n\(run.stderr)")
                #expect(try await cluster.state().nodes.allSatisfy { $0.runningVersion == "2.3.16" })
                // Every session a node accepted came through the bastion's forwarding, and one bastion session carried them.
                let state = try await cluster.state()
                for node in state.nodes {
                    let forwarded = bastion.log.components(separatedBy: "target \(node.ip) port 22").count - 1
                    let log =
                        (try? String(
                            contentsOfFile: "\(cluster.sandbox.directory)/sshd/\(node.name)/sshd.log", encoding: .utf8))
                        ?? ""
                    let accepted = log.components(separatedBy: "Accepted publickey").count - 1
                    #expect(
                        forwarded >= 1 && accepted == forwarded,
                        "\(node.name): \(accepted) sessions, \(forwarded) forwarded by the bastion")
                }
                #expect(
                    bastion.log.components(separatedBy: "Accepted publickey").count - 1 == 1,
                    "one bastion session per drover run")

                // A wrong host key at the bastion: refused before anything, the hop named.
                let wrong = try await Processes.offPool {
                    try String(contentsOfFile: "\(cluster.sandbox.directory)/known_hosts", encoding: .utf8)
                }
                let forged =
                    wrong.split(separator: "\n").prefix(1).map { line in
                        "[\(bastion.address)]:\(bastion.port) "
                            + line.split(separator: " ").dropFirst().joined(separator: " ")
                    }.joined() + "\n"
                try await Processes.offPool { try forged.write(toFile: knownHosts, atomically: true, encoding: .utf8) }
                let refused = try await DroverBinary.run(
                    ["upgrade", "--inventory", inventory, "--yes"], environment: environment)
                #expect(refused.status == 2, "\(refused.stdout)\n\(refused.stderr)")
                #expect(
                    refused.stderr.contains("jump host \(bastion.address)")
                        && refused.stderr.contains("HOST KEY CHANGED"), "\(refused.stderr)")
            }
        }
    }
}
