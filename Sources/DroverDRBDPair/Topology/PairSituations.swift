import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// Decides which documented situation a DRBD pair is in (Chef's DRBD HA guide, scenarios 1 to 5), from
/// one reading of both nodes, with the evidence and the complete next command.
enum PairSituations {
    /// The situation identifiers, as text and JSON name them.
    enum ID: String {
        case healthy, resyncing
        /// Two inventory nodes lead to one machine (their `uname -n` is the same).
        case inventoryMismatch = "inventory-mismatch"
        case secondaryDown = "secondary-down"
        case primaryDown = "primary-down"
        case primaryLostUnsynced = "primary-lost-unsynced"
        case bothSecondary = "both-secondary"
        case splitBrain = "split-brain"
        case transitionInProgress = "transition-in-progress"
        case servicesMisplaced = "services-misplaced"
        /// DRBD is down on a reachable node while its peer is not Primary.
        case drbdDown = "drbd-down"
        /// DRBD is in sync but ha-status reports errors the other situations do not explain.
        case haStatusErrors = "ha-status-errors"
        /// ha-status says keepalived HA is not enabled: the machine is not a keepalived pair (Chef Server 12.9+).
        case notAKeepalivedPair = "not-a-keepalived-pair"
        /// ha-status cannot check a node that has not completed a reconfigure.
        case notReconfigured = "not-reconfigured"
    }

    /// The reading was enough to tell: at least one node's DRBD state was read.
    static func readable(_ observation: PairObservation) -> Bool {
        observation.nodes.contains { $0.reachable && ($0.device != nil || $0.role != nil) }
    }

    static func decide(_ observation: PairObservation, inventory: Inventory, inventoryPath: String) -> Situation? {
        let run = "drover run"
        let at = "--inventory \(ShellQuote.quote(inventoryPath))"
        let resource = inventory.drbd.resource
        let nodes = observation.nodes
        let read = nodes.filter { $0.reachable && $0.device != nil }
        func evidence(_ node: PairNodeObservation) -> String {
            guard node.reachable else { return "\(node.name): unreachable (\(node.unreachable ?? "?"))" }
            guard let device = node.device else {
                return
                    "\(node.name): DRBD \(resource) not running (\(node.readErrors.first ?? "no device in /proc/drbd"))"
            }
            var text =
                "\(node.name): cs:\(device.connection) ro:\(device.role)/\(device.peerRole) ds:\(device.disk)/\(device.peerDisk) oos:\(device.outOfSyncKiB.map(String.init) ?? "?")"
            if let sync = device.sync {
                text += " sync'ed \(sync.percent)%\(sync.finish.map { ", finish \($0)" } ?? "")"
            }
            return text
        }
        let allEvidence = nodes.map(evidence)
        // Which machine a node is comes before any verdict: one machine read twice looks like two Primaries.
        let mismatches = observation.identityMismatches
        if !mismatches.isEmpty {
            let named = mismatches.map(\.node).joined(separator: ", ")
            let lines = mismatches.compactMap { mismatch in
                inventory.backends.first { $0.name == mismatch.node }.map { "\(inventoryPath):\($0.line)" }
            }
            return Situation(
                id: ID.inventoryMismatch.rawValue,
                summary: "two inventory nodes answer as one machine: \(named)",
                evidence: mismatches.map(\.detail) + allEvidence, command: nil,
                advice:
                    "If the inventory lists one machine twice, correct host: for \(named) (\(lines.joined(separator: ", ")), or the ssh_config HostName it takes); if they are two machines with one name (a clone), give each its own (DRBD tells its nodes apart by uname -n). Until then every playbook refuses at pre-flight and nothing is changed. Then check again:",
                adviceCommands: ["drover status \(at)"])
        }
        // What ha-status says about the machines themselves comes first: the DRBD states mean nothing then.
        let answered = nodes.filter { $0.reachable && $0.haStatus != nil }
        let notPair = answered.filter { $0.haStatus!.keepalivedNotEnabled }
        if !notPair.isEmpty {
            let names = notPair.map(\.name).joined(separator: ", ")
            return Situation(
                id: ID.notAKeepalivedPair.rawValue,
                summary:
                    "\(names) \(notPair.count == 1 ? "is" : "are") not configured as a keepalived pair: ha-status says keepalived HA services are not enabled",
                evidence: allEvidence
                    + notPair.map {
                        "\($0.name): [ERROR] keepalived HA services not enabled, please configure keepalived according to documentation."
                    },
                command: nil,
                advice:
                    "The inventory says topology: drbd-pair, but the machine is not one (Chef Server 12.9 and later, where the DRBD pair was deprecated, print only this line). If these are Chef Backend nodes, set topology: chef-backend in the inventory and list the three backends; a standalone Chef Server has no pair to manage."
            )
        }
        let unconfigured = answered.filter { $0.haStatus!.notReconfigured }
        if let node = unconfigured.first {
            return Situation(
                id: ID.notReconfigured.rawValue,
                summary:
                    "\(node.name) has not completed a reconfigure: ha-status cannot check it (and \(inventory.drbd.ctl) status shows no service)",
                evidence: allEvidence + [
                    "\(node.name): [ERROR] cannot check HA status if you haven't completed a reconfigure"
                ],
                command: "drover exec \(at) --node \(node.name) -- \(inventory.drbd.ctl) reconfigure",
                advice:
                    "A node being set up (Chef's DRBD HA guide: the secondary) runs \(inventory.drbd.ctl) reconfigure once its DRBD and keepalived configuration is in place; until then nothing on it can fail over. Then check again: drover diagnose \(at)"
            )
        }
        guard readable(observation) else { return nil }

        // Both Primary, or a node that dropped the connection for good (StandAlone), with both read.
        if read.count == 2,
            read.allSatisfy({ $0.isPrimary }) || read.contains(where: { $0.device?.connection == "StandAlone" })
        {
            return Situation(
                id: ID.splitBrain.rawValue,
                summary: read.allSatisfy { $0.isPrimary }
                    ? "both nodes are DRBD Primary" : "DRBD is StandAlone: the nodes dropped their connection for good",
                evidence: allEvidence, command: nil,
                advice:
                    "Stop here and touch nothing. Each side may hold writes the other lacks; DRBD's own policy (after-sb-*) did not resolve it, and choosing which data to discard needs a person who knows what was written where. Drover runs no command for a split brain."
            )
        }
        // One node's DRBD could be read; the other is unreachable or has DRBD down.
        if read.count == 1, let survivor = read.first, let other = observation.peer(of: survivor.name) {
            let device = survivor.device!
            if survivor.isPrimary {
                return Situation(
                    id: ID.secondaryDown.rawValue,
                    summary:
                        "the secondary \(other.name) is down or not connected; the primary \(survivor.name) keeps serving",
                    evidence: allEvidence + [
                        "\(survivor.name) is \(device.outOfSyncKiB ?? 0) KiB out of sync with \(other.name)"
                    ],
                    command: "\(run) drbd-restart \(at) --set node=\(other.name)",
                    advice: other.reachable
                        ? "Run the command only if \(other.name) stays DUnknown (not Inconsistent or UpToDate)."
                        : "Drover refuses to run anything on \(other.name) until it can reach it.",
                    first: other.reachable
                        ? nil
                        : "nothing to do while \(other.name) is down: \(survivor.name) serves alone. Bring \(other.name) back; it resyncs by itself. Tell when it is back:",
                    firstCommand: other.reachable ? nil : "drover status \(at)",
                    commandCondition: other.reachable
                        ? nil : "\(other.name) is back and stays DUnknown (not Inconsistent or UpToDate)"
                )
            }
            if other.reachable {
                return Situation(
                    id: ID.drbdDown.rawValue,
                    summary: "DRBD \(resource) is not running on \(other.name), and \(survivor.name) is not Primary",
                    evidence: allEvidence, command: "\(run) drbd-restart \(at) --set node=\(other.name)",
                    advice: "Bring DRBD up on \(other.name); diagnose again once both nodes show their DRBD state.")
            }
            if device.disk == "UpToDate" {
                return Situation(
                    id: ID.primaryDown.rawValue,
                    summary:
                        "the primary \(other.name) is down; \(survivor.name) is Secondary with all the data (UpToDate)",
                    evidence: allEvidence, command: "\(run) promote-secondary \(at) --set node=\(survivor.name)",
                    advice:
                        "Promote only if \(other.name) will stay down for a while. When it returns, it fails to take DRBD back and resyncs from \(survivor.name)."
                )
            }
            return Situation(
                id: ID.primaryLostUnsynced.rawValue,
                summary:
                    "DATA LOSS: the primary \(other.name) is lost while \(survivor.name) was not in sync (\(device.disk))",
                evidence: allEvidence + [
                    "\(survivor.name) was \(device.outOfSyncKiB ?? 0) KiB out of sync when the connection dropped"
                ],
                command: "\(run) rebuild-partner \(at) --set survivor=\(survivor.name) --set new=\(other.name)",
                advice:
                    "!! Writes the lost primary made after the last sync are gone: re-upload cookbooks from source control and re-create recent users or organizations afterwards. Never promote \(survivor.name) plainly: rebuild-partner stops it, pairs it with a newly built \(other.name) (or another host in its inventory entry) and forces it primary, with confirmation."
            )
        }
        guard read.count == 2 else {
            return Situation(
                id: ID.drbdDown.rawValue, summary: "DRBD \(resource) is not running on either node",
                evidence: allEvidence,
                command: nil, advice: "Start DRBD on both nodes (drbdadm up \(resource)), then diagnose again.")
        }
        if let syncing = read.first(where: { $0.device?.connection.hasSuffix("SyncTarget") == true })
            ?? read.first(where: { $0.device?.isSyncing == true })
        {
            let sync = read.compactMap { $0.device?.sync }.first
            let progress =
                sync.map { "\($0.percent)% done\($0.finish.map { ", finishing in \($0)" } ?? "")" }
                ?? "progress not shown"
            return Situation(
                id: ID.resyncing.rawValue,
                summary: "DRBD is resyncing (\(syncing.name) is \(syncing.device!.connection)): \(progress)",
                evidence: allEvidence, command: nil,
                advice: "Wait for the sync to finish, then check again:", adviceCommands: ["drover diagnose \(at)"])
        }
        if read.allSatisfy({ $0.isSecondary }) {
            let chosen = read.min { ($0.device?.outOfSyncKiB ?? Int.max) < ($1.device?.outOfSyncKiB ?? Int.max) }!
            let oos = read.map { "\($0.name) oos \($0.device?.outOfSyncKiB.map(String.init) ?? "?")" }.joined(
                separator: ", ")
            return Situation(
                id: ID.bothSecondary.rawValue, summary: "both nodes are DRBD Secondary; no node serves",
                evidence: allEvidence, command: "\(run) promote-secondary \(at) --set node=\(chosen.name)",
                advice:
                    "Promote the node with the lower oos (\(oos)); either when both are 0. If \(chosen.name) will not promote, discard the other's data:",
                adviceCommands: ["\(run) discard-node-data \(at) --set node=\(observation.peer(of: chosen.name)!.name)"]
            )
        }
        let primary = read.first { $0.isPrimary }!
        let secondary = observation.peer(of: primary.name)!
        if !(primary.inSync && secondary.inSync) {
            return Situation(
                id: ID.secondaryDown.rawValue,
                summary:
                    "the secondary \(secondary.name) is up but DRBD is not connected; the primary \(primary.name) keeps serving",
                evidence: allEvidence, command: "\(run) drbd-restart \(at) --set node=\(secondary.name)",
                advice:
                    "If \(secondary.name) stays DUnknown (not Inconsistent or UpToDate), restarting its DRBD makes it connect and resync."
            )
        }
        if let transition = read.first(where: { $0.haStatus?.inconsistent != nil }) {
            let state = transition.haStatus!.inconsistent!
            return Situation(
                id: ID.transitionInProgress.rawValue,
                summary:
                    "a keepalived transition is running on \(transition.name) (requested \(state.requested), current \(state.current))",
                evidence: allEvidence + ["\(transition.name): [WARN] inconsistent cluster status"], command: nil,
                advice:
                    "Wait and check again (a failover takes up to the inventory's timeouts.transition, \(DurationText.format(inventory.timeouts.transition))):",
                adviceCommands: ["drover diagnose \(at)"])
        }
        let misplaced = read.flatMap { node in
            (node.haStatus?.misplacedServices ?? []).map { (node.name, $0.service, $0.running) }
        }
        if !misplaced.isEmpty {
            let names = misplaced.map {
                "\($0.1) \($0.2 ? "runs on \($0.0), which is not master" : "is not running on \($0.0), which is master")"
            }
            let ctl = inventory.drbd.ctl
            let fixes = misplaced.map {
                "drover exec \(at) --node \($0.0) -- \(ctl) \($0.2 ? "stop" : "start") \($0.1)"
            }
            return Situation(
                id: ID.servicesMisplaced.rawValue,
                summary: "services on the wrong node: \(names.joined(separator: "; "))",
                evidence: allEvidence
                    + misplaced.map {
                        "\($0.0): [ERROR] \($0.1) is \($0.2 ? "running, and I am not master" : "not running correctly, and I am master")"
                    },
                command: fixes.joined(separator: " && "),
                advice:
                    "Each service is stopped on the node that is not master, or started on the master (\(ctl) master-recover on \(primary.name) starts them all). Then check again:",
                adviceCommands: ["drover diagnose \(at)"])
        }
        let failing = read.filter { $0.haStatus?.passed != true }
        if !failing.isEmpty {
            return Situation(
                id: ID.haStatusErrors.rawValue,
                summary: "DRBD is in sync, but ha-status fails on \(failing.map(\.name).joined(separator: ", "))",
                evidence: allEvidence
                    + failing.flatMap { node in
                        node.haStatus.map { $0.significantErrors.map { "\(node.name): [ERROR] \($0)" } } ?? [
                            "\(node.name): ha-status unreadable (\(node.readErrors.last ?? "?"))"
                        ]
                    },
                command: nil, advice: "Read \(inventory.drbd.ctl) ha-status on those nodes and fix what it names.")
        }
        let harmless = read.flatMap { node in
            (node.haStatus?.harmless ?? []).map {
                "\(node.name): ha-status reports `\($0.error)`: known and harmless (\($0.why))"
            }
        }
        return Situation(
            id: ID.healthy.rawValue,
            summary: "\(primary.name) is Primary and master, \(secondary.name) Secondary, UpToDate/UpToDate, in sync",
            evidence: allEvidence + harmless, command: nil,
            advice: harmless.isEmpty ? nil : harmless.joined(separator: "; "))
    }
}
