import Foundation

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

    /// The timeline's key (`Assets/legend.html`), its failover entry only when the timeline has that lane.
    static func legend(failover: Bool) -> String {
        let markup = ReportAssets.text("legend.html")
        guard let open = markup.range(of: "<!--failover-->"),
            let close = markup.range(of: "<!--/failover-->", range: open.upperBound..<markup.endIndex)
        else { return markup }
        let entry = failover ? markup[open.upperBound..<close.lowerBound] : ""
        return String(markup[..<open.lowerBound]) + entry + markup[close.upperBound...]
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

    /// The page's style sheet (`Assets/report.css`, compiled in).
    static let style = ReportAssets.text("report.css")
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
