import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// The pre-flight checks of a frontend upgrade (Chef's standalone upgrade on each frontend, reference §20):
/// the package on every frontend, free space, the license, and the versions; each frontend's reachability
/// and `/_status` are the `frontends` check of ``ClusterPreflight``.
enum FrontendPreflight {
    /// Backend HA needs Chef Infra Server 12.4.0 or later on every frontend (the HA install guide).
    static let minimumVersion = "12.4.0"

    static func run(_ wanted: [String], observation: ClusterObservation, inventory: Inventory) -> [PreflightCheck] {
        var checks: [PreflightCheck] = []
        let read = observation.frontends.filter { $0.unreachable == nil }
        guard let package = inventory.frontendPackage else {
            if wanted.contains("frontend-package") {
                checks.append(
                    PreflightCheck(
                        check: "frontend-package", node: nil, ok: false,
                        detail: "the inventory has no frontend_package section",
                        fix:
                            "add frontend_package.path (where chef-server-core lies on every frontend) to \(inventory.file)"
                    ))
            }
            return checks
        }
        if wanted.contains("frontend-package") {
            for frontend in read {
                checks.append(
                    ClusterPreflight.packageFileCheck(
                        "frontend-package", node: frontend.name, path: package.path, present: frontend.packagePresent,
                        sha256: frontend.packageSHA256, expected: package.sha256, key: "frontend_package.sha256",
                        fix: "copy chef-server-core \(package.version) to \(package.path) on \(frontend.name)"))
            }
        }
        if wanted.contains("frontend-disk") {
            for frontend in read {
                let ok = (frontend.freeMB ?? 0) >= ClusterPreflight.minimumFreeMB
                checks.append(
                    PreflightCheck(
                        check: "disk", node: frontend.name, ok: ok,
                        detail: frontend.freeMB.map { "\($0) MB free in \(FrontendPaths.data)" }
                            ?? "free space unknown",
                        fix: ok ? nil : "free at least \(ClusterPreflight.minimumFreeMB) MB in \(FrontendPaths.data)"))
            }
        }
        if wanted.contains("license"), package.needsLicense {
            checks.append(
                PreflightCheck(
                    check: "license", node: nil, ok: package.acceptLicense,
                    detail: package.acceptLicense
                        ? "Chef Infra Server \(package.version) asks to accept the Chef license; frontend_package.accept_license accepts it (CHEF_LICENSE=accept)"
                        : "Chef Infra Server \(package.version) asks to accept the Chef license at chef-server-ctl upgrade, and the inventory does not accept it",
                    fix: package.acceptLicense
                        ? nil
                        : "once you accept the Chef license, set frontend_package.accept_license: true in \(inventory.file)"
                ))
        }
        if wanted.contains("frontend-version") {
            if compareVersions(package.version, minimumVersion) == .orderedAscending {
                checks.append(
                    PreflightCheck(
                        check: "frontend-version", node: nil, ok: false,
                        detail:
                            "chef-server-core \(package.version) is older than \(minimumVersion), the first release a backend HA cluster supports",
                        fix: "use chef-server-core \(minimumVersion) or later"))
            }
            for frontend in read {
                checks.append(
                    VersionCheck.check(
                        "frontend-version", node: frontend.name, installed: frontend.version, target: package.version,
                        unread: (
                            "installed version unknown (\(frontend.readErrors.first ?? "not read"))",
                            "check \(FrontendPaths.manifest) on \(frontend.name)"
                        ),
                        atTarget: { "\($0), already at the target: skipped if it serves" },
                        downgradeFix: { "Drover does not downgrade; set frontend_package to \($0) or later" }))
            }
        }
        return checks
    }
}
