import DroverEngine
import DroverReporting
import Foundation

extension Operations {
    /// `drover playbooks`: every playbook (or those of one topology) with where it comes from, its
    /// topology and its description.
    public static func listPlaybooks(_ library: PlaybookLibrary, topology: String? = nil) -> ExitStatus {
        do {
            let playbooks = try library.all().filter { topology == nil || $0.topology.rawValue == topology }
            let rows = playbooks.map { playbook in
                [
                    playbook.name, playbook.source.label, playbook.topology.rawValue,
                    playbook.description.split(separator: "\n").joined(separator: " "),
                ]
            }
            Output.stdout(TextTable(header: ["PLAYBOOK", "SOURCE", "TOPOLOGY", "DESCRIPTION"], rows: rows).text)
            return .success
        } catch {
            Output.diagnostic("invalid playbook: \(error.localizedDescription)")
            return .usage
        }
    }
}
