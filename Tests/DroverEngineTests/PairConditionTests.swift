import DroverCluster
import Testing

@testable import DroverDRBDPair
@testable import DroverEngine

/// The pair's step conditions on constructed readings: the data to keep is never the data discarded.
@Suite struct PairConditionTests {
    static func node(_ name: String, _ deviceLine: String?, oos: Int = 0) throws -> PairNodeObservation {
        var node = PairNodeObservation(name: name, host: "10.1.0.\(name.last!)")
        guard let deviceLine else {
            node.unreachable = "cannot connect"
            return node
        }
        let proc =
            "version: 8.4.0 (api:1/proto:86-100)\n 0: \(deviceLine) C r-----\n    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:\(oos)\n"
        node.device = try #require(try ProcDRBD.parse(proc).first)
        return node
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var be1: String?
        var be1oos = 0
        var be2: String?
        var be2oos = 0
        var discard: String
        var allowed: Bool
        var says: String
        var testDescription: String { "discard \(discard): \(says)" }
    }

    static let cases: [Case] = [
        Case(
            be1: "cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate", be1oos: 5000,
            be2: "cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate", be2oos: 100,
            discard: "be2", allowed: false, says: "be2 has the lower oos (100 KiB against 5000 on be1)"),
        Case(
            be1: "cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate", be1oos: 5000,
            be2: "cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate", be2oos: 100,
            discard: "be1", allowed: true, says: "be2 is UpToDate with oos 100"),
        Case(
            be1: "cs:Connected ro:Secondary/Secondary ds:UpToDate/Inconsistent",
            be2: "cs:Connected ro:Secondary/Secondary ds:Inconsistent/UpToDate",
            discard: "be1", allowed: false, says: "be1 holds the only UpToDate disk (be2 is Inconsistent)"),
        Case(
            be1: "cs:StandAlone ro:Secondary/Unknown ds:Inconsistent/DUnknown",
            be2: "cs:StandAlone ro:Secondary/Unknown ds:Inconsistent/DUnknown",
            discard: "be1", allowed: false,
            says: "be2's disk is Inconsistent: discarding be1's data would leave no UpToDate copy"),
        Case(
            be1: nil, be2: "cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown",
            discard: "be2", allowed: false, says: "be1's DRBD state cannot be read, so be2 may hold the only copy"),
        Case(
            be1: "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate",
            be2: "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate",
            discard: "be1", allowed: false, says: "be1 is Primary"),
    ]

    @Test("discardable", arguments: cases)
    func discardable(_ test: Case) throws {
        let observation = PairObservation(nodes: [
            try Self.node("be1", test.be1, oos: test.be1oos),
            try Self.node("be2", test.be2, oos: test.be2oos),
        ])
        let result = PairConditions.holds("discardable", node: test.discard, observation: observation)
        #expect(result.holds == test.allowed, "\(result.detail)")
        #expect(result.detail.contains(test.says), "\(result.detail)")
    }
}
