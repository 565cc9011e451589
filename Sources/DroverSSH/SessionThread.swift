import CCrypto
import Foundation
import Synchronization

/// A dedicated OS thread that runs jobs one at a time, so that every libssh2 call of one session stays on
/// one thread and never on Swift's cooperative pool.
final class SessionThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var finishing = false
        var exited = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())
    private let signal = DispatchSemaphore(value: 0)
    private let closedError: SSHError
    /// Work the thread does while no job is queued (a jump host pumping its tunnels), and how to
    /// interrupt it when a job arrives.
    private let idle = Locked<(work: @Sendable () -> Void, interrupt: @Sendable () -> Void)?>(nil)

    /// - Parameter closedError: what work submitted after ``finish()`` fails with.
    init(name: String, closedError: SSHError) {
        self.closedError = closedError
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    /// Queues `job`; jobs run in order. False (and `job` is dropped) once the thread is finishing.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let accepted = state.withLock { state in
            guard !state.finishing else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted {
            signal.signal()
            idle.withLock { $0 }?.interrupt()
        }
        return accepted
    }

    /// Sets the work done between jobs; `work` must return soon after `interrupt` is called.
    func setIdle(_ work: @escaping @Sendable () -> Void, interrupt: @escaping @Sendable () -> Void) {
        idle.withLock { $0 = (work, interrupt) }
        signal.signal()
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let handoff = Handoff<T>()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let closedError = self.closedError
            let accepted = submit {
                handoff.put(Result { try body() })
                continuation.resume()
            }
            if !accepted {
                handoff.put(.failure(closedError))
                continuation.resume()
            }
        }
        return try handoff.take()
    }

    /// Lets the thread exit once the queued jobs have run.
    func finish() {
        state.withLock { $0.finishing = true }
        signal.signal()
        idle.withLock { $0 }?.interrupt()
    }

    /// Like ``finish()``, and returns once the thread has run its last job and released its OpenSSL
    /// per-thread state, so a closed client leaves nothing running behind it.
    func finishAndWait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state in
                state.finishing = true
                if !state.exited { state.exitWaiters.append(continuation) }
                return state.exited
            }
            if exited {
                continuation.resume()
            } else {
                signal.signal()
                idle.withLock { $0 }?.interrupt()
            }
        }
    }

    private func loop() {
        while true {
            if let work = idle.withLock({ $0?.work }) {
                // Nothing queued: do the idle work (it returns when interrupted or after a short wait).
                if signal.wait(timeout: .now()) == .timedOut {
                    work()
                    continue
                }
            } else {
                signal.wait()
            }
            let (job, done): ((@Sendable () -> Void)?, Bool) = state.withLock { state in
                if !state.jobs.isEmpty { return (state.jobs.removeFirst(), false) }
                return (nil, state.finishing)
            }
            if let job { job() }
            if done { break }
        }
        OPENSSL_thread_stop()
        let waiters = state.withLock { state in
            state.exited = true
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Marks one operation as cancelled and wakes the session's poll loop.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    private let wake: WakePipe

    init(wake: WakePipe) { self.wake = wake }

    var isCancelled: Bool { flag.load(ordering: .acquiring) }

    func cancel() {
        flag.store(true, ordering: .releasing)
        wake.wake()
    }
}

/// A self-pipe the poll loop watches, so cancellation interrupts a wait at once.
final class WakePipe: Sendable {
    private let fds: Locked<(read: Int32, write: Int32)>

    init() {
        var pair: [Int32] = [-1, -1]
        if pipe(&pair) == 0 {
            for fd in pair {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        }
        fds = Locked((pair[0], pair[1]))
    }

    var readDescriptor: Int32 { fds.withLock { $0.read } }

    func wake() {
        fds.withLock { fds in
            guard fds.write >= 0 else { return }
            var byte: UInt8 = 1
            _ = write(fds.write, &byte, 1)
        }
    }

    func drain() {
        let fd = readDescriptor
        var buffer = [UInt8](repeating: 0, count: 64)
        while fd >= 0, read(fd, &buffer, buffer.count) > 0 {}
    }

    func close() {
        fds.withLock { fds in
            if fds.read >= 0 { _ = Glibc.close(fds.read) }
            if fds.write >= 0 { _ = Glibc.close(fds.write) }
            fds = (-1, -1)
        }
    }
}

/// Runs blocking work (hashing a large file, starting a server) on a thread of its own, keeping Swift's
/// cooperative pool free.
public enum BlockingWork {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let handoff = Handoff<T>()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                handoff.put(Result { try body() })
                continuation.resume()
            }
        }
        return try handoff.take()
    }
}
