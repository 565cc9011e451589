import DroverInventory
import DroverSSH
import DroverTestSupport
import Foundation
import Testing

@Suite("inventory")
struct InventoryTests {
    @Test func annotatedExampleParsesWithEveryKey() throws {
        let path = Repository.root.appendingPathComponent("Fixtures/Inventories/annotated.yml").path
        let inventory = try Inventory.load(path: path)
        #expect(inventory.cluster == "prod-backend")
        #expect(inventory.backends.map(\.name) == ["be1", "be2", "be3"])
        #expect(inventory.backends[2].port == 2222 && inventory.backends[0].port == 22)
        #expect(inventory.package?.version == "2.3.16" && inventory.package?.format == .deb)
        #expect(inventory.package?.upload == "~/Downloads/chef-backend_2.3.16-1_amd64.deb")
        #expect(inventory.ssh.hostKeyChecking == .strict && inventory.ssh.commandTimeout == .seconds(1800))
        #expect(inventory.ssh.keepaliveInterval == .seconds(15) && inventory.ssh.keepaliveCount == 3)
        #expect(inventory.timeouts.rejoin == .seconds(900) && inventory.timeouts.pollInterval == .seconds(2))
        #expect(inventory.frontends.first?.statusURL == "https://chef.example.com/_status")
        #expect(inventory.digest.count == 64)
    }

    @Test(
        "versions are read from package file names",
        arguments: [
            ("/var/tmp/chef-backend_2.3.16-1_amd64.deb", "2.3.16"),
            ("/tmp/chef-backend-2.2.1-1.el7.x86_64.rpm", "2.2.1"),
            ("/tmp/chef-backend_3.1.1-1_amd64.deb", "3.1.1"),
        ])
    func versionFromFileName(path: String, version: String) {
        #expect(Inventory.versionFromFileName(path) == version)
    }

    @Test(
        "durations", arguments: [("500ms", 500), ("10s", 10_000), ("5m", 300_000), ("1h", 3_600_000), ("1.5s", 1500)])
    func durations(text: String, milliseconds: Int64) {
        #expect(DurationText.parse(text) == .milliseconds(milliseconds))
    }

    static let valid = """
        cluster: c1
        package:
          path: /var/tmp/chef-backend_2.3.16-1_amd64.deb
        backends:
          - name: be1
            host: 10.0.0.1
          - name: be2
            host: 10.0.0.2
        """

    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        var yaml: String
        var line: Int
        var key: String?
        var fragment: String
        var testDescription: String { label }
    }

    /// Values a careless or hostile inventory holds: each refused where it is read (issue 29), never a crash.
    static let hostile: [Case] =
        [
            ("--help", "name"), ("be'2", "name"), ("be$(id)", "name"), ("be\\e[31m", "name"), ("{{node}}", "name"),
        ].map { value, _ in
            Case(
                label: "node name \(value.debugDescription)",
                yaml: valid.replacingOccurrences(of: "name: be2", with: "name: \"\(value)\""), line: 7,
                key: "backends[1].name", fragment: "is not a usable node name")
        }
        + ["-oProxyCommand=touch /tmp/x", "10.0.0.2 -p 2", "host`id`", "h\\e]0;x\\a"].map { value in
            Case(
                label: "host \(value.debugDescription)",
                yaml: valid.replacingOccurrences(of: "host: 10.0.0.2", with: "host: \"\(value)\""), line: 8,
                key: "backends[1].host", fragment: "is not a host name or IP address")
        } + [
            Case(
                label: "a cluster name with a space",
                yaml: valid.replacingOccurrences(of: "cluster: c1", with: "cluster: c 1"),
                line: 1, key: "cluster", fragment: "is not a usable cluster name"),
            Case(
                label: "a user that is an option", yaml: valid + "\nssh:\n  user: -oX\n", line: 10, key: "ssh.user",
                fragment: "is not a login name"),
            Case(
                label: "a duration past any sense", yaml: valid + "\nssh:\n  command_timeout: 99999999999999999999h\n",
                line: 10, key: "ssh.command_timeout", fragment: "is not a duration"),
            Case(
                label: "a command timeout of zero", yaml: valid + "\nssh:\n  command_timeout: 0s\n", line: 10,
                key: "ssh.command_timeout", fragment: "out of range; write from 1s to 168h"),
            Case(
                label: "a poll interval of zero", yaml: valid + "\ntimeouts:\n  poll_interval: 0ms\n", line: 10,
                key: "timeouts.poll_interval", fragment: "out of range; write from 10ms to 10m"),
            Case(
                label: "a rejoin wait of a month", yaml: valid + "\ntimeouts:\n  rejoin: 720h\n", line: 10,
                key: "timeouts.rejoin", fragment: "out of range"),
            Case(
                label: "stable polls past reason", yaml: valid + "\ntimeouts:\n  stable_polls: 1000\n", line: 10,
                key: "timeouts.stable_polls", fragment: "from 1 to 100"),
            Case(
                label: "a raw control character",
                yaml: valid.replacingOccurrences(of: "name: be2", with: "name: be\u{1B}2"),
                line: 7, key: nil, fragment: "control characters are not allowed (character U+1B)"),
        ]

    /// A `probe:` that is not one command or one http(s) URL, or polls outside 100 ms to a minute.
    static let invalidProbes: [Case] = [
        Case(
            label: "probe with both", yaml: valid + "\nprobe:\n  command: [true]\n  url: http://x/\n", line: 11,
            key: "probe.url", fragment: "not both"),
        Case(
            label: "probe with neither", yaml: valid + "\nprobe:\n  interval: 1s\n", line: 10, key: "probe",
            fragment: "a command (a list) or a url"),
        Case(
            label: "probe url not http", yaml: valid + "\nprobe:\n  url: file:///etc/passwd\n", line: 10,
            key: "probe.url",
            fragment: "not an http:// or https:// URL"),
        Case(
            label: "probe command empty", yaml: valid + "\nprobe:\n  command: []\n", line: 10, key: "probe.command",
            fragment: "give the program"),
        Case(
            label: "probe command with a control character", yaml: valid + "\nprobe:\n  command: [\"check\\e[31m\"]\n",
            line: 10, key: "probe.command", fragment: "control character"),
        Case(
            label: "probe interval too short", yaml: valid + "\nprobe:\n  command: [true]\n  interval: 10ms\n",
            line: 11,
            key: "probe.interval", fragment: "interval"),
    ]

    @Test func aProbeIsACommandOrAURL() throws {
        let command = try Inventory.parse(
            Self.valid + "\nprobe:\n  command: [/usr/local/bin/write-check, --db, 'chef prod']\n  interval: 250ms\n",
            file: "inv.yml")
        #expect(command.probe?.target == .command(["/usr/local/bin/write-check", "--db", "chef prod"]))
        #expect(command.probe?.interval == .milliseconds(250) && command.probe?.timeout == .seconds(2))
        #expect(command.probe?.description == "/usr/local/bin/write-check --db 'chef prod'")
        let url = try Inventory.parse(
            Self.valid + "\nprobe:\n  url: https://lb.example/writes\n  timeout: 5s\n", file: "inv.yml")
        #expect(url.probe == Inventory.Probe(target: .url("https://lb.example/writes"), timeout: .seconds(5)))
        #expect(try Inventory.parse(Self.valid, file: "inv.yml").probe == nil)
    }

    static let invalid: [Case] =
        hostile + invalidProbes + [
            Case(
                label: "unknown top-level key", yaml: valid + "\nbakcends: []\n", line: 9, key: "bakcends",
                fragment: "unknown key"),
            Case(
                label: "unknown backend key",
                yaml: valid.replacingOccurrences(of: "    host: 10.0.0.2", with: "    host: 10.0.0.2\n    hots: x"),
                line: 9, key: "backends[1].hots", fragment: "allowed here"),
            Case(
                label: "missing cluster", yaml: valid.replacingOccurrences(of: "cluster: c1\n", with: ""), line: 1,
                key: nil, fragment: "missing required key 'cluster'"),
            Case(
                label: "missing backends", yaml: "cluster: c1\n", line: 1, key: nil,
                fragment: "missing required key 'backends'"),
            Case(
                label: "missing host", yaml: valid.replacingOccurrences(of: "\n    host: 10.0.0.2", with: ""), line: 7,
                key: "backends[1]", fragment: "missing required key 'backends[1].host'"),
            Case(
                label: "duplicate name", yaml: valid.replacingOccurrences(of: "name: be2", with: "name: be1"), line: 7,
                key: "backends[1].name", fragment: "duplicate backend name 'be1'"),
            Case(
                label: "duplicate host", yaml: valid.replacingOccurrences(of: "host: 10.0.0.2", with: "host: 10.0.0.1"),
                line: 8, key: "backends[1].host", fragment: "duplicate host 10.0.0.1:22"),
            Case(
                label: "package neither deb nor rpm",
                yaml: valid.replacingOccurrences(of: "amd64.deb", with: "amd64.zip"),
                line: 3, key: "package.path", fragment: "neither a .deb nor a .rpm"),
            Case(
                label: "bad duration", yaml: valid + "\ntimeouts:\n  rejoin: 10 minutes\n", line: 10,
                key: "timeouts.rejoin", fragment: "not a duration"),
            Case(
                label: "bad host key mode", yaml: valid + "\nssh:\n  host_key_checking: sometimes\n", line: 10,
                key: "ssh.host_key_checking", fragment: "strict, accept-new or off"),
            Case(
                label: "bad port", yaml: valid + "\nssh:\n  port: 70000\n", line: 10, key: "ssh.port",
                fragment: "not a TCP port"),
            Case(
                label: "no keepalive may go unanswered", yaml: valid + "\nssh:\n  keepalive_count: 0\n", line: 10,
                key: "ssh.keepalive_count",
                fragment: "write 1 to 100"),
            Case(
                label: "bad keepalive interval", yaml: valid + "\nssh:\n  keepalive_interval: often\n", line: 10,
                key: "ssh.keepalive_interval",
                fragment: "not a duration"),
            Case(
                label: "bad sha256",
                yaml: valid.replacingOccurrences(of: "amd64.deb\n", with: "amd64.deb\n  sha256: xyz\n"), line: 4,
                key: "package.sha256", fragment: "64 hexadecimal"),
            // An unclosed construct is reported where it starts, not where libyaml noticed the file went on.
            Case(
                label: "not YAML", yaml: "cluster: [unclosed\n", line: 1, key: nil,
                fragment:
                    "not valid YAML: did not find expected ',' or ']' (the flow sequence that starts here is not closed)"
            ),
            Case(
                label: "unclosed quote", yaml: valid + "\ntimeouts:\n  rejoin: \"10m\nssh:\n  user: root\n", line: 10,
                key: nil, fragment: "(the quoted scalar that starts here is not closed)"),
            Case(
                label: "unknown topology", yaml: "topology: drbd\n" + valid, line: 1, key: "topology",
                fragment: "chef-backend or drbd-pair"),
            Case(
                label: "drbd block in a chef-backend inventory", yaml: valid + "\ndrbd:\n  resource: pc0\n", line: 9,
                key: "drbd",
                fragment: "add `topology: drbd-pair`"),
            Case(
                label: "a drbd-pair of three",
                yaml: pairValid.replacingOccurrences(
                    of: "    host: 10.1.0.22", with: "    host: 10.1.0.22\n  - name: be3\n    host: 10.1.0.23"),
                line: 5, key: "backends", fragment: "exactly two backends"),
            Case(
                label: "a drbd-pair of one",
                yaml: pairValid.replacingOccurrences(of: "  - name: be2\n    host: 10.1.0.22\n", with: ""),
                line: 5, key: "backends", fragment: "lists 1"),
            Case(
                label: "unknown drbd key",
                yaml: pairValid.replacingOccurrences(
                    of: "  ctl: private-chef-ctl", with: "  ctl: private-chef-ctl\n  device: /dev/drbd0"),
                line: 5, key: "drbd.device", fragment: "unknown key; allowed here: resource, ctl"),
            Case(
                label: "unknown control command",
                yaml: pairValid.replacingOccurrences(of: "ctl: private-chef-ctl", with: "ctl: knife"),
                line: 4, key: "drbd.ctl", fragment: "chef-server-ctl or private-chef-ctl"),
            Case(
                label: "package in a drbd-pair",
                yaml: pairValid + "package:\n  path: /var/tmp/chef-backend_2.3.16-1_amd64.deb\n", line: 11,
                key: "package", fragment: "takes no package"),
            Case(
                label: "a cluster's timeout in a drbd-pair",
                yaml: pairValid.replacingOccurrences(of: "transition: 2m", with: "rejoin: 5m"), line: 10,
                key: "timeouts.rejoin",
                fragment: "takes transition, sync"),
            Case(
                label: "a pair's timeout in a cluster", yaml: valid + "\ntimeouts:\n  transition: 5m\n", line: 10,
                key: "timeouts.transition",
                fragment: "timeout of drbd-pair inventories"),
            Case(
                label: "a frontend with neither status_url nor host", yaml: valid + "\nfrontends:\n  - name: fe1\n",
                line: 10, key: "frontends[0]",
                fragment: "needs status_url"),
            Case(
                label: "a frontend's SSH settings without host",
                yaml: valid + "\nfrontends:\n  - name: fe1\n    status_url: http://fe1/_status\n    user: chef\n",
                line: 12, key: "frontends[0].user", fragment: "add host:"),
            Case(
                label: "a frontend named like a backend",
                yaml: valid + "\nfrontends:\n  - name: be1\n    host: 10.0.0.9\n",
                line: 10, key: "frontends[0].name",
                fragment: "also a backend's name"),
            Case(
                label: "a frontend package without frontends",
                yaml: valid + "\nfrontend_package:\n  path: /var/tmp/chef-server-core_15.9.38-1_amd64.deb\n", line: 9,
                key: "frontend_package", fragment: "lists no frontends"),
            Case(
                label: "a frontend package whose version cannot be read",
                yaml: valid
                    + "\nfrontends:\n  - name: fe1\n    host: 10.0.0.9\nfrontend_package:\n  path: /var/tmp/server.deb\n",
                line: 13, key: "frontend_package.path", fragment: "add frontend_package.version"),
            Case(
                label: "a frontend package's license acceptance is not a boolean",
                yaml: valid
                    + "\nfrontends:\n  - name: fe1\n    host: 10.0.0.9\nfrontend_package:\n  path: /var/tmp/chef-server-core_15.9.38-1_amd64.deb\n  accept_license: yes please\n",
                line: 14, key: "frontend_package.accept_license", fragment: "expected true or false"),
            Case(
                label: "backup is not a boolean",
                yaml: valid.replacingOccurrences(of: "amd64.deb\n", with: "amd64.deb\n  backup: sometimes\n"), line: 4,
                key: "package.backup", fragment: "expected true or false"),
        ]

    @Test func aDirectoryLoginIsAUser() throws {
        let inventory = try Inventory.parse(Self.valid + "\nssh:\n  user: jdoe@corp.example.com\n", file: "u.yml")
        #expect(inventory.backends[0].user == "jdoe@corp.example.com")
    }

    @Test func keepalivesAreSettableAndOffWithZero() throws {
        let set = try Inventory.parse(
            Self.valid + "\nssh:\n  keepalive_interval: 5s\n  keepalive_count: 4\n", file: "k.yml")
        let options = set.sshOptions(for: set.backends[0])
        #expect(options.keepaliveInterval == .seconds(5) && options.keepaliveCountMax == 4)
        let defaults = try Inventory.parse(Self.valid, file: "d.yml").sshOptions(for: set.backends[0])
        #expect(defaults.keepaliveInterval == .seconds(15) && defaults.keepaliveCountMax == 3, "OpenSSH-like defaults")
        let off = try Inventory.parse(Self.valid + "\nssh:\n  keepalive_interval: 0s\n", file: "o.yml")
        #expect(off.sshOptions(for: off.backends[0]).keepaliveInterval == nil)
    }

    @Test(
        "frontend package versions are read from chef-server-core file names",
        arguments: [
            ("/var/tmp/chef-server-core_15.9.38-1_amd64.deb", "15.9.38"),
            ("/tmp/chef-server-core-14.0.65-1.el7.x86_64.rpm", "14.0.65"),
        ])
    func frontendVersionFromFileName(path: String, version: String) throws {
        let inventory = try Inventory.parse(
            Self.valid + "\nfrontends:\n  - name: fe1\n    host: 10.0.0.9\nfrontend_package:\n  path: \(path)\n",
            file: "f.yml")
        #expect(inventory.frontendPackage?.version == version && inventory.frontendPackage?.acceptLicense == false)
        #expect(inventory.frontendPackage?.needsLicense == true, "13 and later ask to accept the Chef license")
    }

    @Test func frontendsReachedOverSSH() throws {
        let inventory = try Inventory.parse(
            Self.valid + """

                ssh:
                  user: admin
                frontends:
                  - name: fe1
                    host: 10.0.0.11
                  - name: fe2
                    host: 10.0.0.12
                    port: 2222
                    user: chef
                    status_url: https://fe2.example.com/_status
                  - name: fe3
                    status_url: https://fe3.example.com/_status
                """, file: "f.yml")
        #expect(inventory.sshFrontends.map(\.name) == ["fe1", "fe2"])
        #expect(inventory.sshEndpoint(named: "fe1")?.user == "admin" && inventory.sshEndpoint(named: "fe1")?.port == 22)
        #expect(
            inventory.sshEndpoint(named: "fe2")?.user == "chef" && inventory.sshEndpoint(named: "fe2")?.port == 2222)
        #expect(
            inventory.sshEndpoint(named: "fe3") == nil
                && inventory.frontends[2].statusURL == "https://fe3.example.com/_status")
        #expect(inventory.sshEndpoint(named: "be1")?.host == "10.0.0.1")
        #expect(
            try Inventory.parse(
                Self.valid.replacingOccurrences(of: "amd64.deb\n", with: "amd64.deb\n  backup: true\n"), file: "f.yml"
            ).package?.backup == true)
    }

    static let pairValid = """
        cluster: legacy-ha
        topology: drbd-pair
        drbd:
          ctl: private-chef-ctl
        backends:
          - { name: be1, host: 10.1.0.21 }
          - name: be2
            host: 10.1.0.22
        timeouts:
          transition: 2m

        """

    @Test func aDRBDPairInventory() throws {
        let pair = try Inventory.parse(Self.pairValid, file: "pair.yml")
        #expect(pair.topology == .drbdPair && pair.drbd == Inventory.DRBD(resource: "pc0", ctl: "private-chef-ctl"))
        #expect(
            pair.timeouts.transition == .seconds(120) && pair.timeouts.sync == .seconds(6 * 3600) && pair.package == nil
        )
        let cluster = try Inventory.parse(Self.valid, file: "c.yml")
        #expect(cluster.topology == .chefBackend && cluster.drbd == Inventory.DRBD())
        // Above the 5 minutes pgsql-promote may take since chef-backend 1.3.2, with margin.
        #expect(cluster.timeouts.failover == .seconds(600) && cluster.timeouts.failover > .seconds(300))
        let annotated = try Inventory.load(
            path: Repository.root.appendingPathComponent("Fixtures/Inventories/drbd-pair.yml").path)
        #expect(
            annotated.topology == .drbdPair && annotated.backends.map(\.name) == ["be1", "be2"]
                && annotated.timeouts.transition == .seconds(300))
    }

    @Test("invalid inventories name the file, line and key", arguments: invalid)
    func invalidInventory(_ testCase: Case) {
        do {
            _ = try Inventory.parse(testCase.yaml, file: "inv.yml")
            Issue.record("accepted an invalid inventory")
        } catch let error as InputError {
            #expect(error.file == "inv.yml")
            #expect(error.line == testCase.line, "\(error.localizedDescription)")
            #expect(error.key == testCase.key, "\(error.localizedDescription)")
            #expect(error.localizedDescription.contains(testCase.fragment), "\(error.localizedDescription)")
            #expect(error.localizedDescription.hasPrefix("inv.yml:\(error.line): "))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func backendOverridesSSHDefaults() throws {
        let inventory = try Inventory.parse(
            Self.valid + "\nssh:\n  user: admin\n  port: 2200\n".replacingOccurrences(of: "", with: ""), file: "i")
        #expect(inventory.backends.allSatisfy { $0.user == "admin" })
        let text = Self.valid.replacingOccurrences(
            of: "    host: 10.0.0.2", with: "    host: 10.0.0.2\n    user: other\n    port: 2022")
        let overridden = try Inventory.parse(text, file: "i")
        #expect(overridden.backends[1].user == "other" && overridden.backends[1].port == 2022)
        let options = overridden.sshOptions(for: overridden.backends[1])
        #expect(options.user == "other" && options.hostKeyPolicy == .strict)
    }
}

/// YAML that aliases make huge: refused before it is read, in bounded time (issue 29).
@Suite("inventory bounds", .timeLimit(.minutes(1)))
struct InventoryBoundsTests {
    @Test func aYAMLAliasBombIsRefused() {
        let bomb =
            "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + (1..<9).map { "a\($0): &a\($0) [\(Array(repeating: "*a\($0 - 1)", count: 10).joined(separator: ", "))]" }
            .joined(separator: "\n") + "\n" + InventoryTests.valid
        #expect(bomb.utf8.count < 1000)
        do {
            _ = try Inventory.parse(bomb, file: "bomb.yml")
            Issue.record("an alias bomb was read")
        } catch let error as InputError {
            #expect(error.message.contains("expands to more than 100000 values"), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func aFileOverOneMegabyteIsRefused() {
        let big = InventoryTests.valid + "\n" + String(repeating: "# padding\n", count: 110_000)
        #expect(throws: InputError.self) { try Inventory.parse(big, file: "big.yml") }
    }
}
