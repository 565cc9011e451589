import DroverSSH
import Foundation

/// A cluster inventory (YAML): the backends, how to reach them, the package and the timeouts.
/// See `Fixtures/Inventories/annotated.yml` for every key, documented.
public struct Inventory: Sendable {
    /// SSH settings shared by every backend unless a backend overrides them.
    public struct SSH: Sendable {
        public var user: String = UserAccount.name
        public var port = 22
        public var identityFiles: [String] = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"]
        public var knownHosts = "~/.ssh/known_hosts"
        public var hostKeyChecking: HostKeyPolicy = .strict
        public var connectTimeout: Duration = .seconds(10)
        public var commandTimeout: Duration = .seconds(1800)
        /// `ssh.keepalive_interval`: keepalives while a command runs or a wait polls (nil: none), as
        /// OpenSSH's ServerAliveInterval.
        public var keepaliveInterval: Duration? = .seconds(15)
        /// `ssh.keepalive_count`: keepalives in a row that may go unanswered before the connection counts as
        /// lost and Drover reconnects (OpenSSH's ServerAliveCountMax).
        public var keepaliveCount = 3
        public var sudo = false
        /// The OpenSSH client configuration read for every host: `ssh.config_file` (`none`: none), by default
        /// `~/.ssh/config` then `/etc/ssh/ssh_config`.
        public var configFiles = ["~/.ssh/config", "/etc/ssh/ssh_config"]
        /// `ssh.proxy_jump`: jump hosts for every backend (`[user@]host[:port]`, comma-separated; `none`).
        public var proxyJump: String?
    }

    /// The package to install.
    public struct Package: Sendable {
        public enum Format: String, Sendable { case deb, rpm }
        /// Where the package lies on every backend.
        public var path: String
        public var version: String
        public var sha256: String?
        public var format: Format
        /// A local file copied to `path` on every backend before a run.
        public var upload: String?
        /// `backup: true`: every upgrade takes `chef-backend-ctl backup` on a follower before its first change.
        public var backup = false
    }

    /// The Chef Infra Server package (`chef-server-core`) a frontend upgrade installs on every frontend.
    public struct FrontendPackage: Sendable {
        /// Where the package lies on every frontend.
        public var path: String
        public var version: String
        public var sha256: String?
        public var format: Package.Format
        /// `accept_license: true`: the Chef license is accepted for Chef Infra Server 13 and later
        /// (`CHEF_LICENSE=accept chef-server-ctl upgrade`); never accepted without it.
        public var acceptLicense: Bool

        /// Chef Infra Server 13 and later ask to accept the Chef license at `chef-server-ctl upgrade`.
        public var needsLicense: Bool { (Int(version.split(separator: ".").first ?? "") ?? 0) >= 13 }
    }

    /// One backend node.
    public struct Backend: Sendable, Equatable {
        public var name: String
        public var host: String
        public var port: Int
        public var user: String
        public var identityFiles: [String]
        public var line: Int
        /// What ssh_config set for this host where the inventory did not (nil: the inventory's `ssh:`).
        public var knownHosts: String? = nil
        public var hostKeyChecking: HostKeyPolicy? = nil
        public var connectTimeout: Duration? = nil
        /// The ssh-agent socket (`""`: none), from `IdentityAgent` / `IdentitiesOnly`; nil: `SSH_AUTH_SOCK`.
        public var agentSocket: String? = nil
        public var keepaliveInterval: Duration? = nil
        /// ServerAliveCountMax from ssh_config (nil: the inventory's `ssh.keepalive_count`).
        public var keepaliveCount: Int? = nil
        /// The jump hosts (ProxyJump) to go through, first one first; empty: connected to directly.
        public var jumps: [Backend] = []
    }

    /// A Chef Infra Server frontend: its `/_status` URL (checked over HTTP at the end of an upgrade) and,
    /// for the upgrade paths that run `chef-server-ctl` on it, how to reach it over SSH.
    public struct Frontend: Sendable, Equatable {
        public var name: String
        public var statusURL: String?
        /// The SSH endpoint (host, port, user, keys as for backends), nil without `host`.
        public var ssh: Backend?
    }

    public struct Timeouts: Sendable {
        public var rejoin: Duration = .seconds(900)
        /// Above the 5 minutes chef-backend's `pgsql-promote` may wait for recovery.done since 1.3.2: a
        /// promotion can take that long, and the hand-over (an election, the old leader rejoining) more.
        public var failover: Duration = .seconds(600)
        /// drbd-pair: how long a keepalived failover (or a promotion) may take.
        public var transition: Duration = .seconds(300)
        /// drbd-pair: how long a DRBD resync may take.
        public var sync: Duration = .seconds(6 * 3600)
        public var pollInterval: Duration = .seconds(2)
        public var stablePolls = 2

        /// The defaults.
        public init() {}
    }

    /// What kind of high-availability backend the inventory describes.
    public enum Topology: String, Sendable, CaseIterable, Codable {
        /// A Chef Backend cluster: three nodes, etcd, leaderl, PostgreSQL, Elasticsearch.
        case chefBackend = "chef-backend"
        /// The legacy pair: two backends, DRBD block replication and keepalived moving a virtual IP.
        case drbdPair = "drbd-pair"
    }

    /// The DRBD pair's settings (`drbd:`; only with `topology: drbd-pair`).
    public struct DRBD: Sendable, Equatable {
        /// The DRBD resource replicating `/var/opt/opscode/drbd/data`.
        public var resource = "pc0"
        /// The server's control command: `chef-server-ctl`, or `private-chef-ctl` on Enterprise Chef 11.
        public var ctl = "chef-server-ctl"

        public init(resource: String = "pc0", ctl: String = "chef-server-ctl") {
            self.resource = resource
            self.ctl = ctl
        }

        public static let controls = ["chef-server-ctl", "private-chef-ctl"]
    }

    public var file: String
    public var cluster: String
    public var topology: Topology = .chefBackend
    /// The pair's DRBD resource and control command (defaults when the inventory has no `drbd:`).
    public var drbd = DRBD()
    public var ssh: SSH
    public var package: Package?
    /// What `drover upgrade --frontends` installs on the frontends (`frontend_package:`).
    public var frontendPackage: FrontendPackage?
    public var backends: [Backend]
    public var frontends: [Frontend]
    public var timeouts: Timeouts
    /// The write probe a run polls (`probe:`), if any.
    public var probe: Probe?
    /// SHA-256 of the inventory file, recorded with runs and plans.
    public var digest: String
    /// Where settings came from, by key (`backends[0].host` → `hosts.ini:3 (ansible_host)`); a key not
    /// listed is the inventory's own (or a default).
    public var sources: [String: String] = [:]

    /// The backend of that name.
    public func backend(named name: String) -> Backend? { backends.first { $0.name == name } }

    /// The SSH endpoint of a backend, or of a frontend that has `host`.
    public func sshEndpoint(named name: String) -> Backend? {
        backend(named: name) ?? frontends.first { $0.name == name }?.ssh
    }

    /// The frontends Drover can reach over SSH (those with `host`).
    public var sshFrontends: [Backend] { frontends.compactMap(\.ssh) }
}
