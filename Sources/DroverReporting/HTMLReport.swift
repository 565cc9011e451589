import Foundation

/// What a run's report shows, gathered from its journal, transcript, events and plan (already redacted).
public struct RunReportData: Sendable {
    /// One command of the run, as its transcript recorded it.
    public typealias Command = TranscriptRecord

    /// One wait: when it started and ended, and what did not hold yet while it waited.
    public struct Wait: Sendable {
        public var node: String
        public var predicate: String
        public var started: Date
        public var finished: Date
        public var ok: Bool
        /// Each change of the criteria that did not hold yet, in order.
        public var pending: [String]

        public init(node: String, predicate: String, started: Date, finished: Date, ok: Bool, pending: [String]) {
            (self.node, self.predicate, self.started, self.finished, self.ok, self.pending) = (
                node, predicate, started, finished, ok, pending
            )
        }
    }

    /// One step on one node, as the journal has it.
    public typealias Step = Journal.Step

    /// A time span on one lane (a node out of the cluster; cluster failover off).
    public struct Span: Sendable {
        public var lane: String
        public var from: Date
        public var to: Date
        /// False when the span had not ended when the run did.
        public var closed: Bool

        public init(lane: String, from: Date, to: Date, closed: Bool) {
            (self.lane, self.from, self.to, self.closed) = (lane, from, to, closed)
        }
    }

    /// The run's journal, as recorded: who ran what, when, its steps and its summary.
    public var journal: Journal
    /// Every node the run touched or recorded.
    public var nodes: [String]
    public var commands: [Command]
    public var waits: [Wait]
    public var outOfCluster: [Span]
    public var failoverOff: [Span]
    /// Pre-flight checks of the plan: check, node, ok, detail, fix.
    public var preflight: [JSONValue]
    /// The plan's steps: index, step, node, action, command, waits_for.
    public var plannedSteps: [JSONValue]
    /// Whether the run switched a cluster failover switch (the timeline then has its lane); nil: when it was
    /// off at some time.
    public var failoverSwitched: Bool?
    /// What the inventory's write probe saw (the timeline then has a lane of the windows writes failed).
    public var writes: WriteProbeReport?

    public init(
        journal: Journal, nodes: [String], commands: [Command], waits: [Wait], outOfCluster: [Span],
        failoverOff: [Span], preflight: [JSONValue], plannedSteps: [JSONValue], failoverSwitched: Bool? = nil
    ) {
        (self.journal, self.nodes, self.commands, self.waits) = (journal, nodes, commands, waits)
        (self.outOfCluster, self.failoverOff, self.preflight, self.plannedSteps) = (
            outOfCluster, failoverOff, preflight, plannedSteps
        )
        self.failoverSwitched = failoverSwitched
    }

    // The journal's facts, as the report reads them.
    public var runID: String { journal.runID }
    public var cluster: String { journal.cluster }
    public var playbook: String { journal.playbook }
    public var playbookFile: String { journal.playbookFile }
    public var playbookDigest: String? { journal.playbookDigest }
    public var inventoryFile: String { journal.inventoryFile }
    public var inventoryDigest: String { journal.inventoryDigest }
    public var targetVersion: String? { journal.targetVersion }
    public var user: String { journal.user }
    public var workstation: String { journal.workstation }
    public var started: Date { journal.started }
    public var finished: Date? { journal.finished }
    /// The journal's status: succeeded, failed, interrupted, refused, running.
    public var status: String { journal.status.rawValue }
    public var exitCode: Int? { journal.exitCode.map(Int.init) }
    public var parameters: [String: String] { journal.parameters ?? [:] }
    /// The run's summary as it printed it (outcome, final state table, next commands).
    public var summary: String { journal.summary ?? "" }
    public var steps: [Step] { journal.steps }

    /// What the summary says to do next (under `Next:`), with its commands.
    public var nextSteps: [NextStep] { NextStep.parse(summary: summary) }
}

/// A run's report for people: one self-contained HTML file (no network, no external assets) with the
/// outcome and next command, who ran it and from where, the digests, a timeline (inline SVG, one lane per
/// node), the steps, pre-flight, the plan, every command with its folded output, and the final state.
public enum HTMLReport {
    public static func render(_ run: RunReportData) -> String {
        let outcome = run.status
        let duration = run.finished.map { ReportDuration.text($0.timeIntervalSince(run.started)) } ?? "still running"
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>Drover run \(escape(run.runID)): \(escape(run.playbook)) on \(escape(run.cluster)), \(escape(outcome))</title>
            <style>\(style)</style>
            </head>
            <body>
            <header class="outcome \(escape(outcome))" id="outcome" data-outcome="\(escape(outcome))">
            <h1>\(escape(run.playbook)) on cluster \(escape(run.cluster)): <span class="badge">\(escape(outcome.uppercased()))</span></h1>
            <p>Run <code>\(escape(run.runID))</code>\(run.exitCode.map { ", exit code \($0)" } ?? ""), \(escape(duration)).</p>

            """
        // The header says it all: what happened with its error, the cluster's state, any warning, what to do.
        let summary = SummaryParts(run.summary)
        if let headline = summary.headline.first {
            html += "<p class=\"headline\">\(escape(headline))</p>\n"
            let detail = summary.headline.dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
            if !detail.isEmpty { html += "<pre class=\"error\">\(escape(detail.joined(separator: "\n")))</pre>\n" }
        }
        if !summary.state.isEmpty {
            html += "<pre class=\"state\">\(escape(summary.state.joined(separator: "\n")))</pre>\n"
        }
        for warning in summary.warnings { html += "<p class=\"warning\">\(escape(warning))</p>\n" }
        let next = run.nextSteps
        if !next.isEmpty {
            html +=
                "<div class=\"next\"><h2>Next</h2><ol>"
                + next.map { step in
                    "<li>\(escape(step.text))"
                        + step.commands.map { "<br><code>\(escape($0))</code>" }.joined() + "</li>"
                }.joined() + "</ol></div>\n"
        }
        html += "</header>\n<main>\n"
        html += section("Run", facts(run))
        let timeline = Timeline(run)
        html += section("Timeline", timeline.svg + legend(failover: timeline.showsFailover))
        html += section("Steps", stepsTable(run))
        if !run.preflight.isEmpty { html += section("Pre-flight", preflightTable(run)) }
        if !run.plannedSteps.isEmpty { html += section("Plan", planTable(run)) }
        html += section("Commands", commandList(run))
        html += section(
            "Final state", "<pre class=\"summary\">\(escape(run.summary.trimmingCharacters(in: .newlines)))</pre>")
        html +=
            "</main>\n<footer>Written by Drover from the run's journal, transcript and events; secrets redacted as in the transcript.</footer>\n</body>\n</html>\n"
        return html
    }

    static func section(_ title: String, _ body: String) -> String {
        "<section id=\"\(title.lowercased().replacingOccurrences(of: " ", with: "-"))\"><h2>\(escape(title))</h2>\n\(body)\n</section>\n"
    }

    static func facts(_ run: RunReportData) -> String {
        var rows: [(String, String)] = [
            ("Run by", "\(run.user) on \(run.workstation)"),
            ("Started", RFC3339.string(run.started)),
            ("Finished", run.finished.map(RFC3339.string) ?? "not finished"),
            ("Target version", run.targetVersion ?? "-"),
            ("Inventory", "\(run.inventoryFile) (SHA-256 \(run.inventoryDigest))"),
            ("Playbook", "\(run.playbook): \(run.playbookFile)\(run.playbookDigest.map { " (SHA-256 \($0))" } ?? "")"),
        ]
        if !run.parameters.isEmpty {
            rows.append(
                (
                    "Parameters",
                    run.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
                ))
        }
        return "<table class=\"facts\">"
            + rows.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }.joined() + "</table>"
    }

    static func stepsTable(_ run: RunReportData) -> String {
        var rows = "<tr><th>#</th><th>step</th><th>node</th><th>outcome</th><th>duration</th><th>reason</th></tr>"
        var previous: RunReportData.Step?
        for step in run.steps {
            if Journal.startsResumedAttempt(step, after: previous) {
                rows += "<tr class=\"resumed\"><td colspan=\"6\">resumed</td></tr>"
            }
            previous = step
            let duration = step.finished.map { ReportDuration.text($0.timeIntervalSince(step.started)) } ?? "-"
            rows +=
                "<tr class=\"\(escape(step.status.rawValue))\"><td>\(step.index)</td><td>\(escape(step.step))</td><td>\(escape(step.node))</td>"
                + "<td>\(escape(step.status.rawValue))</td><td>\(escape(duration))</td><td>\(escape(step.reason ?? ""))</td></tr>"
        }
        return "<table class=\"steps\">\(rows)</table>"
    }

    static func preflightTable(_ run: RunReportData) -> String {
        var rows = "<tr><th>check</th><th>node</th><th>result</th><th>detail</th></tr>"
        for check in run.preflight {
            guard case .object(let fields) = check else { continue }
            let ok = fields["ok"] == .bool(true)
            let information = fields["information"] == .bool(true)
            let fix = text(fields["fix"]).isEmpty ? "" : "; fix: " + text(fields["fix"])
            let (rowClass, result) =
                information ? ("information", "info") : ok ? ("succeeded", "ok") : ("failed", "FAILED")
            rows +=
                "<tr class=\"\(rowClass)\"><td>\(escape(text(fields["check"])))</td><td>\(escape(text(fields["node"])))</td>"
                + "<td>\(result)</td><td>\(escape(text(fields["detail"]) + fix))</td></tr>"
        }
        return "<table class=\"preflight\">\(rows)</table>"
    }

    static func planTable(_ run: RunReportData) -> String {
        var rows = "<tr><th>#</th><th>step</th><th>node</th><th>action</th></tr>"
        for step in run.plannedSteps {
            guard case .object(let fields) = step else { continue }
            // The plan's own words for the action (`text`); plans of earlier versions lack them.
            let action =
                text(fields["text"]).isEmpty
                ? PlanActionWords.text(
                    action: text(fields["action"]), detail: text(fields["waits_for"]), command: text(fields["command"]))
                : text(fields["text"])
            // A node decided only when the run gets there is said so, as the text plan says it.
            let node = text(fields["node_note"]).isEmpty ? text(fields["node"]) : text(fields["node_note"])
            rows +=
                "<tr><td>\(escape(text(fields["index"])))</td><td>\(escape(text(fields["step"])))</td><td>\(escape(node))</td>"
                + "<td>\(escape(action))</td></tr>"
        }
        return "<table class=\"plan\">\(rows)</table>"
    }

    static func commandList(_ run: RunReportData) -> String {
        guard !run.commands.isEmpty else { return "<p>No command was run.</p>" }
        return run.commands.map { command in
            let status =
                command.error.map { "error: \($0)" } ?? command.signal.map { "signal \($0)" }
                ?? "exit \(command.exitStatus.map(String.init) ?? "?")"
            var body = ""
            if !command.stdout.isEmpty { body += "<pre class=\"stdout\">\(escape(command.stdout))</pre>" }
            if !command.stderr.isEmpty { body += "<pre class=\"stderr\">\(escape(command.stderr))</pre>" }
            if body.isEmpty { body = "<p class=\"quiet\">(no output)</p>" }
            let offset = ReportDuration.text(command.started.timeIntervalSince(run.started))
            return
                "<details class=\"command \(command.succeeded ? "succeeded" : "failed")\"><summary><span class=\"at\">+\(escape(offset))</span> "
                + "<b>\(escape(command.node))</b>$ <code>\(escape(command.command))</code> <span class=\"status\">\(escape(status)), "
                + "\(escape(ReportDuration.text(command.finished.timeIntervalSince(command.started))))</span></summary>\(body)</details>"
        }.joined(separator: "\n")
    }

    static func legend(failover: Bool) -> String {
        """
        <p class="legend"><span class="key command-ok"></span> command <span class="key command-failed"></span> failed command \
        <span class="key wait-ok"></span> wait <span class="key wait-failed"></span> wait that timed out \
        <span class="key out"></span> node out of the cluster \
        \(failover ? "<span class=\"key failover\"></span> cluster failover off " : "")(hover for details)</p>
        """
    }

    static func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text)?: return text
        case .int(let number)?: return String(number)
        case .double(let number)?: return String(number)
        case .bool(let flag)?: return flag ? "true" : "false"
        default: return ""
        }
    }

    /// Text for HTML (element content and attribute values).
    public static func escape(_ text: String) -> String { Markup.escape(text) }

    static let style = """
        body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
        header{padding:18px 28px;color:#fff}header.succeeded{background:#1e7d45}header.failed,header.refused{background:#b3261e}
        header.interrupted,header.running{background:#9a6400}h1{margin:0 0 4px;font-size:22px}header p{margin:0}
        .headline{font-size:15px;font-weight:600;margin-top:6px!important}
        header pre{background:rgba(0,0,0,.18);color:#fff;padding:6px 10px;border-radius:6px;margin:6px 0;white-space:pre-wrap}
        .warning{font-weight:700;background:#e9c46a;color:#1d2733;padding:4px 10px;border-radius:6px;display:inline-block}
        .badge{background:rgba(255,255,255,.2);padding:1px 8px;border-radius:4px}
        .next{background:rgba(0,0,0,.18);margin-top:10px;padding:6px 14px;border-radius:6px}.next h2{font-size:15px;margin:4px 0;color:#fff}
        .next code{color:#fff}main{padding:8px 28px 24px}section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:14px 0;padding:10px 16px}
        h2{font-size:16px;margin:4px 0 10px}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eceff2;vertical-align:top}
        table.facts th{width:140px;color:#5b6673}tr.failed td,tr.interrupted td{background:#fdecea}tr.skipped td{color:#7a8591}
        code,pre{font-family:"SFMono-Regular",Menlo,Consolas,monospace;font-size:12.5px}pre{background:#f3f5f7;padding:8px;overflow:auto;margin:4px 0}
        pre.stderr{background:#fff4e5}details.command{border-bottom:1px solid #eceff2;padding:2px 0}details.command.failed summary{color:#b3261e}
        summary{cursor:pointer}.at{color:#7a8591;display:inline-block;min-width:56px}.status{color:#5b6673}.quiet{color:#7a8591;margin:4px 0}
        svg{width:100%;height:auto;background:#fff}.legend{color:#5b6673;font-size:12.5px}
        .key{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px;vertical-align:middle}
        .command-ok{background:#2e8b57}.command-failed{background:#c62828}.wait-ok{background:#4a78c2}.wait-failed{background:#ef8f00}
        .out{background:#f7d4d0}.failover{background:#e9c46a}footer{color:#7a8591;font-size:12px;padding:0 28px 20px}
        """
}

/// The timeline: one lane per node with its commands (top row) and waits (bottom row) over the window in
/// which it was out of the cluster, and a lane for the cluster failover switch.
struct Timeline {
    let run: RunReportData
    let start: Date
    let total: TimeInterval
    let width = 1100.0, gutter = 90.0, laneHeight = 38.0, top = 28.0

    init(_ run: RunReportData) {
        self.run = run
        // The journal keeps whole seconds; the transcript and events, milliseconds.
        start = ([run.started] + run.commands.map(\.started) + run.waits.map(\.started)).min() ?? run.started
        let ends = run.commands.map(\.finished) + run.waits.map(\.finished) + [run.finished ?? run.started]
        total = max(1, (ends.max() ?? run.started).timeIntervalSince(start))
    }

    func x(_ date: Date) -> Double {
        gutter + (width - gutter - 10) * min(1, max(0, date.timeIntervalSince(start) / total))
    }

    func rect(
        _ from: Date, _ to: Date, y: Double, height: Double, cssClass: String, fill: String, title: String, node: String
    ) -> String {
        let left = x(from)
        let right = max(x(to), left + 2)
        return
            "<rect class=\"\(cssClass)\" data-node=\"\(HTMLReport.escape(node))\" x=\"\(f(left))\" y=\"\(f(y))\" width=\"\(f(right - left))\" "
            + "height=\"\(f(height))\" fill=\"\(fill)\"><title>\(HTMLReport.escape(title))</title></rect>"
    }

    /// A span's rectangle, titled with what it was, for how long, and `open` when the run ended inside it.
    func window(
        _ span: RunReportData.Span, y: Double, height: Double, cssClass: String, fill: String, what: String,
        open: String, node: String
    ) -> String {
        rect(
            span.from, span.to, y: y, height: height, cssClass: cssClass, fill: fill,
            title:
                "\(what) for \(ReportDuration.text(span.to.timeIntervalSince(span.from)))\(span.closed ? "" : ", \(open)")",
            node: node)
    }

    func f(_ value: Double) -> String { String(format: "%.1f", value) }

    /// The failover lane is drawn for runs that switch cluster failover (a DRBD pair has none).
    var showsFailover: Bool { run.failoverSwitched ?? !run.failoverOff.isEmpty }

    var svg: String {
        // The cluster's own lanes first (writes, failover), then one per node.
        let own = (run.writes != nil ? ["writes"] : []) + (showsFailover ? ["failover"] : [])
        let lanes = own + run.nodes
        let height = top + laneHeight * Double(lanes.count) + 8
        var parts = [
            "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"timeline of the run\">"
        ]
        // The time axis: about eight ticks at a round step.
        let step = [1.0, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].first { total / $0 <= 8 } ?? 3600
        var tick = 0.0
        while tick <= total + 0.001 {
            let position = x(start.addingTimeInterval(tick))
            parts.append(
                "<line x1=\"\(f(position))\" y1=\"\(f(top - 6))\" x2=\"\(f(position))\" y2=\"\(f(height - 8))\" stroke=\"#eceff2\"/>"
            )
            parts.append(
                "<text x=\"\(f(position))\" y=\"\(f(top - 10))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#7a8591\">\(ReportDuration.text(tick))</text>"
            )
            tick += step
        }
        for (row, lane) in lanes.enumerated() {
            let y = top + laneHeight * Double(row)
            parts.append("<g class=\"lane\" data-lane=\"\(HTMLReport.escape(lane))\">")
            parts.append(
                "<rect x=\"0\" y=\"\(f(y))\" width=\"\(f(width))\" height=\"\(f(laneHeight))\" fill=\"\(row % 2 == 0 ? "#fafbfc" : "#ffffff")\"/>"
            )
            parts.append(
                "<text x=\"8\" y=\"\(f(y + laneHeight / 2 + 4))\" font-size=\"12\" font-weight=\"600\" fill=\"#1d2733\">\(HTMLReport.escape(lane))</text>"
            )
            if row < own.count, lane == "writes", let writes = run.writes {
                for failed in writes.windows {
                    parts.append(
                        window(
                            RunReportData.Span(lane: "writes", from: failed.from, to: failed.to, closed: !failed.open),
                            y: y + 8, height: laneHeight - 16, cssClass: "writes-failed", fill: "#e76f51",
                            what: "writes failed (\(writes.probe))", open: "still failing when the run ended",
                            node: "cluster"))
                }
            } else if row < own.count, lane == "failover" {
                for span in run.failoverOff {
                    parts.append(
                        window(
                            span, y: y + 8, height: laneHeight - 16, cssClass: "failover-off", fill: "#e9c46a",
                            what: "cluster failover off", open: "still off when the run ended", node: "cluster"))
                }
            } else {
                for span in run.outOfCluster where span.lane == lane {
                    parts.append(
                        window(
                            span, y: y + 2, height: laneHeight - 4, cssClass: "out-window", fill: "#f7d4d0",
                            what: "\(lane) out of the cluster", open: "not back when the run ended", node: lane))
                }
                for command in run.commands where command.node == lane {
                    let status =
                        command.error ?? command.signal.map { "signal \($0)" }
                        ?? "exit \(command.exitStatus.map(String.init) ?? "?")"
                    parts.append(
                        rect(
                            command.started, command.finished, y: y + 6, height: 12, cssClass: "command",
                            fill: command.succeeded ? "#2e8b57" : "#c62828",
                            title:
                                "\(lane)$ \(command.command)\n\(status), \(ReportDuration.text(command.finished.timeIntervalSince(command.started)))",
                            node: lane))
                }
                for wait in run.waits where wait.node == lane {
                    let seen =
                        wait.pending.isEmpty
                        ? "held at its first polls" : "while waiting: " + wait.pending.joined(separator: "\n then: ")
                    parts.append(
                        rect(
                            wait.started, wait.finished, y: y + 21, height: 11, cssClass: "wait",
                            fill: wait.ok ? "#4a78c2" : "#ef8f00",
                            title:
                                "wait \(wait.predicate) on \(lane): \(wait.ok ? "held" : "did not hold") after \(ReportDuration.text(wait.finished.timeIntervalSince(wait.started)))\n\(seen)",
                            node: lane))
                }
            }
            parts.append("</g>")
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }
}

/// Durations for people: `0.4s`, `12s`, `3m05s`.
enum ReportDuration {
    static func text(_ value: TimeInterval) -> String {
        if value < 10 { return String(format: "%.1fs", value) }
        if value < 60 { return String(format: "%.0fs", value) }
        return String(format: "%dm%02ds", Int(value) / 60, Int(value) % 60)
    }
}

/// Escaping for HTML and XML text and attribute values.
public enum Markup {
    /// `& < > " '` as entities; control characters other than newline and tab (which XML 1.0 forbids)
    /// as spaces.
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            case let c where c.value < 0x20 && c != "\n" && c != "\t": result += " "
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

/// A run's summary, in the parts its report's header shows: the headline (what happened, then the error's
/// lines), the cluster's state table, the warnings (`!! ... !!`).
struct SummaryParts {
    var headline: [String] = []
    var state: [String] = []
    var warnings: [String] = []

    init(_ summary: String) {
        let paragraphs = summary.components(separatedBy: "\n\n").map {
            $0.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        }.filter { !$0.isEmpty }
        for paragraph in paragraphs {
            if paragraph[0].hasPrefix("Next:") || paragraph[0].hasPrefix("Run ") { continue }
            if paragraph.allSatisfy({ $0.hasPrefix("!!") }) {
                warnings += paragraph
            } else if headline.isEmpty {
                headline = paragraph
            } else if state.isEmpty, paragraph.allSatisfy({ $0.hasPrefix("  ") }) {
                state = paragraph
            } else if paragraph.count == 1 && paragraph[0].hasPrefix("Backup:") {
                continue
            }
        }
    }
}
