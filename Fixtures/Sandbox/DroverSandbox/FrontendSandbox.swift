import DroverTestSupport
import Foundation
import SimulatedChefBackend

/// The sandbox's Chef Infra Server frontends: their files, faults and healing.
extension Sandbox {
    /// The chef-server-core package file name for a version, as Chef names them.
    public static func frontendPackageName(version: String, format: String) -> String {
        format == "rpm" ? "chef-server-core-\(version)-1.el7.x86_64.rpm" : "chef-server-core_\(version)-1_amd64.deb"
    }

    /// A frontend's files: its release's manifest, the migration level it is at, and the target package
    /// in /var/tmp.
    func provisionFrontend(_ frontend: SimulatedFrontend, target: String, format: String) throws {
        for prefix in Self.frontendPrefixes {
            try FileManager.default.createDirectory(atPath: frontend.root + prefix, withIntermediateDirectories: true)
        }
        try (FrontendInvocation.manifest(frontend.installedVersion) + "\n").write(
            toFile: frontend.hostPath(FrontendInvocation.manifestPath), atomically: true, encoding: .utf8)
        let level = frontend.hostPath(FrontendInvocation.migrationLevelPath)
        try FileManager.default.createDirectory(
            atPath: (level as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "\(FrontendInvocation.migrationLevel(frontend.installedVersion))\n".write(
            toFile: level, atomically: true, encoding: .utf8)
        var package = "Package: chef-server-core\nVersion: \(target)-1\nArchitecture: amd64\n"
        package += String(repeating: "simulated package payload\n", count: 4096)
        try package.write(
            toFile: frontend.hostPath("/var/tmp/" + Self.frontendPackageName(version: target, format: format)),
            atomically: true, encoding: .utf8)
    }

    /// The inventory's frontend_package: the package in each frontend's /var/tmp. The sandbox's inventory
    /// accepts the Chef license, written out where a person sees it.
    func frontendPackageBlock(_ options: UpOptions) -> String {
        """
        frontend_package:
          path: /var/tmp/\(Self.frontendPackageName(version: options.frontendTarget, format: options.packageFormat))
          accept_license: true   # Chef Infra Server 13 and later: accepted for this simulation

        """
    }

    /// Where a frontend's `/_status` answers over HTTP, as a load balancer reaches it.
    static func statusURL(_ frontend: SimulatedFrontend) -> String { "http://\(frontend.ip)/_status" }

    /// Starts a frontend's `/_status` server on port 80 of its address and returns its pid once it listens.
    func startStatusServer(_ frontend: SimulatedFrontend, simulator: String) throws -> Int32 {
        let child = try Processes.spawn(
            simulator, ["status-server", frontend.name, frontend.ip, "80"],
            environment: ["DROVER_SIM_STATE": statePath],
            stderr: directory + "/sshd/\(frontend.name)/status-server.log")
        Processes.unregister(child.pid)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if Self.listens(frontend.ip, port: 80) { return child.pid }
            guard Processes.isAlive(child.pid) else { break }
            usleep(20_000)
        }
        Processes.stop(pid: child.pid)
        throw SandboxError.missing("the /_status server of \(frontend.name) did not listen on \(frontend.ip):80")
    }

    /// True when something accepts TCP connections on `address`:`port`.
    static func listens(_ address: String, port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &target.sin_addr) == 1 else { return false }
        return withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Injects a frontend fault; false when `name` is not a frontend.
    func breakFrontend(_ name: String, fault: String) throws -> Bool {
        try store.update { cluster, _ in
            guard let index = cluster.frontends.firstIndex(where: { $0.name == name }) else { return false }
            guard let known = FrontendFault(rawValue: fault) else {
                throw SandboxError.unknownFault(
                    "\(fault) (a frontend's faults: \(FrontendFault.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            cluster.frontends[index].faults.insert(known)
            return true
        }
    }

    /// Clears a frontend's faults and starts its services again; false when `name` is not a frontend.
    func healFrontend(_ name: String) throws -> Bool {
        try store.update { cluster, now in
            guard let index = cluster.frontends.firstIndex(where: { $0.name == name }) else { return false }
            cluster.frontends[index].faults = []
            if !cluster.frontends[index].running {
                cluster.frontends[index].running = true
                cluster.frontendTransitions.append(FrontendTransition(time: now, frontend: name, serving: true))
            }
            return true
        }
    }
}
