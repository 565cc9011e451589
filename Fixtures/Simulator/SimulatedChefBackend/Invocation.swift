import Foundation

/// One invocation of a simulated tool on one node; writes like the real tool and returns its exit status.
public struct Invocation {
    public let node: String
    public let store: StateStore
    public let environment: [String: String]
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(
        node: String, store: StateStore, environment: [String: String],
        out: @escaping (String) -> Void, err: @escaping (String) -> Void
    ) {
        self.node = node
        self.store = store
        self.environment = environment
        self.out = out
        self.err = err
    }

    /// Dispatches on the tool name (`chef-backend-ctl`, `dpkg`, `dpkg-query`, `rpm`, `yum`, `df`).
    public func run(tool: String, arguments: [String]) -> Int32 {
        do {
            switch tool {
            case "chef-backend-ctl": return try ctl(arguments)
            case "dpkg": return try dpkg(arguments)
            case "dpkg-query": return try dpkgQuery(arguments)
            case "rpm": return try rpm(arguments)
            case "yum": return try yum(arguments)
            case "df": return try df(arguments)
            case "curl": return try curl(arguments)
            default:
                err("\(tool): not simulated\n")
                return 127
            }
        } catch {
            err("\(error.localizedDescription)\n")
            return 70
        }
    }
}
