import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// Reads a DRBD pair: `cat /proc/drbd`, `drbdadm role RES`, `CTL ha-status` and `uname -n` on both nodes,
/// in parallel. Read-only: nothing else is run (and, with `full`, the owner file of a Drover lock).
enum PairDiscovery {
    static func observe(_ connection: any NodeTransport, full: Bool) async -> PairObservation {
        let inventory = connection.inventory
        let nodes = await withTaskGroup(of: PairNodeObservation.self) { group in
            for backend in inventory.backends {
                group.addTask { await observe(backend, connection: connection, full: full) }
            }
            var result: [PairNodeObservation] = []
            for await node in group { result.append(node) }
            return result
        }
        let order = inventory.backends.map(\.name)
        return PairObservation(nodes: nodes.sorted { order.firstIndex(of: $0.name)! < order.firstIndex(of: $1.name)! })
    }

    static func observe(
        _ backend: Inventory.Backend, connection: any NodeTransport, full: Bool
    ) async -> PairNodeObservation {
        var node = PairNodeObservation(name: backend.name, host: backend.host)
        if let failure = connection.failures[backend.name] {
            node.unreachable = failure
            return node
        }
        let drbd = connection.inventory.drbd
        let resource = ShellQuote.quote(drbd.resource)
        do {
            let proc = try await connection.run(backend.name, "cat /proc/drbd", timeout: .seconds(60))
            var devices: [DRBDDevice] = []
            if proc.succeeded {
                do { devices = try ProcDRBD.parse(proc.stdoutText) } catch {
                    node.readErrors.append(error.localizedDescription)
                }
            } else {
                node.readErrors.append(
                    "`cat /proc/drbd` exited \(proc.exitStatus): DRBD is not loaded (\(lastLine(proc.stderrText)))")
            }
            let role = try await connection.run(backend.name, "drbdadm role \(resource)", timeout: .seconds(60))
            if role.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "Unconfigured" {
                // The resource is down on this node: no role to read, and certainly not Primary.
                node.resourceDown = true
            } else if role.succeeded {
                do { node.role = try DRBDRole.parse(role.stdoutText) } catch {
                    node.readErrors.append(error.localizedDescription)
                }
            } else {
                node.readErrors.append(
                    "`drbdadm role \(drbd.resource)` exited \(role.exitStatus): \(lastLine(role.stderrText + role.stdoutText))"
                )
            }
            node.device = choose(devices, role: node.role)
            // ha-status exits non-zero when a check fails; its lines are still the documented ones.
            let ha = try await connection.run(backend.name, "\(drbd.ctl) ha-status", timeout: .seconds(120))
            do {
                node.haStatus = try HAStatus.parse(ha.stdoutText + "\n" + ha.stderrText, exitStatus: ha.exitStatus)
            } catch {
                node.readErrors.append("`\(drbd.ctl) ha-status` exited \(ha.exitStatus): \(error.localizedDescription)")
            }
            let name = try await connection.run(backend.name, "uname -n", timeout: .seconds(30))
            if name.succeeded {
                let text = name.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                node.machineName = text.isEmpty || text.count > 255 || text.contains("\n") ? nil : text
            }
            if full {
                let lock = try await connection.run(
                    backend.name,
                    ClusterLock.readCommand(connection.places.lockDirectory) + " 2>/dev/null",
                    timeout: .seconds(30))
                if lock.succeeded { node.lockOwner = lock.stdoutText }
                node.lockRead = true
            }
        } catch {
            node.unreachable = error.localizedDescription
        }
        return node
    }

    /// The resource's device: the only one, else the one whose role matches `drbdadm role`, else minor 0.
    /// A device that is down (`cs:Unconfigured`) counts as none.
    static func choose(_ devices: [DRBDDevice], role: DRBDRole?) -> DRBDDevice? {
        let configured = devices.filter { $0.connection != "Unconfigured" }
        if configured.count <= 1 { return configured.first }
        if let role, let match = configured.first(where: { $0.role == role.local && $0.peerRole == role.peer }) {
            return match
        }
        return configured.first { $0.minor == 0 } ?? configured.first
    }

    static func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last.map(String.init) ?? "(no output)"
    }
}
