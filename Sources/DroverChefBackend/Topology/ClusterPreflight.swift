import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

/// The checks that must pass before anything is changed.
public enum ClusterPreflight {
    /// Named check sets a playbook can ask for.
    public static let sets: [String: [String]] = [
        "upgrade": [
            "reachable", "membership", "roles", "services", "sentinel", "disk", "failover", "package", "version",
            "path",
        ],
        // Every backend goes down: no failover to check, but the frontends must be reachable over SSH.
        "upgrade-downtime-1-to-2": [
            "reachable", "membership", "roles", "services", "sentinel", "disk", "package", "version", "path",
            "frontends",
        ],
        "upgrade-downtime-reindex": [
            "reachable", "membership", "roles", "services", "sentinel", "disk", "failover", "package", "version",
            "path", "frontends",
        ],
        // The frontends one at a time (Chef's standalone upgrade on each): the backend cluster healthy, each
        // frontend reachable and serving, the package on each, the license.
        "upgrade-frontends": [
            "reachable", "membership", "roles", "services", "frontends", "frontend-package", "frontend-disk",
            "frontend-version", "license",
        ],
        "basic": ["reachable"],
        // Runbooks that start with nodes down check their conditions step by step instead.
        "none": [],
    ]

    /// The pre-conditions of resuming `journal`: every node reachable and in the cluster, a leader, and
    /// no node disrupted except the one whose step was in flight; the package still there.
    ///
    /// A runbook (a playbook whose pre-flight asks no healthy cluster: `basic`, `none`) is resumed on its own
    /// pre-flight set: the state its earlier steps left (a node it removed, followers waiting for the leader it
    /// is to promote) is what its remaining steps expect, and each step's `require:` is checked before it runs.
    public static func resume(
        journal: Journal, playbook: Playbook, observation: ClusterObservation, inventory: Inventory
    ) -> [PreflightCheck] {
        let set = playbook.preflight ?? "basic"
        let wanted = Playbook.parts(set).flatMap { sets[$0] ?? [] }
        guard wanted.contains("roles") else { return run(set, observation: observation, inventory: inventory) }
        var checks = run("basic", observation: observation, inventory: inventory)
        if downtimePlaybooks.contains(Playbook.parts(journal.playbook).first ?? journal.playbook) {
            // Every backend is down on purpose: what must hold is that Drover reaches every node.
            for frontend in observation.frontends where frontend.unreachable != nil {
                checks.append(
                    PreflightCheck(
                        check: "reachable", node: frontend.name, ok: false, detail: frontend.unreachable ?? "",
                        fix: "make \(frontend.name) reachable over SSH, then resume"))
            }
            return checks
        }
        let inFlight = journal.unfinished?.node
        let members = observation.members
        let missing = inventory.backends.filter { backend in
            !members.contains { $0.name == backend.name || $0.ip == backend.host }
        }
        checks.append(
            PreflightCheck(
                check: "membership", node: nil, ok: !members.isEmpty && missing.isEmpty,
                detail: missing.isEmpty
                    ? "all nodes still in the cluster"
                    : "no longer in the cluster: \(missing.map(\.name).joined(separator: ", "))",
                fix: missing.isEmpty
                    ? nil : "the cluster changed since the run started; repair it, then start a new run"))
        checks.append(
            PreflightCheck(
                check: "leader", node: nil, ok: observation.leader != nil || inFlight != nil,
                detail: "leader \(observation.leader ?? "none")",
                fix: observation.leader == nil ? "wait for an election, or see the recovery guide" : nil))
        for node in observation.nodes where node.name != inFlight && node.unreachable == nil {
            let role = observation.role(of: node.name)
            let ok = (role == "leader" || role == "follower") && node.unsyncedSentinel == false
            checks.append(
                PreflightCheck(
                    check: "undisturbed", node: node.name, ok: ok,
                    detail:
                        "role \(role ?? "not listed")\(node.unsyncedSentinel == true ? ", unsynced sentinel present" : "")",
                    fix: ok
                        ? nil
                        : "\(node.name) was not being changed by this run but is not healthy; continuing could take a second node out. Repair it first."
                ))
        }
        if let package = inventory.package {
            for node in observation.nodes where node.unreachable == nil && node.packagePresent == false {
                checks.append(
                    PreflightCheck(
                        check: "package", node: node.name, ok: false, detail: "\(package.path) missing",
                        fix: "copy the package to \(package.path) on \(node.name)"))
            }
        }
        return checks
    }

    /// Playbooks whose runs take every backend down: resuming them cannot ask for a healthy cluster.
    public static let downtimePlaybooks: Set<String> = ["upgrade-downtime-1-to-2", "upgrade-downtime-reindex"]

    /// The upgrade path each upgrade pre-flight set is for (its playbook carries that path out).
    public static let pathOfSet: [String: UpgradePath.Kind] = [
        "upgrade": .rolling, "upgrade-downtime-1-to-2": .downtime1To2, "upgrade-downtime-reindex": .downtimeReindex,
    ]

    /// The documented path from the installed versions to the inventory's package, nil without a package.
    public static func upgradePath(_ observation: ClusterObservation, inventory: Inventory) -> UpgradePath? {
        guard let package = inventory.package else { return nil }
        let versions = observation.versions
        return UpgradePath.choose(
            installed: versions, target: package.version, elasticsearch: observation.elasticsearch,
            inventoryFile: ShellQuote.quote(inventory.file),
            unread: inventory.backends.map(\.name).filter { versions[$0] == nil })
    }

    /// A package file on a node: present, and its SHA-256 the one the inventory gives (`key`), if it gives one.
    static func packageFileCheck(
        _ check: String, node: String, path: String, present: Bool?, sha256: String?, expected: String?, key: String,
        fix: String
    ) -> PreflightCheck {
        var ok = present == true
        var detail = ok ? "\(path) present" : "\(path) missing"
        if ok, let expected {
            ok = sha256 == expected
            detail += ok ? ", SHA-256 matches" : ", SHA-256 \(sha256 ?? "unknown") differs from \(key)"
        }
        return PreflightCheck(check: check, node: node, ok: ok, detail: detail, fix: ok ? nil : fix)
    }

    /// The `path` check: the playbook of `set` is the one the upgrade path needs.
    static func pathCheck(_ set: String, observation: ClusterObservation, inventory: Inventory) -> PreflightCheck? {
        guard let expected = pathOfSet[Playbook.parts(set).first ?? set],
            let path = upgradePath(observation, inventory: inventory)
        else {
            return nil
        }
        let detail = "\(path.kind.rawValue): " + path.reasons.joined(separator: "; ")
        if path.kind == .unknown {
            return .information("path", "not evaluated: " + path.reasons.joined(separator: "; "))
        }
        if path.kind == .refused {
            return PreflightCheck(check: "path", node: nil, ok: false, detail: detail, fix: path.fix)
        }
        let ok = path.kind == expected
        return PreflightCheck(
            check: "path", node: nil, ok: ok, detail: detail,
            fix: ok
                ? nil
                : "this playbook carries out the \(expected.rawValue) path; run `drover upgrade --inventory \(ShellQuote.quote(inventory.file))`, which chooses the \(path.kind.rawValue) path's playbook (\(path.playbook ?? "?"))"
        )
    }

    /// One failed `identity` check per inventory backend that is not the member the cluster knows by its name.
    static func identityChecks(_ observation: ClusterObservation, inventory: Inventory) -> [PreflightCheck] {
        observation.identityMismatches.map { mismatch in
            let line = inventory.backends.first { $0.name == mismatch.node }?.line
            return PreflightCheck(
                check: "identity", node: mismatch.node, ok: false, detail: mismatch.detail,
                fix:
                    "correct host: for \(mismatch.node) in \(inventory.file)\(line.map { ":\($0)" } ?? "") (or its ssh_config HostName), then run drover status --inventory \(ShellQuote.quote(inventory.file))"
            )
        }
    }

    /// Minimum free space of /var/opt/chef-backend (leaderl's own disk check threshold).
    public static let minimumFreeMB = 250

    public static func run(_ set: String, observation: ClusterObservation, inventory: Inventory) -> [PreflightCheck] {
        // A combined playbook's set: its parts' checks, each once, in order.
        var wanted: [String] = []
        for part in Playbook.parts(set) {
            for check in sets[part] ?? [] where !wanted.contains(check) { wanted.append(check) }
        }
        // Every playbook, whatever its set (`none` included): a backend that is not the machine the cluster knows
        // by its name would have another node's state read, changed or removed in its place.
        var checks = identityChecks(observation, inventory: inventory)
        let reachable = observation.nodes.filter { $0.unreachable == nil }
        // One node whose upgrade was interrupted (at the target, services down) is the run's first step, not a
        // reason to refuse: the others must be healthy with exactly that node out.
        let interrupted =
            wanted.contains("version") ? observation.interruptedUpgrades(target: inventory.package?.version) : []
        let finishing = interrupted.count == 1 ? interrupted.first : nil
        if wanted.contains("reachable") {
            for node in observation.nodes {
                checks.append(
                    PreflightCheck(
                        check: "reachable", node: node.name, ok: node.unreachable == nil,
                        detail: node.unreachable ?? "connected, host key verified",
                        fix: node.unreachable == nil
                            ? nil : "make \(node.name) reachable over SSH (the error says how), then retry"))
            }
        }
        // A node that cannot be reached is said once (`reachable`, with its cause and fix); what depends on it is
        // not evaluated rather than failed a second time with a wrong fix.
        let unreachable = observation.nodes.filter { $0.unreachable != nil }.map(\.name)
        let notEvaluated =
            "not evaluated: \(unreachable.joined(separator: ", ")) could not be reached (see reachable above; drover diagnose --inventory \(ShellQuote.quote(inventory.file)))"
        if wanted.contains("membership") {
            let members = observation.members
            let missing = inventory.backends.filter { backend in
                !members.contains { $0.name == backend.name || $0.ip == backend.host }
                    && !unreachable.contains(backend.name)
            }
            let extra = members.filter { observation.inventoryName(of: $0) == nil }
            let ok = !members.isEmpty && missing.isEmpty && extra.isEmpty
            var detail =
                members.isEmpty
                ? "no node answered cluster-status"
                : "cluster-status lists \(members.map(\.name).joined(separator: ", "))"
            if !missing.isEmpty {
                detail += "; missing from the cluster: \(missing.map(\.name).joined(separator: ", "))"
            }
            if !extra.isEmpty {
                detail += "; not in the inventory: \(extra.map { "\($0.name) (\($0.ip))" }.joined(separator: ", "))"
            }
            checks.append(
                PreflightCheck(
                    check: "membership", node: nil, ok: ok, detail: detail,
                    fix: ok
                        ? nil
                        : "make the inventory's backends exactly the cluster's nodes (names as cluster-status shows them, or their IPs)"
                ))
        }
        if let finishing, let target = inventory.package?.version {
            checks.append(
                PreflightCheck(
                    check: "interrupted-upgrade", node: finishing, ok: observation.leader != nil,
                    detail: "upgrade interrupted on \(finishing): "
                        + observation.interruptedEvidence(finishing, target: target).joined(separator: "; ")
                        + "; the run first runs chef-backend-ctl upgrade on it again (Chef: upgrade makes the changes needed to start the new services), waits for the rejoin, and touches nothing else while it is down",
                    fix: observation.leader == nil ? "the cluster has no leader: see drover diagnose" : nil))
        } else if interrupted.count > 1 {
            checks.append(
                PreflightCheck(
                    check: "interrupted-upgrade", node: nil, ok: false,
                    detail:
                        "upgrades interrupted on \(interrupted.joined(separator: ", ")): more than one node is down",
                    fix: "two nodes are out of the cluster; see drover diagnose and the recovery guide before upgrading"
                ))
        }
        if wanted.contains("roles"), !unreachable.isEmpty, finishing == nil {
            checks.append(.information("roles", notEvaluated))
        } else if wanted.contains("roles") {
            let leaders = observation.members.filter { $0.role == "leader" }
            let followers = observation.members.filter { $0.role == "follower" }
            let ok = leaders.count == 1 && (followers.count == 2 || (finishing != nil && followers.count == 1))
            checks.append(
                PreflightCheck(
                    check: "roles", node: nil, ok: ok,
                    detail:
                        "\(leaders.count) leader (\(leaders.map(\.name).joined(separator: ", "))), \(followers.count) followers; roles: \(observation.members.map { "\($0.name) \($0.role)" }.joined(separator: ", "))",
                    fix: ok
                        ? nil
                        : "the cluster needs one leader and two followers; run `drover status` and follow the recovery guide"
                ))
        }
        if wanted.contains("services") {
            // While versions are mixed (a half-done upgrade), yellow is normal; every node must still be online.
            let allowYellow = observation.versionsMixed
            for node in reachable {
                if node.name == finishing {
                    checks.append(
                        PreflightCheck(
                            check: "services", node: node.name, ok: true,
                            detail: "down: its upgrade was interrupted; the run finishes it first", fix: nil))
                    continue
                }
                // With a node unreachable, the others see it down: that is the same cause, said once.
                let oneOut = finishing != nil || unreachable.count == 1
                let criteria =
                    oneOut
                    ? Predicates.healthyWithOneOut(node.status, source: node.name)
                    : Predicates.distributedHealthy(node.status, source: node.name, allowYellow: allowYellow)
                var failing = criteria.filter { !$0.holds }
                // A node only Drover cannot reach (a changed host key, a firewall between here and it) is still
                // in the cluster, which counts it healthy: that is no second cause either.
                var countedIn = false
                if finishing == nil, unreachable.count == 1, !failing.isEmpty,
                    Predicates.distributedHealthy(node.status, source: node.name, allowYellow: allowYellow)
                        .allSatisfy(\.holds)
                {
                    (failing, countedIn) = ([], true)
                }
                if finishing == nil, !unreachable.isEmpty, failing.isEmpty || unreachable.count > 1 {
                    checks.append(
                        .information(
                            "services", node: node.name,
                            unreachable.count > 1
                                ? notEvaluated
                                : countedIn
                                    ? "healthy, and the cluster counts \(unreachable[0]) in: only Drover could not reach it (see reachable above)"
                                    : "healthy but for \(unreachable[0]), which could not be reached (see reachable above)"
                        ))
                    continue
                }
                var detail =
                    failing.isEmpty
                    ? "leaderl, postgresql, etcd, elasticsearch healthy" : failing.map(\.detail).joined(separator: "; ")
                if failing.isEmpty, allowYellow, node.status?["elasticsearch"]?.fields["state"] == "yellow" {
                    detail +=
                        " (elasticsearch yellow: expected while versions are mixed, \(Set(observation.versions.values).sorted().joined(separator: " and ")))"
                }
                checks.append(
                    PreflightCheck(
                        check: "services", node: node.name, ok: failing.isEmpty, detail: detail,
                        fix: failing.isEmpty
                            ? nil : "wait until the cluster is healthy (chef-backend-ctl status), or repair it first"))
            }
        }
        if wanted.contains("sentinel") {
            for node in reachable {
                let ok = node.unsyncedSentinel == false
                checks.append(
                    PreflightCheck(
                        check: "unsynced-sentinel", node: node.name, ok: ok,
                        detail: ok
                            ? "no /var/opt/chef-backend/leaderl/data/unsynced"
                            : "/var/opt/chef-backend/leaderl/data/unsynced is present (partially_synced)",
                        fix: ok
                            ? nil
                            : "resync the node first (recovery guide: stop leaderl, pgsql-follow, remove the sentinel, start leaderl)"
                    ))
            }
        }
        if wanted.contains("disk") {
            for node in reachable {
                let ok = (node.freeMB ?? 0) >= minimumFreeMB
                checks.append(
                    PreflightCheck(
                        check: "disk", node: node.name, ok: ok,
                        detail: node.freeMB.map { "\($0) MB free in /var/opt/chef-backend" } ?? "free space unknown",
                        fix: ok ? nil : "free at least \(minimumFreeMB) MB in /var/opt/chef-backend"))
            }
        }
        if wanted.contains("failover") {
            checks.append(
                .information(
                    "cluster-failover",
                    "not evaluated: chef-backend-ctl documents no output that shows it; Drover sets it explicitly and reports what it last set"
                ))
        }
        if wanted.contains("package") {
            guard let package = inventory.package else {
                checks.append(
                    PreflightCheck(
                        check: "package", node: nil, ok: false, detail: "the inventory has no package section",
                        fix: "add package.path (where the package lies on every backend) to the inventory"))
                return checks
            }
            for node in reachable {
                if let upload = package.upload, node.packagePresent != true {
                    checks.append(
                        PreflightCheck(
                            check: "package", node: node.name, ok: true,
                            detail: "\(package.path) missing; the run uploads it from \(upload) first", fix: nil))
                    continue
                }
                checks.append(
                    packageFileCheck(
                        "package", node: node.name, path: package.path, present: node.packagePresent,
                        sha256: node.packageSHA256, expected: package.sha256, key: "package.sha256",
                        fix: "copy the package to \(package.path) on \(node.name) (or set package.upload)"))
            }
        }
        if wanted.contains("version"), let package = inventory.package {
            for node in reachable {
                checks.append(
                    VersionCheck.check(
                        "version", node: node.name, installed: node.installedVersion, target: package.version,
                        unread: (
                            "installed version unknown", "check /opt/chef-backend/version-manifest.json on \(node.name)"
                        ),
                        atTarget: {
                            node.name == finishing
                                ? "at \($0); its interrupted upgrade is finished first"
                                : "already at \($0) (will be skipped)"
                        },
                        downgradeFix: {
                            "\(node.name) runs \($0), newer than the package \(package.version); Drover does not downgrade"
                        }))
            }
        }
        if wanted.contains("frontends") {
            if inventory.sshFrontends.isEmpty {
                checks.append(
                    PreflightCheck(
                        check: "frontends", node: nil, ok: false,
                        detail: inventory.frontends.isEmpty
                            ? "the inventory lists no frontends" : "no frontend has host",
                        fix:
                            "this path runs chef-server-ctl on every frontend: give each frontends: entry host (and port, user, identity_files where they differ from ssh:) in \(inventory.file)"
                    ))
            }
            for frontend in observation.frontends {
                let ok = frontend.unreachable == nil && frontend.status == "pong"
                checks.append(
                    PreflightCheck(
                        check: "frontends", node: frontend.name, ok: ok,
                        detail: frontend.unreachable
                            ?? "connected, host key verified; /_status \(frontend.statusText)",
                        fix: ok
                            ? nil
                            : (frontend.unreachable != nil
                                ? "make \(frontend.name) reachable over SSH (the error says how), then retry"
                                : "repair \(frontend.name) until its /_status answers pong (chef-server-ctl status)")))
            }
        }
        if wanted.contains("path"), let check = pathCheck(set, observation: observation, inventory: inventory) {
            checks.append(check)
        }
        checks += FrontendPreflight.run(wanted, observation: observation, inventory: inventory)
        return checks
    }
}
