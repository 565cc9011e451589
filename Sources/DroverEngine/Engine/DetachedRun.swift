import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// What happened to the connection while a node command ran.
enum ConnectionEvent: Sendable {
    /// The session was lost; Drover reconnects (the command runs on on the node).
    case lost(reason: String)
    /// Connected again after `after`; the record showed the command `state`.
    case reattached(after: Duration, state: NodeCommand.State)
    /// The first attach of a resumed run found the command already started (running or finished).
    case found(state: NodeCommand.State)
}

/// The outcome of a node command, however many connections it took.
struct DetachedResult: Sendable {
    var result: CommandResult
    /// The gaps in the connection, for the transcript: `lost at ...; re-attached at ...`.
    var gaps: [String]
}

/// The node command could not be followed to its end.
enum NodeCommandError: LocalizedError {
    case vanished(node: String, command: String, record: String)
    case unusable(node: String, detail: String)
    case lost(node: String, reason: String, waited: Duration)

    var errorDescription: String? {
        switch self {
        case let .vanished(node, command, record):
            return "`\(command)` on \(node) ended without recording its exit status (killed, or the node restarted): its outcome "
                + "is unknown; see \(record)/out and err on \(node)"
        case let .unusable(node, detail):
            return "cannot run commands detached on \(node): \(detail); check that the directory exists and is writable by the SSH user "
                + "(or set ssh.sudo)"
        case let .lost(node, reason, waited):
            return "the connection to \(node) was lost (\(reason)) and could not be made again within \(DurationText.format(waited)); "
                + "the command may still be running there"
        }
    }
}

extension ClusterConnection {
    /// Runs a node command on `node` and follows it to its end, reconnecting (backoff 1 s doubling to 15 s,
    /// host key verified again) and re-attaching as often as the connection is lost before `deadline`. The
    /// output is passed on once: a re-attach goes on from the lines already seen.
    func runDetached(_ node: String, _ command: NodeCommand, retryFailed: Bool, deadline: ContinuousClock.Instant,
                     onOutput: @escaping @Sendable (OutputLine) -> Void,
                     onConnection: @escaping @Sendable (ConnectionEvent) -> Void) async throws -> DetachedResult {
        struct Progress {
            var seen = NodeCommand.Seen()
            var stdout = "", stderr = ""
            var state: NodeCommand.State?
            var detail = ""
            var gaps: [String] = []
        }
        let progress = Locked(Progress())
        let started = ContinuousClock.now
        var retry = retryFailed
        var lostAt: (ContinuousClock.Instant, Date)?
        var attaches = 0
        while true {
            if attaches > 0, ContinuousClock.now >= deadline, let since = lostAt {
                throw NodeCommandError.lost(node: node, reason: "lost again after every reconnect", waited: ContinuousClock.now - since.0)
            }
            attaches += 1
            let reattaching = lostAt
            let first = attaches == 1
            progress.withLock { $0.state = nil }
            do {
                let remaining = deadline - ContinuousClock.now
                let seen = progress.withLock { $0.seen }
                let result = try await run(node, command.script(seen: seen, retryFailed: retry), timeout: max(.seconds(1), remaining)) { line in
                    if let state = NodeCommand.state(of: line) {
                        let announce = progress.withLock { progress -> Bool in
                            let firstMarker = progress.state == nil
                            progress.state = state
                            if state == .unusable { progress.detail = NodeCommand.detail(of: line) }
                            return firstMarker
                        }
                        guard announce else { return }
                        if let (since, when) = reattaching {
                            progress.withLock {
                                $0.gaps.append("connection lost at \(RFC3339.string(when)); re-attached at \(RFC3339.string(Date())), the command \(state.rawValue)")
                            }
                            onConnection(.reattached(after: ContinuousClock.now - since, state: state))
                        } else if first, state == .running || state == .finished {
                            onConnection(.found(state: state))
                        }
                        return
                    }
                    progress.withLock { progress in
                        if line.stream == .stdout {
                            progress.seen.stdout += 1
                            progress.stdout += line.text + "\n"
                        } else {
                            progress.seen.stderr += 1
                            progress.stderr += line.text + "\n"
                        }
                    }
                    onOutput(line)
                }
                let final = progress.withLock { $0 }
                switch final.state {
                case .vanished?:
                    throw NodeCommandError.vanished(node: node, command: command.command, record: command.directory + "/" + command.name)
                case .unusable?:
                    throw NodeCommandError.unusable(node: node, detail: final.detail)
                default:
                    break
                }
                var combined = result
                combined.command = command.command
                combined.stdout = Data(final.stdout.utf8)
                combined.stderr = Data(final.stderr.utf8)
                combined.duration = ContinuousClock.now - started
                return DetachedResult(result: combined, gaps: final.gaps)
            } catch let error as SSHError where error.isConnectionLost {
                let reason: String
                if case let .connectionLost(_, _, what) = error { reason = what } else { reason = error.localizedDescription }
                // Once the command has started, only re-attaching may follow: it never starts twice.
                retry = false
                // A re-attach that failed before it said anything continues the same gap.
                if lostAt == nil || progress.withLock({ $0.state != nil }) { lostAt = (.now, Date()) }
                onConnection(.lost(reason: reason))
                var delay = Duration.seconds(1)
                while failures[node] != nil {
                    if await reconnect(node) { break }
                    let left = deadline - ContinuousClock.now
                    guard left > .zero else {
                        throw NodeCommandError.lost(node: node, reason: reason, waited: ContinuousClock.now - lostAt!.0)
                    }
                    try await Task.sleep(for: min(delay, left))
                    delay = min(delay * 2, .seconds(15))
                }
            }
        }
    }
}
