import DroverEngine
import DroverReporting
import DroverSSH
import Foundation

/// What to say of a cluster lock that stops a run, and the one command that clears it: a lock without an
/// owner, one whose drover is provably gone (this workstation, its process dead), or another run's.
struct LockAdvice: Sendable {
    /// The lock, in words (`run X (alice@laptop, ...) on be1, whose drover (pid N) is gone`).
    var what: String
    /// When the command applies.
    var when: String
    /// The command, printed alone on its line.
    var command: String
    /// A second way out, when there is one (`Or remove its lock and start again:` and its command).
    var alternative: (when: String, command: String)?

    /// What is printed: each command alone on its line, under what says when it applies.
    var text: String {
        "\(when)\n    \(command)\n" + (alternative.map { "\($0.when)\n    \($0.command)\n" } ?? "")
    }

    init(_ owner: LockOwner, cluster: String, inventoryPath: String, stateDirectory: String?) async {
        let unlock = "drover unlock --inventory \(ShellQuote.quote(inventoryPath))"
        if owner.isOwnerless {
            what =
                "\(owner.node) holds a lock directory without an owner (a drover cut off while it took the lock, or a file not Drover's)"
            when = "Make sure no drover is starting a run on this cluster, then remove it:"
            command = unlock + " --ownerless"
            return
        }
        command = unlock + " --run-id \(ShellQuote.quote(owner.runID))"
        if await LiveWork.holderGone(owner) {
            let runID = owner.runID
            let journal =
                (try? await BlockingWork.run {
                    StateDirectory(stateDirectory).journals(cluster: cluster).contains { $0.runID == runID }
                }) ?? false
            what =
                "\(owner.description) on \(owner.node), whose drover (pid \(owner.pid ?? 0)) on this workstation is gone"
                + (journal ? "" : " and recorded no journal: it was killed before its first step and changed nothing")
            when = journal ? "Continue that run (resume takes its lock over):" : "Remove its lock:"
            if journal {
                alternative = ("Or remove its lock and start again:", command)
                command = NextCommandOptions(stateDirectory: stateDirectory).carried(
                    "drover resume --inventory \(ShellQuote.quote(inventoryPath))")
            }
            return
        }
        what = "\(owner.description) on \(owner.node)"
        when = "If that run no longer runs anywhere, remove its lock:"
    }
}
