import Foundation

/// The console of a fleet (several clusters in one command): what each cluster prints goes through its
/// ``OutputSink`` here, and the console shows them together.
///
/// - `live` (runs): on a terminal, a table redrawn in place, one line per cluster (phase, node, elapsed,
///   outcome), the details going to each run's transcript; elsewhere each line prefixed `cluster | `; with
///   `json`, every event with its `cluster`.
/// - `buffered` (plan, status, diagnose): each cluster's output whole, in inventory order, under a header.
public final class FleetConsole: @unchecked Sendable {
    public enum Mode: Sendable { case live, buffered }

    /// What the console knows of one cluster.
    public struct ClusterState: Sendable {
        public var name: String
        public var inventory: String
        public var phase = "waiting"
        public var node = ""
        public var started: Date?
        public var finished: Date?
        public var exit: ExitStatus?
        public var outcome = "not started"
        public var runID: String?
        public var summary: String?
        /// What the cluster wrote to stderr (refusals, pre-flight reasons), for the end.
        public var messages = ""
        var pendingStdout = ""
        var pendingStderr = ""
        var buffered = ""
    }

    private let lock = NSLock()
    private var states: [ClusterState]
    private let mode: Mode
    private let json: Bool
    private let terminal: Bool
    private var drawnLines = 0
    private var lastDraw = Date.distantPast
    private var printedUpTo = 0
    /// The width of the longest cluster name, so prefixed lines line up.
    private let nameWidth: Int

    /// - Parameter terminal: redraw a live table (stdout is a terminal and the output is not JSON).
    public init(clusters: [(name: String, inventory: String)], mode: Mode, json: Bool, terminal: Bool) {
        states = clusters.map { ClusterState(name: $0.name, inventory: $0.inventory) }
        nameWidth = clusters.map(\.name.count).max() ?? 0
        self.mode = mode
        self.json = json
        self.terminal = terminal && !json && mode == .live
    }

    /// True when the console redraws a live table (details only in the transcripts).
    public var isLiveTable: Bool { terminal }

    /// The sink of cluster `index`.
    public func sink(_ index: Int) -> any OutputSink { ClusterSink(console: self, index: index) }

    public var clusters: [ClusterState] { lock.withLock { states } }

    struct ClusterSink: OutputSink {
        let console: FleetConsole
        let index: Int
        func write(_ text: String, standardError: Bool) {
            console.write(text, standardError: standardError, cluster: index)
        }
        func event(_ event: Event, rendered: String) { console.event(event, rendered: rendered, cluster: index) }
    }

    /// Cluster `index` starts.
    public func started(_ index: Int) {
        lock.withLock {
            states[index].started = Date()
            states[index].phase = "connecting"
            states[index].outcome = "running"
            redraw(force: true)
        }
    }

    /// Cluster `index` ended with `exit`; `outcome` in words when it is not the run's own (stopped by
    /// --fail-fast).
    public func finished(_ index: Int, exit: ExitStatus, outcome: String? = nil) {
        lock.withLock {
            flushPartialLines(index)
            states[index].finished = Date()
            states[index].exit = exit
            states[index].outcome = outcome ?? Self.outcome(exit)
            if mode == .buffered { printBufferedInOrder() }
            redraw(force: true)
        }
    }

    static func outcome(_ exit: ExitStatus) -> String {
        switch exit {
        case .success: return "succeeded"
        case .failedAfterChanges: return "failed"
        case .refused: return "refused"
        case .locked: return "locked"
        case .usage: return "invalid input"
        case .interrupted: return "interrupted"
        }
    }

    func write(_ text: String, standardError: Bool, cluster index: Int) {
        lock.withLock {
            if standardError { states[index].messages += text }
            switch mode {
            case .buffered:
                if standardError {
                    emitLines(text, cluster: index, standardError: true)
                } else {
                    states[index].buffered += text
                }
            case .live:
                // JSON keeps stdout for events; a run's other words go to stderr, prefixed.
                if terminal { return }
                emitLines(text, cluster: index, standardError: standardError || json)
            }
        }
    }

    func event(_ event: Event, rendered: String, cluster index: Int) {
        lock.withLock {
            switch event.kind {
            case .runStarted(let runID, _, _, _):
                states[index].phase = "started"
                states[index].runID = runID
            case .stepStarted(_, _, let step, let node, _):
                states[index].phase = step
                states[index].node = node
            case .waitProgress(_, let predicate, _, _):
                states[index].phase = "waiting: \(predicate)"
            case .runFinished(_, _, let summary, _, _):
                if let summary { states[index].summary = summary }
                states[index].phase = "finishing"
            default: break
            }
            if json {
                var tagged = event
                tagged.cluster = states[index].name
                Output.standardStream(tagged.jsonLine + "\n", standardError: false)
            } else if terminal {
                redraw(force: !Self.isFrequent(event.kind))
            } else {
                emitLines(rendered, cluster: index, standardError: false)
            }
        }
    }

    /// Events that come often (a command's output, a wait's progress): the live table redraws for them only
    /// when it is due.
    static func isFrequent(_ kind: RunEvent) -> Bool {
        switch kind {
        case .output, .waitProgress: return true
        default: return false
        }
    }

    /// Whole lines, prefixed by the cluster's name; a partial line waits for its end.
    private func emitLines(_ text: String, cluster index: Int, standardError: Bool) {
        var pending = (standardError ? states[index].pendingStderr : states[index].pendingStdout) + text
        var out = ""
        while let newline = pending.firstIndex(of: "\n") {
            out += "\(pad(states[index].name, nameWidth)) | \(pending[..<newline])\n"
            pending = String(pending[pending.index(after: newline)...])
        }
        if standardError { states[index].pendingStderr = pending } else { states[index].pendingStdout = pending }
        if !out.isEmpty { Output.standardStream(out, standardError: standardError) }
    }

    private func flushPartialLines(_ index: Int) {
        for standardError in [false, true] {
            let pending = standardError ? states[index].pendingStderr : states[index].pendingStdout
            if !pending.isEmpty { emitLines("\n", cluster: index, standardError: standardError) }
        }
    }

    /// Buffered mode: every finished cluster's output not yet printed whose predecessors are all printed.
    private func printBufferedInOrder() {
        while printedUpTo < states.count, states[printedUpTo].exit != nil {
            let state = states[printedUpTo]
            let header = json ? "" : "== \(state.name) (\(state.inventory)) ==\n"
            let body = state.buffered.isEmpty || state.buffered.hasSuffix("\n") ? state.buffered : state.buffered + "\n"
            Output.standardStream(
                header + body + (json || printedUpTo == states.count - 1 ? "" : "\n"), standardError: false)
            printedUpTo += 1
        }
    }

    // MARK: The live table

    /// Redraws the table in place (at most ten times a second unless forced).
    private func redraw(force: Bool) {
        guard terminal else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let lines = table(now: now)
        var out = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        for line in lines { out += "\u{1B}[2K" + line + "\n" }
        drawnLines = lines.count
        Output.standardStream(out, standardError: false)
    }

    /// Redraws the elapsed times (called by the fleet every second while clusters run).
    public func tick() { lock.withLock { redraw(force: false) } }

    func table(now: Date) -> [String] {
        let nameWidth = max(7, states.map(\.name.count).max() ?? 0)
        let phaseWidth = 28
        var lines = [
            pad("cluster", nameWidth) + "  " + pad("phase", phaseWidth) + "  " + pad("node", 6) + "  elapsed  outcome"
        ]
        for state in states {
            let elapsed = state.started.map { Self.duration((state.finished ?? now).timeIntervalSince($0)) } ?? "-"
            let phase = state.exit == nil ? state.phase : "done"
            lines.append(
                pad(state.name, nameWidth) + "  " + pad(String(phase.prefix(phaseWidth)), phaseWidth) + "  "
                    + pad(state.node, 6) + "  " + pad(elapsed, 7, right: true) + "  " + state.outcome)
        }
        return lines
    }

    static func duration(_ seconds: TimeInterval) -> String {
        seconds < 60
            ? String(format: "%.0fs", seconds) : String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60)
    }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }

    // MARK: The end

    /// The summary table at the end of a live fleet: one line per cluster with its outcome and exit code.
    public func summaryTable() -> String {
        lock.withLock {
            let nameWidth = max(7, states.map(\.name.count).max() ?? 0)
            var lines = [pad("cluster", nameWidth) + "  " + pad("outcome", 22) + "  exit  duration  run"]
            for state in states {
                let duration =
                    state.started.map { Self.duration((state.finished ?? Date()).timeIntervalSince($0)) } ?? "-"
                lines.append(
                    pad(state.name, nameWidth) + "  " + pad(state.outcome, 22) + "  "
                        + pad(state.exit.map { String($0.rawValue) } ?? "-", 4) + "  " + pad(duration, 8) + "  "
                        + (state.runID ?? "-"))
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
