import DroverSSH
import Foundation

/// A child process started with `posix_spawn`, reaped by pid (never through Foundation's `Process`,
/// whose exit monitoring can hang when many children start and stop at once).
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let exitStatus = Locked<Int32?>(nil)

    init(pid: pid_t) { self.pid = pid }

    /// True until the process has exited (and been reaped).
    public var isRunning: Bool {
        exitStatus.withLock { status in
            guard status == nil else { return false }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) {
                status = result == pid ? raw : -1
                // Reaped: the kernel may give this pid to another process or thread from now on, so the
                // exit hook must no longer kill it (it once killed the test process itself at exit).
                Processes.unregister(pid)
                return false
            }
            return true
        }
    }

    /// Waits, off Swift's cooperative pool, until the process exits; returns its exit status.
    public func exitStatus() async -> Int32 {
        (try? await Processes.offPool { self.wait() }) ?? -1
    }

    /// Blocks until the process exits; returns its exit status (128+N when killed by signal N).
    @discardableResult
    public func wait() -> Int32 {
        while isRunning { usleep(5_000) }
        let raw = exitStatus.withLock { $0 } ?? -1
        if raw == -1 { return -1 }
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    }
}

/// Calls `body` with NULL-terminated C arrays of `arguments` and `NAME=value` environment strings.
func withSpawnArguments<R>(
    _ arguments: [String], _ environment: [String: String],
    _ body: ([UnsafeMutablePointer<CChar>?], [UnsafeMutablePointer<CChar>?]) -> R
) -> R {
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    return body(argv, envp)
}

/// A process as seen at one moment: its pid and its start time (clock ticks after boot), which together
/// never name another process, though the pid alone may once the process is gone.
public struct ProcessIdentity: Sendable, Hashable {
    public let pid: pid_t
    public let started: UInt64

    public init(pid: pid_t, started: UInt64) {
        self.pid = pid
        self.started = started
    }
}

/// Runs helper programs (ssh-keygen, ssh-add, sshd) and stops long-lived ones by pid.
public enum Processes {
    /// The result of a finished helper program.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Starts `executable`; standard streams are files (or /dev/null), never pipes, so no other child can
    /// hold a pipe open by inheriting it.
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: String = "/dev/null", stdout: String = "/dev/null",
        stderr: String = "/dev/null"
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group: a Ctrl-C aimed at the test run does not hit the servers first. No signal blocked
        // or ignored, as a program started by sshd or a shell has it: the calling thread may block some (a
        // blocked SIGALRM made `flock -w` wait forever) and the test process ignores SIGPIPE.
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGALRM, SIGCHLD, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let env =
            environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } }
            ?? ProcessInfo.processInfo.environment
        var pid: pid_t = 0
        let rc = withSpawnArguments([executable] + arguments, env) { argv, envp in
            posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        guard rc == 0 else { throw FixtureError.commandFailed(executable, String(cString: strerror(rc))) }
        register(pid)
        return ChildProcess(pid: pid)
    }

    /// Runs `executable` with `arguments` to completion (blocking: call it off the cooperative pool).
    ///
    /// - Parameter timeout: a program still running then is killed and ``FixtureError/timedOut(_:)`` names
    ///   it with the end of its stderr, so a hang fails fast and says what it waited for.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        input: String? = nil, timeout: Duration = .seconds(150)
    ) throws -> Output {
        let directory = try temporaryDirectory("run")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let inPath = directory + "/stdin"
        _ = FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8))
        let child = try spawn(
            executable, arguments, environment: environment, stdin: inPath,
            stdout: directory + "/stdout", stderr: directory + "/stderr")
        let deadline = ContinuousClock.now + timeout
        while child.isRunning, ContinuousClock.now < deadline { usleep(5_000) }
        let timedOut = child.isRunning
        if timedOut { stop(child, grace: .seconds(2)) }
        let status = child.wait()
        unregister(child.pid)
        let stderr = (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? ""
        if timedOut {
            let command = ([executable] + arguments).joined(separator: " ")
            throw FixtureError.timedOut(
                "\(command) did not exit within \(timeout); killed. Its stderr ended with:\n"
                    + stderr.split(separator: "\n").suffix(15).joined(separator: "\n"))
        }
        return Output(
            status: status, stdout: (try? String(contentsOfFile: directory + "/stdout", encoding: .utf8)) ?? "",
            stderr: stderr)
    }

    /// Copies an executable so that it can be run at once. The copy is written through a close-on-exec
    /// descriptor: a process that another thread spawns meanwhile must not inherit it open for writing,
    /// or running the copy fails with ETXTBSY ("Text file busy") until that process exits.
    public static func copyExecutable(_ source: String, to destination: String) throws {
        guard let data = FileManager.default.contents(atPath: source) else {
            throw FixtureError.commandFailed("copy \(source)", "not readable")
        }
        let fd = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else {
            throw FixtureError.commandFailed("copy to \(destination)", String(cString: strerror(errno)))
        }
        defer { close(fd) }
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                guard written > 0 else {
                    throw FixtureError.commandFailed("copy to \(destination)", String(cString: strerror(errno)))
                }
                offset += written
            }
        }
    }

    /// Runs blocking fixture work off Swift's cooperative pool (``BlockingWork``).
    public static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await BlockingWork.run(body)
    }

    /// Stops a child: SIGTERM by pid, then SIGKILL after `grace`, and reaps it.
    public static func stop(_ child: ChildProcess, grace: Duration = .seconds(3)) {
        if child.isRunning { kill(child.pid, SIGTERM) }
        let deadline = ContinuousClock.now + grace
        while child.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if child.isRunning { kill(child.pid, SIGKILL) }
        child.wait()
        unregister(child.pid)
    }

    /// Stops a process that is not our child (e.g. a session process of an sshd) by pid, as it is now.
    public static func stop(pid: pid_t, grace: Duration = .seconds(1)) {
        guard pid > 0 else { return }
        if let process = identity(of: pid) { stop(process, grace: grace) } else { reap(pid) }
    }

    /// Stops `process` if its pid still names it: a pid seen earlier (a session listed before its server
    /// stopped) may since belong to another process, or to a thread of this one, which `kill` would hit.
    public static func stop(_ process: ProcessIdentity, grace: Duration = .seconds(1)) {
        guard identity(of: process.pid) == process else { return }
        let isIt = { identity(of: process.pid) == process && isAlive(process.pid) }
        if isIt() {
            kill(process.pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while isIt(), ContinuousClock.now < deadline { usleep(10_000) }
            if isIt() { kill(process.pid, SIGKILL) }
        }
        reap(process.pid)
    }

    /// Reaps `pid` when it is this process's own child (a sandbox started here), or it stays a zombie until
    /// the test process exits; for any other process waitpid answers ECHILD at once.
    private static func reap(_ pid: pid_t) {
        var raw: Int32 = 0
        let reapBy = ContinuousClock.now + .seconds(2)
        while waitpid(pid, &raw, WNOHANG) == 0, ContinuousClock.now < reapBy { usleep(10_000) }
        unregister(pid)
    }

    /// True while `pid` exists and is not a zombie.
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        if let close = stat.lastIndex(of: ")"), stat.index(close, offsetBy: 2) < stat.endIndex {
            return stat[stat.index(close, offsetBy: 2)] != "Z"
        }
        return true
    }

    /// `pid` and the time it started (/proc/PID/stat), or nil when no process has that pid.
    public static func identity(of pid: pid_t) -> ProcessIdentity? {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name: state is field 3, the start time field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let started = UInt64(fields[19]) else { return nil }
        return ProcessIdentity(pid: pid, started: started)
    }

    /// The descendants of `pid` as they are now (``descendants(of:)``), to be stopped later by identity.
    public static func descendantIdentities(of pid: pid_t) -> [ProcessIdentity] {
        descendants(of: pid).compactMap(identity(of:))
    }

    /// The pids of all descendants of `pid`, read from /proc.
    public static func descendants(of pid: pid_t) -> [pid_t] {
        var parents: [pid_t: [pid_t]] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let child = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After the command name: state, then the parent pid.
            if fields.count > 1, let parent = pid_t(fields[1]), parent != child {
                parents[parent, default: []].append(child)
            }
        }
        var result: [pid_t] = []
        var queue = [pid]
        while let next = queue.popLast() {
            for child in parents[next] ?? [] where !result.contains(child) {
                result.append(child)
                queue.append(child)
            }
        }
        return result
    }

    private static let registry = Locked<Set<pid_t>>([])
    private static let installExitHook: Void = {
        atexit {
            let pids = Processes.registry.withLock { $0 }
            for pid in pids { kill(pid, SIGKILL) }
        }
    }()

    /// Remembers a long-lived child so it is killed even if the test process exits early.
    static func register(_ pid: pid_t) {
        _ = installExitHook
        registry.withLock { _ = $0.insert(pid) }
    }

    public static func unregister(_ pid: pid_t) {
        registry.withLock { _ = $0.remove(pid) }
    }

    /// True while the exit hook would kill `pid`.
    static func isRegistered(_ pid: pid_t) -> Bool {
        registry.withLock { $0.contains(pid) }
    }
}
