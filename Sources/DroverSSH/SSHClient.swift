import Foundation
import Logging

/// An authenticated SSH connection to one host, reused for every command (one channel per command).
///
/// Each client owns a dedicated thread on which all of its libssh2 calls run, so blocking or polling
/// never happens on Swift's cooperative thread pool. Operations on one client run one after another;
/// operations on different clients run in parallel.
public final class SSHClient: Sendable {
    /// Where this client is connected.
    public let endpoint: SSHEndpoint
    private let core: SessionCore
    private let thread: SessionThread
    /// The jump host this session runs through (kept open while this one is).
    public let jump: SSHClient?

    private init(endpoint: SSHEndpoint, core: SessionCore, thread: SessionThread, jump: SSHClient? = nil) {
        self.endpoint = endpoint
        self.core = core
        self.thread = thread
        self.jump = jump
    }

    deinit {
        let core = self.core
        thread.submit { core.shutdown() }
        thread.finish()
    }

    /// Connects to `endpoint`, verifies its host key and authenticates.
    ///
    /// - Throws: ``SSHError`` naming the host, port and cause; `CancellationError` if cancelled first.
    public static func connect(
        to endpoint: SSHEndpoint, options: SSHOptions,
        logger: Logger = Logger(label: "drover.ssh")
    ) async throws -> SSHClient {
        try Task.checkCancellation()
        return try await start(endpoint, options: options, logger: logger, socket: nil, jump: nil)
    }

    /// A session on a thread of its own, connected over a new TCP connection or `socket` (a tunnel).
    private static func start(
        _ endpoint: SSHEndpoint, options: SSHOptions, logger: Logger, socket: Int32?,
        jump: SSHClient?
    ) async throws -> SSHClient {
        let name = "drover.ssh \(endpoint)" + (jump.map { " via \($0.endpoint)" } ?? "")
        let thread = SessionThread(name: name, closedError: .closed(host: endpoint.host, port: endpoint.port))
        let core = SessionCore(endpoint: endpoint, options: options, logger: logger, socket: socket)
        do {
            try await thread.perform { try core.connect() }
        } catch {
            thread.submit { core.shutdown() }
            await thread.finishAndWait()
            throw error
        }
        return SSHClient(endpoint: endpoint, core: core, thread: thread, jump: jump)
    }

    /// Connects to `endpoint` through `jump` (ProxyJump): a `direct-tcpip` channel of the jump host's
    /// session carries this one, over a socket pair the jump host's thread pumps. The host key verified is
    /// `endpoint`'s; the jump host stays open as long as this client.
    ///
    /// - Throws: ``SSHError/jumpFailed(jump:host:port:reason:)`` when the jump host cannot reach `endpoint`,
    ///   else as ``connect(to:options:logger:)``.
    public static func connect(
        to endpoint: SSHEndpoint, options: SSHOptions, through jump: SSHClient,
        logger: Logger = Logger(label: "drover.ssh")
    ) async throws -> SSHClient {
        try Task.checkCancellation()
        let socket = try await jump.openTunnel(to: endpoint)
        return try await start(endpoint, options: options, logger: logger, socket: socket, jump: jump)
    }

    /// A tunnel from this host to `endpoint`: the descriptor a session through it runs over. From then on
    /// this client's thread pumps its tunnels whenever it has no other work.
    private func openTunnel(to endpoint: SSHEndpoint) async throws -> Int32 {
        let socket = try await performCancellable { core, cancel in try core.openTunnel(to: endpoint, cancel: cancel) }
        let core = self.core
        thread.setIdle({ core.pumpTunnels() }, interrupt: { core.wake.wake() })
        return socket
    }

    /// Connects to several hosts in parallel; each result is the client or that host's error.
    public static func connectAll(
        _ endpoints: [SSHEndpoint], options: @Sendable (SSHEndpoint) -> SSHOptions,
        logger: Logger = Logger(label: "drover.ssh")
    )
        async -> [SSHEndpoint: Result<SSHClient, any Error>]
    {
        await withTaskGroup(of: (SSHEndpoint, Result<SSHClient, any Error>).self) { group in
            for endpoint in endpoints {
                let endpointOptions = options(endpoint)
                group.addTask {
                    // The await completes before the tuple is formed: Swift 6.3 -O loses tuple elements written
                    // before a suspension in a task's result (swiftlang/swift#91911), which crashed drover.
                    let result: Result<SSHClient, any Error>
                    do {
                        result = .success(try await connect(to: endpoint, options: endpointOptions, logger: logger))
                    } catch {
                        result = .failure(error)
                    }
                    return (endpoint, result)
                }
            }
            var results: [SSHEndpoint: Result<SSHClient, any Error>] = [:]
            for await (endpoint, result) in group { results[endpoint] = result }
            return results
        }
    }

    /// Runs `command` through the remote user's shell and returns its output and exit status.
    ///
    /// stdout and stderr are captured separately and, when `onOutput` is given, also passed to it line by
    /// line as they arrive (on the client's thread). A non-zero exit status is returned, not thrown.
    /// - Parameters:
    ///   - timeout: when it passes, the channel is closed and ``SSHError/commandTimedOut(host:port:command:seconds:)``
    ///     is thrown.
    /// - Throws: ``SSHError``; `CancellationError` when the task is cancelled (the channel is closed).
    public func run(
        _ command: String, timeout: Duration? = nil,
        onOutput: (@Sendable (OutputLine) -> Void)? = nil
    ) async throws -> CommandResult {
        try await performCancellable { core, cancel in
            try core.execute(command, timeout: timeout, cancel: cancel, onOutput: onOutput)
        }
    }

    /// Runs `body` on the session's thread; cancelling the task wakes the thread's poll loop, which then
    /// abandons the operation.
    private func performCancellable<T: Sendable>(
        _ body: @escaping @Sendable (SessionCore, CancelFlag) throws -> T
    ) async throws -> T {
        let core = self.core
        let cancel = CancelFlag(wake: core.wake)
        return try await withTaskCancellationHandler {
            try Task.checkCancellation()
            return try await thread.perform { try body(core, cancel) }
        } onCancel: {
            cancel.cancel()
        }
    }

    /// Uploads a local file to `remotePath`: SFTP to a temporary name in the same directory, `mv -f` into
    /// place, then the remote SHA-256 is compared with the local one.
    ///
    /// - Returns: the file's SHA-256 (lower-case hex).
    public func upload(
        file localPath: String, to remotePath: String, mode: Int32 = 0o644,
        progress: (@Sendable (UploadProgress) -> Void)? = nil
    ) async throws -> String {
        try await performCancellable { core, cancel in
            try core.upload(
                localPath: localPath, remotePath: remotePath, mode: mode, cancel: cancel, progress: progress)
        }
    }

    /// The SHA-256 of a remote file (lower-case hex).
    public func sha256(ofRemoteFile path: String) async throws -> String {
        try await performCancellable { core, cancel in try core.remoteSHA256(path, cancel: cancel) }
    }

    /// Disconnects and stops the session's thread; later calls fail with ``SSHError/closed(host:port:)``.
    public func close() async {
        let core = self.core
        thread.submit { core.shutdown() }
        await thread.finishAndWait()
    }
}
