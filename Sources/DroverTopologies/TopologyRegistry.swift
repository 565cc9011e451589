import DroverChefBackend
import DroverDRBDPair
import DroverEngine
import DroverInventory
import DroverSSH
import Logging

extension TopologyCatalog {
    /// Every topology Drover knows, the default (`chef-backend`) first: the one place a new topology is added.
    public static let drover = TopologyCatalog([ChefBackendTopology.self, DRBDPairTopology.self])
}

/// Calls `body` with the inventory's topology, from Drover's catalog.
public func withTopology<R>(_ inventory: Inventory, _ body: (any Topology) async -> R) async -> R {
    await TopologyCatalog.drover.with(inventory, body)
}

extension ClusterConnection {
    /// Connects to the inventory's nodes (see the engine's `connect`), with its topology's places for Drover's
    /// lock and records; `auxiliaries` adds the topology's auxiliary nodes (a Chef Backend cluster's frontends
    /// that have `host`).
    public static func connect(
        _ inventory: Inventory, only names: [String]? = nil, auxiliaries: Bool = false,
        passphrase: PassphraseSource = .environmentOrTerminal(), logger: Logger
    ) async -> ClusterConnection {
        let topology = TopologyCatalog.drover.implementation(of: inventory.topology)
        return await connect(
            inventory, places: topology.places(inventory),
            auxiliaries: auxiliaries ? topology.auxiliaryNodes(inventory) : [], only: names, passphrase: passphrase,
            logger: logger)
    }
}
