import DroverReporting
import Foundation

/// A JUnit XML report of a run: one test case per step and node, failures with their reason.
public enum JUnitReport {
    public static func xml(_ journal: Journal, playbook: Playbook) -> String {
        let failures = journal.steps.filter { $0.status == .failed || $0.status == .interrupted }.count
        let skipped = journal.steps.filter { $0.status == .skipped }.count
        let total = journal.finished.map { $0.timeIntervalSince(journal.started) } ?? 0
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        xml +=
            #"<testsuites name="drover" tests="\#(journal.steps.count)" failures="\#(failures)" time="\#(String(format: "%.3f", total))">"#
            + "\n"
        xml +=
            #"  <testsuite name="\#(escape(journal.playbook)) \#(escape(journal.cluster))" tests="\#(journal.steps.count)" failures="\#(failures)" skipped="\#(skipped)" timestamp="\#(ISO8601DateFormatter().string(from: journal.started))" time="\#(String(format: "%.3f", total))">"#
            + "\n"
        // A step a resumed run ran again is one test case per attempt, told apart by its attempt number.
        let attempts = Dictionary(grouping: journal.steps, by: { "\($0.step) \($0.node)" }).mapValues(\.count)
        var seen: [String: Int] = [:]
        for step in journal.steps {
            let time = step.finished.map { $0.timeIntervalSince(step.started) } ?? 0
            let key = "\(step.step) \(step.node)"
            seen[key, default: 0] += 1
            let attempt = (attempts[key] ?? 1) > 1 ? " (attempt \(seen[key] ?? 1))" : ""
            xml +=
                #"    <testcase classname="\#(escape(journal.cluster)).\#(escape(journal.playbook))" name="\#(escape("\(step.index). \(step.step) on \(step.node)\(attempt)"))" time="\#(String(format: "%.3f", time))">"#
            switch step.status {
            case .failed, .interrupted, .started:
                let message = step.reason ?? (step.status == .started ? "did not finish" : step.status.rawValue)
                xml +=
                    "\n"
                    + #"      <failure message="\#(escape(message))" type="\#(step.status.rawValue)">\#(escape(message))</failure>"#
                    + "\n    "
            case .skipped:
                xml += "\n" + #"      <skipped message="\#(escape(step.reason ?? "skipped"))"/>"# + "\n    "
            case .succeeded:
                break
            }
            xml += "</testcase>\n"
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    static func escape(_ text: String) -> String { Markup.escape(text) }
}
