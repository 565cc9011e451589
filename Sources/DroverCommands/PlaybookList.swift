import DroverEngine
import DroverReporting
import Foundation

extension Operations {
    /// `drover playbooks`: every playbook (or those of one topology) with where it comes from, its
    /// topology and its description.
    public static func listPlaybooks(_ library: PlaybookLibrary, topology: String? = nil) -> ExitStatus {
        do {
            let playbooks = try library.all().filter { topology == nil || $0.topology.rawValue == topology }
            let nameWidth = playbooks.map(\.name.count).max() ?? 0
            let sourceWidth = max(8, playbooks.map(\.source.label.count).max() ?? 0)
            for playbook in playbooks {
                let summary = playbook.description.split(separator: "\n").joined(separator: " ")
                Output.stdout(
                    playbook.name.padding(toLength: nameWidth + 2, withPad: " ", startingAt: 0)
                        + playbook.source.label.padding(toLength: sourceWidth + 2, withPad: " ", startingAt: 0)
                        + playbook.topology.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0) + summary + "\n"
                )
            }
            return .success
        } catch {
            Output.diagnostic("invalid playbook: \(error.localizedDescription)")
            return .usage
        }
    }
}
