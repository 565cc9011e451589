import Foundation

/// `df`: free space where packages and data live.
extension Invocation {
    /// `df -P -k PATH` (or `-Pk`, `-h`): the simulated free space for node-private paths.
    func df(_ arguments: [String]) throws -> Int32 {
        let full = try store.update { cluster, _ in cluster.node(node)?.faults.contains(.diskFull) ?? false }
        out(DfOutput.text(arguments, availableKB: full ? DfOutput.fullKB : DfOutput.plentyKB))
        return 0
    }
}

/// What `df` prints for a 20 GiB disk: POSIX (`-P -k`) or human (`-h`) form, a line per path asked.
enum DfOutput {
    static let sizeKB = 20 * 1024 * 1024
    /// Plenty of space (12 GiB free), and a disk-full fault's 100 MiB.
    static let plentyKB = 12 * 1024 * 1024
    static let fullKB = 100 * 1024

    static func text(_ arguments: [String], availableKB: Int) -> String {
        let paths = arguments.filter { !$0.hasPrefix("-") }
        let human = arguments.contains { $0.hasPrefix("-") && $0.contains("h") }
        var text =
            human
            ? "Filesystem      Size  Used Avail Use% Mounted on\n"
            : "Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
        let used = sizeKB - availableKB
        let percent = used * 100 / sizeKB
        for path in paths.isEmpty ? ["/"] : paths {
            if human {
                let available =
                    availableKB >= 1_048_576 ? "\(availableKB / 1_048_576)G" : "\(availableKB / 1024)M"
                text += "/dev/vdb         20G  \(used / 1_048_576)G  \(available)  \(percent)% \(path)\n"
            } else {
                text += "/dev/vdb         \(sizeKB)  \(used)   \(availableKB)      \(percent)% \(path)\n"
            }
        }
        return text
    }
}
