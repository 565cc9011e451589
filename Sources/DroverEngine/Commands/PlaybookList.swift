import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

extension Operations {
    /// `drover playbooks`: every playbook with where it comes from and its description.
    public static func listPlaybooks(_ library: PlaybookLibrary) -> ExitStatus {
        do {
            let playbooks = try library.all()
            let nameWidth = playbooks.map(\.name.count).max() ?? 0
            let sourceWidth = max(8, playbooks.map(\.source.label.count).max() ?? 0)
            for playbook in playbooks {
                let summary = playbook.description.split(separator: "\n").joined(separator: " ")
                Output.stdout(playbook.name.padding(toLength: nameWidth + 2, withPad: " ", startingAt: 0)
                    + playbook.source.label.padding(toLength: sourceWidth + 2, withPad: " ", startingAt: 0) + summary + "\n")
            }
            return .success
        } catch {
            Output.stderr("drover: invalid playbook: \(error.localizedDescription)\n")
            return .usage
        }
    }
}
