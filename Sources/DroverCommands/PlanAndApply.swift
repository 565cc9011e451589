import DroverCluster
import DroverEngine
import DroverInventory
import DroverReporting
import DroverSSH
import DroverTopologies
import Foundation
import Logging

extension Operations {
    /// `drover plan`: read-only discovery, pre-flight and the ordered steps; `out` also saves it.
    public static func plan(
        playbook name: String, inventoryPath: String, json: Bool, offline: Bool, out: String? = nil,
        stateDirectory: String? = nil, parameters: [String: String] = [:],
        playbooks: PlaybookLibrary = PlaybookLibrary(topologies: .drover),
        backup: Bool? = nil, logger: Logger
    ) async -> ExitStatus {
        guard let inventory = loadInventory(inventoryPath),
            let playbook = loadPlaybook(name, from: playbooks, for: inventory)
        else { return .usage }
        let bindings: Bindings
        do {
            bindings = Bindings(
                try PlaybookLibrary.validate(parameters, for: playbook, inventory: inventory), playbook: playbook)
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            return .usage
        }
        if out != nil && offline {
            Output.diagnostic("--out needs a plan of the live cluster; drop --offline")
            return .usage
        }
        return await withTopology(inventory) { topology in
            await plan(
                playbook, topology: topology, bindings: bindings, parameters: parameters, inventoryPath: inventoryPath,
                json: json,
                offline: offline, out: out, stateDirectory: stateDirectory, library: playbooks, backup: backup,
                logger: logger)
        }
    }

    private static func plan<T: Topology>(
        _ playbook: Playbook, topology: T, bindings: Bindings, parameters: [String: String],
        inventoryPath: String, json: Bool, offline: Bool, out: String?, stateDirectory: String?,
        library: PlaybookLibrary, backup: Bool?, logger: Logger
    ) async -> ExitStatus {
        let inventory = topology.inventory
        var observation: T.Observation?
        if !offline {
            let connection = await ClusterConnection.connect(inventory, auxiliaries: true, logger: logger)
            // The digests an install verifies are the ones read here (the plan shows the commands that check them).
            observation = await topology.observe(
                connection, full: true, checksum: out != nil || !playbook.installs.isEmpty)
            await connection.close()
        }
        let chosen = choosingPath(playbook, topology: topology, observation: observation, library: library)
        let playbook = chosen.playbook
        let takesBackup =
            observation.map { backupWanted(backup, playbook: playbook, topology: topology, observation: $0) }
            ?? (backup ?? topology.inventory.package?.backup ?? false)
        var plan = Plan.make(
            playbook: playbook, topology: topology, observation: observation, bindings: bindings, backup: takesBackup)
        plan.noteUnavailable(chosen.unavailable)
        let redactor = Redactor.standard
        Output.stdout(redactor.redact(json ? plan.document.json.serialized + "\n" : PlanText.render(plan.document)))
        if let out, let observation {
            let history = Operations.history(
                StateDirectory(stateDirectory),
                cluster: inventory.cluster, identities: observation.identities)
            let failover = history.journals.first?.failover
            let saved = SavedPlan(
                playbook: playbook.name, playbookSource: playbook.source, playbookDigest: playbook.digest,
                parameters: parameters, inventoryFile: (inventoryPath as NSString).standardizingPath,
                inventoryDigest: inventory.digest, cluster: inventory.cluster, created: Date(),
                fingerprint: topology.fingerprint(observation, failover: failover), plan: plan.document.json)
            do {
                try DurableFile.write(Data((redactor.redact(saved.json.serialized) + "\n").utf8), to: out)
                Output.diagnostic("plan saved to \(out); apply it with: drover apply \(ShellQuote.quote(out))")
            } catch {
                Output.diagnostic("\(error.localizedDescription)")
                return .usage
            }
        }
        return offline || plan.preflightPassed ? .success : .refused
    }

    /// `drover apply FILE`: runs a saved plan, if the cluster is still as the plan saw it.
    ///
    /// Applying is the approval of the plan, so it never asks to start; `yes` approves its destructive
    /// (`confirm:`) steps too, and `assumeDone` its manual ones, as for `drover run`.
    public static func apply(
        planPath: String, inventoryOverride: String?, json: Bool, stateDirectory: String?, junit: String?,
        yes: Bool = false, assumeDone: Bool = false, playbooks: PlaybookLibrary = PlaybookLibrary(topologies: .drover),
        html: String? = nil, logger: Logger
    ) async -> ExitStatus {
        let saved: SavedPlan
        do {
            saved = try SavedPlan.load(path: planPath)
        } catch {
            Output.diagnostic("\(error.localizedDescription)")
            return .usage
        }
        let inventoryPath = inventoryOverride ?? saved.inventoryFile
        guard let inventory = loadInventory(inventoryPath) else { return .usage }
        guard inventory.digest == saved.inventoryDigest else {
            Output.diagnostic(
                "\(inventoryPath) changed since the plan was made; make a new plan: drover plan --inventory \(ShellQuote.quote(inventoryPath)) --out \(ShellQuote.quote(planPath))"
            )
            return .refused
        }
        guard let playbook = saved.resolvePlaybook(in: playbooks), playbook.digest == saved.playbookDigest,
            playbook.topology == inventory.topology
        else {
            Output.diagnostic(
                "the playbook \(saved.playbook) (\(saved.playbookSource)) is missing or changed since the plan was made; make a new plan: drover plan \(saved.playbook) --inventory \(ShellQuote.quote(inventoryPath)) --out \(ShellQuote.quote(planPath))"
            )
            return .refused
        }
        if let refusal = interactionRefusal(
            playbook, yes: yes, assumeDone: assumeDone, retry: "drover apply \(ShellQuote.quote(planPath))",
            confirming: saved.asksForConfirmation)
        {
            Output.diagnostic(refusal)
            return .usage
        }
        var request = RunRequest(
            playbook: playbook.name, inventoryPath: inventoryPath, yes: yes, json: json,
            stateDirectory: stateDirectory, junit: junit, assumeDone: assumeDone, parameters: saved.parameters)
        request.planApproved = true
        request.backup = saved.backup
        request.html = html
        return await withTopology(inventory) { topology in
            await apply(
                saved, planPath: planPath, playbook: playbook, topology: topology, request: request, logger: logger)
        }
    }

    private static func apply<T: Topology>(
        _ saved: SavedPlan, planPath: String, playbook: Playbook, topology: T, request: RunRequest,
        logger: Logger
    ) async -> ExitStatus {
        let inventory = topology.inventory
        let inventoryPath = request.inventoryPath
        let connection = await ClusterConnection.connect(inventory, auxiliaries: true, logger: logger)
        let observation = await topology.observe(connection, full: true, checksum: true)
        let history = Operations.history(
            StateDirectory(request.stateDirectory),
            cluster: inventory.cluster, identities: observation.identities)
        let failover = history.journals.first?.failover
        let changes = SavedPlan.differences(saved.fingerprint, topology.fingerprint(observation, failover: failover))
        guard changes.isEmpty else {
            await connection.close()
            Output.diagnostic(
                "the cluster changed since the plan was made (\(RFC3339.string(saved.created))); refusing to apply. Changes:"
            )
            Output.stderr(changes.joined(separator: "\n") + "\n")
            Output.diagnostic(
                "nothing was changed. Make a new plan: drover plan --inventory \(ShellQuote.quote(inventoryPath)) --out \(ShellQuote.quote(planPath))"
            )
            return .refused
        }
        let status = await execute(
            request, playbook: playbook, topology: topology, connection: connection, resuming: nil)
        await connection.close()
        return status
    }
}
