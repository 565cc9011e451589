import DroverInventory
import DroverTestSupport
import Foundation
import Testing

/// Ansible inventories (INI and YAML) read as Drover inventories: a group's hosts are the backends.
@Suite struct AnsibleInventoryTests {
    static func fixture(_ name: String) -> String {
        Repository.root.appendingPathComponent("Fixtures/Inventories/\(name)").path
    }

    static func parse(_ text: String, group: String = "chef_backend", file: String = "hosts.ini") throws -> Inventory {
        try AnsibleInventory.parse(text, file: file).inventory(group: group)
    }

    @Test(arguments: ["ansible-hosts.ini", "ansible-hosts.yml"])
    func theAnnotatedExamplesSayTheSame(_ name: String) throws {
        let inventory = try Inventory.load(path: Self.fixture(name) + "#chef_backend")
        #expect(inventory.cluster == "prod-backend" && inventory.file == Self.fixture(name) + "#chef_backend")
        #expect(inventory.backends.map(\.name) == ["be1", "be2", "be3"])
        #expect(inventory.backends.map(\.host) == ["10.1.0.11", "10.1.0.12", "10.1.0.13"])
        #expect(inventory.backends.map(\.port) == [22, 22, 2222])
        #expect(inventory.backends.allSatisfy { $0.user == "root" && $0.identityFiles == ["~/.ssh/id_ed25519"] })
        #expect(
            inventory.package?.path == "/var/tmp/chef-backend_2.3.16-1_amd64.deb"
                && inventory.package?.version == "2.3.16")
        #expect(inventory.timeouts.rejoin == .seconds(900) && inventory.ssh.knownHosts == "~/.ssh/known_hosts")
        #expect(inventory.frontends.map(\.name) == ["fe1", "fe2"])
        #expect(
            inventory.frontends.map(\.statusURL) == [
                "https://fe1.example.com/_status", "https://fe2.example.com/_status",
            ])
        #expect(inventory.sshFrontends.map(\.host) == ["10.1.0.21", "10.1.0.22"])
        #expect(inventory.sshFrontends.allSatisfy { $0.user == "root" }, "from all:vars")
        #expect(inventory.frontendPackage?.version == "15.9.38" && inventory.frontendPackage?.acceptLicense == true)
        #expect(inventory.sources["frontends[1].host"]?.hasSuffix("(ansible_host)") == true)
        #expect(inventory.sources["backends[2].port"]?.hasSuffix("(ansible_port)") == true)
        #expect(inventory.sources["backends[0].user"]?.hasSuffix("(ansible_user)") == true, "from all:vars")
    }

    @Test func hostVariablesWinOverGroupsAndChildrenGroupsAddTheirHosts() throws {
        let inventory = try Self.parse(
            """
            [primary]
            be1 ansible_host=10.0.0.1 ansible_user=admin
            [secondary]
            be2 ansible_host=10.0.0.2
            be3 ansible_host=10.0.0.3
            [secondary:vars]
            ansible_port=2200
            [chef_backend:children]
            primary
            secondary
            [chef_backend:vars]
            drover_cluster=split
            ansible_user=deploy
            ansible_port=22
            """)
        #expect(inventory.backends.map(\.name) == ["be1", "be2", "be3"])
        #expect(inventory.backends.map(\.user) == ["admin", "deploy", "deploy"], "the host's own value wins")
        #expect(
            inventory.backends.map(\.port) == [22, 2200, 2200], "the group the host is listed in wins over its parent")
    }

    @Test func aProxyJumpInTheCommonArgumentsIsTheJumpHost() throws {
        let inventory = try Self.parse(
            """
            [chef_backend]
            be1
            be2
            be3 ansible_ssh_common_args="-J root@other:2200"
            [chef_backend:vars]
            drover_cluster=c
            ansible_ssh_common_args='-o ProxyJump=ops@bastion:2222'
            """)
        #expect(inventory.backends[0].jumps.map { "\($0.user)@\($0.host):\($0.port)" } == ["ops@bastion:2222"])
        #expect(inventory.backends[2].jumps.map { "\($0.user)@\($0.host):\($0.port)" } == ["root@other:2200"])
        #expect(inventory.sources["backends[0].proxy_jump"]?.hasSuffix("(ansible_ssh_common_args)") == true)
    }

    @Test func becomeIsSudo() throws {
        let inventory = try Self.parse(
            "[chef_backend]\nbe1\nbe2\nbe3\n[chef_backend:vars]\ndrover_cluster=c\nansible_become=true\n")
        #expect(
            inventory.ssh.sudo && inventory.backends.map(\.host) == ["be1", "be2", "be3"],
            "ansible_host defaults to the name")
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        var name: String
        var text: String
        var line: Int
        var key: String?
        var says: String
        var testDescription: String { name }
    }

    static let refusals: [Refusal] = [
        Refusal(
            name: "no drover_cluster", text: "[chef_backend]\nbe1\nbe2\nbe3\n", line: 1, key: "drover_cluster",
            says: "needs drover_cluster"),
        Refusal(
            name: "a misspelt Drover variable",
            text: "[chef_backend]\nbe1\nbe2\nbe3\n[chef_backend:vars]\ndrover_cluster=c\ndrover_pakage_path=/x.deb\n",
            line: 7, key: "drover_pakage_path", says: "not a Drover variable"),
        Refusal(
            name: "OpenSSH options",
            text:
                "[chef_backend]\nbe1\nbe2 ansible_ssh_common_args='-o StrictHostKeyChecking=no'\nbe3\n[chef_backend:vars]\ndrover_cluster=c\n",
            line: 3, key: "ansible_ssh_common_args", says: "only -o ProxyJump"),
        Refusal(name: "a host range", text: "[chef_backend]\nbe[1:3]\n", line: 2, key: nil, says: "host ranges"),
        Refusal(
            name: "a bad duration",
            text: "[chef_backend]\nbe1\nbe2\nbe3\n[chef_backend:vars]\ndrover_cluster=c\ndrover_timeouts_rejoin=soon\n",
            line: 7, key: "drover_timeouts_rejoin", says: "soon"),
        Refusal(
            name: "become on some hosts only",
            text: "[chef_backend]\nbe1 ansible_become=true\nbe2\nbe3\n[chef_backend:vars]\ndrover_cluster=c\n",
            line: 2, key: "ansible_become", says: "whole group"),
        Refusal(
            name: "a vars line without a value", text: "[chef_backend]\nbe1\n[chef_backend:vars]\ndrover_cluster\n",
            line: 4, key: nil, says: "NAME=VALUE"),
        Refusal(
            name: "an unknown group", text: "[backends]\nbe1\n", line: 0, key: nil,
            says: "no group chef_backend; the groups are backends"),
        // Values are data: what they hold is never read as YAML (issue 29).
        Refusal(
            name: "a user holding YAML",
            text:
                "[chef_backend]\nbe1 ansible_user=\"root\\n  host_key_checking: off\"\nbe2\nbe3\n[chef_backend:vars]\ndrover_cluster=c\n",
            line: 2, key: "ansible_user", says: "is not a login name"),
        Refusal(
            name: "a port holding YAML",
            text:
                "[chef_backend]\nbe1 ansible_port='22, host_key_checking: off'\nbe2\nbe3\n[chef_backend:vars]\ndrover_cluster=c\n",
            line: 2, key: "ansible_port", says: "expected a whole number"),
        Refusal(
            name: "a host that is an option",
            text:
                "[chef_backend]\nbe1 ansible_host=-oProxyCommand=x\nbe2\nbe3\n[chef_backend:vars]\ndrover_cluster=c\n",
            line: 2, key: "ansible_host", says: "is not a host name or IP address"),
    ]

    /// What Ansible itself reads a newline-holding ansible_user as: one value, refused as a user, never a key.
    @Test func aValueWithANewlineStaysOneValue() throws {
        let text =
            "chef_backend:\n  hosts:\n    be1:\n      ansible_user: \"root\\nhost_key_checking: off\"\n    be2:\n    be3:\n  vars:\n    drover_cluster: c\n"
        #expect(throws: InputError.self) { try Self.parse(text, file: "hosts.yml") }
        let fine = try Self.parse(
            text.replacingOccurrences(of: "\"root\\nhost_key_checking: off\"", with: "deploy"), file: "hosts.yml")
        #expect(fine.backends[0].user == "deploy" && fine.ssh.hostKeyChecking == .strict)
    }

    /// A 1 KB YAML alias bomb and an INI diamond chain of groups: refused or read in bounded time and memory.
    @Test(.timeLimit(.minutes(1)))
    func aliasBombsAndDiamondChainsAreBounded() throws {
        var bomb = "x0: &a0 [v, v, v, v, v, v, v, v, v, v]\n"
        for level in 1..<12 {
            bomb += "x\(level): &a\(level) [\((0..<10).map { _ in "*a\(level - 1)" }.joined(separator: ", "))]\n"
        }
        let yaml =
            "chef_backend:\n  hosts:\n    be1:\n      bomb: *a11\n    be2:\n    be3:\n  vars:\n    drover_cluster: c\n"
        #expect(bomb.utf8.count + yaml.utf8.count < 1500, "a small file")
        do {
            _ = try Self.parse(bomb + yaml, file: "hosts.yml")
            Issue.record("an alias bomb was read")
        } catch let error as InputError {
            #expect(error.message.contains("expands to more than 100000"), "\(error.message)")
        }
        // 40 levels of groups, each the child of the two above it: 2^40 paths, 80 groups.
        var ini = "[chef_backend:children]\ng0a\ng0b\n[chef_backend:vars]\ndrover_cluster=c\n"
        for level in 0..<40 {
            for side in ["a", "b"] { ini += "[g\(level)\(side):children]\ng\(level + 1)a\ng\(level + 1)b\n" }
        }
        ini += "[g40a]\nbe1\nbe2\n[g40b]\nbe3\n"
        let inventory = try Self.parse(ini)
        #expect(inventory.backends.map(\.name) == ["be1", "be2", "be3"], "each host once")
    }

    @Test(arguments: refusals)
    func badInventoriesNameTheFileLineAndVariable(_ refusal: Refusal) {
        do {
            _ = try Self.parse(refusal.text)
            Issue.record("accepted: \(refusal.name)")
        } catch let error as InputError {
            #expect(error.file == "hosts.ini" && error.line == refusal.line && error.key == refusal.key, "\(error)")
            #expect(error.message.contains(refusal.says), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
