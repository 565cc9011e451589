import Foundation

/// `df`: free space where packages and data live.
extension Invocation {
    /// `df -P -k PATH` (or `-Pk`, `-h`): the simulated free space for node-private paths.
    func df(_ arguments: [String]) throws -> Int32 {
        let paths = arguments.filter { !$0.hasPrefix("-") }
        let human = arguments.contains { $0.hasPrefix("-") && $0.contains("h") }
        let full = try store.update { cluster, _ in cluster.node(node)?.faults.contains(.diskFull) ?? false }
        let sizeKB = 20 * 1024 * 1024
        let availableKB = full ? 100 * 1024 : 12 * 1024 * 1024
        out(
            human
                ? "Filesystem      Size  Used Avail Use% Mounted on\n"
                : "Filesystem     1024-blocks      Used Available Capacity Mounted on\n")
        for path in paths.isEmpty ? ["/"] : paths {
            let used = sizeKB - availableKB
            let percent = used * 100 / sizeKB
            if human {
                out(
                    "/dev/vdb         20G  \(used / 1_048_576)G  \(availableKB >= 1_048_576 ? "\(availableKB / 1_048_576)G" : "\(availableKB / 1024)M")  \(percent)% \(path)\n"
                )
            } else {
                out("/dev/vdb         \(sizeKB)  \(used)   \(availableKB)      \(percent)% \(path)\n")
            }
        }
        return 0
    }
}
