import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

extension ClusterLock {
    /// The cluster's lock as this drover holds it: on which backends, under which owner text (the per-process
    /// token: run id, user, host, start time and pid). Checked before each change, and taken on backends as
    /// they become reachable during the run.
    public final class Holding: Sendable {
        public let runID: String
        let directory: String
        /// The records directory a new run creates on each node it locks (nil for a resumed run).
        let records: String?
        /// What this drover wrote to the owner file, byte for byte.
        let ownerText: String
        /// How many backends must hold it (a majority, or fewer for a runbook made for lost nodes).
        public let minimum: Int
        private let state = Locked(State())

        struct State {
            /// Where this drover holds it.
            var held: Set<String> = []
            /// Where this drover created it (not taken over from an earlier attempt of its run).
            var created: Set<String> = []
            /// Each held node's connection generation when the lock was last seen there.
            var seenAt: [String: Int] = [:]
            /// When the lock was last seen there (taken, or read back).
            var seenWhen: [String: ContinuousClock.Instant] = [:]
            /// When it was held on enough backends: a reading from before shows no lock.
            var acquired: ContinuousClock.Instant?
        }

        /// When it was held on enough backends (nil until then): only readings taken since show it.
        public var acquiredAt: ContinuousClock.Instant? { state.withLock { $0.acquired } }

        func markAcquired() { state.withLock { $0.acquired = .now } }

        init(runID: String, directory: String, records: String?, ownerText: String, minimum: Int) {
            self.runID = runID
            self.directory = directory
            self.records = records
            self.ownerText = ownerText
            self.minimum = minimum
        }

        /// The backends where this drover holds the lock, in no order.
        public var nodes: Set<String> { state.withLock { $0.held } }

        /// The backends where this drover created the lock (what a refused start removes again).
        var created: Set<String> { state.withLock { $0.created } }

        static func connectedBackends(_ transport: any NodeTransport) -> [String] {
            transport.inventory.backends.map(\.name).filter { transport.failures[$0] == nil }
        }

        /// True when `text` is this drover's owner file: the same run, workstation, start time and pid.
        func isOurs(_ text: String) -> Bool {
            guard text != ownerText else { return true }
            guard let found = LockOwner.parse(text, node: ""), let mine = LockOwner.parse(ownerText, node: "") else {
                return false
            }
            return found == mine
        }

        private func holds(_ node: String, created: Bool, transport: any NodeTransport) {
            let generation = transport.connectionGeneration(node)
            state.withLock {
                $0.held.insert(node)
                if created { $0.created.insert(node) }
                $0.seenAt[node] = generation
                $0.seenWhen[node] = .now
            }
        }

        /// How long a sighting of the lock on a node stands for the next check (nothing run there meanwhile
        /// needs it read again): as long as a reading stands for the next step.
        static let sightingLimit: Duration = .seconds(5)

        /// Takes the lock on one node: nil when taken (or already ours), else who holds it. One command: it
        /// creates the directory, or shows who holds it, or says why it cannot be created.
        func take(_ node: String, on transport: any NodeTransport) async throws -> LockOwner? {
            let quoted = ShellQuote.quote(directory)
            let owner = ShellQuote.quote(ownerText)
            // Never through a symbolic link planted at the records root (the node script refuses such a root too).
            let makeRecords =
                records.map {
                    let root = ShellQuote.quote(NodePlaces.recordsRoot(besideLock: directory))
                    return "[ -L \(root) ] || (umask 077; mkdir -p \(ShellQuote.quote($0))) 2>/dev/null; "
                } ?? ""
            // The lock and its owner in one step: a directory made beside it with the owner file in it, renamed
            // into place (a connection lost half-way leaves no lock without an owner). rename(2) fails when the
            // lock is there with an owner, and replaces an empty one (a lock an older drover left ownerless).
            let script =
                "umask 077; t=\(quoted).new.$$; if ! e=$(mkdir \"$t\" 2>&1); then echo \"drover-lock-error $e\"; "
                + "elif printf '%s' \(owner) > \"$t/owner\" && mv -T \"$t\" \(quoted) 2>/dev/null; then \(makeRecords)echo drover-lock-taken; "
                + "else rm -rf \"$t\"; if [ -d \(quoted) ]; then echo drover-lock-held; cat \(quoted)/owner 2>/dev/null; "
                + "else echo \"drover-lock-error cannot rename $t into place\"; fi; fi"
            let result = try await transport.run(node, script, timeout: ClusterLock.commandTimeout)
            let text = result.stdoutText
            if text.hasPrefix("drover-lock-taken") {
                holds(node, created: true, transport: transport)
                return nil
            }
            if text.hasPrefix("drover-lock-error") || !text.hasPrefix("drover-lock-held") {
                let cause =
                    text.hasPrefix("drover-lock-error")
                    ? String(text.dropFirst("drover-lock-error".count)).trimmingCharacters(in: .whitespacesAndNewlines)
                    : (result.stderrText + text).trimmingCharacters(in: .whitespacesAndNewlines)
                throw Unusable(
                    node: node, directory: directory, cause: cause.isEmpty ? "exit status \(result.exitStatus)" : cause)
            }
            let found = String(text.dropFirst("drover-lock-held\n".count))
            if isOurs(found) {
                holds(node, created: false, transport: transport)
                return nil
            }
            let holder = LockOwner.parse(found, node: node)
            let ours = holder?.runID == runID
            let otherDroverRuns = ours && holder?.pid != getpid() ? await ClusterLock.stillRuns(holder!) : false
            if ours && !otherDroverRuns {
                // Our own run's lock, left by its drover that was killed: take it over (never from a drover of
                // this run that still runs here: two would drive one cluster). Written beside it and renamed, so
                // the owner file is never seen half-written.
                let takeOver =
                    "umask 077; printf '%s' \(owner) > \(quoted)/owner.new.$$ && mv -f \(quoted)/owner.new.$$ \(quoted)/owner && echo drover-lock-taken"
                let written = try await transport.run(node, takeOver, timeout: ClusterLock.commandTimeout)
                guard written.stdoutText.hasPrefix("drover-lock-taken") else {
                    throw Unusable(
                        node: node, directory: directory,
                        cause:
                            "cannot rewrite its owner file: \(written.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))"
                    )
                }
                holds(node, created: false, transport: transport)
                return nil
            }
            return holder ?? LockOwner.ownerless(node: node)
        }

        /// Why the run must stop before its next change: the lock is no longer this drover's somewhere, or it
        /// could not be read anywhere.
        public struct Lost: LocalizedError, Sendable {
            public var node: String
            /// Who holds it there now; nil when it is gone (`drover unlock`, or removed by hand).
            public var holder: LockOwner?
            /// This run's id.
            public var runID: String
            /// It could be read on no backend this drover holds it on.
            public var unconfirmed = false

            public var errorDescription: String? {
                if unconfirmed {
                    return node.isEmpty
                        ? "the cluster lock could not be read on any backend this run holds it on"
                        : "the cluster lock could not be read or taken on \(node), which the next command changes"
                }
                guard let holder else {
                    return "the cluster lock of this run is gone on \(node) (drover unlock, or removed by hand)"
                }
                if holder.runID == runID {
                    return
                        "the cluster lock on \(node) is now held by another drover of this run (\(holder.user)@\(holder.workstation), pid \(holder.pid.map(String.init) ?? "?")): it drives the run now"
                }
                return "the cluster lock on \(node) is now held by \(holder.description), not by this run"
            }
        }

        /// Checks, on every reachable backend, that the lock is still this drover's, and takes it on backends
        /// that have become reachable since it was taken; returns those. `reading`: a reading of the lock taken
        /// moments ago (the nodes it read, their owner texts): where it shows this drover's owner, nothing is run
        /// there; anything else is read again before it counts. `required`: a backend the next command changes,
        /// which must hold it (taken there now if need be).
        /// Throws ``Lost`` when it is gone or another's anywhere, or could be read nowhere.
        public func verify(
            _ transport: any NodeTransport, reading: (nodes: [String], texts: [String: String])? = nil,
            required: String? = nil
        ) async throws -> [String] {
            if let required, transport.inventory.backend(named: required) != nil, transport.failures[required] != nil {
                _ = await transport.reconnect(required)
            }
            let nodes = Self.connectedBackends(transport)
            let now = state.withLock { $0 }
            let quoted = ShellQuote.quote(directory)
            // Markers, so that a command cut short is never read as "no lock".
            let read =
                "if [ -d \(quoted) ]; then echo drover-lock-dir; cat \(quoted)/owner 2>/dev/null; else echo drover-lock-none; fi"
            // Per node: lost (stop), taken (newly), confirmed (ours, seen now).
            let results = await withTaskGroup(of: (String, Lost?, taken: Bool, confirmed: Bool).self) { group in
                for node in nodes {
                    group.addTask {
                        let generation = transport.connectionGeneration(node)
                        guard now.held.contains(node) else {
                            // A node that cannot take it yet (its product not installed again, its session lost)
                            // is tried again at the next change; only another run's lock there stops this one.
                            let holder: LockOwner?
                            do { holder = try await self.take(node, on: transport) } catch {
                                return (node, nil, false, false)
                            }
                            return (
                                node, holder.map { Lost(node: node, holder: $0, runID: self.runID) }, holder == nil,
                                holder == nil
                            )
                        }
                        // The reading the step just took, where it covers the node, is newer than any sighting: it
                        // confirms this drover's lock, or the lock is read again. Without one, a sighting moments ago
                        // (the lock just taken) stands.
                        let covered = reading.map { $0.nodes.contains(node) } ?? false
                        if covered, now.seenAt[node] == generation, let text = reading?.texts[node], self.isOurs(text) {
                            return (node, nil, false, true)
                        }
                        if !covered, now.seenAt[node] == generation, let when = now.seenWhen[node],
                            ContinuousClock.now - when <= Self.sightingLimit
                        {
                            return (node, nil, false, true)
                        }
                        // A node whose session is lost meanwhile is checked again at the next change.
                        guard let result = try? await transport.run(node, read, timeout: ClusterLock.commandTimeout)
                        else { return (node, nil, false, false) }
                        let output = result.stdoutText
                        if output.hasPrefix("drover-lock-dir\n") {
                            let text = String(output.dropFirst("drover-lock-dir\n".count))
                            if self.isOurs(text) {
                                self.state.withLock {
                                    $0.seenAt[node] = generation
                                    $0.seenWhen[node] = .now
                                }
                                return (node, nil, false, true)
                            }
                            let holder = LockOwner.parse(text, node: node) ?? .ownerless(node: node)
                            return (node, Lost(node: node, holder: holder, runID: self.runID), false, false)
                        }
                        guard output.hasPrefix("drover-lock-none") else { return (node, nil, false, false) }
                        guard now.seenAt[node] != generation else {
                            return (node, Lost(node: node, holder: nil, runID: self.runID), false, false)
                        }
                        // Connected again since the lock was last seen there, and none there: the machine was
                        // rebuilt or its disk replaced. Taken again, as on any node that comes back.
                        do {
                            if let found = try await self.take(node, on: transport) {
                                return (node, Lost(node: node, holder: found, runID: self.runID), false, false)
                            }
                            return (node, nil, true, true)
                        } catch {
                            return (node, nil, false, false)
                        }
                    }
                }
                var found: [(String, Lost?, taken: Bool, confirmed: Bool)] = []
                for await result in group { found.append(result) }
                return found
            }
            if let lost = results.compactMap(\.1).sorted(by: { $0.node < $1.node }).first { throw lost }
            guard results.contains(where: \.confirmed) else {
                throw Lost(node: "", holder: nil, runID: runID, unconfirmed: true)
            }
            if let required, transport.inventory.backend(named: required) != nil, !self.nodes.contains(required) {
                throw Lost(node: required, holder: nil, runID: runID, unconfirmed: true)
            }
            return results.filter(\.taken).map(\.0).filter { !now.held.contains($0) }.sorted()
        }
    }
}
