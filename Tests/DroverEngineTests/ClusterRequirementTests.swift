import DroverCluster
import Foundation
import Testing

@testable import DroverChefBackend
@testable import DroverEngine

/// Step requirements answered from one reading and the inventory's facts passed in.
@Suite("cluster requirements")
struct ClusterRequirementTests {
    static func observation(version: String?, level: String?) -> ClusterObservation {
        var observation = ClusterObservation(nodes: [NodeObservation(name: "be1", host: "10.0.0.1")])
        var frontend = FrontendObservation(name: "fe1", status: "pong")
        frontend.version = version
        frontend.migrationLevel = level
        observation.frontends = [frontend]
        return observation
    }

    @Test(
        "first-frontend-upgraded: the first frontend at the target, its migration level read",
        arguments: [
            ("15.9.38", "42", true), ("14.0.65", "42", false), ("15.9.38", nil, false),
        ] as [(String, String?, Bool)])
    func firstFrontendUpgraded(version: String, level: String?, holds: Bool) {
        let answer = ClusterRequirements.holds(
            "first-frontend-upgraded", subject: nil, node: "fe2",
            observation: Self.observation(version: version, level: level), frontendTarget: "15.9.38",
            firstFrontend: "fe1")
        #expect(answer.holds == holds, "\(answer.detail)")
        #expect(answer.detail.hasPrefix("fe1 at \(version) (target 15.9.38), migration level \(level ?? "not read")"))
    }

    @Test func firstFrontendUpgradedWithoutAFrontendNeverHolds() {
        let answer = ClusterRequirements.holds(
            "first-frontend-upgraded", subject: nil, node: "fe2",
            observation: Self.observation(version: "15.9.38", level: "42"), frontendTarget: "15.9.38",
            firstFrontend: nil)
        #expect(!answer.holds && answer.detail == "no frontend has host")
    }
}
