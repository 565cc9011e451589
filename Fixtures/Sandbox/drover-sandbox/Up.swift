import ArgumentParser
import DroverSandbox
import Foundation

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Start a three-node cluster (or a two-node DRBD pair) and write its inventory, known_hosts and ssh_config.")

    @Option(help: "chef-backend (three nodes) or drbd-pair (the legacy DRBD/keepalived pair: two nodes).")
    var topology = "chef-backend"

    @OptionGroup var options: SandboxOptions

    @Option(help: "The chef-backend version the cluster runs.")
    var version = "2.3.15"

    @Option(help: "The version of the package placed in /var/tmp on every node.")
    var target = "2.3.16"

    @Option(help: "Package format: deb or rpm.")
    var format = "deb"

    @Option(
        help:
            "The cluster's name in the inventory (each sandbox of a fleet needs its own; default: sandbox, or sandbox-pair for a DRBD pair)."
    )
    var cluster: String?

    @Option(help: "Multiplier of the simulator's delays (1: seconds, like a real cluster; 0.05: tests).")
    var delayScale = 1.0

    @Option(help: "Chef Infra Server frontends (fe1, ...) to start beside the cluster, reachable over SSH.")
    var frontends = 0

    @Option(help: "The chef-server-core version the frontends run.")
    var frontendVersion = "14.0.65"

    @Option(help: "The chef-server-core version of the package waiting in each frontend's /var/tmp.")
    var frontendTarget = "15.9.38"

    @Flag(
        help:
            "Long commands behave as real programs: `chef-backend-ctl upgrade` stops the node's services, works with them stopped, and dies on its next write once its SSH connection is gone, leaving the node down; on a DRBD pair, `master-recover` starts the services one at a time and dies the same way."
    )
    var fragileCommands = false

    @Option(
        help:
            "With --fragile-commands: how long an upgrade works with the services stopped, or a pair's master-recover starts them (seconds)."
    )
    var upgradeSeconds = 3.0

    @Flag(
        help:
            "A real data layer under the backends: an etcd member, a PostgreSQL 15 instance (the primary on the leader, streaming standbys on the followers) and a leaderl stand-in on etcd leases per node, on the node's own address. chef-backend-ctl reads and drives them. Needs Debian's postgresql-15, etcd-server, etcd-client and python3-psycopg2."
    )
    var real = false

    func validate() throws {
        guard ["chef-backend", "drbd-pair"].contains(topology) else {
            throw ValidationError("--topology must be chef-backend or drbd-pair, not \(topology)")
        }
        guard ["deb", "rpm"].contains(format) else {
            throw ValidationError("--format must be deb or rpm, not \(format)")
        }
        guard delayScale >= 0 else { throw ValidationError("--delay-scale must be 0 (no delays) or more") }
        guard (0...3).contains(frontends) else { throw ValidationError("--frontends takes 0 to 3") }
        guard upgradeSeconds > 0 else { throw ValidationError("--upgrade-seconds must be more than 0") }
        guard !real || topology == "chef-backend" else {
            throw ValidationError("--real is for a chef-backend cluster")
        }
        guard frontends == 0 || topology == "chef-backend" else {
            throw ValidationError("--frontends is for a chef-backend cluster")
        }
    }

    func run() async throws {
        // The simulator sits beside this executable, however it was found (a PATH lookup leaves argv[0] bare).
        let simulator = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("chef-backend-sim").path
        var upOptions = Sandbox.UpOptions(simulatorPath: simulator)
        upOptions.version = version
        upOptions.targetVersion = target
        upOptions.packageFormat = format
        upOptions.delayScale = delayScale
        upOptions.cluster = cluster
        upOptions.topology = topology
        upOptions.frontends = frontends
        upOptions.frontendVersion = frontendVersion
        upOptions.frontendTarget = frontendTarget
        upOptions.fragileCommands = fragileCommands
        upOptions.upgradeSeconds = upgradeSeconds
        if real {
            guard let script = RealDataLayerScript.find(besides: simulator) else {
                throw fail(RealDataLayerScript.NotFound())
            }
            upOptions.realDataLayer = script
        }
        let sandbox = options.sandbox
        do {
            let record = try await sandbox.up(upOptions)
            if topology == "drbd-pair" {
                print(
                    "Sandbox DRBD pair up in \(sandbox.directory): be1 Primary and master, be2 Secondary (resource pc0)"
                )
                for node in record.nodes {
                    print("  \(node.name)  \(node.address):22  sshd pid \(node.pid.map(String.init) ?? "-")")
                }
                print(
                    """
                    Inventory:   \(sandbox.inventoryPath)
                    Try:         ssh -F \(sandbox.sshConfigPath) be1 cat /proc/drbd
                    A fault:     \(sandbox.command("break", "be1", "drbd-primary-down"))
                    Heal it:     \(sandbox.command("heal", "be1"))
                    Stop:        \(sandbox.command("down"))
                    """)
                return
            }
            print("Sandbox cluster up in \(sandbox.directory): chef-backend \(version), package \(target) in /var/tmp")
            for node in record.nodes {
                print("  \(node.name)  \(node.address):22  sshd pid \(node.pid.map(String.init) ?? "-")")
            }
            if let real = record.realDataLayer {
                print(
                    """
                    Real data layer: etcd (port 2379) and PostgreSQL 15 (port 5432) on each backend's address, the \
                    primary on be1; its files in \(real.directory)
                    Write load:  \(sandbox.command("load", "--seconds", "60"))
                    """)
            }
            print(
                """
                Inventory:   \(sandbox.inventoryPath)
                Known hosts: \(sandbox.knownHostsPath)
                Command log: \(sandbox.commandLog)
                Try:         ssh -F \(sandbox.sshConfigPath) be1 chef-backend-ctl status
                Upgrade it:  \(sandbox.drover("upgrade"))
                A fault:     \(sandbox.command("break", "be2", "upgrade-fails"))
                Heal it:     \(sandbox.command("heal", "be2"))
                Stop:        \(sandbox.command("down"))
                """)
        } catch {
            throw fail(error)
        }
    }
}
