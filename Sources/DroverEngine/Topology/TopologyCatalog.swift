import DroverInventory

/// The topologies a drover knows, found by the inventory's `topology:` value. The engine names none of them:
/// the list is given to it (Drover's is `DroverTopologies`' ``TopologyCatalog`` extension).
public struct TopologyCatalog: Sendable {
    /// Every topology, the default first: the one of playbooks and inventories that name none.
    public let all: [any Topology.Type]

    public init(_ all: [any Topology.Type]) {
        precondition(!all.isEmpty, "a catalog lists at least one topology")
        self.all = all
    }

    /// The topology of playbooks that name none.
    public var defaultKind: Inventory.Topology { all[0].kind }

    /// The type implementing `kind`, or nil when this catalog has none.
    public func type(of kind: Inventory.Topology) -> (any Topology.Type)? { all.first { $0.kind == kind } }

    /// The type implementing `kind`; a kind no topology of the catalog implements is a programming error (Drover's
    /// catalog implements every `topology:` an inventory may name; playbooks are checked against it where read).
    public func implementation(of kind: Inventory.Topology) -> any Topology.Type {
        guard let type = type(of: kind) else { preconditionFailure("no topology registered for \(kind.rawValue)") }
        return type
    }

    /// Calls `body` with the inventory's topology.
    public func with<R>(_ inventory: Inventory, _ body: (any Topology) async -> R) async -> R {
        await body(implementation(of: inventory.topology).init(inventory: inventory))
    }
}
