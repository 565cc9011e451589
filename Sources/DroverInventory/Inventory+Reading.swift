import DroverSSH
import Foundation

/// Reading an inventory file: its YAML, each field validated where read.
extension Inventory {
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
}
