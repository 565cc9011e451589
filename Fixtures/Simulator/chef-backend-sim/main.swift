// chef-backend-sim: one simulated Chef Backend node, or one node of the legacy DRBD pair, behind a real sshd.
//
// Invoked under the name of the tool it stands in for (chef-backend-ctl, dpkg, dpkg-query, rpm, yum, df, curl;
// on a pair's nodes drbdadm, chef-server-ctl, private-chef-ctl and cat, for /proc/drbd: symlinks on the
// node's PATH), or as `chef-backend-sim login`, sshd's ForceCommand, which appends
// every command the node receives to the command log and then runs it with /bin/sh.
//
// Environment (set by sshd's SetEnv): DROVER_SIM_NODE (node name), DROVER_SIM_STATE (cluster state
// file), DROVER_SIM_LOG (command log), DROVER_SIM_KIND (`frontend` on a Chef Infra Server frontend).
import Foundation
import SimulatedChefBackend

let environment = ProcessInfo.processInfo.environment
let arguments = CommandLine.arguments
let tool = (arguments[0] as NSString).lastPathComponent

func write(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
        // The reader is gone (the SSH connection was lost): a real program dies here, of SIGPIPE.
        if written < 0 && errno == EPIPE { _exit(141) }
        if written <= 0 { return }
        offset += written
    }
}

func logLine(_ fields: [String: Any]) {
    guard let path = environment["DROVER_SIM_LOG"] else { return }
    var record = fields
    record["time"] = ISO8601DateFormatter.withFractions.string(from: Date())
    record["node"] = environment["DROVER_SIM_NODE"] ?? "?"
    if record["session"] == nil, let session = environment["DROVER_SIM_SESSION"] { record["session"] = session }
    guard
        let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])
    else { return }
    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    write(fd, String(decoding: data, as: UTF8.self) + "\n")
    close(fd)
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let withFractions: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}

/// sshd's ForceCommand: log, run the requested command through /bin/sh, log its end.
func login() -> Int32 {
    let command = environment["SSH_ORIGINAL_COMMAND"] ?? ""
    if command == "internal-sftp" || command == "sftp" || command.hasSuffix("sftp-server") {
        logLine(["event": "sftp"])
        let server = "/usr/lib/openssh/sftp-server"
        let argv = [strdup(server), nil]
        execv(server, argv)
        return 127
    }
    let argv = command.isEmpty ? ["/bin/bash", "-l"] : ["/bin/sh", "-c", command]
    // The tools the session runs, and whatever they start that outlives it, log under this session.
    // The pid and a random part: pids are reused within a test on a busy machine (pid_max 32768), and a
    // reading's tools must never pass for a later detached command's.
    let session = "\(getpid())-\(UInt64.random(in: 0 ... .max))"
    setenv("DROVER_SIM_SESSION", session, 1)
    logLine(["event": "started", "command": command, "session": session])
    var pid: pid_t = 0
    let cArguments = argv.map { strdup($0) } + [nil]
    defer { for argument in cArguments { free(argument) } }
    let rc = posix_spawn(&pid, argv[0], nil, nil, cArguments, environ)
    guard rc == 0 else {
        write(2, "cannot start \(argv[0])\n")
        return 127
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    logLine(["event": "finished", "command": command, "exit_status": Int(exitStatus), "session": session])
    return exitStatus
}

func simulate(_ tool: String, _ arguments: [String]) -> Int32 {
    guard let node = environment["DROVER_SIM_NODE"], let state = environment["DROVER_SIM_STATE"] else {
        write(2, "\(tool): this is a simulated Chef Backend node, but DROVER_SIM_NODE / DROVER_SIM_STATE are not set\n")
        return 70
    }
    if environment["DROVER_SIM_KIND"] == "frontend" {
        return FrontendInvocation(
            node: node, store: StateStore(path: state), environment: environment, out: { write(1, $0) },
            err: { write(2, $0) }
        )
        .run(tool: tool, arguments: arguments)
    }
    if PairInvocation.tools.contains(tool) || tool == "cat" {
        if tool == "cat" && arguments != ["/proc/drbd"] {
            // Any other file: the real cat.
            let argv = ["/bin/cat"] + arguments
            let cArguments = argv.map { strdup($0) } + [nil]
            execv("/bin/cat", cArguments)
            return 127
        }
        return PairInvocation(
            node: node, store: PairStateStore(path: state), out: { write(1, $0) }, err: { write(2, $0) }
        )
        .run(tool: tool, arguments: arguments)
    }
    let invocation = Invocation(
        node: node, store: StateStore(path: state), environment: environment,
        out: { write(1, $0) }, err: { write(2, $0) })
    return invocation.run(tool: tool, arguments: arguments)
}

/// A tool as the node ran it, logged as `tool_started` / `tool_finished` under its session (a command that
/// outlives its SSH session still shows under the session that started it).
func logged(_ tool: String, _ arguments: [String]) -> Int32 {
    if tool == "mkdir" && !arguments.contains(where: { $0.hasPrefix("/var/opt/opscode/upgrades") }) {
        // Only the mkdir of a frontend's migration-level copy is of interest; any other is the real one, unlogged.
        execv("/bin/mkdir", (["/bin/mkdir"] + arguments).map { strdup($0) } + [nil])
        return 127
    }
    let line = ([tool] + arguments).joined(separator: " ")
    logLine(["event": "tool_started", "command": line])
    // A test's one-off failure: the first command starting with the text of this node-private file fails,
    // and the file goes (the next attempt runs as usual).
    let failOnce = "/root/drover-sim-fail-once"
    if let prefix = try? String(contentsOfFile: failOnce, encoding: .utf8).trimmingCharacters(
        in: .whitespacesAndNewlines),
        !prefix.isEmpty, line.hasPrefix(prefix), unlink(failOnce) == 0
    {
        write(2, "\(tool): simulated failure, once\n")
        logLine(["event": "tool_finished", "command": line, "exit_status": 1])
        return 1
    }
    if tool == "rm" || tool == "mkdir" {
        // Any rm or mkdir the node runs (mkdir: where a frontend's migration level is copied): logged, then
        // the real one.
        let argv = ["/bin/\(tool)"] + arguments
        execv("/bin/\(tool)", argv.map { strdup($0) } + [nil])
        return 127
    }
    let status = simulate(tool, arguments)
    logLine(["event": "tool_finished", "command": line, "exit_status": Int(status)])
    return status
}

if tool == "chef-backend-sim" {
    switch arguments.dropFirst().first {
    case "login": exit(login())
    case "status-server": exit(statusServer(Array(arguments.dropFirst(2))))
    case let name?
    where ["chef-backend-ctl", "dpkg", "dpkg-query", "rpm", "yum", "df", "cat", "curl", "rm", "mkdir"].contains(name)
        || PairInvocation.tools.contains(name):
        exit(logged(name, Array(arguments.dropFirst(2))))
    default:
        write(
            2,
            "usage: chef-backend-sim login | chef-backend-sim TOOL ARGS... (or run it as chef-backend-ctl, dpkg, ...)\n"
        )
        exit(64)
    }
}
exit(logged(tool, Array(arguments.dropFirst())))
