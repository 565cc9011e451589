import DroverTestSupport
import Foundation
import Testing
import Yams

/// The CI matrices `drover plan --format github-matrix|gitlab-matrix` prints from the inventories alone.
@Suite("CI matrices", .timeLimit(.minutes(2 * TestTime.factor)))
struct CIMatrixTests {
    static func inventories(_ clusters: [String]) throws -> String {
        let directory = try temporaryDirectory("matrix")
        for cluster in clusters { _ = try FleetInputTests.inventory(cluster, in: directory) }
        return directory
    }

    @Test func githubMatrixHasOneEntryPerInventory() async throws {
        let directory = try Self.inventories(["staging", "prod-eu", "prod-us"])
        let run = try await DroverBinary.run(["plan", "--inventories", directory, "--format", "github-matrix"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.split(separator: "\n").count == 1, "one line, for $GITHUB_OUTPUT")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: [[String: String]]])
        let entries = try #require(object["include"])
        #expect(
            entries
                == ["prod-eu", "prod-us", "staging"].map { ["cluster": $0, "inventory": "\(directory)/\($0).yml"] })
    }

    @Test func gitlabMatrixIsAParallelMatrixFragment() async throws {
        let directory = try Self.inventories(["staging", "prod"])
        let run = try await DroverBinary.run([
            "plan", "--inventory", "\(directory)/staging.yml", "--inventory", "\(directory)/prod.yml",
            "--format", "gitlab-matrix",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let fragment = try #require(try Yams.load(yaml: run.stdout) as? [String: [String: [[String: String]]]])
        #expect(
            fragment["parallel"]?["matrix"] == [
                ["CLUSTER": "staging", "INVENTORY": "\(directory)/staging.yml"],
                ["CLUSTER": "prod", "INVENTORY": "\(directory)/prod.yml"],
            ])
    }

    @Test func aMatrixOfAnInvalidInventoryNamesItAndPrintsNothing() async throws {
        let directory = try Self.inventories(["good"])
        try "cluster: bad\nbackends: 3\n".write(toFile: directory + "/bad.yml", atomically: true, encoding: .utf8)
        let run = try await DroverBinary.run(["plan", "--inventories", directory, "--format", "github-matrix"])
        #expect(run.status == 64 && run.stdout.isEmpty && run.stderr.contains("bad.yml"), "\(run.stderr)")
    }
}

/// `Fixtures/CI`: the example pipelines are valid YAML, and their drover commands, run as the CI engine
/// would run them, plan and upgrade a fleet of sandbox clusters.
@Suite("example CI pipelines", needsSandbox, .timeLimit(.minutes(4 * TestTime.factor)))
struct CIPipelineTests {
    static func load(_ name: String) throws -> [String: Any] {
        let text = try String(contentsOfFile: Repository.root.path + "/Fixtures/CI/" + name, encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any], "\(name) is a YAML mapping")
    }

    /// Runs one step's shell text in `directory` with `drover` on PATH (the binary under test).
    static func shell(
        _ script: String, in directory: String, fleet: SandboxFleet, environment: [String: String] = [:]
    ) async throws -> Processes.Output {
        let bin = directory + "/bin"
        try await Processes.offPool {
            if !FileManager.default.fileExists(atPath: bin + "/drover") {
                try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
                try FileManager.default.createSymbolicLink(
                    atPath: bin + "/drover", withDestinationPath: DroverBinary.path)
            }
        }
        var merged = try DroverBinary.environment(fleet.environment.merging(environment) { $1 })
        merged["PATH"] = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let all = merged
        let command = "set -eo pipefail; cd \(directory)\n" + script
        return try await Processes.offPool { try Processes.run("/bin/bash", ["-c", command], environment: all) }
    }

    /// The `run:` texts of a GitHub Actions job's steps that call drover.
    static func droverSteps(_ workflow: [String: Any], job: String) -> [String] {
        let steps = ((workflow["jobs"] as? [String: Any])?[job] as? [String: Any])?["steps"] as? [[String: Any]] ?? []
        return steps.compactMap { $0["run"] as? String }.filter { $0.contains("drover ") }
    }

    @Test func githubActionsPlansEveryClusterThenAppliesEachPlanInItsMatrixJob() async throws {
        let workflow = try Self.load("github-actions.yml")
        let apply = (workflow["jobs"] as? [String: Any])?["apply"] as? [String: Any]
        #expect(
            (apply?["strategy"] as? [String: Any])?["max-parallel"] != nil && apply?["environment"] != nil,
            "a limit and an approval gate")
        try await SandboxFleet.with(["staging", "production"]) { fleet in
            let work = (fleet.inventories as NSString).deletingLastPathComponent
            let output = work + "/github-output"
            for step in Self.droverSteps(workflow, job: "plan") {
                let run = try await Self.shell(step, in: work, fleet: fleet, environment: ["GITHUB_OUTPUT": output])
                #expect(run.status == 0, "\(step): \(run.stderr)")
            }
            let written = try String(contentsOfFile: output, encoding: .utf8)
            let json = try #require(
                written.split(separator: "\n").first { $0.hasPrefix("matrix=") }?.dropFirst("matrix=".count))
            let matrix = try #require(
                try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [[String: String]]])
            let clusters = matrix["include"]?.compactMap { $0["cluster"] } ?? []
            #expect(clusters == ["production", "staging"])
            for cluster in clusters {
                for step in Self.droverSteps(workflow, job: "apply") {
                    let script = step.replacingOccurrences(of: "${{ matrix.cluster }}", with: cluster)
                    let run = try await Self.shell(script, in: work, fleet: fleet)
                    #expect(run.status == 0, "\(script): \(run.stderr)")
                }
                #expect(try await fleet.versions(cluster).values.allSatisfy { $0 == "2.3.16" }, "\(cluster) upgraded")
                #expect(
                    FileManager.default.fileExists(atPath: "\(work)/reports/\(cluster).xml"),
                    "\(cluster)'s JUnit report")
            }
        }
    }

    @Test func gitlabCIPlansEveryClusterThenRunsAChildPipelineWithOneJobPerCluster() async throws {
        let pipeline = try Self.load("gitlab-ci.yml")
        #expect((pipeline["apply"] as? [String: Any])?["when"] as? String == "manual", "the approval gate")
        let script = try #require((pipeline["plan"] as? [String: Any])?["script"] as? [String])
        try await SandboxFleet.with(["staging", "production"]) { fleet in
            let work = (fleet.inventories as NSString).deletingLastPathComponent
            for line in script {
                let run = try await Self.shell(line, in: work, fleet: fleet)
                #expect(run.status == 0, "\(line): \(run.stderr)")
            }
            let child = try String(contentsOfFile: work + "/apply-pipeline.yml", encoding: .utf8)
            let jobs = try #require(
                try Yams.load(yaml: child) as? [String: Any], "the child pipeline is YAML: \(child)")
            let apply = try #require(jobs["apply"] as? [String: Any])
            let matrix = (apply["parallel"] as? [String: Any])?["matrix"] as? [[String: String]] ?? []
            #expect(matrix.map { $0["CLUSTER"] ?? "" } == ["production", "staging"], "\(child)")
            let commands = try #require(apply["script"] as? [String])
            for entry in matrix {
                for command in commands {
                    let run = try await Self.shell(command, in: work, fleet: fleet, environment: entry)
                    #expect(run.status == 0, "\(command) for \(entry): \(run.stderr)")
                }
                let cluster = entry["CLUSTER"] ?? ""
                #expect(try await fleet.versions(cluster).values.allSatisfy { $0 == "2.3.16" }, "\(cluster) upgraded")
                #expect(
                    FileManager.default.fileExists(atPath: "\(work)/reports/\(cluster).xml"),
                    "\(cluster)'s JUnit report")
            }
        }
    }
}
