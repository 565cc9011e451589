import DroverCluster
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

// Questions to the operator: confirming a destructive step, a manual step done.
extension Runner {
    /// An interrupt (Ctrl-C, SIGTERM) arrived while the operator was being asked: the question is withdrawn and
    /// the run stops there, running nothing more of the step.
    struct PromptWithdrawn: Error {}

    func confirm(_ message: String, step: Playbook.Step, node: String) async throws {
        reporter.emit(Event(.confirmationRequested(node: node, message: message)))
        if interaction.yes { return }
        let answer = await interaction.ask("Destructive step \(step.name) on \(node). Type yes to go ahead: ")
        if stopRequested() { throw PromptWithdrawn() }
        guard answer == "yes" else {
            throw StepFailure(
                step: step.name, node: node, what: "not confirmed by the operator; nothing more was done", advice: [])
        }
    }

    func manual(_ instruction: String, step: Playbook.Step, node: String) async throws {
        reporter.emit(
            Event(.manualStepRequested(node: node, instruction: instruction, assumedDone: interaction.assumeDone)))
        if interaction.assumeDone { return }
        let answer = await interaction.ask("When it is done, type done (or abort): ")
        if stopRequested() { throw PromptWithdrawn() }
        guard answer == "done" else {
            throw StepFailure(
                step: step.name, node: node, what: "the operator did not confirm the manual step", advice: [])
        }
    }
}
