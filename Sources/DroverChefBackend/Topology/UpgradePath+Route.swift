import DroverCluster
import DroverEngine
import DroverReporting

/// A Chef Backend upgrade path (reference §11) as the engine sees it.
extension UpgradePath: UpgradeRoute {
    public var name: String { kind.rawValue }

    /// Both downtime paths stop every backend.
    public var takesEveryNodeDown: Bool { kind == .downtime1To2 || kind == .downtimeReindex }
}
