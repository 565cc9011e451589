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
