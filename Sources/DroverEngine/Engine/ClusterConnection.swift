import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Logging

/// SSH connections to every backend of an inventory, one session per node for the whole run.
public final class ClusterConnection: NodeTransport {
    public let inventory: Inventory
    public let places: NodePlaces
    /// The auxiliary nodes asked for, connected or not.
    private let auxiliaries: [String]
    private let sessions: Locked<Opened>
    private let passphrase: PassphraseSource
    private let logger: Logger

    /// What connecting gave: a session per node, why the others could not be reached, and the jump hosts'
    /// sessions (ProxyJump) the node sessions run through.
    struct Opened {
        var clients: [String: SSHClient] = [:]
        var failures: [String: String] = [:]
        var jumps: [SSHClient] = []
        /// Nodes whose session was lost while in use, with when the next reconnect may be tried and how many
        /// tries failed since (the backoff doubles from 1 s to 15 s).
        var lost: [String: (since: ContinuousClock.Instant, nextTry: ContinuousClock.Instant, tries: Int)] = [:]
        /// How many times each node was connected to again after its first session.
        var reconnects: [String: Int] = [:]
    }

    /// Backends that could not be reached, with why.
    public var failures: [String: String] { sessions.withLock { $0.failures } }
    private var clients: [String: SSHClient] { sessions.withLock { $0.clients } }

    private init(
        inventory: Inventory, places: NodePlaces, auxiliaries: [String], opened: Opened, passphrase: PassphraseSource,
        logger: Logger
    ) {
        self.inventory = inventory
        self.places = places
        self.auxiliaries = auxiliaries
        self.sessions = Locked(opened)
        self.passphrase = passphrase
        self.logger = logger
    }

    private static func open(
        _ backends: [Inventory.Backend], inventory: Inventory, passphrase: PassphraseSource,
        logger: Logger
    ) async -> Opened {
        var opened = Opened()
        let direct = backends.filter { $0.jumps.isEmpty }
        let byEndpoint = Dictionary(
            uniqueKeysWithValues: direct.map { (SSHEndpoint(host: $0.host, port: $0.port), $0) })
        let results = await SSHClient.connectAll(
            Array(byEndpoint.keys),
            options: { endpoint in
                inventory.sshOptions(for: byEndpoint[endpoint]!, passphrase: passphrase)
            }, logger: logger)
        for (endpoint, result) in results {
            let name = byEndpoint[endpoint]!.name
            switch result {
            case .success(let client): opened.clients[name] = client
            case .failure(let error): opened.failures[name] = error.localizedDescription
            }
        }
        // Jump hosts: each chain (and each prefix of one) is connected once and shared, hop by hop.
        var chains: [String: JumpHop] = [:]
        var lastHops: [(backend: Inventory.Backend, via: SSHClient)] = []
        for backend in backends where !backend.jumps.isEmpty {
            var via: SSHClient?
            var key = ""
            var failure: String?
            for hop in backend.jumps {
                key += "\(hop.user)@\(hop.host):\(hop.port)>"
                if let known = chains[key] {
                    switch known {
                    case .connected(let client): via = client
                    case .failed(let reason): failure = reason
                    }
                    if failure != nil { break }
                    continue
                }
                let endpoint = SSHEndpoint(host: hop.host, port: hop.port)
                let options = inventory.sshOptions(for: hop, passphrase: passphrase)
                do {
                    let client: SSHClient
                    if let via {
                        client = try await SSHClient.connect(
                            to: endpoint, options: options, through: via, logger: logger)
                    } else {
                        client = try await SSHClient.connect(to: endpoint, options: options, logger: logger)
                    }
                    chains[key] = .connected(client)
                    opened.jumps.append(client)
                    via = client
                } catch {
                    let reason = "jump host \(hop.host): \(error.localizedDescription)"
                    chains[key] = .failed(reason)
                    failure = reason
                    break
                }
            }
            if let failure {
                opened.failures[backend.name] = failure
            } else if let via {
                lastHops.append((backend, via))
            }
        }
        // The nodes through their last jump host, at once.
        let throughJumps = await withTaskGroup(of: JumpedNode.self) { group in
            for (backend, via) in lastHops {
                let options = inventory.sshOptions(for: backend, passphrase: passphrase)
                group.addTask {
                    do {
                        let client = try await SSHClient.connect(
                            to: SSHEndpoint(host: backend.host, port: backend.port), options: options,
                            through: via, logger: logger)
                        return JumpedNode(name: backend.name, client: client, failure: nil)
                    } catch {
                        return JumpedNode(
                            name: backend.name, client: nil,
                            failure: "through \(via.endpoint): \(error.localizedDescription)")
                    }
                }
            }
            var all: [JumpedNode] = []
            for await node in group { all.append(node) }
            return all
        }
        for node in throughJumps {
            if let client = node.client {
                opened.clients[node.name] = client
            } else {
                opened.failures[node.name] = node.failure
            }
        }
        return opened
    }

    private enum JumpHop {
        case connected(SSHClient)
        case failed(String)
    }

    private struct JumpedNode: Sendable {
        var name: String
        var client: SSHClient?
        var failure: String?
    }

    /// Tries again to connect to a node that could not be reached (a host rebuilt during a runbook) or whose
    /// session was lost; true when it is now connected. Its host key is verified, and every rule applied, as
    /// for the first connection.
    public func reconnect(_ name: String) async -> Bool {
        guard failures[name] != nil, let backend = inventory.sshEndpoint(named: name) else {
            return failures[name] == nil
        }
        let opened = await Self.open([backend], inventory: inventory, passphrase: passphrase, logger: logger)
        let stale: SSHClient? = sessions.withLock { state in
            state.jumps += opened.jumps
            if let client = opened.clients[name] {
                // Another task may have reconnected meanwhile: its session, perhaps in use, is kept.
                if state.clients[name] != nil { return client }
                state.clients[name] = client
                state.reconnects[name, default: 0] += 1
                state.failures[name] = nil
                state.lost[name] = nil
                return nil
            } else if let failure = opened.failures[name], state.clients[name] == nil {
                state.failures[name] = failure
                if let lost = state.lost[name] {
                    let tries = lost.tries + 1
                    state.lost[name] = (lost.since, .now + .seconds(min(15, 1 << min(tries, 4))), tries)
                }
            }
            return nil
        }
        if let stale { Task.detached { await stale.close() } }
        return opened.clients[name] != nil
    }

    public func connectionGeneration(_ node: String) -> Int { sessions.withLock { $0.reconnects[node] ?? 0 } }

    /// Records that a node's session was lost while in use (reset, closed, keepalives unanswered): it is
    /// closed in the background and the node counts as unreachable until ``reconnect(_:)`` succeeds.
    func markLost(_ name: String, client: SSHClient, reason: String) {
        let dropped = sessions.withLock { state -> Bool in
            guard state.clients[name] === client else { return false }
            state.clients[name] = nil
            state.failures[name] = reason
            state.lost[name] = (.now, .now, 0)
            return true
        }
        if dropped {
            logger.info("connection lost", metadata: ["node": "\(name)", "reason": "\(reason)"])
            Task.detached { await client.close() }
        }
    }

    /// The nodes whose session was lost during the run and is not back yet, with since when.
    public var lostNodes: [String: ContinuousClock.Instant] {
        sessions.withLock { state in state.lost.mapValues(\.since) }
    }

    /// Reconnects, at once and each on its own backoff (1 s doubling to 15 s), the nodes whose session was
    /// lost; returns those that are back, with how long they were gone.
    public func reconnectLost() async -> [(node: String, after: Duration)] {
        let due = sessions.withLock { state in
            state.lost.filter { $0.value.nextTry <= .now }.map { ($0.key, $0.value.since) }
        }
        guard !due.isEmpty else { return [] }
        return await withTaskGroup(of: (String, Duration?).self) { group in
            for (node, since) in due {
                group.addTask {
                    let back = await self.reconnect(node)
                    return (node, back ? ContinuousClock.now - since : nil)
                }
            }
            var back: [(node: String, after: Duration)] = []
            for await (node, after) in group { if let after { back.append((node, after)) } }
            return back.sorted { $0.node < $1.node }
        }
    }

    /// Connects to every backend (or the named ones) in parallel, verifying host keys, and to `auxiliaries`:
    /// nodes besides the members that the topology reaches over SSH and that hold no lock (the named ones
    /// too). `places`: where the topology keeps Drover's lock and records on the nodes.
    public static func connect(
        _ inventory: Inventory, places: NodePlaces, auxiliaries: [Inventory.Backend] = [], only names: [String]? = nil,
        passphrase: PassphraseSource = .environmentOrTerminal(), logger: Logger
    ) async -> ClusterConnection {
        let backends = (inventory.backends + auxiliaries).filter { names?.contains($0.name) ?? true }
        let opened = await open(backends, inventory: inventory, passphrase: passphrase, logger: logger)
        return ClusterConnection(
            inventory: inventory, places: places, auxiliaries: auxiliaries.map(\.name), opened: opened,
            passphrase: passphrase, logger: logger)
    }

    /// The backends that are connected (auxiliary nodes are not: locks and discovery are the backends').
    public var connectedNames: [String] { inventory.backends.map(\.name).filter { clients[$0] != nil } }

    /// The auxiliary nodes that are connected (a Chef cluster's frontends, which its upgrade paths act on).
    public var connectedAuxiliaries: [String] { auxiliaries.filter { clients[$0] != nil } }

    /// True once a run's playbook acts on auxiliary nodes: each reading then reads them too (a frontend's `/_status`).
    public var watchAuxiliaries: Bool {
        get { watching.withLock { $0 } }
        set { watching.withLock { $0 = newValue } }
    }
    private let watching = Locked(false)

    /// The auxiliary nodes this connection reached or tried to (those `connect` was given).
    public var auxiliaryNames: [String] {
        auxiliaries.filter { clients[$0] != nil || failures[$0] != nil }
    }

    /// Unreachable backends only, with why.
    public var backendFailures: [String: String] { failures.filter { inventory.backend(named: $0.key) != nil } }

    /// Runs a command on a node (through `sudo -n` when the inventory asks for it).
    public func run(
        _ node: String, _ command: String, timeout: Duration? = nil,
        onOutput: (@Sendable (OutputLine) -> Void)? = nil
    ) async throws -> CommandResult {
        guard let client = clients[node] else {
            throw SSHError.closed(
                host: inventory.sshEndpoint(named: node)?.host ?? node,
                port: inventory.sshEndpoint(named: node)?.port ?? 22)
        }
        let wrapped = inventory.ssh.sudo ? "sudo -n sh -c \(ShellQuote.quote(command))" : command
        do {
            var result = try await client.run(
                wrapped, timeout: timeout ?? inventory.ssh.commandTimeout, onOutput: onOutput)
            result.command = command
            return result
        } catch let error as SSHError where error.isConnectionLost {
            markLost(node, client: client, reason: error.localizedDescription)
            throw error
        }
    }

    /// Uploads a local file to a node (temporary name, `mv -f`, SHA-256 verified).
    public func upload(
        _ node: String, file local: String, to remote: String, progress: (@Sendable (UploadProgress) -> Void)?
    ) async throws -> String {
        guard let client = clients[node] else {
            throw SSHError.closed(
                host: inventory.sshEndpoint(named: node)?.host ?? node,
                port: inventory.sshEndpoint(named: node)?.port ?? 22)
        }
        return try await client.upload(file: local, to: remote, progress: progress)
    }

    /// Disconnects from every node at once; returns when every session's thread has stopped.
    public func close() async {
        await withTaskGroup(of: Void.self) { group in
            for client in clients.values { group.addTask { await client.close() } }
        }
        // Then the jump hosts, innermost first: their tunnels carried the sessions just closed.
        for jump in sessions.withLock({ $0.jumps }).reversed() { await jump.close() }
    }
}
