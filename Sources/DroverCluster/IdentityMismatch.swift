/// An inventory backend that is not the machine the cluster knows by its name: a wrong `host:` (a typo, an
/// address reused), found by comparing the inventory with `cluster-status` and with the node's own
/// `publish_address`. Such a node is neither down nor healthy as far as Drover can tell; nothing may change
/// membership or data until the inventory is fixed.
public struct IdentityMismatch: Sendable, Equatable {
    /// The inventory's name of the backend.
    public var node: String
    /// The inventory's `host:` for it (after ssh_config's HostName).
    public var inventoryHost: String
    /// What does not agree, in one sentence that starts with the node's name.
    public var detail: String

    public init(node: String, inventoryHost: String, detail: String) {
        self.node = node
        self.inventoryHost = inventoryHost
        self.detail = detail
    }
}
