import DroverCluster
import DroverReporting
import Foundation

/// What Drover read from one node of a DRBD pair.
public struct PairNodeObservation: Sendable {
    public var name: String
    public var host: String
    /// Why the node could not be read; nil when it was.
    public var unreachable: String?
    /// The resource's device in `/proc/drbd`; nil when DRBD is not loaded or the resource is down.
    public var device: DRBDDevice?
    /// `drbdadm role RES`.
    public var role: DRBDRole?
    /// `drbdadm role RES` said `Unconfigured`: the resource is down here, so this node is not Primary.
    public var resourceDown = false
    /// `CTL ha-status`.
    public var haStatus: HAStatus?
    /// The owner file of a Drover lock on this node, when one is held.
    public var lockOwner: String?
    /// The reading read the lock's owner file here (``lockOwner`` nil then means no lock).
    public var lockRead = false
    /// The machine's own name, `uname -n` (the name DRBD matches a resource's `on` section with).
    public var machineName: String?
    /// Problems reading individual items (command failed, output not in the documented form).
    public var readErrors: [String] = []

    public init(name: String, host: String) {
        self.name = name
        self.host = host
    }

    public var reachable: Bool { unreachable == nil }

    /// This node's DRBD role: `drbdadm role` first, else `/proc/drbd`'s `ro:`.
    public var drbdRole: String? { role?.local ?? device?.role }

    public var isPrimary: Bool { drbdRole == "Primary" }
    public var isSecondary: Bool { drbdRole == "Secondary" }
    public var diskUpToDate: Bool { device?.disk == "UpToDate" }
    /// Connected with both disks UpToDate and nothing out of sync.
    public var inSync: Bool {
        device?.connection == "Connected" && device?.disk == "UpToDate" && device?.peerDisk == "UpToDate"
            && (device?.outOfSyncKiB ?? 0) == 0
    }
}

/// The pair as read in one pass over both nodes.
public struct PairObservation: Sendable {
    public var nodes: [PairNodeObservation]
    public var time: Date

    public init(nodes: [PairNodeObservation], time: Date = Date()) {
        self.nodes = nodes
        self.time = time
    }

    public func node(_ name: String) -> PairNodeObservation? { nodes.first { $0.name == name } }

    /// The other node of the pair.
    public func peer(of name: String) -> PairNodeObservation? { nodes.first { $0.name != name } }

    /// Nodes whose own reading says they are DRBD Primary.
    public var primaries: [String] { nodes.filter { $0.reachable && $0.isPrimary }.map(\.name) }

    /// The one Primary, when exactly one node is.
    public var primary: String? { primaries.count == 1 ? primaries[0] : nil }

    /// The node that is not the Primary, when there is one Primary.
    public var secondary: String? { primary.flatMap { peer(of: $0)?.name } }

    /// Inventory nodes that answer as one machine: two reached nodes whose `uname -n` is the same. DRBD needs
    /// each node of a resource to have a name of its own, so this is one machine listed twice (two of its
    /// addresses, a `host:` typo) or a clone that DRBD cannot pair; either way nothing may change until it is
    /// fixed.
    public var identityMismatches: [IdentityMismatch] {
        var result: [IdentityMismatch] = []
        for (index, node) in nodes.enumerated() where node.reachable {
            guard let name = node.machineName, !name.isEmpty,
                let first = nodes[..<index].first(where: { $0.reachable && $0.machineName == name })
            else { continue }
            result.append(
                IdentityMismatch(
                    node: node.name, inventoryHost: node.host,
                    detail:
                        "\(node.name): the inventory's host \(node.host) leads to the machine named \(name) (uname -n), as \(first.name)'s host \(first.host) does: one machine listed twice, or two machines with one name, which DRBD cannot pair"
                ))
        }
        return result
    }

    /// The node whose ha-status says it holds the virtual IP.
    public var vipHolder: String? { nodes.first { $0.reachable && $0.haStatus?.holdsVIP == true }?.name }
}
