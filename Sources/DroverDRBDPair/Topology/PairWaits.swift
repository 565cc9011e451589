import DroverCluster
import DroverEngine
import DroverReporting
import Foundation

/// How each wait of a DRBD pair playbook is evaluated on one reading of both nodes.
enum PairWaits {
    enum Predicate: String, CaseIterable {
        /// After `stop keepalived` on the step's node (the old primary): the other node is Primary,
        /// keepalived master, holds the VIP and passes ha-status; the old one is Secondary, Connected,
        /// UpToDate/UpToDate.
        case transitioned
        /// Both nodes pass ha-status and DRBD is in sync (the `healthy` situation).
        case pairHealthy = "pair-healthy"
        /// `drbdadm role` on the step's node shows Primary.
        case primary
        /// ha-status on the step's node says master and that it holds the VIP.
        case master
        /// The step's node is Connected and UpToDate/UpToDate, or resyncing (progress reported).
        case connected
        /// The step's node has DRBD up and waits for its peer (`WFConnection`).
        case waitingForConnection = "waiting-for-connection"
        /// The step's node is Connected, UpToDate/UpToDate, nothing out of sync.
        case synced
    }

    static func criteria(
        _ name: String, node nodeName: String, observation: PairObservation, situation: () -> Situation?
    ) -> [Criterion] {
        let node = observation.node(nodeName)
        let peer = observation.peer(of: nodeName)
        guard let node, node.reachable else {
            return [Criterion("reachable", false, "\(nodeName) unreachable: \(node?.unreachable ?? "?")")]
        }
        func drbd(_ seen: PairNodeObservation?) -> String {
            guard let seen, seen.reachable else { return "unreachable" }
            guard let device = seen.device else { return "DRBD down" }
            return "cs:\(device.connection) ro:\(device.role)/\(device.peerRole) ds:\(device.disk)/\(device.peerDisk)"
        }
        func progress() -> Criterion? {
            guard let sync = [node.device?.sync, peer?.device?.sync].compactMap({ $0 }).first else { return nil }
            return Criterion(
                "note", true,
                "resync \(sync.percent)%\(sync.finish.map { ", finish \($0)" } ?? "")\(sync.speedKiBPerSecond.map { ", \($0) K/sec" } ?? "")"
            )
        }
        switch Predicate(rawValue: name) {
        case .transitioned:
            let other = peer
            return [
                Criterion("new primary", other?.isPrimary == true, "\(other?.name ?? "peer") \(drbd(other))"),
                Criterion(
                    "new master", other?.haStatus?.keepalived == "master",
                    "\(other?.name ?? "peer") keepalived \(other?.haStatus?.keepalived ?? "unknown")"),
                Criterion(
                    "vip", other?.haStatus?.holdsVIP == true,
                    "\(other?.name ?? "peer") \(other?.haStatus?.holdsVIP == true ? "holds" : "does not hold") the VIP"),
                Criterion(
                    "ha-status", other?.haStatus?.passed == true,
                    "\(other?.name ?? "peer") ha-status \(other?.haStatus?.passed == true ? "passed" : "not passed")"),
                Criterion("old secondary", node.isSecondary && node.inSync, "\(nodeName) \(drbd(node))"),
            ]
        case .pairHealthy:
            let found = situation()
            return [
                Criterion("situation", found?.id == PairSituations.ID.healthy.rawValue, found?.summary ?? "cannot tell")
            ]
        case .primary:
            return [
                Criterion(
                    "role", node.role?.local == "Primary",
                    "drbdadm role: \(node.role.map { "\($0.local)/\($0.peer)" } ?? "unknown")")
            ]
        case .master:
            return [
                Criterion(
                    "master", node.haStatus?.keepalived == "master",
                    "keepalived \(node.haStatus?.keepalived ?? "unknown")"),
                Criterion(
                    "vip", node.haStatus?.holdsVIP == true,
                    node.haStatus?.holdsVIP == true ? "holds the VIP" : "does not hold the VIP"),
            ]
        case .connected:
            let ok = node.inSync || node.device?.isSyncing == true
            return [Criterion("drbd", ok, "\(nodeName) \(drbd(node))")] + [progress()].compactMap { $0 }
        case .waitingForConnection:
            return [Criterion("drbd", node.device?.connection == "WFConnection", "\(nodeName) \(drbd(node))")]
        case .synced:
            return [
                Criterion("drbd", node.inSync, "\(nodeName) \(drbd(node))\(progress().map { "; " + $0.detail } ?? "")")
            ]
        case nil:
            return [Criterion("predicate", false, "unknown predicate \(name)")]
        }
    }

    static func explain(_ name: String, node: String?) -> String {
        let node = node ?? "the node"
        switch Predicate(rawValue: name) {
        case .transitioned:
            return
                "the peer of \(node) is Primary, keepalived master, holds the VIP and passes ha-status; \(node) is Secondary, Connected, UpToDate/UpToDate"
        case .pairHealthy:
            return "both nodes pass ha-status; DRBD Connected, Primary/Secondary, UpToDate/UpToDate, oos 0"
        case .primary: return "drbdadm role on \(node) shows Primary"
        case .master: return "ha-status on \(node): cluster status master, VIP held"
        case .connected: return "\(node) Connected and UpToDate/UpToDate (or resyncing, with percent and ETA)"
        case .waitingForConnection: return "\(node) has DRBD up, waiting for its peer (WFConnection)"
        case .synced: return "\(node) Connected, UpToDate/UpToDate, nothing out of sync"
        case nil: return name
        }
    }
}

/// The conditions a DRBD pair step can require, checked right before it runs.
enum PairConditions {
    enum Requirement: String, CaseIterable {
        /// The step's node's own disk is UpToDate.
        case diskUpToDate = "disk-uptodate"
        /// The peer is not Primary: neither as the step's node sees it nor by its own reading.
        case peerNotPrimary = "peer-not-primary"
        /// The step's node is not Primary (its role unknown counts only when its peer is Primary).
        case notPrimary = "not-primary"
        /// The step's node is Primary.
        case isPrimary = "is-primary"
        /// The step's node's data may be discarded: its peer is read, UpToDate, and the node holds
        /// neither the only UpToDate disk nor the lower oos, and is not Primary.
        case discardable
    }

    static func holds(
        _ name: String, node nodeName: String, observation: PairObservation
    ) -> (holds: Bool, detail: String) {
        let node = observation.node(nodeName)
        let peer = observation.peer(of: nodeName)
        let device = node?.device
        switch Requirement(rawValue: name) {
        case .diskUpToDate:
            return (
                device?.disk == "UpToDate",
                "\(nodeName)'s disk is \(device?.disk ?? (node?.reachable == true ? "not readable (DRBD down?)" : "unreachable"))"
            )
        case .peerNotPrimary:
            let seen = device?.peerRole ?? node?.role?.peer ?? "unknown"
            let own = peer?.reachable == true ? (peer?.drbdRole ?? "unknown") : "unreachable"
            return (
                seen != "Primary" && own != "Primary",
                "\(nodeName) sees its peer as \(seen); \(peer?.name ?? "the peer") reads \(own)"
            )
        case .notPrimary:
            if let role = node?.drbdRole { return (role != "Primary", "\(nodeName) is \(role)") }
            if node?.resourceDown == true, node?.device == nil {
                return (true, "\(nodeName) has DRBD down (Unconfigured)")
            }
            return (
                peer?.isPrimary == true,
                "\(nodeName)'s role is unknown and \(peer?.name ?? "its peer") is \(peer?.drbdRole ?? "not Primary")"
            )
        case .isPrimary:
            return (
                node?.role?.local == "Primary",
                "drbdadm role on \(nodeName): \(node?.role.map { "\($0.local)/\($0.peer)" } ?? "unknown")"
            )
        case .discardable:
            guard let peer, peer.reachable, let peerDevice = peer.device else {
                return (
                    false,
                    "\(peer?.name ?? "the peer")'s DRBD state cannot be read, so \(nodeName) may hold the only copy"
                )
            }
            if node?.isPrimary == true { return (false, "\(nodeName) is Primary: its data is the data being served") }
            if device?.disk == "UpToDate" && peerDevice.disk != "UpToDate" {
                return (false, "\(nodeName) holds the only UpToDate disk (\(peer.name) is \(peerDevice.disk))")
            }
            if peerDevice.disk != "UpToDate" {
                return (
                    false,
                    "\(peer.name)'s disk is \(peerDevice.disk): discarding \(nodeName)'s data would leave no UpToDate copy to resync from"
                )
            }
            if let mine = device?.outOfSyncKiB, let theirs = peerDevice.outOfSyncKiB, mine < theirs {
                return (
                    false,
                    "\(nodeName) has the lower oos (\(mine) KiB against \(theirs) on \(peer.name)): keep it and discard \(peer.name) instead"
                )
            }
            return (
                true,
                "\(peer.name) is \(peerDevice.disk) with oos \(peerDevice.outOfSyncKiB.map(String.init) ?? "?"); \(nodeName) oos \(device?.outOfSyncKiB.map(String.init) ?? "?")"
            )
        case nil:
            return (false, "unknown condition \(name)")
        }
    }
}
