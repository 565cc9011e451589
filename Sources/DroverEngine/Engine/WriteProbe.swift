import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The inventory's write probe, asked every `interval` while a run runs: a command run on the workstation
/// (no shell, its streams to /dev/null, killed by pid after `timeout`) or an HTTP(S) GET. Its answers become
/// the run's ``WriteProbeReport``.
public final class WriteProbe: Sendable {
    let probe: Inventory.Probe
    private let answers = Locked([WriteProbeReport.Answer]())
    private let task = Locked<Task<Void, Never>?>(nil)

    public init(_ probe: Inventory.Probe) { self.probe = probe }

    /// Starts asking (once).
    public func start() {
        task.withLock { task in
            guard task == nil else { return }
            task = Task { [self] in await poll() }
        }
    }

    /// Stops asking and reports what the probe saw (again on a later call).
    public func stop() async -> WriteProbeReport {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
        return WriteProbeReport(probe: probe.description, answers: answers.withLock { $0 })
    }

    private func poll() async {
        while !Task.isCancelled {
            let asked = Date()
            let began = ContinuousClock.now
            let ok = await ask()
            // An answer cut short by the end of the run says nothing about writes.
            if Task.isCancelled { break }
            answers.withLock { $0.append(WriteProbeReport.Answer(asked: asked, answered: Date(), ok: ok)) }
            try? await Task.sleep(until: began + probe.interval, clock: .continuous)
        }
    }

    private func ask() async -> Bool {
        switch probe.target {
        case .command(let argv):
            let timeout = probe.timeout
            return (try? await BlockingWork.run { Self.runs(argv, within: timeout) }) ?? false
        case .url(let text):
            guard let url = URL(string: text) else { return false }
            var request = URLRequest(url: url)
            request.timeoutInterval = probe.timeout.secondsValue
            guard let (_, response) = try? await URLSession.shared.data(for: request),
                let code = (response as? HTTPURLResponse)?.statusCode
            else { return false }
            return (200..<300).contains(code)
        }
    }

    /// Runs `argv` (found on PATH) and waits up to `timeout`; true when it exits 0. Blocking: off the pool.
    static func runs(_ argv: [String], within timeout: Duration) -> Bool {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for descriptor: Int32 in [0, 1, 2] {
            posix_spawn_file_actions_addopen(
                &actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, default signal handling: Ctrl-C on the terminal is Drover's, not the probe's.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, environ) == 0 else { return false }
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return status & 0x7f == 0 && (status >> 8) & 0xff == 0 }
            if reaped < 0 && errno != EINTR { return false }
            if ContinuousClock.now >= deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return false
            }
            usleep(5_000)
        }
    }
}
