import DroverCluster
import DroverEngine
import DroverReporting
import DroverSSH
import Foundation

/// What `diagnose` says of work that may still be going on, before any verdict on the cluster: the last run's
/// drover process, its commands still running on the nodes, and the locks held.
enum LiveWorkSituations {
    /// The commands they print name the inventory only: `diagnose` adds the run's other options to every one.
    /// `runAlive`: whether the last run's drover still runs (``LiveWork/processAlive(_:)``, read off the pool).
    static func situations(
        lastRun: Journal?, runAlive: Bool?, running: [LiveWork.Command], locks: [LockOwner],
        lockAdvice: [String: LockAdvice] = [:], inventoryPath: String
    ) -> [Situation] {
        let inventory = "--inventory \(ShellQuote.quote(inventoryPath))"
        let resume = "drover resume \(inventory)"
        var result: [Situation] = []
        var processGone = false
        if let run = lastRun, run.status == .running {
            let inFlight = run.unfinished.map { ["in flight: \($0.step) on \($0.node)"] } ?? []
            switch runAlive {
            case true?:
                result.append(
                    Situation(
                        id: "run-running",
                        summary:
                            "run \(run.runID) (\(run.playbook)) is running: drover, pid \(run.pid ?? 0), on this workstation",
                        evidence: ["journal \(run.path) says running"] + inFlight, command: nil,
                        advice:
                            "Let it finish, or stop it where it runs (Ctrl-C, or kill -TERM \(run.pid ?? 0)): it stops after the step in flight. What follows describes a cluster it is changing."
                    ))
            case false?:
                processGone = true
                result.append(
                    Situation(
                        id: "run-interrupted",
                        summary:
                            "run \(run.runID) (\(run.playbook)) stopped without finishing: its drover process (pid \(run.pid ?? 0)) is gone",
                        evidence: ["journal \(run.path) says running, but no drover runs as pid \(run.pid ?? 0)"]
                            + inFlight,
                        command: resume,
                        advice:
                            "It was killed (kill -9, a crash, a reboot): its lock is still held. resume takes the lock over and continues from the step in flight, following a command still running on its node rather than starting it again."
                    ))
            case nil:
                result.append(
                    Situation(
                        id: "run-elsewhere",
                        summary:
                            "run \(run.runID) (\(run.playbook)) is recorded as running on \(run.workstation) by \(run.user)",
                        evidence: ["journal \(run.path) says running"] + inFlight, command: nil,
                        advice:
                            "Whether it still runs can be told only there. If it does not, continue it (from a workstation with its journal):",
                        adviceCommands: [resume]))
            }
        }
        for command in running {
            result.append(
                Situation(
                    id: "command-running",
                    summary:
                        "`\(command.command)` is still running on \(command.node) (pid \(command.pid), for \(command.seconds)s), a command of run \(lastRun?.runID ?? "?")",
                    evidence: ["its record on \(command.node): started, not ended (its wrapper holds the status lock)"],
                    command: nil,
                    advice:
                        "Nothing is interrupted: it runs on by itself. Diagnose again once it ends; \(processGone ? "resume follows it to its end (it is not started again):" : "the run follows it.")",
                    adviceCommands: processGone ? [resume] : []))
        }
        // A lock whose run is said above needs no second word; any other is named with what clears it.
        let said = Set(result.isEmpty ? [] : [lastRun?.runID].compactMap { $0 })
        var seen: Set<String> = []
        for lock in locks where !said.contains(lock.runID) && seen.insert(lock.runID).inserted {
            let nodes = locks.filter { $0.runID == lock.runID }.map(\.node)
            let advice = lockAdvice[lock.runID]
            result.append(
                Situation(
                    id: "locked",
                    summary: lock.isOwnerless
                        ? "a lock without an owner is held on \(nodes.joined(separator: ", "))"
                        : "the cluster is locked by \(lock.description) on \(nodes.joined(separator: ", "))",
                    evidence: nodes.map {
                        lock.isOwnerless
                            ? "\($0): the lock directory has no owner file naming a run"
                            : "\($0): the lock's owner file names run \(lock.runID)"
                    } + (advice.map { [$0.what] } ?? []),
                    command: nil,
                    advice: "Every run is refused while it is held. "
                        + (advice?.when
                            ?? "If that run still runs, let it finish; if it no longer runs, remove its lock:"),
                    adviceCommands: [
                        advice?.command ?? "drover unlock \(inventory) --run-id \(ShellQuote.quote(lock.runID))"
                    ] + (advice?.alternative.map { [$0.command] } ?? [])))
        }
        return result
    }
}
