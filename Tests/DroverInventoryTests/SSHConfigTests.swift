import DroverInventory
import DroverSSH
import DroverTestSupport
import Foundation
import Testing

/// OpenSSH client configuration, read as ssh reads it for the keywords Drover uses.
@Suite struct SSHConfigTests {
    static func values(_ text: String, _ host: String) throws -> [String: [String]] {
        try SSHConfig.parse(text, file: "config").resolve(host).mapValues { $0.map(\.value) }
    }

    @Test func patternsNegationsAndTheFirstValueWin() throws {
        let text = """
            Host db.prod
              User dba
            Host *.prod !db.prod
              User deploy
              Port 2222
            Host be?.prod
              Port 22
              IdentityFile ~/.ssh/one
            Host *
              IdentityFile ~/.ssh/two
              User nobody
            """
        let be1 = try Self.values(text, "be1.prod")
        #expect(be1["user"] == ["deploy"] && be1["port"] == ["2222"], "the first value wins: \(be1)")
        #expect(be1["identityfile"] == ["~/.ssh/one", "~/.ssh/two"], "every IdentityFile counts, in order")
        #expect(try Self.values(text, "db.prod")["user"] == ["dba"], "a negated pattern keeps db.prod out of *.prod")
        #expect(try Self.values(text, "elsewhere")["user"] == ["nobody"])
    }

    @Test func equalsSignsQuotesAndCase() throws {
        let values = try Self.values(
            "HOST x\n  hostname=10.0.0.9\n  IdentityFile \"/keys/my key\"\n  port = 2200\n", "x")
        #expect(
            values["hostname"] == ["10.0.0.9"] && values["identityfile"] == ["/keys/my key"]
                && values["port"] == ["2200"])
    }

    @Test func includeReadsRelativeGlobsInPlace() throws {
        let directory = try temporaryDirectory("ssh-config")
        try FileManager.default.createDirectory(atPath: directory + "/conf.d", withIntermediateDirectories: true)
        try "Host be1\n  HostName 10.0.0.1\n".write(
            toFile: directory + "/conf.d/a.conf", atomically: true, encoding: .utf8)
        try "Host be1\n  HostName 10.9.9.9\n  User from-b\n".write(
            toFile: directory + "/conf.d/b.conf", atomically: true, encoding: .utf8)
        let config = try SSHConfig.parse(
            "Include conf.d/*.conf\nHost *\n  User late\n", file: "config", base: directory)
        let values = try config.resolve("be1").mapValues { $0.map(\.value) }
        #expect(values["hostname"] == ["10.0.0.1"] && values["user"] == ["from-b"], "\(values)")
        #expect(try config.resolve("be1")["hostname"]?.first?.source == directory + "/conf.d/a.conf:2")
    }

    @Test func matchBlocksAreSkippedWithAWarning() throws {
        let config = try SSHConfig.parse("Match host be1\n  User skipped\nHost be1\n  Port 2200\n", file: "config")
        #expect(
            config.warnings == [
                "config:1: Match blocks are not read; Drover skips this one up to the next Host or Match"
            ])
        let values = try config.resolve("be1").mapValues { $0.map(\.value) }
        #expect(values["user"] == nil && values["port"] == ["2200"])
    }

    @Test(arguments: [
        ("Host be1\n  ProxyCommand nc %h %p\n", "ProxyCommand", 2, "cannot run a ProxyCommand"),
        ("Host be1\n  CertificateFile ~/.ssh/id-cert.pub\n", "CertificateFile", 2, "certificate"),
    ])
    func keywordsDroverCannotHonourAreErrorsWithFileAndLine(
        _ text: String, _ keyword: String, _ line: Int, _ says: String
    ) throws {
        let config = try SSHConfig.parse(text, file: "config")
        #expect(throws: Never.self) { try config.resolve("other.host") }
        do {
            _ = try config.resolve("be1")
            Issue.record("\(keyword) accepted")
        } catch let error as InputError {
            #expect(error.file == "config" && error.line == line && error.message.contains(says), "\(error)")
        }
    }

    @Test func proxyJumpGivesEachHopItsOwnHostBlock() throws {
        let inventory = try Self.inventory(
            "cluster: c\nssh:\n  config_file: CONFIG\nbackends:\n  - name: be1\n    host: be1\n  - name: be2\n    host: be2\n    proxy_jump: none\n",
            config: """
                Host be*
                  ProxyJump ops@outer:2222,inner
                Host outer
                  HostName 10.9.0.1
                  User admin
                Host inner
                  HostName 10.9.0.2
                  User jump
                  ProxyJump first
                Host first
                  HostName 10.9.0.9
                """)
        let hops = inventory.backends[0].jumps.map { "\($0.user)@\($0.host):\($0.port)" }
        // ProxyJump's own user@ and :port win; a hop's own ProxyJump goes before it, as ssh does.
        #expect(hops == ["ops@10.9.0.1:2222", "\(UserAccount.name)@10.9.0.9:22", "jump@10.9.0.2:22"], "\(hops)")
        #expect(inventory.backends[1].jumps.isEmpty, "the inventory's proxy_jump: none wins")
    }

    @Test func theInventoryNamesJumpHostsToo() throws {
        let inventory = try Self.inventory(
            "cluster: c\nssh:\n  config_file: none\n  proxy_jump: bastion.example.com\nbackends:\n  - name: be1\n    host: 10.0.0.1\n",
            config: "")
        #expect(inventory.backends[0].jumps.map(\.host) == ["bastion.example.com"])
        do {
            _ = try Self.inventory(
                "cluster: c\nbackends:\n  - name: be1\n    host: h\n    proxy_jump: \"b:port\"\n", config: "")
            Issue.record("accepted a bad jump host")
        } catch let error as InputError {
            #expect(error.key == "backends[0].proxy_jump" && error.message.contains("[user@]host[:port]"), "\(error)")
        }
    }

    @Test func proxyJumpNoneIsADirectConnection() throws {
        #expect(
            try Self.values("Host be1\n  ProxyJump none\nHost *\n  ProxyJump bastion\n", "be1")["proxyjump"] == ["none"]
        )
    }

    @Test func tokensAreExpanded() {
        let home = UserAccount.expandingTilde("~")
        #expect(
            SSHConfig.expand("~/.ssh/%h-%r-%u-%%.key", host: "be1", remoteUser: "root")
                == "\(home)/.ssh/be1-root-\(UserAccount.name)-%.key")
        #expect(SSHConfig.expand("%d/x", host: "h", remoteUser: "r") == "\(home)/x")
    }

    // MARK: Applied to an inventory

    static func inventory(_ yaml: String, config: String) throws -> Inventory {
        let directory = try temporaryDirectory("ssh-config")
        try config.write(toFile: directory + "/config", atomically: true, encoding: .utf8)
        let path = directory + "/inventory.yml"
        try yaml.replacingOccurrences(of: "CONFIG", with: directory + "/config").write(
            toFile: path, atomically: true, encoding: .utf8)
        return try Inventory.load(path: path)
    }

    static let config = """
        Host be*
          HostName 10.0.0.%h
          User admin
          Port 2200
          IdentityFile ~/.ssh/%h.key
          UserKnownHostsFile /etc/drover/known_hosts
          StrictHostKeyChecking accept-new
          IdentitiesOnly yes
          ServerAliveInterval 20
          ServerAliveCountMax 5
        """

    /// Two inventory hosts that ssh_config leads to one machine: refused by name, never a crash (issue 29).
    @Test func twoHostsThatSSHConfigLeadsToOneEndpointAreRefused() throws {
        do {
            _ = try Self.inventory(
                "cluster: c\nssh:\n  config_file: CONFIG\nbackends:\n  - name: be1\n    host: a\n  - name: be2\n    host: b\n",
                config: "Host a b\n  HostName 10.0.0.7\n")
            Issue.record("accepted two backends on one endpoint")
        } catch let error as InputError {
            #expect(error.line == 7 && error.key == "host", "\(error.localizedDescription)")
            #expect(
                error.localizedDescription.contains(
                    "be2 and be1 (line 5) reach the same host 10.0.0.7:22 after ssh_config"),
                "\(error.localizedDescription)")
        }
        #expect(throws: InputError.self, "a HostName that is an option") {
            try Self.inventory(
                "cluster: c\nssh:\n  config_file: CONFIG\nbackends:\n  - name: be1\n    host: a\n",
                config: "Host a\n  HostName -oProxyCommand=x\n")
        }
    }

    @Test func sshConfigFillsInWhatTheInventoryDoesNotSay() throws {
        let inventory = try Self.inventory(
            "cluster: c\nssh:\n  config_file: CONFIG\nbackends:\n  - name: be1\n    host: be1\n  - name: be2\n    host: be2\n    port: 22\n",
            config: Self.config)
        let be1 = inventory.backends[0]
        let be2 = inventory.backends[1]
        #expect(be1.host == "10.0.0.be1" && be1.user == "admin" && be1.port == 2200)
        #expect(be1.identityFiles == [UserAccount.expandingTilde("~/.ssh/10.0.0.be1.key")], "%h is the HostName")
        #expect(be2.port == 22, "the inventory's value wins")
        let options = inventory.sshOptions(for: be1)
        #expect(options.knownHostsFile == "/etc/drover/known_hosts" && options.hostKeyPolicy == .acceptNew)
        #expect(options.agentSocket == nil && options.keepaliveInterval == .seconds(20), "IdentitiesOnly: no agent")
        #expect(
            options.keepaliveCountMax == 5
                && inventory.sources["backends[0].keepalive_count"]?.hasSuffix("(ServerAliveCountMax)") == true)
        #expect(inventory.sources["backends[0].user"]?.hasSuffix("config:3 (User)") == true)
    }

    @Test func inventorySSHSettingsWinAndConfigFileNoneReadsNothing() throws {
        let written = try Self.inventory(
            "cluster: c\nssh:\n  config_file: CONFIG\n  user: root\n  known_hosts: /k\nbackends:\n  - name: be1\n    host: be1\n",
            config: Self.config)
        #expect(
            written.backends[0].user == "root" && written.sshOptions(for: written.backends[0]).knownHostsFile == "/k")
        #expect(written.backends[0].host == "10.0.0.be1", "HostName still says where be1 is")
        let keepalive = try Self.inventory(
            "cluster: c\nssh:\n  config_file: CONFIG\n  keepalive_count: 2\nbackends:\n  - name: be1\n    host: be1\n",
            config: Self.config)
        #expect(
            keepalive.sshOptions(for: keepalive.backends[0]).keepaliveCountMax == 2,
            "the inventory's keepalive_count wins")
        let none = try Self.inventory(
            "cluster: c\nssh:\n  config_file: none\nbackends:\n  - name: be1\n    host: be1\n", config: Self.config)
        #expect(none.backends[0].host == "be1" && none.backends[0].port == 22)
    }

    @Test func aConfigErrorNamesTheConfigFileAndLine() throws {
        do {
            _ = try Self.inventory(
                "cluster: c\nssh:\n  config_file: CONFIG\nbackends:\n  - name: be1\n    host: be1\n",
                config: "Host be1\n  Port twenty\n")
            Issue.record("accepted")
        } catch let error as InputError {
            #expect(error.file.hasSuffix("/config") && error.line == 2 && error.key == "Port", "\(error)")
        }
    }
}
