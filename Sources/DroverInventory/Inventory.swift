import DroverSSH
import Foundation

/// A cluster inventory (YAML): the backends, how to reach them, the package and the timeouts.
/// See `Fixtures/Inventories/annotated.yml` for every key, documented.
public struct Inventory: Sendable {
    /// SSH settings shared by every backend unless a backend overrides them.
    public struct SSH: Sendable {
        public var user: String = UserAccount.name
        public var port = 22
        public var identityFiles: [String] = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa"]
        public var knownHosts = "~/.ssh/known_hosts"
        public var hostKeyChecking: HostKeyPolicy = .strict
        public var connectTimeout: Duration = .seconds(10)
        public var commandTimeout: Duration = .seconds(1800)
        /// `ssh.keepalive_interval`: keepalives while a command runs or a wait polls (nil: none), as
        /// OpenSSH's ServerAliveInterval.
        public var keepaliveInterval: Duration? = .seconds(15)
        /// `ssh.keepalive_count`: keepalives in a row that may go unanswered before the connection counts as
        /// lost and Drover reconnects (OpenSSH's ServerAliveCountMax).
        public var keepaliveCount = 3
        public var sudo = false
        /// The OpenSSH client configuration read for every host: `ssh.config_file` (`none`: none), by default
        /// `~/.ssh/config` then `/etc/ssh/ssh_config`.
        public var configFiles = ["~/.ssh/config", "/etc/ssh/ssh_config"]
        /// `ssh.proxy_jump`: jump hosts for every backend (`[user@]host[:port]`, comma-separated; `none`).
        public var proxyJump: String?
    }

    /// The package to install.
    public struct Package: Sendable {
        public enum Format: String, Sendable { case deb, rpm }
        /// Where the package lies on every backend.
        public var path: String
        public var version: String
        public var sha256: String?
        public var format: Format
        /// A local file copied to `path` on every backend before a run.
        public var upload: String?
        /// `backup: true`: every upgrade takes `chef-backend-ctl backup` on a follower before its first change.
        public var backup = false
    }

    /// The Chef Infra Server package (`chef-server-core`) a frontend upgrade installs on every frontend.
    public struct FrontendPackage: Sendable {
        /// Where the package lies on every frontend.
        public var path: String
        public var version: String
        public var sha256: String?
        public var format: Package.Format
        /// `accept_license: true`: the Chef license is accepted for Chef Infra Server 13 and later
        /// (`CHEF_LICENSE=accept chef-server-ctl upgrade`); never accepted without it.
        public var acceptLicense: Bool

        /// Chef Infra Server 13 and later ask to accept the Chef license at `chef-server-ctl upgrade`.
        public var needsLicense: Bool { (Int(version.split(separator: ".").first ?? "") ?? 0) >= 13 }
    }

    /// One backend node.
    public struct Backend: Sendable, Equatable {
        public var name: String
        public var host: String
        public var port: Int
        public var user: String
        public var identityFiles: [String]
        public var line: Int
        /// What ssh_config set for this host where the inventory did not (nil: the inventory's `ssh:`).
        public var knownHosts: String? = nil
        public var hostKeyChecking: HostKeyPolicy? = nil
        public var connectTimeout: Duration? = nil
        /// The ssh-agent socket (`""`: none), from `IdentityAgent` / `IdentitiesOnly`; nil: `SSH_AUTH_SOCK`.
        public var agentSocket: String? = nil
        public var keepaliveInterval: Duration? = nil
        /// ServerAliveCountMax from ssh_config (nil: the inventory's `ssh.keepalive_count`).
        public var keepaliveCount: Int? = nil
        /// The jump hosts (ProxyJump) to go through, first one first; empty: connected to directly.
        public var jumps: [Backend] = []
    }

    /// A Chef Infra Server frontend: its `/_status` URL (checked over HTTP at the end of an upgrade) and,
    /// for the upgrade paths that run `chef-server-ctl` on it, how to reach it over SSH.
    public struct Frontend: Sendable, Equatable {
        public var name: String
        public var statusURL: String?
        /// The SSH endpoint (host, port, user, keys as for backends), nil without `host`.
        public var ssh: Backend?
    }

    public struct Timeouts: Sendable {
        public var rejoin: Duration = .seconds(900)
        /// Above the 5 minutes chef-backend's `pgsql-promote` may wait for recovery.done since 1.3.2: a
        /// promotion can take that long, and the hand-over (an election, the old leader rejoining) more.
        public var failover: Duration = .seconds(600)
        /// drbd-pair: how long a keepalived failover (or a promotion) may take.
        public var transition: Duration = .seconds(300)
        /// drbd-pair: how long a DRBD resync may take.
        public var sync: Duration = .seconds(6 * 3600)
        public var pollInterval: Duration = .seconds(2)
        public var stablePolls = 2

        /// The defaults.
        public init() {}
    }

    /// What kind of high-availability backend the inventory describes.
    public enum Topology: String, Sendable, CaseIterable, Codable {
        /// A Chef Backend cluster: three nodes, etcd, leaderl, PostgreSQL, Elasticsearch.
        case chefBackend = "chef-backend"
        /// The legacy pair: two backends, DRBD block replication and keepalived moving a virtual IP.
        case drbdPair = "drbd-pair"
    }

    /// The DRBD pair's settings (`drbd:`; only with `topology: drbd-pair`).
    public struct DRBD: Sendable, Equatable {
        /// The DRBD resource replicating `/var/opt/opscode/drbd/data`.
        public var resource = "pc0"
        /// The server's control command: `chef-server-ctl`, or `private-chef-ctl` on Enterprise Chef 11.
        public var ctl = "chef-server-ctl"

        public init(resource: String = "pc0", ctl: String = "chef-server-ctl") {
            self.resource = resource
            self.ctl = ctl
        }

        public static let controls = ["chef-server-ctl", "private-chef-ctl"]
    }

    public var file: String
    public var cluster: String
    public var topology: Topology = .chefBackend
    /// The pair's DRBD resource and control command (defaults when the inventory has no `drbd:`).
    public var drbd = DRBD()
    public var ssh: SSH
    public var package: Package?
    /// What `drover upgrade --frontends` installs on the frontends (`frontend_package:`).
    public var frontendPackage: FrontendPackage?
    public var backends: [Backend]
    public var frontends: [Frontend]
    public var timeouts: Timeouts
    /// The write probe a run polls (`probe:`), if any.
    public var probe: Probe?
    /// SHA-256 of the inventory file, recorded with runs and plans.
    public var digest: String
    /// Where settings came from, by key (`backends[0].host` → `hosts.ini:3 (ansible_host)`); a key not
    /// listed is the inventory's own (or a default).
    public var sources: [String: String] = [:]

    /// Reads and validates an inventory; nothing is contacted.
    ///
    /// - Throws: ``InputError`` naming the file, line and key.
    /// Reads an inventory (or an Ansible inventory's group, `FILE#GROUP`), then applies the OpenSSH client
    /// configuration to its hosts; `warn` gets what ssh_config had that Drover skipped.
    public static func load(path: String, warn: (String) -> Void = { _ in }) throws -> Inventory {
        var inventory: Inventory
        if let (file, group) = ansibleReference(path) {
            let data = try InputError.read(file, what: "Ansible inventory")
            inventory = try AnsibleInventory.parse(String(decoding: data, as: UTF8.self), file: file).inventory(
                group: group)
            inventory.file = path
        } else {
            let data = try InputError.read(path, what: "inventory file")
            inventory = try parse(String(decoding: data, as: UTF8.self), file: path)
        }
        try inventory.applySSHConfig(warn: warn)
        return inventory
    }

    /// `FILE#GROUP` (`--inventory FILE --group GROUP`): the Ansible inventory FILE, the backends being GROUP's
    /// hosts; nil for a Drover inventory (a file of that very name, `#` and all, is one).
    public static func ansibleReference(_ path: String) -> (file: String, group: String)? {
        guard let hash = path.lastIndex(of: "#"), !FileManager.default.fileExists(atPath: path) else { return nil }
        let group = String(path[path.index(after: hash)...])
        return group.isEmpty ? nil : (String(path[..<hash]), group)
    }

    /// The reference `--inventory` takes for an Ansible inventory's group.
    public static func reference(file: String, group: String?) -> String { group.map { "\(file)#\($0)" } ?? file }

    /// Parses inventory text as if read from `file`.
    public static func parse(_ text: String, file: String) throws -> Inventory {
        try parse(StrictYAML.load(text, file: file), digest: Digest.sha256Hex(Data(text.utf8)))
    }

    /// Parses an inventory already read as YAML nodes (an Ansible group's, built from its variables as data).
    static func parse(_ root: StrictYAML, digest: String) throws -> Inventory {
        let file = root.file
        try root.rejectUnknownKeys([
            "cluster", "topology", "drbd", "ssh", "package", "frontend_package", "backends", "frontends", "timeouts",
            "probe",
        ])
        let cluster = try root.requiredString("cluster")
        guard Self.isName(cluster) else {
            throw root.error(
                "cluster",
                "'\(cluster.prefix(64))' is not a usable cluster name; use a letter or digit, then letters, digits, '.', '_' and '-' (at most 64)"
            )
        }
        var topology = Topology.chefBackend
        if let text = try root.string("topology") {
            guard let known = Topology(rawValue: text) else {
                throw root.error(
                    "topology",
                    "'\(text)' is not a topology; use \(Topology.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            topology = known
        }
        var drbd = DRBD()
        if let section = try root.mapping("drbd") {
            guard topology == .drbdPair else {
                throw root.error(
                    "drbd",
                    "a drbd: block belongs to a DRBD pair; add `topology: drbd-pair`, or remove drbd: from this chef-backend inventory"
                )
            }
            try section.rejectUnknownKeys(["resource", "ctl"])
            drbd.resource = try section.string("resource") ?? drbd.resource
            guard drbd.resource.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]*$", options: .regularExpression) != nil else {
                throw section.error(
                    "resource",
                    "'\(drbd.resource)' is not a DRBD resource name (letters, digits, '.', '_', '-'); the Chef pair's is pc0"
                )
            }
            drbd.ctl = try section.string("ctl") ?? drbd.ctl
            guard DRBD.controls.contains(drbd.ctl) else {
                throw section.error(
                    "ctl",
                    "'\(drbd.ctl)' is not a control command; use chef-server-ctl or private-chef-ctl (Enterprise Chef 11)"
                )
            }
        }
        if topology == .drbdPair, try root.mapping("package") != nil {
            throw root.error(
                "package",
                "a drbd-pair inventory takes no package: Drover does not upgrade the DRBD pair; remove package:")
        }
        if topology == .drbdPair, try root.mapping("frontend_package") != nil {
            throw root.error(
                "frontend_package",
                "a drbd-pair inventory takes no frontend_package: Drover upgrades the frontends of a chef-backend cluster; remove frontend_package:"
            )
        }

        var ssh = SSH()
        var sources: [String: String] = [:]
        if let section = try root.mapping("ssh") {
            try section.rejectUnknownKeys([
                "user", "port", "identity_files", "known_hosts", "host_key_checking",
                "connect_timeout", "command_timeout", "keepalive_interval", "keepalive_count", "sudo",
                "config_file", "proxy_jump",
            ])
            if let file = try section.string("config_file") { ssh.configFiles = file == "none" ? [] : [file] }
            if let jumps = try section.string("proxy_jump") {
                ssh.proxyJump = jumps
                sources["ssh.proxy_jump"] = "\(file):\(section.lineOf("proxy_jump")) (ssh.proxy_jump)"
            }
            for key in [
                "user", "port", "identity_files", "known_hosts", "host_key_checking", "connect_timeout",
                "command_timeout",
                "keepalive_interval", "keepalive_count", "sudo",
            ]
            where section.has(key) {
                sources["ssh.\(key)"] = "\(file):\(section.lineOf(key)) (ssh.\(key))"
            }
            ssh.user = try Self.user(section) ?? ssh.user
            ssh.port = try port(section, "port") ?? ssh.port
            ssh.identityFiles = try section.stringList("identity_files") ?? ssh.identityFiles
            ssh.knownHosts = try section.string("known_hosts") ?? ssh.knownHosts
            if let mode = try section.string("host_key_checking") {
                guard let policy = HostKeyPolicy(rawValue: mode) else {
                    throw section.error("host_key_checking", "'\(mode)' is not a mode; use strict, accept-new or off")
                }
                ssh.hostKeyChecking = policy
            }
            ssh.connectTimeout =
                try section.duration("connect_timeout", within: .seconds(1)...(.seconds(600))) ?? ssh.connectTimeout
            ssh.commandTimeout =
                try section.duration("command_timeout", within: .seconds(1)...Self.longestWait) ?? ssh.commandTimeout
            if let interval = try section.duration("keepalive_interval", within: .zero...(.seconds(3600))) {
                ssh.keepaliveInterval = interval == .zero ? nil : interval
            }
            if let count = try section.int("keepalive_count") {
                guard (1...100).contains(count) else {
                    throw section.error(
                        "keepalive_count",
                        "\(count) is not a count of keepalives; write 1 to 100 (3 is OpenSSH's default)")
                }
                ssh.keepaliveCount = count
            }
            ssh.sudo = try section.bool("sudo") ?? ssh.sudo
        }

        var package: Package?
        if let section = try root.mapping("package") {
            try section.rejectUnknownKeys(["path", "version", "sha256", "upload", "backup"])
            let file = try packageFile(
                section, key: "package", product: "chef-backend", example: "2.3.16", on: "backends")
            package = Package(
                path: file.path, version: file.version, sha256: file.sha256, format: file.format,
                upload: try section.string("upload"), backup: try section.bool("backup") ?? false)
        }

        guard let entries = try root.mappingList("backends"), !entries.isEmpty else {
            throw root.error(nil, "missing required key 'backends' (the cluster's nodes, each with name and host)")
        }
        var backends: [Backend] = []
        for (index, entry) in entries.enumerated() {
            try entry.rejectUnknownKeys(["name", "host", "port", "user", "identity_files", "proxy_jump"])
            for key in ["name", "host", "port", "user", "identity_files", "proxy_jump"] {
                sources["backends[\(index)].\(key)"] =
                    entry.has(key)
                    ? "\(file):\(entry.lineOf(key))"
                    : sources["ssh.\(key)"] ?? "default"
            }
            let name = try Self.nodeName(entry)
            let host = try Self.host(entry, "host")
            var backend = Backend(
                name: name, host: host, port: try port(entry, "port") ?? ssh.port,
                user: try Self.user(entry) ?? ssh.user,
                identityFiles: try entry.stringList("identity_files") ?? ssh.identityFiles, line: entry.line)
            if let jumps = try entry.string("proxy_jump") ?? ssh.proxyJump {
                do {
                    backend.jumps = try Self.jumpHosts(jumps, ssh: ssh, line: entry.line)
                } catch let error as JumpSpecError {
                    throw entry.has("proxy_jump")
                        ? entry.error("proxy_jump", error.message) : root.error("ssh", error.message)
                }
            }
            if let other = backends.first(where: { $0.name == name }) {
                throw entry.error(
                    "name",
                    "duplicate backend name '\(name)' (also at line \(other.line)); each backend needs its own name")
            }
            if let other = backends.first(where: { $0.host == host && $0.port == backend.port }) {
                throw entry.error(
                    "host",
                    "duplicate host \(host):\(backend.port) (also \(other.name)'s); each backend needs its own host")
            }
            backends.append(backend)
        }
        if topology == .drbdPair, backends.count != 2 {
            throw root.error(
                "backends",
                "a drbd-pair has exactly two backends (the DRBD primary and secondary); this inventory lists \(backends.count); list the two nodes of the pair"
            )
        }

        var frontends: [Frontend] = []
        for entry in try root.mappingList("frontends") ?? [] {
            try entry.rejectUnknownKeys(["name", "status_url", "host", "port", "user", "identity_files"])
            let name = try Self.nodeName(entry)
            let url = try entry.string("status_url")
            if let url {
                guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? "") else {
                    throw entry.error("status_url", "'\(url)' is not an http(s) URL")
                }
            }
            var endpoint: Backend?
            if entry.has("host") {
                let host = try Self.host(entry, "host")
                endpoint = Backend(
                    name: name, host: host, port: try port(entry, "port") ?? ssh.port,
                    user: try Self.user(entry) ?? ssh.user,
                    identityFiles: try entry.stringList("identity_files") ?? ssh.identityFiles, line: entry.line)
            } else {
                for key in ["port", "user", "identity_files"] where entry.has(key) {
                    throw entry.error(
                        key, "\(key) is an SSH setting; add host: (the frontend's address) beside it, or remove \(key)")
                }
            }
            guard url != nil || endpoint != nil else {
                throw entry.error(
                    nil,
                    "frontend '\(name)' needs status_url (its /_status, checked after an upgrade), host (to reach it over SSH), or both"
                )
            }
            if let backend = backends.first(where: { $0.name == name }) {
                throw entry.error(
                    "name",
                    "'\(name)' is also a backend's name (line \(backend.line)); frontends and backends need names of their own"
                )
            }
            if frontends.contains(where: { $0.name == name }) {
                throw entry.error("name", "duplicate frontend name '\(name)'; each frontend needs its own name")
            }
            frontends.append(Frontend(name: name, statusURL: url, ssh: endpoint))
        }

        var frontendPackage: FrontendPackage?
        if let section = try root.mapping("frontend_package") {
            frontendPackage = try parseFrontendPackage(section)
            guard !frontends.isEmpty else {
                throw root.error(
                    "frontend_package",
                    "frontend_package is what the frontends are upgraded to, but the inventory lists no frontends; add frontends: (each with host), or remove frontend_package:"
                )
            }
        }

        var timeouts = Timeouts()
        if let section = try root.mapping("timeouts") {
            // Each topology's own waits: rejoin and failover for the cluster, transition and sync for the pair.
            let own = topology == .drbdPair ? ["transition", "sync"] : ["rejoin", "failover"]
            let other = topology == .drbdPair ? ["rejoin", "failover"] : ["transition", "sync"]
            for key in other where section.has(key) {
                throw section.error(
                    key,
                    "\(key) is a timeout of \(topology == .drbdPair ? "chef-backend clusters" : "drbd-pair inventories"); a \(topology.rawValue) inventory takes \(own.joined(separator: ", ")), poll_interval, stable_polls"
                )
            }
            try section.rejectUnknownKeys(own + ["poll_interval", "stable_polls"])
            timeouts.rejoin = try section.duration("rejoin", within: .seconds(1)...Self.longestWait) ?? timeouts.rejoin
            timeouts.failover =
                try section.duration("failover", within: .seconds(1)...Self.longestWait) ?? timeouts.failover
            timeouts.transition =
                try section.duration("transition", within: .seconds(1)...Self.longestWait) ?? timeouts.transition
            timeouts.sync = try section.duration("sync", within: .seconds(1)...Self.longestWait) ?? timeouts.sync
            timeouts.pollInterval =
                try section.duration("poll_interval", within: .milliseconds(10)...(.seconds(600)))
                ?? timeouts.pollInterval
            if let polls = try section.int("stable_polls") {
                guard (1...100).contains(polls) else { throw section.error("stable_polls", "must be from 1 to 100") }
                timeouts.stablePolls = polls
            }
        }
        var inventory = Inventory(
            file: file, cluster: cluster, topology: topology, drbd: drbd, ssh: ssh, package: package,
            frontendPackage: frontendPackage, backends: backends,
            frontends: frontends, timeouts: timeouts, digest: digest)
        inventory.sources = sources
        if let section = try root.mapping("probe") { inventory.probe = try parseProbe(section) }
        return inventory
    }

    /// `frontend_package:`: path (on every frontend), version (else read from the file name), sha256,
    /// accept_license.
    private static func parseFrontendPackage(_ section: StrictYAML) throws -> FrontendPackage {
        try section.rejectUnknownKeys(["path", "version", "sha256", "accept_license"])
        let file = try packageFile(
            section, key: "frontend_package", product: "chef-server-core", example: "15.9.38", on: "frontends")
        return FrontendPackage(
            path: file.path, version: file.version, sha256: file.sha256, format: file.format,
            acceptLicense: try section.bool("accept_license") ?? false)
    }

    /// A package section's file: its absolute `path` on the nodes (`on`), its format from the name, its
    /// `version` (else read from a `product` file name) and its optional `sha256`.
    private static func packageFile(
        _ section: StrictYAML, key: String, product: String, example: String, on nodes: String
    ) throws -> (path: String, format: Package.Format, version: String, sha256: String?) {
        let path = try section.requiredString("path")
        let format: Package.Format
        if path.hasSuffix(".deb") {
            format = .deb
        } else if path.hasSuffix(".rpm") {
            format = .rpm
        } else {
            throw section.error("path", "'\(path)' is neither a .deb nor a .rpm package file")
        }
        guard path.hasPrefix("/") else {
            throw section.error("path", "'\(path)' must be an absolute path on the \(nodes)")
        }
        let version: String
        if let given = try section.string("version") {
            guard given.range(of: #"^\d+(\.\d+)+$"#, options: .regularExpression) != nil else {
                throw section.error("version", "'\(given)' is not a version like \(example)")
            }
            version = given
        } else if let found = versionFromFileName(path, product: product) {
            version = found
        } else {
            throw section.error(
                "path", "cannot read a version from '\((path as NSString).lastPathComponent)'; add \(key).version")
        }
        let sha = try section.string("sha256")?.lowercased()
        if let sha, sha.range(of: "^[0-9a-f]{64}$", options: .regularExpression) == nil {
            throw section.error("sha256", "expected 64 hexadecimal digits (the output of sha256sum)")
        }
        return (path, format, version, sha)
    }

    /// The longest timeout or wait an inventory may set (a week): a longer one is a typo, not a plan.
    public static let longestWait: Duration = .seconds(7 * 86400)

    /// A name Drover prints, puts in paths and in remote commands: a letter or digit, then letters, digits,
    /// `.`, `_` and `-`, at most 64 (no leading `-`, so never taken for an option).
    public static func isName(_ text: String) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter || first.isNumber, text.count <= 64 else {
            return false
        }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    /// A backend's or frontend's `name`, validated.
    static func nodeName(_ entry: StrictYAML) throws -> String {
        let name = try entry.requiredString("name")
        guard isName(name) else {
            throw entry.error(
                "name",
                "'\(name.prefix(64))' is not a usable node name; use a letter or digit, then letters, digits, '.', '_' and '-' (at most 64)"
            )
        }
        return name
    }

    /// A `host`: a host name or an IP address (IPv6 with an optional `%zone`); never an option (`-...`), a space
    /// or a control character, which ssh or a shell would read as something else.
    static func host(_ entry: StrictYAML, _ key: String) throws -> String {
        let host = try entry.requiredString(key)
        let allowed = host.allSatisfy {
            $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" || $0 == ":" || $0 == "%")
        }
        guard allowed, host.first != "-", host.count <= 253 else {
            throw entry.error(
                key,
                "'\(host.prefix(64))' is not a host name or IP address (letters, digits, '.', '-', ':'; not starting with '-')"
            )
        }
        return host
    }

    /// A login `user`, validated: letters, digits, `.`, `_`, `-` and `@`, not starting with `-`.
    static func user(_ section: StrictYAML) throws -> String? {
        guard let user = try section.string("user") else { return nil }
        // `@` too: directory logins (`jdoe@corp.example.com`).
        guard let first = user.first, first != "-", first != "@", user.count <= 128,
            user.allSatisfy({
                $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" || $0 == "@")
            })
        else {
            throw section.error(
                "user",
                "'\(user.prefix(64))' is not a login name (letters, digits, '.', '_', '-', '@'; not starting with '-')")
        }
        return user
    }

    private static func port(_ section: StrictYAML, _ key: String) throws -> Int? {
        guard let value = try section.int(key) else { return nil }
        guard (1...65535).contains(value) else { throw section.error(key, "\(value) is not a TCP port (1-65535)") }
        return value
    }

    /// `chef-backend_2.3.16-1_amd64.deb` and `chef-backend-2.3.16-1.el7.x86_64.rpm` give `2.3.16`.
    public static func versionFromFileName(_ path: String, product: String = "chef-backend") -> String? {
        let name = (path as NSString).lastPathComponent
        guard let range = name.range(of: "^\(product)[_-]\\d+(\\.\\d+)+", options: .regularExpression) else {
            return nil
        }
        return String(name[range].drop { !$0.isNumber })
    }

    /// SSH options for one backend.
    public func sshOptions(for backend: Backend, passphrase: PassphraseSource = .environmentOrTerminal()) -> SSHOptions
    {
        var options = SSHOptions(
            user: backend.user, identityFiles: backend.identityFiles, passphrase: passphrase,
            knownHostsFile: backend.knownHosts ?? ssh.knownHosts,
            hostKeyPolicy: backend.hostKeyChecking ?? ssh.hostKeyChecking,
            connectTimeout: backend.connectTimeout ?? ssh.connectTimeout)
        if let socket = backend.agentSocket { options.agentSocket = socket.isEmpty ? nil : socket }
        options.keepaliveInterval = backend.keepaliveInterval ?? ssh.keepaliveInterval
        options.keepaliveCountMax = backend.keepaliveCount ?? ssh.keepaliveCount
        return options
    }

    /// Applies the OpenSSH client configuration to every backend and SSH frontend: what the inventory wrote
    /// wins, ssh_config fills in the rest (as Ansible does). `warn` gets the `Match` blocks skipped.
    public mutating func applySSHConfig(warn: (String) -> Void = { _ in }) throws {
        guard !ssh.configFiles.isEmpty else { return }
        let config = try SSHConfig.load(ssh.configFiles)
        config.warnings.forEach(warn)
        for index in backends.indices {
            backends[index] = try apply(config, to: backends[index], key: "backends[\(index)]")
        }
        for index in frontends.indices {
            if let endpoint = frontends[index].ssh {
                frontends[index].ssh = try apply(config, to: endpoint, key: "frontends[\(index)]")
            }
        }
        // Two entries that ssh_config leads to one endpoint would be read and changed as two nodes.
        var reached: [String: Backend] = [:]
        for endpoint in backends + frontends.compactMap(\.ssh) where endpoint.jumps.isEmpty {
            let address = "\(endpoint.host.lowercased()):\(endpoint.port)"
            if endpoint.host.hasPrefix("-") || endpoint.host.contains(where: { $0.isWhitespace || !$0.isASCII }) {
                throw InputError(
                    file: file, line: endpoint.line, key: "host",
                    message:
                        "ssh_config gives \(endpoint.name) the HostName '\(endpoint.host.prefix(64))', which is not a host name or address"
                )
            }
            if let other = reached[address] {
                throw InputError(
                    file: file, line: endpoint.line, key: "host",
                    message:
                        "\(endpoint.name) and \(other.name) (line \(other.line)) reach the same host \(endpoint.host):\(endpoint.port) after ssh_config; each node needs its own host"
                )
            }
            reached[address] = endpoint
        }
    }

    /// ssh_config for one host: its own settings, its ProxyJump (unless the inventory gave jump hosts), and
    /// each jump host's settings in turn (a jump host's own ProxyJump goes before it, as ssh does).
    private mutating func apply(
        _ config: SSHConfig, to original: Backend, key: String, depth: Int = 0
    ) throws -> Backend {
        var backend = original
        let found = try config.resolve(original.host)
        let isJump = depth > 0
        /// Written in the inventory: the host's own key, or (for backends) `ssh.KEY`.
        func written(_ field: String) -> Bool {
            // An Ansible host without ansible_host is an alias ssh_config may resolve, as ssh would.
            let own =
                sources["\(key).\(field)"].map { $0 != "default" && !$0.hasSuffix("(inventory hostname)") } ?? false
            return own || (!isJump && sources["ssh.\(field)"] != nil)
        }
        if backend.jumps.isEmpty && !written("proxy_jump"), let setting = found["proxyjump"]?.first, depth < 4 {
            do {
                backend.jumps = try Self.jumpHosts(setting.value, ssh: ssh, line: backend.line)
            } catch let error as JumpSpecError {
                let place = setting.source.split(separator: ":")
                throw InputError(
                    file: place.dropLast().joined(separator: ":"), line: Int(place.last ?? "") ?? 0, key: "ProxyJump",
                    message: error.message)
            }
            sources["\(key).proxy_jump"] = "\(setting.source) (ProxyJump)"
            // A hop's user@ and :port are written: its own Host block does not override them.
            for (index, spec) in setting.value.split(separator: ",").enumerated() {
                if spec.contains("@") { sources["\(key).jumps[\(index)].user"] = "\(setting.source) (ProxyJump)" }
                if spec.contains(":") { sources["\(key).jumps[\(index)].port"] = "\(setting.source) (ProxyJump)" }
            }
        }
        var hops: [Backend] = []
        for (index, hop) in backend.jumps.enumerated() where depth < 4 {
            let resolved = try apply(config, to: hop, key: "\(key).jumps[\(index)]", depth: depth + 1)
            hops += resolved.jumps + [resolved]
        }
        if depth < 4 {
            backend.jumps = hops.map {
                var hop = $0
                hop.jumps = []
                return hop
            }
        }
        guard !found.isEmpty else { return backend }
        func take(_ keyword: String, as field: String, _ apply: (String) throws -> Void) throws {
            guard let setting = found[keyword]?.first else { return }
            try apply(setting.value)
            sources["\(key).\(field)"] = "\(setting.source) (\(Self.keywordNames[keyword] ?? keyword))"
        }
        func number(_ text: String, _ keyword: String) throws -> Int {
            guard let value = Int(text), value > 0 else {
                let source = found[keyword]!.first!.source
                throw InputError(
                    file: String(source.split(separator: ":").dropLast().joined(separator: ":")),
                    line: Int(source.split(separator: ":").last ?? "") ?? 0, key: Self.keywordNames[keyword],
                    message: "'\(text)' is not a number of seconds or a port")
            }
            return value
        }
        // The inventory's host is the name given to ssh: its HostName, if any, is where to connect.
        if let setting = found["hostname"]?.first {
            backend.host = SSHConfig.expand(setting.value, host: original.host, remoteUser: backend.user)
            sources["\(key).host"] = "\(setting.source) (HostName of \(original.host))"
        }
        if !written("user") { try take("user", as: "user") { backend.user = $0 } }
        if !written("port") { try take("port", as: "port") { backend.port = try number($0, "port") } }
        if !written("identity_files"), let files = found["identityfile"] {
            backend.identityFiles = files.map {
                SSHConfig.expand($0.value, host: backend.host, remoteUser: backend.user)
            }
            sources["\(key).identity_files"] = files.map(\.source).joined(separator: ", ") + " (IdentityFile)"
        }
        if !written("known_hosts") {
            try take("userknownhostsfile", as: "known_hosts") {
                backend.knownHosts = SSHConfig.expand(
                    String($0.split(separator: " ").first ?? ""), host: backend.host, remoteUser: backend.user)
            }
        }
        if !written("host_key_checking") {
            try take("stricthostkeychecking", as: "host_key_checking") { value in
                switch value.lowercased() {
                case "yes", "ask": backend.hostKeyChecking = .strict
                case "accept-new": backend.hostKeyChecking = .acceptNew
                case "no", "off": backend.hostKeyChecking = .off
                default:
                    throw InputError(
                        file: ssh.configFiles.first ?? "", line: 0, key: "StrictHostKeyChecking",
                        message: "'\(value)' is not yes, accept-new or no")
                }
            }
        }
        if !written("connect_timeout") {
            try take("connecttimeout", as: "connect_timeout") {
                backend.connectTimeout = .seconds(try number($0, "connecttimeout"))
            }
        }
        if !written("keepalive_interval") {
            try take("serveraliveinterval", as: "keepalive") { value in
                let seconds = try number(value, "serveraliveinterval")
                backend.keepaliveInterval = .seconds(seconds)
            }
        }
        if !written("keepalive_count") {
            try take("serveralivecountmax", as: "keepalive_count") { value in
                backend.keepaliveCount = try number(value, "serveralivecountmax")
            }
        }
        try take("identityagent", as: "agent") { value in
            backend.agentSocket =
                value.lowercased() == "none"
                ? ""
                : (value == "SSH_AUTH_SOCK"
                    ? nil : SSHConfig.expand(value, host: backend.host, remoteUser: backend.user))
        }
        if found["identityagent"] == nil, found["identitiesonly"]?.first?.value.lowercased() == "yes" {
            try take("identitiesonly", as: "agent") { _ in backend.agentSocket = "" }
        }
        return backend
    }

    struct JumpSpecError: Error { var message: String }

    /// `[user@]host[:port]`, comma-separated (`none`: no jump host), as ProxyJump writes them.
    static func jumpHosts(_ text: String, ssh: SSH, line: Int) throws -> [Backend] {
        if text.trimmingCharacters(in: .whitespaces).lowercased() == "none" { return [] }
        return try text.split(separator: ",").map { raw in
            var spec = raw.trimmingCharacters(in: .whitespaces)
            var user = ssh.user
            if let at = spec.lastIndex(of: "@") {
                user = String(spec[..<at])
                spec = String(spec[spec.index(after: at)...])
            }
            var port = 22
            if let colon = spec.lastIndex(of: ":"), !spec.hasPrefix("[") {
                guard let number = Int(spec[spec.index(after: colon)...]), (1...65535).contains(number) else {
                    throw JumpSpecError(
                        message: "'\(raw)' is not a jump host; write [user@]host[:port], several separated by commas")
                }
                port = number
                spec = String(spec[..<colon])
            }
            guard !spec.isEmpty, !user.isEmpty else {
                throw JumpSpecError(
                    message: "'\(raw)' is not a jump host; write [user@]host[:port], several separated by commas")
            }
            return Backend(
                name: "jump host \(spec)", host: spec, port: port, user: user, identityFiles: ssh.identityFiles,
                line: line)
        }
    }

    static let keywordNames = [
        "hostname": "HostName", "user": "User", "port": "Port", "identityfile": "IdentityFile",
        "userknownhostsfile": "UserKnownHostsFile", "stricthostkeychecking": "StrictHostKeyChecking",
        "connecttimeout": "ConnectTimeout", "serveraliveinterval": "ServerAliveInterval",
        "serveralivecountmax": "ServerAliveCountMax",
        "identityagent": "IdentityAgent", "identitiesonly": "IdentitiesOnly",
    ]

    public func backend(named name: String) -> Backend? { backends.first { $0.name == name } }

    /// The SSH endpoint of a backend, or of a frontend that has `host`.
    public func sshEndpoint(named name: String) -> Backend? {
        backend(named: name) ?? frontends.first { $0.name == name }?.ssh
    }

    /// The frontends Drover can reach over SSH (those with `host`).
    public var sshFrontends: [Backend] { frontends.compactMap(\.ssh) }
}
