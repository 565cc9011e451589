import DroverReporting
import Foundation
import Synchronization

/// Interrupts counted by the signal handler itself (a lock-free atomic increment and a write, both
/// async-signal-safe), so a run sees an interrupt at its next step boundary however busy the machine is.
/// Atomics, not a `sig_atomic_t`: the handler runs on whichever thread takes the signal, and the count is
/// read by the run on another.
private let interruptCount = Atomic<Int>(0)
/// The write end of the pipe that wakes the monitor's thread; -1 while no monitor runs.
private let interruptPipeWrite = Atomic<Int32>(-1)

private let interruptHandler: @convention(c) (Int32) -> Void = { _ in
    interruptCount.wrappingAdd(1, ordering: .sequentiallyConsistent)
    var byte: UInt8 = 1
    _ = write(interruptPipeWrite.load(ordering: .sequentiallyConsistent), &byte, 1)
}

/// SIGINT and SIGTERM during a run: the first asks the run to stop after the step in flight and its
/// verification; the second aborts at once.
public final class InterruptMonitor: @unchecked Sendable {
    private var readFD: Int32 = -1
    private var stopped = false

    public init() {}

    /// True once a first interrupt arrived.
    public var stopRequested: Bool { interruptCount.load(ordering: .sequentiallyConsistent) > 0 }

    /// Installs the handler. `onFirst` runs at the first interrupt, `onAbort` at the second; both on the
    /// monitor's own thread.
    public func start(onFirst: @escaping @Sendable () -> Void = {}, onAbort: @escaping @Sendable () -> Void) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        readFD = fds[0]
        interruptPipeWrite.store(fds[1], ordering: .sequentiallyConsistent)
        interruptCount.store(0, ordering: .sequentiallyConsistent)
        for signalNumber in [SIGINT, SIGTERM] { signal(signalNumber, interruptHandler) }
        let readFD = self.readFD
        Thread.detachNewThread {
            var seen = 0
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) == 1 {
                if byte == 0 { return }
                seen += 1
                if seen == 1 {
                    Output.stderr(
                        "\ndrover: interrupt received: finishing the command in flight and its verification, then stopping cleanly. Press Ctrl-C again to abort now.\n"
                    )
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
        _ = write(interruptPipeWrite.load(ordering: .sequentiallyConsistent), &zero, 1)
    }
}
