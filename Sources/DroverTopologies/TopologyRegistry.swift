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
    /// lock and records.
    public static func connect(
        _ inventory: Inventory, only names: [String]? = nil, frontends: Bool = false,
        passphrase: PassphraseSource = .environmentOrTerminal(), logger: Logger
    ) async -> ClusterConnection {
        await connect(
            inventory, places: TopologyCatalog.drover.places(inventory), only: names, frontends: frontends,
            passphrase: passphrase, logger: logger)
    }
}
