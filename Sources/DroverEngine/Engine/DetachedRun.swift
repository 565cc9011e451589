import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// What happened to the connection while a node command ran.
public enum ConnectionEvent: Sendable {
    /// The session was lost; Drover reconnects (the command runs on on the node).
    case lost(reason: String)
    /// Connected again after `after`; the record showed the command `state`.
    case reattached(after: Duration, state: NodeCommand.State)
    /// The first attach of a resumed run found the command already started (running or finished).
    case found(state: NodeCommand.State)
}

/// The outcome of a node command, however many connections it took.
public struct DetachedResult: Sendable {
    public var result: CommandResult
    /// The gaps in the connection, for the transcript: `lost at ...; re-attached at ...`.
    public var gaps: [String]

    public init(result: CommandResult, gaps: [String]) {
        self.result = result
        self.gaps = gaps
    }
}

/// The node command could not be followed to its end.
enum NodeCommandError: LocalizedError {
    case vanished(node: String, command: String, record: String)
    case unusable(node: String, detail: String)
    case lost(node: String, reason: String, waited: Duration)
    case timedOut(node: String, command: String, after: Duration, record: String)

    var errorDescription: String? {
        switch self {
        case .vanished(let node, let command, let record):
            return
                "`\(command)` on \(node) ended without recording its exit status (killed, or the node restarted): its outcome "
                + "is unknown; see \(record)/out and err on \(node)"
        case .unusable(let node, let detail):
            return
                "cannot run commands detached on \(node): \(detail); check that the directory exists and is writable by the SSH user "
                + "(or set ssh.sudo)"
        case .lost(let node, let reason, let waited):
            return
                "the connection to \(node) was lost (\(reason)) and could not be made again within \(DurationText.format(waited)); "
                + "the command may still be running there"
        case .timedOut(let node, let command, let after, let record):
            return
                "`\(command)` on \(node) did not finish within \(DurationText.format(after)) (ssh.command_timeout); drover stopped "
                + "following it, but it may still be running there: see \(record).status, .out and .err on \(node)"
        }
    }
}

extension ClusterConnection {
    /// Runs a node command on `node` and follows it to its end, reconnecting (backoff 1 s doubling to 15 s,
    /// host key verified again) and re-attaching as often as the connection is lost, for at most `timeout`
    /// (reconnects included). The output is passed on once: a re-attach goes on from the lines already seen.
    public func runDetached(
        _ node: String, _ command: NodeCommand, retryFailed: Bool, timeout: Duration,
        onOutput: @escaping @Sendable (OutputLine) -> Void,
        onConnection: @escaping @Sendable (ConnectionEvent) -> Void
    ) async throws -> DetachedResult {
        let results = try await runDetached(
            node, [command], retryFailed: retryFailed, timeout: timeout,
            onOutput: { _, line in onOutput(line) }, onConnection: { _, event in onConnection(event) })
        return results[0]
    }

    /// Runs consecutive node commands of a step on `node` as one SSH command (see `NodeCommand.script(_:seen:)`),
    /// each started once the one before it succeeded, and follows them as above. `onStarted` is called with a
    /// command's index (from 0) when it begins, after the first; `onFinished` when one has ended, with its
    /// result. Each command has `timeout` from when it began, reconnects included. Returns the results of the
    /// commands that ran: all of them, or up to the first that failed.
    public func runDetached(
        _ node: String, _ commands: [NodeCommand], retryFailed: Bool, timeout: Duration,
        onOutput: @escaping @Sendable (Int, OutputLine) -> Void,
        onConnection: @escaping @Sendable (Int, ConnectionEvent) -> Void,
        onStarted: @escaping @Sendable (Int) -> Void = { _ in },
        onFinished: @escaping @Sendable (Int, DetachedResult) -> Void = { _, _ in }
    ) async throws -> [DetachedResult] {
        struct Section {
            var seen = NodeCommand.Seen()
            var stdout = "", stderr = ""
            var state: NodeCommand.State?
            var detail = ""
            var gaps: [String] = []
            var started = ContinuousClock.now
        }
        struct Progress {
            var sections: [Section]
            /// The command each stream's lines belong to now (a `section` marker moves it on).
            var stdoutSection = 0, stderrSection = 0
            /// The command running: every command before it has ended with status 0.
            var current = 0
            var finished: [DetachedResult] = []
        }
        let progress = Locked(Progress(sections: commands.map { _ in Section() }))
        @Sendable func result(_ index: Int, _ section: Section, status: Int32, signal: String?) -> DetachedResult {
            DetachedResult(
                result: CommandResult(
                    command: commands[index].command, stdout: Data(section.stdout.utf8),
                    stderr: Data(section.stderr.utf8),
                    exitStatus: status, exitSignal: signal, duration: ContinuousClock.now - section.started),
                gaps: section.gaps)
        }
        /// Both streams have reached command `index`: the one before it ended with status 0.
        @Sendable func advance(to index: Int) {
            let ended = progress.withLock { progress -> DetachedResult? in
                guard index > progress.current, progress.stdoutSection >= index, progress.stderrSection >= index else {
                    return nil
                }
                let ended = result(progress.current, progress.sections[progress.current], status: 0, signal: nil)
                progress.finished.append(ended)
                progress.current = index
                progress.sections[index].started = .now
                return ended
            }
            guard let ended else { return }
            onFinished(index - 1, ended)
            onStarted(index)
        }
        /// When the command running now has had its time.
        @Sendable func deadline() -> ContinuousClock.Instant {
            progress.withLock { $0.sections[$0.current].started } + timeout
        }
        @Sendable func timedOut() -> NodeCommandError {
            let index = progress.withLock { $0.current }
            return .timedOut(
                node: node, command: commands[index].command, after: timeout,
                record: commands[index].directory + "/" + commands[index].name)
        }
        var retry = retryFailed
        var lostAt: (ContinuousClock.Instant, Date)?
        var attaches = 0
        while true {
            if attaches > 0, ContinuousClock.now >= deadline(), let since = lostAt {
                throw NodeCommandError.lost(
                    node: node, reason: "lost again after every reconnect", waited: ContinuousClock.now - since.0)
            }
            attaches += 1
            let reattaching = lostAt
            let first = attaches == 1
            // A re-attach runs the script again: every stream starts at the first command, whose lines seen are skipped.
            let (seen, inFlight) = progress.withLock { progress -> ([NodeCommand.Seen], Int) in
                for index in progress.sections.indices { progress.sections[index].state = nil }
                progress.stdoutSection = 0
                progress.stderrSection = 0
                return (progress.sections.map(\.seen), progress.current)
            }
            do {
                let script = NodeCommand.script(commands, seen: seen, retryFailed: retry)
                /// One line of the script's output: a marker, or a line of the command now in that stream.
                @Sendable func take(_ line: OutputLine) {
                    if let section = NodeCommand.section(of: line), section >= 1, section <= commands.count {
                        progress.withLock {
                            if line.stream == .stdout {
                                $0.stdoutSection = section - 1
                            } else {
                                $0.stderrSection = section - 1
                            }
                        }
                        advance(to: section - 1)
                        return
                    }
                    if let state = NodeCommand.state(of: line) {
                        let (index, announce) = progress.withLock { progress -> (Int, Bool) in
                            let index = progress.stderrSection
                            let firstMarker = progress.sections[index].state == nil
                            progress.sections[index].state = state
                            if state == .unusable { progress.sections[index].detail = NodeCommand.detail(of: line) }
                            return (index, firstMarker)
                        }
                        guard announce else { return }
                        if let (since, when) = reattaching, index == inFlight {
                            progress.withLock {
                                $0.sections[index].gaps.append(
                                    "connection lost at \(RFC3339.string(when)); re-attached at \(RFC3339.string(Date())), the command \(state.rawValue)"
                                )
                            }
                            onConnection(index, .reattached(after: ContinuousClock.now - since, state: state))
                        } else if first, state == .running || state == .finished {
                            onConnection(index, .found(state: state))
                        }
                        return
                    }
                    let index = progress.withLock { progress -> Int? in
                        let index = line.stream == .stdout ? progress.stdoutSection : progress.stderrSection
                        // Lines of a command already passed on (a re-attach's second look at it) are not repeated.
                        guard index >= progress.current else { return nil }
                        if line.stream == .stdout {
                            progress.sections[index].seen.stdout += 1
                            progress.sections[index].stdout += line.text + "\n"
                        } else {
                            progress.sections[index].seen.stderr += 1
                            progress.sections[index].stderr += line.text + "\n"
                        }
                        return index
                    }
                    if let index { onOutput(index, line) }
                }
                // Each command has its own time: a watchdog ends the following when the one running now has
                // had it (the SSH command's own bound is only the backstop for them all).
                let backstop = max(.seconds(1), deadline() - ContinuousClock.now) + timeout * (commands.count - 1)
                let ran = try await withThrowingTaskGroup(of: CommandResult?.self) { group -> CommandResult in
                    group.addTask {
                        try await self.run(node, script, timeout: backstop) { received in
                            for line in NodeCommand.split(received) { take(line) }
                        }
                    }
                    group.addTask {
                        while ContinuousClock.now < deadline() {
                            try await Task.sleep(until: min(deadline(), .now + .seconds(1)), clock: .continuous)
                        }
                        return nil
                    }
                    let first = try await group.next() ?? nil
                    group.cancelAll()
                    guard let first else { throw timedOut() }
                    return first
                }
                let final = progress.withLock { $0 }
                let last = final.current
                switch final.sections[last].state {
                case .vanished?:
                    throw NodeCommandError.vanished(
                        node: node, command: commands[last].command,
                        record: commands[last].directory + "/" + commands[last].name)
                case .unusable?:
                    throw NodeCommandError.unusable(node: node, detail: final.sections[last].detail)
                default:
                    break
                }
                let ended = result(last, final.sections[last], status: ran.exitStatus, signal: ran.exitSignal)
                onFinished(last, ended)
                return final.finished + [ended]
            } catch SSHError.commandTimedOut(_, _, _, _) {
                throw timedOut()
            } catch let error as SSHError where error.isConnectionLost {
                let reason: String
                if case .connectionLost(_, _, let what) = error {
                    reason = what
                } else {
                    reason = error.localizedDescription
                }
                // Once the command may have started, only re-attaching may follow: it never starts twice. (A
                // loss before a failed command was started again leaves it failed: `resume` retries it.)
                retry = false
                // A re-attach that failed before it said anything continues the same gap.
                if lostAt == nil || progress.withLock({ $0.sections[$0.current].state != nil }) {
                    lostAt = (.now, Date())
                }
                onConnection(progress.withLock { $0.current }, .lost(reason: reason))
                var delay = Duration.seconds(1)
                while failures[node] != nil {
                    if await reconnect(node) { break }
                    let left = deadline() - ContinuousClock.now
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
