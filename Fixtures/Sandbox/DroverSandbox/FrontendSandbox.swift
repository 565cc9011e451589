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
