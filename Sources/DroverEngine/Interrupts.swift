import DroverReporting
import Foundation

/// Counted by the signal handler itself (async-signal-safe: an increment and a write), so a run sees an
/// interrupt at its next step boundary however busy the machine is.
nonisolated(unsafe) private let interruptCounter: UnsafeMutablePointer<sig_atomic_t> = {
    let pointer = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
    pointer.initialize(to: 0)
    return pointer
}()
nonisolated(unsafe) private var interruptPipeWrite: Int32 = -1

private let interruptHandler: @convention(c) (Int32) -> Void = { _ in
    interruptCounter.pointee &+= 1
    var byte: UInt8 = 1
    _ = write(interruptPipeWrite, &byte, 1)
}

/// SIGINT and SIGTERM during a run: the first asks the run to stop after the step in flight and its
/// verification; the second aborts at once.
public final class InterruptMonitor: @unchecked Sendable {
    private var readFD: Int32 = -1
    private var stopped = false

    public init() {}

    /// True once a first interrupt arrived.
    public var stopRequested: Bool { interruptCounter.pointee > 0 }

    /// Installs the handler. `onFirst` runs at the first interrupt, `onAbort` at the second; both on the
    /// monitor's own thread.
    public func start(onFirst: @escaping @Sendable () -> Void = {}, onAbort: @escaping @Sendable () -> Void) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        readFD = fds[0]
        interruptPipeWrite = fds[1]
        interruptCounter.pointee = 0
        for signalNumber in [SIGINT, SIGTERM] { signal(signalNumber, interruptHandler) }
        let readFD = self.readFD
        Thread.detachNewThread {
            var seen = 0
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) == 1 {
                if byte == 0 { return }
                seen += 1
                if seen == 1 {
                    Output.stderr("\ndrover: interrupt received: finishing the command in flight and its verification, then stopping cleanly. Press Ctrl-C again to abort now.\n")
                    onFirst()
                } else if seen == 2 {
                    Output.stderr("\ndrover: aborting now: closing the remote command's channel.\n")
                    onAbort()
                }
            }
        }
    }

    public func stop() {
        guard !stopped, readFD >= 0 else { return }
        stopped = true
        for signalNumber in [SIGINT, SIGTERM] { signal(signalNumber, SIG_DFL) }
        var zero: UInt8 = 0
        _ = write(interruptPipeWrite, &zero, 1)
    }
}
