import DroverEngine
import DroverInventory
import DroverReporting
import Foundation

extension Operations {
    /// `drover inventory show`: how every backend (and SSH frontend) will be reached, and where each value
    /// came from (the inventory's line, an Ansible variable's file and line, or a default). Reads nothing
    /// but the inventory.
    public static func showInventory(inventoryPath: String, json: Bool) -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        let ssh = inventory.ssh
        func source(_ key: String, fallback: String? = nil) -> String {
            inventory.sources[key] ?? fallback.flatMap { inventory.sources[$0] } ?? "default"
        }
        var entries: [(name: String, fields: [(key: String, value: String, source: String)])] = []
        for (index, backend) in inventory.backends.enumerated() {
            let prefix = "backends[\(index)]."
            entries.append(
                (
                    backend.name,
                    [
                        ("host", backend.host, source(prefix + "host")),
                        ("port", String(backend.port), source(prefix + "port", fallback: "ssh.port")),
                        ("user", backend.user, source(prefix + "user", fallback: "ssh.user")),
                        (
                            "identity_files", backend.identityFiles.joined(separator: ", "),
                            source(prefix + "identity_files", fallback: "ssh.identity_files")
                        ),
                        (
                            "known_hosts", backend.knownHosts ?? ssh.knownHosts,
                            source(prefix + "known_hosts", fallback: "ssh.known_hosts")
                        ),
                        (
                            "host_key_checking", (backend.hostKeyChecking ?? ssh.hostKeyChecking).rawValue,
                            source(prefix + "host_key_checking", fallback: "ssh.host_key_checking")
                        ),
                        (
                            "agent", backend.agentSocket.map { $0.isEmpty ? "none" : $0 } ?? "SSH_AUTH_SOCK",
                            source(prefix + "agent")
                        ),
                        ("sudo", ssh.sudo ? "yes" : "no", source("ssh.sudo")),
                        (
                            "connect_timeout", DurationText.format(backend.connectTimeout ?? ssh.connectTimeout),
                            source(prefix + "connect_timeout", fallback: "ssh.connect_timeout")
                        ),
                        (
                            "keepalive",
                            (backend.keepaliveInterval ?? ssh.keepaliveInterval).map(DurationText.format) ?? "off",
                            source(prefix + "keepalive", fallback: "ssh.keepalive_interval")
                        ),
                        (
                            "keepalive_count", String(backend.keepaliveCount ?? ssh.keepaliveCount),
                            source(prefix + "keepalive_count", fallback: "ssh.keepalive_count")
                        ),
                        (
                            "jump",
                            backend.jumps.isEmpty
                                ? "none: connected to directly"
                                : backend.jumps.map { "\($0.user)@\($0.host):\($0.port)" }.joined(separator: " -> "),
                            source(prefix + "proxy_jump", fallback: "ssh.proxy_jump")
                        ),
                    ]
                ))
        }
        for frontend in inventory.frontends {
            guard let endpoint = frontend.ssh else { continue }
            entries.append(
                (
                    frontend.name,
                    [
                        ("host", endpoint.host, source("frontends")),
                        ("port", String(endpoint.port), "frontends entry or ssh.port"),
                        ("user", endpoint.user, "frontends entry or ssh.user"),
                        (
                            "identity_files", endpoint.identityFiles.joined(separator: ", "),
                            "frontends entry or ssh.identity_files"
                        ),
                    ]
                ))
        }
        var origin =
            Inventory.ansibleReference(inventoryPath).map { "Ansible inventory \($0.file), group \($0.group)" }
            ?? "inventory \(inventoryPath)"
        origin +=
            ssh.configFiles.isEmpty
            ? " (no ssh_config: ssh.config_file: none)" : " and ssh_config (\(ssh.configFiles.joined(separator: ", ")))"
        if json {
            let nodes: [JSONValue] = entries.map { entry in
                var object: [String: JSONValue] = ["name": .string(entry.name)]
                for field in entry.fields {
                    object[field.key] = .object(["value": .string(field.value), "source": .string(field.source)])
                }
                return .object(object)
            }
            Output.stdout(
                JSONValue.object([
                    "cluster": .string(inventory.cluster), "from": .string(origin),
                    "topology": .string(inventory.topology.rawValue),
                    "package": .optional(inventory.package.map { "\($0.path) (\($0.version))" }),
                    "nodes": .array(nodes),
                ]).serialized + "\n")
            return .success
        }
        var text = "Cluster \(inventory.cluster) (\(inventory.topology.rawValue)), from the \(origin)\n"
        if let package = inventory.package { text += "Package: \(package.path) (\(package.version))\n" }
        for entry in entries {
            text += "\n\(entry.name)\n"
            let width = entry.fields.map(\.value.count).max() ?? 0
            for field in entry.fields {
                text +=
                    "  " + field.key.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + field.value.padding(toLength: max(width, field.value.count) + 2, withPad: " ", startingAt: 0)
                    + field.source + "\n"
            }
        }
        Output.stdout(text)
        return .success
    }
}
