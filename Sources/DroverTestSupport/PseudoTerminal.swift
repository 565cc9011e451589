import CPseudoTerminal
import Foundation

/// Runs a program on a pseudo-terminal, as a person at a terminal would: it becomes the program's
/// controlling terminal, prompts are answered, and everything it printed is returned.
public enum PseudoTerminal {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
    }

    /// A reply that types the terminal's interrupt character (Ctrl-C: SIGINT to the program), with no newline.
    public static let interrupt = "\u{03}"
    /// A reply that types nothing but sends the program SIGTERM, by its pid.
    public static let terminate = "\u{00}SIGTERM"

    /// Runs `executable` with exactly `environment`; whenever the output so far ends with the next prompt
    /// in `answers`, its reply and a newline are typed (``interrupt`` and ``terminate`` as they say).
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String],
        answers: [(prompt: String, reply: String)], timeout: Duration = .seconds(150)
    ) throws -> Result {
        var name = [CChar](repeating: 0, count: 256)
        let master = drover_open_pty(&name, name.count)
        guard master >= 0 else { throw FixtureError.commandFailed("posix_openpt", String(cString: strerror(errno))) }
        defer { close(master) }
        let slave = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // A new session's first terminal opened becomes its controlling terminal.
        posix_spawn_file_actions_addopen(&actions, 0, slave, O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&actions, 0, 1)
        posix_spawn_file_actions_adddup2(&actions, 0, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID
        var pid: pid_t = 0
        let rc = withSpawnArguments([executable] + arguments, environment) { argv, envp in
            posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        guard rc == 0 else { throw FixtureError.commandFailed(executable, String(cString: strerror(rc))) }
        let child = ChildProcess(pid: pid)
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
        var output = ""
        var pending = answers
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        /// Reads what is there; answers the next prompt once the output ends with it. False when nothing was read.
        func readAvailable() -> Bool {
            let count = read(master, &buffer, buffer.count)
            guard count > 0 else { return false }
            output += String(decoding: buffer[0..<count], as: UTF8.self)
            if let next = pending.first,
                output.trimmingCharacters(in: .whitespaces).hasSuffix(next.prompt.trimmingCharacters(in: .whitespaces))
            {
                switch next.reply {
                case terminate: kill(pid, SIGTERM)
                case interrupt: _ = interrupt.withCString { write(master, $0, strlen($0)) }
                default:
                    let line = next.reply + "\n"
                    _ = line.withCString { write(master, $0, strlen($0)) }
                }
                pending.removeFirst()
            }
            return true
        }
        while ContinuousClock.now < deadline {
            if readAvailable() { continue }
            if !child.isRunning {
                // The program may have written its last lines between the read above and its exit:
                // they are still buffered in the terminal, so drain them (read then fails with EIO).
                while readAvailable() {}
                break
            }
            var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 20)
        }
        if child.isRunning { kill(pid, SIGKILL) }
        return Result(status: child.wait(), output: output)
    }
}
