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
        private let held = Locked<Set<String>>([])

        init(runID: String, directory: String, records: String?, ownerText: String, minimum: Int) {
            self.runID = runID
            self.directory = directory
            self.records = records
            self.ownerText = ownerText
            self.minimum = minimum
        }

        /// The backends where this drover holds the lock, in no order.
        public var nodes: Set<String> { held.withLock { $0 } }

        static func connectedBackends(_ transport: any NodeTransport) -> [String] {
            transport.inventory.backends.map(\.name).filter { transport.failures[$0] == nil }
        }

        /// Takes the lock on one node: nil when taken (or already ours), else who holds it. One command: it
        /// creates the directory, or shows who holds it, or says why it cannot be created.
        func take(_ node: String, on transport: any NodeTransport) async throws -> LockOwner? {
            let quoted = ShellQuote.quote(directory)
            let owner = ShellQuote.quote(ownerText)
            // Never through a symbolic link planted at the records root (the node script refuses such a root too).
            let makeRecords =
                records.map {
                    let root = ShellQuote.quote(ClusterLock.recordsRoot(besideLock: directory))
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
            let result = try await transport.run(node, script)
            let text = result.stdoutText
            if text.hasPrefix("drover-lock-taken") {
                held.withLock { _ = $0.insert(node) }
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
            let found = String(text.dropFirst("drover-lock-held".count))
            if found.drop(while: \.isNewline) == ownerText[...] {
                held.withLock { _ = $0.insert(node) }
                return nil
            }
            let holder = LockOwner.parse(found, node: node)
            let ours = holder?.runID == runID
            let otherDroverRuns = ours && holder?.pid != getpid() ? await ClusterLock.stillRuns(holder!) : false
            if ours && !otherDroverRuns {
                // Our own run's lock, left by its drover that was killed: take it over (never from a drover of
                // this run that still runs here: two would drive one cluster).
                _ = try await transport.run(node, "printf '%s' \(owner) > \(quoted)/owner")
                held.withLock { _ = $0.insert(node) }
                return nil
            }
            return holder ?? LockOwner.ownerless(node: node)
        }

        /// Why the run must stop before its next change: the lock is no longer this drover's somewhere.
        public struct Lost: LocalizedError, Sendable {
            public var node: String
            /// Who holds it there now; nil when it is gone (`drover unlock`, or removed by hand).
            public var holder: LockOwner?

            public var errorDescription: String? {
                if let holder {
                    return "the cluster lock on \(node) is now held by \(holder.description), not by this run"
                }
                return "the cluster lock of this run is gone on \(node) (drover unlock, or removed by hand)"
            }
        }

        /// Checks, on every reachable backend at once, that the lock is still this drover's, and takes it on
        /// backends that have become reachable since it was taken; returns those. Throws ``Lost`` when it is
        /// gone or another's anywhere (held nodes only grow, so a majority once held stays held).
        public func verify(_ transport: any NodeTransport) async throws -> [String] {
            let nodes = Self.connectedBackends(transport)
            let mine = nodes.filter { held.withLock { $0 }.contains($0) }
            let read = "cat \(ShellQuote.quote(directory))/owner 2>/dev/null || true"
            let problems = await withTaskGroup(of: (String, Lost?, Bool).self) { group in
                for node in nodes {
                    group.addTask {
                        if mine.contains(node) {
                            // A node whose session is lost meanwhile is checked again at the next change.
                            guard let result = try? await transport.run(node, read), result.succeeded else {
                                return (node, nil, false)
                            }
                            let text = result.stdoutText
                            guard text != self.ownerText else { return (node, nil, false) }
                            let holder =
                                text.isEmpty ? nil : (LockOwner.parse(text, node: node) ?? .ownerless(node: node))
                            return (node, Lost(node: node, holder: holder), false)
                        }
                        // A node that cannot take it yet (its product not installed again, its session lost) is
                        // tried again at the next change; only another run's lock there stops this one.
                        let holder: LockOwner?
                        do { holder = try await self.take(node, on: transport) } catch { return (node, nil, false) }
                        return (node, holder.map { Lost(node: node, holder: $0) }, holder == nil)
                    }
                }
                var found: [(String, Lost?, Bool)] = []
                for await result in group { found.append(result) }
                return found
            }
            if let lost = problems.compactMap(\.1).sorted(by: { $0.node < $1.node }).first { throw lost }
            return problems.filter(\.2).map(\.0).sorted()
        }
    }
}
