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

    public init(console: any Reporter, recorder: RunRecorder?, redactor: Redactor) {
        self.console = console
        self.recorder = recorder
        self.redactor = redactor
    }

    public func emit(_ event: Event) {
        var clean = event
        clean.kind = event.kind.mapTexts(redactor.redact)
        console.emit(clean)
        recorder?.event(clean)
    }
}
