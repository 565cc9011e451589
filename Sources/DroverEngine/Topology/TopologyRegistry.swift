import DroverInventory

/// Every topology Drover knows, found by the inventory's `topology:` value: the one place a new topology is
/// added.
public enum TopologyRegistry {
    public static let all: [any Topology.Type] = [ChefBackendTopology.self, DRBDPairTopology.self]

    /// The type implementing `kind`.
    public static func type(of kind: Inventory.Topology) -> any Topology.Type {
        guard let type = all.first(where: { $0.kind == kind }) else {
            preconditionFailure("no topology registered for \(kind.rawValue)")
        }
        return type
    }
}
