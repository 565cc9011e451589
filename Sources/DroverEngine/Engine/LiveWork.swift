import DroverReporting
import DroverSSH
import Foundation

/// What of a recorded run may still be going on: its drover process on this workstation, and the commands of its
/// unfinished step on their node (each runs detached, outliving the drover that started it).
public enum LiveWork {
    /// A command of a run still running on its node, as its record there says.
    public struct Command: Sendable, Equatable {
        public var node: String
        public var command: String
        public var pid: Int
        /// How long it has run.
        public var seconds: Int
    }

    /// Whether the drover process that recorded `journal` still runs: nil when that cannot be told here (it ran
    /// on another workstation, or its journal predates the pid being recorded).
    ///
    /// It reads `/proc` (a file): call it off Swift's cooperative pool, as ``processAliveOffPool(_:)`` does.
    public static func processAlive(_ journal: Journal) -> Bool? {
        processAlive(pid: journal.pid, workstation: journal.workstation)
    }

    /// Whether the drover with `pid` on `workstation` still runs: nil when that cannot be told here.
    public static func processAlive(pid: Int32?, workstation: String) -> Bool? {
        guard let pid, pid > 0, workstation == ProcessInfo.processInfo.hostName else { return nil }
        guard kill(pid_t(pid), 0) == 0 || errno == EPERM else { return false }
        // The pid may have been reused since: only a drover counts. Where the process's command line cannot be
        // read (no /proc), a live pid is not proof either way.
        guard let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return nil }
        let program = command.split(separator: "\0").first.map { String($0) } ?? ""
        return (program as NSString).lastPathComponent.contains("drover")
    }

    /// ``processAlive(_:)`` on a thread of its own.
    public static func processAliveOffPool(_ journal: Journal) async -> Bool? {
        (try? await BlockingWork.run { processAlive(journal) }) ?? nil
    }

    /// True when the lock's holder is provably gone: a drover of this workstation whose process is dead.
    public static func holderGone(_ owner: LockOwner) async -> Bool {
        guard !owner.isOwnerless else { return false }
        let (pid, workstation) = (owner.pid, owner.workstation)
        return (try? await BlockingWork.run { processAlive(pid: pid, workstation: workstation) }) == false
    }

    /// The commands of `journal`'s unfinished step still running on its node: a record whose status file the
    /// command's wrapper still holds locked (the test the node-command script itself makes).
    public static func runningCommands(_ journal: Journal, connection: any NodeTransport) async -> [Command] {
        guard let step = journal.unfinished, connection.failures[step.node] == nil else { return [] }
        let directory = connection.places.recordsDirectory(node: step.node, runID: journal.runID)
        let prefix = NodeCommand.recordPrefix(step: step.step, node: step.node)
        let script = """
            for s in \(ShellQuote.quote(directory))/\(prefix).*.status; do
              [ -f "$s" ] || continue
              if ! flock -n -s 8 8< "$s"; then
                read -r a p < "$s"
                printf 'running %s %s ' "$p" "$(( $(date +%s) - $(stat -c %Y "$s") ))"
                head -n 1 "${s%.status}.command" | head -c 400; echo
              fi
            done
            """
        guard let result = try? await connection.run(step.node, script, timeout: .seconds(30)) else { return [] }
        return result.stdoutText.split(separator: "\n").prefix(20).compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, fields[0] == "running", let pid = Int(fields[1]), let seconds = Int(fields[2])
            else { return nil }
            return Command(
                node: step.node, command: Redactor.standard.redact(TerminalText.readable(String(fields[3]))), pid: pid,
                seconds: seconds)
        }
    }
}

extension LiveWork {
    /// What the records on a node say of a step's commands (actions `actions`, in order), for a step stopped in
    /// flight that is not safe to run again blindly.
    public enum StepRecords: Sendable, Equatable {
        /// The run's records are on the node, and each command either finished with status 0, still runs, or
        /// never started (no record, after one that finished or as the first): running the step again
        /// re-attaches to each record and starts only what never ran, so nothing is done twice.
        case resumable
        /// Anything else: no records of the run on the node at all, a command that ended without a status
        /// (killed, a reboot), one that failed, or records that could not be read.
        case unknown(String)
    }

    static func stepRecords(
        runID: String, step: String, node: String, actions: [Int], connection: any NodeTransport
    ) async -> StepRecords {
        guard !actions.isEmpty else { return .unknown("the step has no command") }
        let directory = connection.places.recordsDirectory(node: node, runID: runID)
        let prefix = NodeCommand.recordPrefix(step: step, node: node)
        // Drover's node script records a command (its status file) before it starts it, and old records go
        // only as a whole run directory: with the directory there, a command without a record never started.
        let script = """
            [ -d \(ShellQuote.quote(directory)) ] || { echo "no-directory"; exit 0; }
            for a in \(actions.map(String.init).joined(separator: " ")); do
              s=\(ShellQuote.quote(directory))/\(prefix).$a.status
              if [ ! -f "$s" ]; then echo "$a missing"
              elif ! flock -n -s 8 8< "$s"; then echo "$a running"
              else printf '%s ' "$a"; tail -n 1 "$s"; fi
            done
            """
        guard let result = try? await connection.run(node, script, timeout: .seconds(30)), result.succeeded else {
            return .unknown("its records on \(node) could not be read")
        }
        if result.stdoutText.hasPrefix("no-directory") {
            return .unknown(
                "no records of this run on \(node) (\(directory) is not there: pruned, or the node rebuilt)")
        }
        let states = result.stdoutText.split(separator: "\n").prefix(actions.count).map {
            $0.split(separator: " ").dropFirst().joined(separator: " ")
        }
        guard states.count == actions.count else { return .unknown("its records on \(node) could not be read") }
        var previousFinished = true
        for state in states {
            switch state {
            case "exit 0", "running": previousFinished = state == "exit 0"
            case "missing" where previousFinished: continue
            default: return .unknown("a command's record on \(node) says \(state.isEmpty ? "nothing" : state)")
            }
        }
        return .resumable
    }
}
