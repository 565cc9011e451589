import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

// Templates: the values a step's placeholders stand for, and how they are rendered.
extension Runner {
    /// The values placeholders stand for: the node, the live values of the topology (`leader`, ...) and
    /// the parameters.
    static func values(
        node: String?, inventory: Inventory, live: [String: String], bindings: Bindings
    ) -> [String: String] {
        bindings.values.merging(live) { $1 }.merging([
            "node": node ?? "",
            "node.host": node.flatMap { inventory.sshEndpoint(named: $0)?.host } ?? "",
        ]) { $1 }
    }

    /// Fills a command template; every value is shell-quoted.
    static func render(
        _ template: String, node: String?, inventory: Inventory, live: [String: String], bindings: Bindings = Bindings()
    ) -> String {
        Template.render(
            template, values: values(node: node, inventory: inventory, live: live, bindings: bindings),
            raw: bindings.raw,
            quote: ShellQuote.quote)
    }

    /// Fills a message for people to read (values as they are).
    static func renderText(
        _ template: String, node: String?, inventory: Inventory, live: [String: String], bindings: Bindings = Bindings()
    ) -> String {
        Template.render(
            template, values: values(node: node, inventory: inventory, live: live, bindings: bindings),
            raw: bindings.raw
        ) { $0 }
    }

    /// A wait's timeout: as written, the command timeout, or one the topology names (`rejoin`, `transition`).
    static func duration(_ spec: Playbook.TimeoutSpec, _ topology: T) -> Duration {
        switch spec {
        case .fixed(let value): return value
        case .named("command"): return topology.inventory.ssh.commandTimeout
        // Playbooks are checked against the vocabulary's timeouts, which the topology resolves.
        case .named(let name): return topology.timeout(named: name) ?? topology.inventory.ssh.commandTimeout
        }
    }
}
