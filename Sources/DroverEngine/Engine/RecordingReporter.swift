import DroverCluster
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

/// Sends events to the console (redacted) and to the run's records.
public final class RecordingReporter: Reporter {
    let console: any Reporter
    let recorder: RunRecorder?
    let redactor: Redactor
    /// Each node's output streams, for a private key printed a line at a time.
    let streams = Redactor.StreamState()

    public init(console: any Reporter, recorder: RunRecorder?, redactor: Redactor) {
        self.console = console
        self.recorder = recorder
        self.redactor = redactor
    }

    /// Redacts the event's texts (fields, before anything serialises them), then sends it on.
    public func emit(_ event: Event) {
        var clean = event
        if case .output(let node, let stream, let line) = event.kind {
            clean.kind = .output(
                node: node, stream: stream, line: streams.redact(line, stream: node + " " + stream, with: redactor))
        } else {
            clean.kind = event.kind.mapTexts(redactor.redact)
        }
        console.emit(clean)
        recorder?.event(clean)
    }
}
