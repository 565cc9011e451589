import Foundation

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
