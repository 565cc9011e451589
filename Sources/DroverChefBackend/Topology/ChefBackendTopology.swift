import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import Foundation

extension ClusterObservation: TopologyObservation {
    public var identities: [String: String] { guids }
    public var lockOwnerTexts: [(node: String, text: String)] {
        nodes.compactMap { node in node.lockOwner.map { (node.name, $0) } }
    }
    public var answering: [String] { nodes.filter { $0.unreachable == nil }.map(\.name) }
    public var lockReadNodes: [String] { nodes.filter { $0.unreachable == nil && $0.lockRead }.map(\.name) }
}

/// The Chef Backend cluster: three nodes, one leader, read through `chef-backend-ctl status` and
/// `cluster-status`. Reading: ``ClusterDiscovery``; pre-flight: ``ClusterPreflight``; waits:
/// ``ClusterWaits``; situations: ``ClusterDiagnosis``.
public struct ChefBackendTopology: Topology {
    public typealias Path = UpgradePath

    public var offlinePlanNote: String { "Offline plan: nothing was contacted; the leader is unknown until discovery." }

    public var backupNodeBeforeDiscovery: String { "<a follower>" }

    public let inventory: Inventory

    public init(inventory: Inventory) { self.inventory = inventory }

    public static let kind = Inventory.Topology.chefBackend

    /// Its playbooks, compiled in from `Playbooks/chef-backend/`.
    public static var builtInPlaybooks: [(name: String, text: String)] { BuiltInPlaybookFiles.files }

    public static let lockDirectory = "/var/opt/chef-backend/drover.lock"

    /// Where a Chef Infra Server frontend keeps the records of Drover's commands: beside its own state. It
    /// holds no lock (the backends' is the cluster's).
    public static let frontendRecordsRoot = "/var/opt/opscode/drover-runs"

    public func unavailablePathFix(playbook: String) -> String {
        "Drover has no playbook \(playbook) for this path yet; follow Chef's documented procedure for this upgrade by hand"
    }

    /// The frontends that have `host`: the upgrade paths run `chef-server-ctl` on them.
    public static func auxiliaryNodes(_ inventory: Inventory) -> [Inventory.Backend] { inventory.sshFrontends }

    public static func places(_ inventory: Inventory) -> NodePlaces {
        NodePlaces(
            lockDirectory: lockDirectory,
            recordsRoots: Dictionary(
                inventory.frontends.filter { inventory.backend(named: $0.name) == nil }.map {
                    ($0.name, frontendRecordsRoot)
                },
                uniquingKeysWith: { first, _ in first }))
    }

    /// `chef-backend-ctl set-cluster-failover on|off`.
    public static func failoverSetting(of command: String) -> String? {
        ["off", "on"].first { command.contains("set-cluster-failover \($0)") }
    }

    public static let hasFailoverSwitch = true

    /// An upgrade (rolling or `--failover`) and the downtime path's `down-for-upgrade` take the node out until it
    /// has rejoined (or synced).
    public static let outOfClusterCommands = ["chef-backend-ctl upgrade", "chef-backend-ctl down-for-upgrade"]
    public static let backInClusterWaits = ["rejoined", "synced"]

    /// Through Drover (the inventory's keys, known_hosts and jump hosts; a journal), not a raw ssh.
    public func failoverRestoreAdvice(inventoryFlag: String) -> NextStep {
        NextStep(
            "To stop here instead, turn failover back on:",
            commands: ["drover run set-failover --set state=on \(inventoryFlag)"])
    }

    /// A leader that did not appear in time may still be on its way: since chef-backend 1.3.2 `pgsql-promote`
    /// waits up to 5 minutes for PostgreSQL's recovery (release notes), so an election can take minutes.
    public func waitTimeoutAdvice(predicate: String, timeout: Duration) -> [NextStep] {
        guard ["leader-is", "leader-moved"].contains(predicate) else { return [] }
        let short = timeout < .seconds(300)
        return [
            NextStep(
                "A promotion may take minutes (since chef-backend 1.3.2 pgsql-promote waits up to 5 minutes for PostgreSQL's recovery): if no node leads yet, the election may still be under way; wait until one leads, then continue. timeouts.failover bounds this wait ("
                    + DurationText.format(timeout) + (short ? " here, shorter than a promotion may take" : " here")
                    + "; the default, \(DurationText.format(Inventory.Timeouts().failover)), leaves margin above 5 minutes)."
            )
        ]
    }

    /// Chef's estimate of the reindex: about 2 minutes per 1000 Chef nodes (at least one minute).
    public static func reindexMinutes(chefNodes: Int) -> Int {
        max(1, Int((Double(chefNodes) * 2 / 1000).rounded(.up)))
    }

    /// The downtime paths: the frontends in maintenance; with `--set chef_nodes=N`, the reindex estimate.
    public func downtime(for path: UpgradePath, parameters: [String: String]) -> Downtime? {
        let chefNodes = parameters["params.chef_nodes"].flatMap { Int($0) }
        let maintenance =
            "Downtime: Chef Infra Server is unavailable while the frontends are in maintenance (steps maintenance-on to maintenance-off)"
        switch path.kind {
        case .downtime1To2:
            return Downtime(
                text: maintenance + "; every backend is down from down-leader until upgrade-leader",
                json: ["chef_nodes": chefNodes.map { .int($0) } ?? .null, "reindex_minutes": .null])
        case .downtimeReindex:
            let estimate =
                chefNodes.map {
                    "the reindex takes about \(Self.reindexMinutes(chefNodes: $0)) minutes for \($0) Chef nodes (Chef's estimate: about 2 minutes per 1000)"
                }
                ?? "give --set chef_nodes=N for an estimate of the reindex (about 2 minutes per 1000 Chef nodes)"
            return Downtime(
                text: maintenance + "; " + estimate,
                json: [
                    "chef_nodes": chefNodes.map { .int($0) } ?? .null,
                    "reindex_minutes": chefNodes.map { .int(Self.reindexMinutes(chefNodes: $0)) } ?? .null,
                ])
        default:
            return nil
        }
    }

    /// A step of the leader after a step that fails the leader over runs on whichever node leads by then.
    public func runTimeNode(_ step: Playbook.Step, planned: String?, after earlier: [Playbook.Step]) -> String? {
        guard step.target == .role("leader"),
            let failover = earlier.last(where: { earlier in
                earlier.actions.contains {
                    if case .run(let template) = $0 { return template.contains("upgrade --failover") }
                    return false
                }
            })
        else { return nil }
        let now = planned.flatMap { $0.hasPrefix("<") ? nil : "\($0) leads now; " } ?? ""
        return "the leader at that time (\(now)another node leads after \(failover.name))"
    }

    public func backupLine(node: String?) -> String {
        "Backup: chef-backend-ctl backup on \(node ?? "a follower") before any change; the run stops, nothing changed, if it fails or is empty"
    }

    public static let vocabulary = PlaybookVocabulary(
        targets: [
            "leader", "each-follower", "leader-at-start", "each-follower-at-start", "each-frontend", "one-frontend",
            "upgrade-interrupted", "first-frontend", "other-frontends",
        ],
        multiNodeTargets: ["each-follower", "each-follower-at-start", "each-frontend", "other-frontends"],
        waits: ClusterWaits.Predicate.allCases.map(\.rawValue),
        requirements: ClusterRequirements.Requirement.allCases.map { $0 == .down ? "down:" : $0.rawValue },
        timeouts: ["rejoin", "failover"],
        placeholders: [
            "package.path", "leader", "leader.host", "version", "cluster.version", "frontend_package.path",
            "frontend_package.license",
            "first_frontend.migration_level",
        ],
        installs: ["package", "frontend-package"], guards: Guard.allCases.map(\.rawValue), checks: ["frontends"],
        pinnedTargets: ["leader-at-start": "leader", "each-follower-at-start": "each-follower"])

    /// The guards a playbook's `skip_if:` may name.
    public enum Guard: String, Sendable, CaseIterable {
        case atTargetVersion = "at-target-version"
        /// Skips a node whose Elasticsearch finished its 3.x upgrade.
        case elasticsearchUpgraded = "elasticsearch-upgraded"
        /// Skips a node whose upgrade is not (or no longer) interrupted: it is back in the cluster.
        case upgradeNotInterrupted = "upgrade-not-interrupted"
        /// Skips a frontend already serving at the frontend package's version.
        case frontendAtTargetVersion = "frontend-at-target-version"
        /// Skips a step when two or more frontends have host: the others serve while one is upgraded.
        case severalFrontends = "several-frontends"
    }

    /// What a run of it upgrades to, in words: the backends' package version, the frontends'
    /// (`chef-server-core 15.9.38`), or both; the backends' for a playbook that installs nothing.
    public func targetVersion(of playbook: Playbook) -> String? {
        let installs = playbook.installs
        let frontend =
            installs.contains("frontend-package")
            ? inventory.frontendPackage.map { "chef-server-core \($0.version)" } : nil
        guard installs.contains("package") || frontend == nil else { return frontend }
        let both = [inventory.package?.version, frontend].compactMap { $0 }
        return both.isEmpty ? nil : both.joined(separator: ", frontends ")
    }

    /// `check: frontends`: each frontend's `/_status` (those with `status_url`), in inventory order; the first
    /// that fails ends the check.
    public func runCheck(_ name: String, answered: (CheckOutcome) -> Void) async {
        guard name == "frontends" else { return }
        for frontend in inventory.frontends {
            guard let url = frontend.statusURL else { continue }
            let result = await FrontendStatus.check(url)
            answered(
                CheckOutcome(
                    subject: "frontend \(frontend.name)", ok: result.ok, detail: result.detail,
                    failure: "frontend \(frontend.name) \(url): \(result.detail)",
                    advice: "The backends are upgraded; check the frontend: chef-server-ctl status on \(frontend.name)")
            )
            if !result.ok { return }
        }
    }

    /// `rejoin` and `failover`, from the inventory's `timeouts:`.
    public func timeout(named name: String) -> Duration? {
        switch name {
        case "rejoin": return inventory.timeouts.rejoin
        case "failover": return inventory.timeouts.failover
        default: return nil
        }
    }

    public func explainCheck(_ name: String) -> String {
        guard name == "frontends" else { return name }
        let checked = inventory.frontends.filter { $0.statusURL != nil }
        return checked.isEmpty
            ? "frontends: not configured (no frontend has a status_url in the inventory), so not checked"
            : "GET /_status on \(checked.map(\.name).joined(separator: ", "))"
    }

    /// A playbook with a step on a frontend target reads the frontends with every reading.
    public func watchesOtherNodes(_ playbook: Playbook) -> Bool {
        playbook.steps.contains {
            if case .role(let role) = $0.target { return role.contains("frontend") } else { return false }
        }
    }

    /// The frontends a step on `each-frontend` / `one-frontend` runs on (those with `host`).
    func frontendTargets(_ role: String) throws -> [String] {
        let names = inventory.sshFrontends.map(\.name)
        guard !names.isEmpty else {
            throw TargetError(
                reason:
                    "no frontend has host in \(inventory.file); add host (and user, identity_files if they differ) to each frontends: entry"
            )
        }
        switch role {
        case "one-frontend", "first-frontend": return [names[0]]
        case "other-frontends": return Array(names.dropFirst())
        default: return names
        }
    }

    public static var preflightSets: [String: [String]] { ClusterPreflight.sets }

    public func observe(_ connection: any NodeTransport, full: Bool, checksum: Bool) async -> ClusterObservation {
        await ClusterDiscovery.observe(connection, full: full, checksum: checksum)
    }

    /// `status` reads; the cluster failover switch changes nothing `status` or `cluster-status` shows (no
    /// documented output shows it).
    public var readingNeutralCommands: [String] {
        [
            "chef-backend-ctl status", "chef-backend-ctl set-cluster-failover on",
            "chef-backend-ctl set-cluster-failover off",
        ]
    }

    public func observe(
        _ connection: any NodeTransport, forWait predicate: String, node: String
    ) async -> ClusterObservation? {
        guard
            let focus = ClusterWaits.focus(
                predicate, node: node, backends: inventory.backends.map(\.name),
                reachable: { connection.failures[$0] == nil })
        else { return nil }
        return await ClusterDiscovery.observe(connection, full: false, focus: focus)
    }

    public func preflight(_ set: String, observation: ClusterObservation) -> [PreflightCheck] {
        ClusterPreflight.run(set, observation: observation, inventory: inventory)
    }

    public func resumeChecks(journal: Journal, playbook: Playbook, observation: ClusterObservation) -> [PreflightCheck]
    {
        ClusterPreflight.resume(journal: journal, playbook: playbook, observation: observation, inventory: inventory)
    }

    public func nodes(for target: Playbook.Target, observation: ClusterObservation) throws -> [String] {
        switch target {
        case .all: return inventory.backends.map(\.name)
        case .node(let name): return [name]
        case .role("each-follower"), .role("each-follower-at-start"): return observation.followers.sorted()
        case .role(let role)
        where ["each-frontend", "one-frontend", "first-frontend", "other-frontends"].contains(role):
            return try frontendTargets(role)
        case .role("upgrade-interrupted"): return observation.interruptedUpgrades(target: inventory.package?.version)
        case .any:
            // The leader when there is one; otherwise (a partition, a lost leader) the first member that answers.
            if let leader = observation.leader { return [leader] }
            let answering = observation.nodes.filter { $0.unreachable == nil }
            guard let node = answering.first(where: { observation.role(of: $0.name) != nil }) ?? answering.first else {
                throw TargetError(reason: "no node answers")
            }
            return [node.name]
        case .role:
            guard let leader = observation.leader else {
                throw TargetError(reason: "no leader: cluster-status shows none")
            }
            return [leader]
        }
    }

    public func plannedNodes(for target: Playbook.Target, observation: ClusterObservation?) -> [String?] {
        let leader = observation?.leader
        switch target {
        case .role("each-follower"), .role("each-follower-at-start"):
            return observation == nil ? ["<follower 1>", "<follower 2>"] : (observation?.followers.sorted() ?? [])
        case .role(let role)
        where ["each-frontend", "one-frontend", "first-frontend", "other-frontends"].contains(role):
            return (try? frontendTargets(role)) ?? ["<no frontend with host>"]
        case .role("upgrade-interrupted"):
            return observation?.interruptedUpgrades(target: inventory.package?.version) ?? []
        case .role: return [leader ?? (observation == nil ? "<leader>" : nil)]
        case .any: return [leader ?? observation?.nodes.first { $0.unreachable == nil }?.name ?? "<any node>"]
        case .all: return inventory.backends.map(\.name)
        case .node(let name): return [name]
        }
    }

    public func retarget(_ target: Playbook.Target, node: String, observation: ClusterObservation) -> String? {
        guard target == .role("leader") || (target == .any && observation.leader != nil) else { return nil }
        return observation.leader
    }

    public func holds(
        _ requirement: String, subject: String?, node: String, observation: ClusterObservation
    ) -> (holds: Bool, detail: String) {
        ClusterRequirements.holds(
            requirement, subject: subject, node: node, observation: observation,
            frontendTarget: inventory.frontendPackage?.version, firstFrontend: inventory.sshFrontends.first?.name)
    }

    public func criteria(_ predicate: String, node: String, observation: ClusterObservation) -> [Criterion] {
        ClusterWaits.criteria(
            predicate, node: node, observation: observation, targetVersion: inventory.package?.version,
            frontendTarget: inventory.frontendPackage?.version, firstFrontend: inventory.sshFrontends.first?.name)
    }

    public func explain(_ predicate: String, node: String?) -> String { ClusterWaits.explain(predicate, node: node) }

    /// `install: package`: chef-backend on a backend (`dpkg -i`, or `yum install -y`); `install: frontend-package`:
    /// chef-server-core on a frontend (`dpkg -i`, or `rpm -Uvh --nopostun`, Chef's upgrade guide). Where the
    /// package's SHA-256 is known (the inventory's `sha256`, else `digest`, what the run read on `node` before it
    /// started) the installing command verifies it itself, on a copy only root can write
    /// (``verifiedInstall(_:path:digest:)``).
    public func installCommand(_ what: String, node: String, digest: String?) -> Result<String, InstallUnavailable> {
        if what == "frontend-package" {
            guard let package = inventory.frontendPackage else {
                return .failure(
                    InstallUnavailable(
                        reason: "the inventory has no frontend_package",
                        fix: "Add frontend_package.path to \(inventory.file)"))
            }
            return .success(
                Self.verifiedInstall(
                    package.format == .deb ? "dpkg -i" : "rpm -Uvh --nopostun", path: package.path,
                    digest: package.sha256 ?? digest))
        }
        guard let package = inventory.package else {
            return .failure(
                InstallUnavailable(
                    reason: "the inventory has no package", fix: "Add package.path to \(inventory.file)"))
        }
        return .success(
            Self.verifiedInstall(
                package.format == .deb ? "dpkg -i" : "yum install -y", path: package.path,
                digest: package.sha256 ?? digest))
    }

    public func packageDigest(_ what: String, node: String, observation: ClusterObservation) -> String? {
        what == "frontend-package" ? observation.frontend(node)?.packageSHA256 : observation.node(node)?.packageSHA256
    }

    /// `installer PATH`, or, with a digest, one command that copies the package into a new directory only root
    /// can write (`mktemp -d`), checks the copy's SHA-256 and installs that copy: a package replaced or changed
    /// after pre-flight (by the SSH user, under `ssh.sudo`) is refused, never installed.
    static func verifiedInstall(_ installer: String, path: String, digest: String?) -> String {
        let digest = digest?.lowercased() ?? ""
        guard digest.utf8.count == 64,
            digest.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else {
            return "\(installer) \(ShellQuote.quote(path))"
        }
        let name = ShellQuote.quote((path as NSString).lastPathComponent)
        let refusal = ShellQuote.quote(
            "drover: \(path) is not the package pre-flight checked (SHA-256 \(digest)); nothing was installed. "
                + "Put that package back to continue this run, or start a new run to install the one there now")
        return "d=$(mktemp -d /var/tmp/drover-install.XXXXXX) && cp -- \(ShellQuote.quote(path)) \"$d\"/\(name) && "
            + "{ [ \"$(sha256sum < \"$d\"/\(name) | cut -c1-64)\" = \(digest) ] || { printf '%s\\n' \(refusal) >&2; false; }; } && "
            + "\(installer) \"$d\"/\(name); s=$?; rm -rf \"$d\"; exit $s"
    }

    /// `chef-backend-ctl backup` on a follower (reference §13), written to /var/opt/chef-backup.
    public func backupCommand(observation: ClusterObservation) throws -> BackupCommand? {
        guard let follower = observation.followers.sorted().first else {
            throw TargetError(reason: "no follower to take the backup on (cluster-status lists none)")
        }
        return BackupCommand(node: follower, command: "chef-backend-ctl backup", directory: "/var/opt/chef-backup")
    }

    public func upgradePath(for playbook: Playbook, observation: ClusterObservation) -> UpgradePath? {
        guard let set = playbook.preflight.flatMap({ Playbook.parts($0).first }), ClusterPreflight.pathOfSet[set] != nil
        else { return nil }
        return ClusterPreflight.upgradePath(observation, inventory: inventory)
    }

    public func skipReason(_ step: Playbook.Step, node: String, observation: ClusterObservation) -> String? {
        let guardName = step.skipIf.flatMap(Guard.init(rawValue:))
        switch guardName {
        case .frontendAtTargetVersion?:
            guard let target = inventory.frontendPackage?.version, let seen = observation.frontend(node),
                seen.version == target, seen.allServicesRunning, seen.serving
            else { return nil }
            return "already at \(target) and serving"
        case .severalFrontends?:
            let count = inventory.sshFrontends.count
            return count >= 2 ? "\(count) frontends: the others serve while one is upgraded" : nil
        default:
            break
        }
        guard let package = inventory.package, let observed = observation.node(node) else { return nil }
        switch guardName {
        case .atTargetVersion?:
            guard observed.installedVersion == package.version, observation.role(of: node) != nil else { return nil }
            return "already at \(package.version)"
        case .elasticsearchUpgraded?:
            let target = ChefBackendVersion(package.version)
            let installed = observed.installedVersion.flatMap(ChefBackendVersion.init)
            guard target?.major == 3 else { return "only a 2.x → 3.x upgrade can leave Elasticsearch half-upgraded" }
            if observed.installedVersion != package.version {
                // Not upgraded yet (a plan before the run): the step runs only if the log shows the problem then.
                return installed?.major == 2 ? nil : "only a 2.x → 3.x upgrade can leave Elasticsearch half-upgraded"
            }
            return observed.elasticsearchHalfUpgraded == true
                ? nil
                : "Elasticsearch finished its upgrade (no `\(ElasticsearchFacts.pathScriptsError)` in its log since it last started)"
        case .upgradeNotInterrupted?:
            return observation.interruptedUpgrades(target: package.version).contains(node)
                ? nil
                : "\(node)'s upgrade is not interrupted: it is back in the cluster"
        case .frontendAtTargetVersion?, .severalFrontends?, nil:
            return nil
        }
    }

    public func runCondition(_ step: Playbook.Step, node: String, observation: ClusterObservation) -> String? {
        guard step.skipIf == Guard.elasticsearchUpgraded.rawValue, let package = inventory.package,
            skipReason(step, node: node, observation: observation) == nil,
            observation.node(node)?.installedVersion != package.version
        else { return nil }
        return
            "only if \(node)'s Elasticsearch log shows `\(ElasticsearchFacts.pathScriptsError)` once it is upgraded; skipped otherwise"
    }

    public func liveValues(_ observation: ClusterObservation?) -> [String: String] {
        let leader = observation?.leader
        return [
            "package.path": inventory.package?.path ?? "",
            "version": inventory.package?.version ?? "",
            "cluster.version": clusterVersion(observation),
            "leader": leader ?? "",
            "leader.host": leader.flatMap { inventory.backend(named: $0)?.host } ?? "",
            "frontend_package.path": inventory.frontendPackage?.path ?? "",
            // Accepted only when the inventory says so (Chef Infra Server 13 and later ask).
            "frontend_package.license": inventory.frontendPackage?.acceptLicense == true ? "accept" : "",
            "first_frontend.migration_level": firstFrontendMigrationLevel(observation),
        ]
    }

    /// The release the cluster runs, for a machine that joins it (the same release): the leader's, else the one
    /// release every node read runs; words saying it is unknown otherwise, never the inventory's upgrade target.
    func clusterVersion(_ observation: ClusterObservation?) -> String {
        if let leader = observation?.leader, let version = observation?.node(leader)?.installedVersion {
            return version
        }
        let versions = Set(observation?.versions.values.map { $0 } ?? [])
        return versions.count == 1 ? versions.first! : "the release the cluster runs (unread: see drover status)"
    }

    /// What the other frontends get: the first frontend's migration level once it is upgraded (its
    /// `first-frontend-upgraded` requirement holds then); before, words saying so, for plans.
    func firstFrontendMigrationLevel(_ observation: ClusterObservation?) -> String {
        guard let first = inventory.sshFrontends.first?.name else { return "" }
        if let target = inventory.frontendPackage?.version, let seen = observation?.frontend(first),
            seen.version == target, let level = seen.migrationLevel
        {
            return level
        }
        return "<the migration level of \(first) after its upgrade>"
    }

    public func summaryRows(_ observation: ClusterObservation) -> [String] {
        var lines = ["  node      role                version"]
        for node in observation.nodes {
            let role = node.unreachable == nil ? (observation.role(of: node.name) ?? "not listed") : "unreachable"
            lines.append(
                "  \(node.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(role.padding(toLength: 19, withPad: " ", startingAt: 0)) \(node.installedVersion ?? "?")"
            )
        }
        lines += summaryFrontendRows(observation)
        // Members answered and none leads (an election that stalled): PostgreSQL takes no writes. That is an
        // outage, whatever step the run stopped at.
        if observation.leader == nil, observation.nodes.contains(where: { $0.members != nil }) {
            lines += [
                "",
                "!! OUTAGE: no node leads (\(observation.members.map { "\($0.name) \($0.role)" }.joined(separator: ", "))): the cluster takes no writes until a leader is elected; drover diagnose says what to do !!",
            ]
        }
        return lines
    }

    /// A frontend's release and whether it serves, as the plan and the summary show it.
    func frontendState(_ frontend: FrontendObservation) -> String {
        let state =
            frontend.unreachable != nil
            ? "unreachable" : frontend.serving ? "serving" : "not serving: \(frontend.statusText)"
        return "\(frontend.version ?? "?") (\(state))"
    }

    /// The summary's line per frontend read, in its columns (node, role, version).
    func summaryFrontendRows(_ observation: ClusterObservation) -> [String] {
        observation.frontends.map { frontend in
            "  \(frontend.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \("frontend".padding(toLength: 19, withPad: " ", startingAt: 0)) \(frontendState(frontend))"
        }
    }

    /// The plan's "Discovered" line per frontend read, in its columns (node, host, role, version).
    func discoveredFrontendRows(_ observation: ClusterObservation) -> [String] {
        observation.frontends.map { frontend in
            let host = inventory.sshEndpoint(named: frontend.name)?.host ?? ""
            return
                "  \(frontend.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(host.padding(toLength: 16, withPad: " ", startingAt: 0)) \("frontend".padding(toLength: 20, withPad: " ", startingAt: 0)) \(frontendState(frontend))"
        }
    }

    public func logAdvice(node: String) -> String {
        inventory.frontends.contains { $0.name == node }
            ? "Read \(node)'s logs: \(FrontendPaths.logs) (chef-server-ctl tail), and chef-server-ctl status"
            : "Read \(node)'s logs: /var/log/chef-backend/*/current"
    }

    public var unrepeatableCommands: [String] {
        ["remove-node", "cleanse", "create-cluster", "force-leader", "join-cluster", "rm "]
    }

    public func discovered(_ observation: ClusterObservation) -> (lines: [String], json: JSONValue) {
        var lines = [
            "Discovered: leader \(observation.leader ?? "none"); followers \(observation.followers.sorted().joined(separator: ", "))"
        ]
        for node in observation.nodes {
            let role = observation.role(of: node.name) ?? (node.unreachable == nil ? "?" : "unreachable")
            lines.append(
                "  \(node.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(node.host.padding(toLength: 16, withPad: " ", startingAt: 0)) \(role.padding(toLength: 20, withPad: " ", startingAt: 0)) \(node.installedVersion ?? "?")"
            )
        }
        lines += discoveredFrontendRows(observation)
        var json: [String: JSONValue] = [
            "leader": .optional(observation.leader),
            "followers": .array(observation.followers.sorted().map { .string($0) }),
            "versions": .object(observation.versions.mapValues { .string($0) }),
        ]
        if !observation.frontends.isEmpty {
            json["frontends"] = .array(
                observation.frontends.map {
                    .object([
                        "name": .string($0.name), "version": .optional($0.version), "serving": .bool($0.serving),
                        "unreachable": .optional($0.unreachable),
                    ])
                })
        }
        return (lines, .object(json))
    }

    /// Nothing to do when every part the playbook upgrades (the backends, the frontends) is already done.
    public func nothingToDo(_ playbook: Playbook, observation: ClusterObservation) -> String? {
        var reasons: [String] = []
        if playbook.steps.contains(where: { $0.skipIf == Guard.atTargetVersion.rawValue }) {
            guard let package = inventory.package,
                observation.nodes.allSatisfy({
                    $0.installedVersion == package.version && $0.elasticsearchHalfUpgraded != true
                }),
                observation.interruptedUpgrades(target: package.version).isEmpty
            else { return nil }
            reasons.append("every node already runs \(package.version)")
        }
        if playbook.steps.contains(where: { $0.skipIf == Guard.frontendAtTargetVersion.rawValue }) {
            guard let package = inventory.frontendPackage, !inventory.sshFrontends.isEmpty,
                inventory.sshFrontends.allSatisfy({ frontend in
                    observation.frontend(frontend.name).map {
                        $0.version == package.version && $0.allServicesRunning && $0.serving
                    } ?? false
                })
            else { return nil }
            reasons.append("every frontend already runs chef-server-core \(package.version) and serves")
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    public func fingerprint(_ observation: ClusterObservation, failover: String?) -> [String: String] {
        var result: [String: String] = ["leader": observation.leader ?? "none", "failover": failover ?? "unknown"]
        if let package = inventory.package {
            result["package.path"] = package.path
            result["package.version"] = package.version
        }
        for node in observation.nodes {
            let member = observation.members.first { observation.inventoryName(of: $0) == node.name }
            result["node.\(node.name).guid"] = member?.guid ?? "not listed"
            result["node.\(node.name).role"] = member?.role ?? "not listed"
            result["node.\(node.name).version"] = node.installedVersion ?? "unknown"
            if let sha = node.packageSHA256 { result["node.\(node.name).package_sha256"] = sha }
        }
        // With a frontend package, the frontends are what a plan may upgrade: their releases and package too.
        if let package = inventory.frontendPackage {
            result["frontend_package.path"] = package.path
            result["frontend_package.version"] = package.version
            for frontend in observation.frontends {
                result["frontend.\(frontend.name).version"] = frontend.version ?? "unknown"
                if let sha = frontend.packageSHA256 { result["frontend.\(frontend.name).package_sha256"] = sha }
            }
        }
        return result
    }

    public func status(
        _ observation: ClusterObservation, locks: [LockOwner]
    ) -> (text: String, json: JSONValue, exit: ExitStatus) {
        let hosts = Dictionary(
            inventory.sshFrontends.map { ($0.name, $0.host) }, uniquingKeysWith: { first, _ in first })
        let report = ClusterStatusReport(
            cluster: inventory.cluster, observation: observation, locks: locks, frontendHosts: hosts)
        let everyNodeRead =
            observation.nodes.allSatisfy { $0.unreachable == nil }
            && observation.frontends.allSatisfy { $0.unreachable == nil }
        return (report.text, report.json, everyNodeRead ? .success : .refused)
    }

    public func diagnose(_ observation: ClusterObservation, lastRun: Journal?, inventoryPath: String) -> Diagnosis {
        let readable = observation.nodes.contains { $0.unreachable == nil && ($0.members != nil || $0.status != nil) }
        let situations = ClusterDiagnosis.situations(
            observation, inventory: inventory, inventoryPath: inventoryPath, lastRun: lastRun)
        let unreadable =
            "Cannot tell: no backend could be read.\n"
            + observation.nodes.map { "  \($0.name): \($0.unreachable ?? $0.readErrors.joined(separator: "; "))" }
            .joined(separator: "\n") + "\n"
        return Diagnosis(
            readable: readable, situations: situations,
            healthyText:
                "Healthy: one leader (\(observation.leader ?? "?")), two followers, every service healthy"
                + (observation.frontends.isEmpty
                    ? "" : "; frontends \(observation.frontends.map(\.name).joined(separator: ", ")) serve")
                + ". Nothing to do.\n",
            unreadableText: unreadable)
    }
}
