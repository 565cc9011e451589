import DroverSSH
import Foundation

/// The SSH options of an inventory's nodes, and what the OpenSSH client configuration adds to them.
extension Inventory {
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
}
