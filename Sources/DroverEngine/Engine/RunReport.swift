import DroverInventory
import DroverReporting
import Foundation

/// A run's HTML report (``HTMLReport``), from what the run recorded: its journal, transcript, events and
/// plan, all already redacted.
public enum RunReport {
    /// The report's data for `journal`'s run.
    public static func data(_ journal: Journal, topologies: TopologyCatalog) -> RunReportData {
        let commands = lines(journal.transcriptPath).compactMap { TranscriptRecord(jsonLine: $0) }
        let events = lines(journal.eventsPath).compactMap { Event(jsonLine: $0) }
        let waits = self.waits(events)
        let topology =
            journal.topology.flatMap(Inventory.Topology.init).flatMap(topologies.type(of:)) ?? topologies.all[0]
        var plan: [String: JSONValue] = [:]
        if let data = try? Data(contentsOf: URL(fileURLWithPath: journal.planPath)),
            case .object(let fields)? = try? JSONRecord.decode(JSONValue.self, from: data)
        {
            plan = fields
        }
        // The journal keeps whole seconds: the run ends when its last record does, if that is later.
        let end =
            ([journal.finished ?? journal.started] + commands.map(\.finished) + waits.map(\.finished)).max()
            ?? journal.started
        var nodes = Set(journal.nodeGUIDs?.keys.map { $0 } ?? [])
        nodes.formUnion(commands.map(\.node))
        nodes.formUnion(journal.steps.map(\.node))
        nodes.formUnion(waits.map(\.node))
        var data = RunReportData(
            journal: journal, nodes: nodes.sorted(), commands: commands, waits: waits,
            outOfCluster: outOfCluster(commands, waits, end: end, topology: topology),
            failoverOff: failoverOff(commands, end: end, topology: topology),
            preflight: plan["preflight"]?.array ?? [], plannedSteps: plan["steps"]?.array ?? [],
            failoverSwitched: commands.contains { topology.failoverSetting(of: $0.command) != nil })
        // A resumed run has one report per attempt: the last one's.
        data.writes = events.compactMap { if case .writeProbe(let report) = $0.kind { report } else { nil } }.last
        return data
    }

    /// Writes the report of `journal`'s run to `path` (created or replaced).
    public static func write(_ journal: Journal, to path: String, topologies: TopologyCatalog) throws {
        let html = HTMLReport.render(data(journal, topologies: topologies))
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // Readable by its owner only, like the journal: it holds what the nodes printed.
        try DurableFile.write(Data(html.utf8), to: path)
    }

    static func lines(_ path: String) -> [Substring] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
    }

    /// Each wait from its events: `wait_finished` gives its end and length, `wait_progress` what did not hold.
    static func waits(_ events: [Event]) -> [RunReportData.Wait] {
        var pending: [String: [String]] = [:]
        var waits: [RunReportData.Wait] = []
        for event in events {
            switch event.kind {
            case .waitProgress(let node, let predicate, let text, _):
                pending[node + "\u{0}" + predicate, default: []].append(text)
            case .waitFinished(let node, let predicate, let ok, let seconds, _, _):
                waits.append(
                    RunReportData.Wait(
                        node: node, predicate: predicate, started: event.time.addingTimeInterval(-seconds),
                        finished: event.time, ok: ok,
                        pending: pending.removeValue(forKey: node + "\u{0}" + predicate) ?? []))
            default: break
            }
        }
        return waits
    }

    /// When each node was out of the cluster: from the start of the command that took it out (an upgrade,
    /// `down-for-upgrade`) to the end of the next wait that saw it back (rejoined, synced).
    static func outOfCluster(
        _ commands: [RunReportData.Command], _ waits: [RunReportData.Wait], end: Date, topology: any Topology.Type
    ) -> [RunReportData.Span] {
        let takesOut = topology.outOfClusterCommands
        var spans: [RunReportData.Span] = []
        var open: [String: Date] = [:]
        let backs = waits.filter { $0.ok && topology.backInClusterWaits.contains($0.predicate) }
        for command in commands.sorted(by: { $0.started < $1.started }) where open[command.node] == nil {
            guard takesOut.contains(where: { command.command.hasPrefix($0) }) else { continue }
            if let back = backs.first(where: { $0.node == command.node && $0.finished > command.finished }) {
                // Another take-out before that return is the same absence.
                if let last = spans.last(where: { $0.lane == command.node }), last.to >= command.started { continue }
                spans.append(
                    RunReportData.Span(lane: command.node, from: command.started, to: back.finished, closed: true))
            } else {
                open[command.node] = command.started
                spans.append(RunReportData.Span(lane: command.node, from: command.started, to: end, closed: false))
            }
        }
        return spans
    }

    /// When the cluster failover switch was off, from Drover's own commands that set it (the topology knows
    /// which).
    static func failoverOff(
        _ commands: [RunReportData.Command], end: Date, topology: any Topology.Type
    ) -> [RunReportData.Span] {
        var spans: [RunReportData.Span] = []
        var offSince: Date?
        for command in commands.sorted(by: { $0.started < $1.started }) where command.succeeded {
            let setting = topology.failoverSetting(of: command.command)
            if setting == "off", offSince == nil {
                offSince = command.finished
            } else if setting == "on", let since = offSince {
                spans.append(RunReportData.Span(lane: "failover", from: since, to: command.finished, closed: true))
                offSince = nil
            }
        }
        if let since = offSince {
            spans.append(RunReportData.Span(lane: "failover", from: since, to: end, closed: false))
        }
        return spans
    }
}
