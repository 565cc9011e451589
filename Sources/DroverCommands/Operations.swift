import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

/// What each `drover` command does, given its parsed arguments; returns the exit status. Each command
/// has its own file in this folder; the topology-specific parts are behind ``Topology``.
public enum Operations {
    /// Reads an inventory, saying on stderr why it is invalid; `warnings` false leaves its warnings to a later
    /// load of the same file.
    static func loadInventory(_ path: String, warnings: Bool = true) -> Inventory? {
        do {
            return try Inventory.load(path: path) { if warnings { Output.diagnostic("warning: \($0)") } }
        } catch {
            Output.diagnostic("invalid inventory: \(error.localizedDescription)")
            return nil
        }
    }

    /// The cluster's run history, saying on stderr which journals it ignored (another cluster's nodes).
    static func history(_ state: StateDirectory, cluster: String, identities: [String: String]) -> ClusterHistory {
        let history = state.history(cluster: cluster, identities: identities)
        if let note = history.note { Output.diagnostic(note) }
        return history
    }

    static func loadPlaybook(_ name: String, from library: PlaybookLibrary) -> Playbook? {
        do {
            // `upgrade+upgrade-frontends` (drover upgrade --all, and its resume): the parts, combined.
            return Playbook.combined(try Playbook.parts(name).map { try library.find($0) })
        } catch {
            Output.diagnostic("invalid playbook: \(error.localizedDescription)")
            return nil
        }
    }

    /// A playbook for the inventory's topology; refuses (printing why and which playbooks fit) otherwise.
    static func loadPlaybook(_ name: String, from library: PlaybookLibrary, for inventory: Inventory) -> Playbook? {
        guard let playbook = loadPlaybook(name, from: library) else { return nil }
        guard playbook.topology == inventory.topology else {
            let fitting = ((try? library.all()) ?? []).filter { $0.topology == inventory.topology }.map(\.name)
            Output.diagnostic(
                "\(playbook.name) is a playbook for \(playbook.topology.rawValue) clusters, but \(inventory.file) is a \(inventory.topology.rawValue) inventory; its playbooks: \(fitting.joined(separator: ", "))"
            )
            return nil
        }
        return playbook
    }

    /// The playbook of the upgrade path the live facts call for, when `playbook` is `upgrade` (the entry point of
    /// `drover upgrade`) and the path needs another; `plan` shows the path and its reasons either way.
    static func choosingPath<T: Topology>(
        _ playbook: Playbook, topology: T, observation: T.Observation?,
        library: PlaybookLibrary
    ) -> Plan<T>.PathPlaybook {
        // A combined playbook (`upgrade+upgrade-frontends`) chooses the path of its first part.
        let parts = Playbook.parts(playbook.name)
        let rest = parts.dropFirst().compactMap { try? library.find($0) }
        guard parts.first == "upgrade", rest.count == parts.count - 1, let observation,
            let path = topology.upgradePath(for: playbook, observation: observation),
            let name = path.playbook, name != "upgrade"
        else { return .init(playbook: playbook, unavailable: nil) }
        guard let chosen = try? library.find(name), chosen.topology == topology.inventory.topology else {
            return .init(playbook: playbook, unavailable: name)
        }
        return .init(playbook: Playbook.combined([chosen] + rest), unavailable: nil)
    }

    /// Whether a run takes a backup first: `--backup`/`--no-backup` when given, else the inventory's
    /// `package.backup`, else on for the downtime upgrade paths (whose every backend goes down).
    static func backupWanted<T: Topology>(
        _ requested: Bool?, playbook: Playbook, topology: T, observation: T.Observation
    ) -> Bool {
        if let requested { return requested }
        if topology.inventory.package?.backup == true { return true }
        return topology.upgradePath(for: playbook, observation: observation)?.takesEveryNodeDown ?? false
    }

    /// Prints unreachable nodes; true when every node is connected.
    static func reportUnreachable(_ connection: ClusterConnection) -> Bool {
        for (name, reason) in connection.failures.sorted(by: { $0.key < $1.key }) {
            Output.diagnostic("\(name): \(reason)")
        }
        return connection.failures.isEmpty
    }

    /// Why a playbook cannot run without a terminal, given `--yes` and `--assume-done`; nil when it can.
    /// `confirming`: whether a step will ask for a typed yes (by default, whether the playbook has `confirm:`
    /// steps; a saved plan knows which of them its run skips).
    static func interactionRefusal(
        _ playbook: Playbook, yes: Bool, assumeDone: Bool, retry: String?, confirming: Bool? = nil
    ) -> String? {
        guard isatty(0) != 1 else { return nil }
        if playbook.hasManualSteps && !assumeDone {
            return
                "\(playbook.name) has manual steps that wait for you; run it on a terminal, or pass --assume-done once they are done (--yes does not skip them)."
        }
        if confirming ?? playbook.needsConfirmation, !yes, let retry {
            return
                "\(playbook.name) has steps that need a typed yes (their confirm: lines in drover plan); run it on a terminal, or approve them with \(retry) --yes."
        }
        return nil
    }
}
