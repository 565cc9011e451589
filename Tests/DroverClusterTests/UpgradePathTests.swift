import DroverChefBackend
import DroverCluster
import Foundation
import Testing

@Suite("choosing the upgrade path from the installed versions, the target and Elasticsearch's indexes")
struct UpgradePathTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var installed: [String]
        var target: String
        var elasticsearch: Result<ElasticsearchFacts, ElasticsearchUnreadable>?
        var kind: UpgradePath.Kind
        /// Words the reasons (or, for a refusal, the reasons and the fix) must contain.
        var says: [String]
        var testDescription: String {
            "\(installed.joined(separator: ",")) → \(target): \(kind.rawValue) (\(says.first ?? ""))"
        }
    }

    static let fresh = ElasticsearchFacts(created: ["chef": "5.6.16"], unhealthy: [])
    static let old = ElasticsearchFacts(created: ["chef": "5.4.1"], unhealthy: [])

    static let rows: [Row] = [
        Row(
            installed: ["2.3.15", "2.3.15", "2.3.15"], target: "2.3.16", kind: .rolling,
            says: ["within major version 2"]),
        Row(installed: ["1.3.2", "1.3.2", "1.4.6"], target: "1.4.6", kind: .rolling, says: ["1.3.2 → 1.4.6"]),
        Row(installed: ["3.0.1", "3.0.1", "3.0.1"], target: "3.1.1", kind: .rolling, says: ["within major version 3"]),
        Row(
            installed: ["1.4.6", "1.4.6", "1.4.6"], target: "2.3.16", kind: .downtime1To2,
            says: ["1.x to 2.x", "down for the upgrade"]),
        Row(
            installed: ["2.0.30", "2.0.30", "2.0.30"], target: "3.1.1", elasticsearch: .success(fresh), kind: .refused,
            says: [
                "2.0.x cannot be upgraded to 3.x directly", "upgrade to 2.3.16 first",
                "drover upgrade --inventory inv.yml",
            ]),
        Row(
            installed: ["2.3.15", "2.3.15", "2.3.15"], target: "3.1.1", elasticsearch: .success(fresh), kind: .rolling,
            says: [
                "created by Elasticsearch 5.6.16 or later", "chef created by Elasticsearch 5.6.16",
                "every index is green",
            ]),
        Row(
            installed: ["2.1.0", "2.1.0", "2.1.0"], target: "3.1.1",
            elasticsearch: .success(
                ElasticsearchFacts(created: ["chef": "6.8.23", "chef-old": "5.6.16"], unhealthy: [])), kind: .rolling,
            says: ["chef-old created by Elasticsearch 5.6.16"]),
        Row(
            installed: ["2.3.15", "2.3.15", "2.3.15"], target: "3.1.1", elasticsearch: .success(old),
            kind: .downtimeReindex,
            says: ["chef was created by Elasticsearch 5.4.1", "reindexed"]),
        Row(
            installed: ["2.3.15", "2.3.15", "2.3.15"], target: "3.1.1",
            elasticsearch: .success(ElasticsearchFacts(created: ["chef": "2.3.1"], unhealthy: [])),
            kind: .downtimeReindex, says: ["2.3.1"]),
        Row(
            installed: ["2.3.15", "2.3.15", "2.3.15"], target: "3.1.1",
            elasticsearch: .success(ElasticsearchFacts(created: ["chef": "5.6.16"], unhealthy: ["yellow open chef"])),
            kind: .refused,
            says: ["not green: yellow open chef", "_cat/indices"]),
        Row(
            installed: ["2.3.15", "2.3.15", "2.3.15"], target: "3.1.1",
            elasticsearch: .failure(ElasticsearchUnreadable(reason: "curl exited 7")), kind: .refused,
            says: ["curl exited 7"]),
        Row(
            installed: ["1.4.6", "1.4.6", "1.4.6"], target: "3.1.1", kind: .refused,
            says: ["skips 2.x", "upgrade to 2.3.16 first"]),
        Row(
            installed: ["3.1.1", "3.1.1", "3.1.1"], target: "4.0.0", kind: .refused,
            says: ["no upgrade path from 3.x to 4.x"]),
        Row(
            installed: ["2.3.16", "2.3.16", "2.3.16"], target: "2.3.15", kind: .refused,
            says: ["newer than the target", "does not downgrade"]),
        Row(
            installed: ["2.3.15", "2.3.15", "2.3.15"], target: "latest", kind: .refused, says: ["not a dotted version"]),
        Row(
            installed: ["2.3.15", "banana", "2.3.15"], target: "2.3.16", kind: .refused,
            says: ["b reports version banana"]),
        // Mid-upgrade: the node already at the target does not decide the path.
        Row(installed: ["2.3.16", "1.4.6", "1.4.6"], target: "2.3.16", kind: .downtime1To2, says: ["1.4.6 → 2.3.16"]),
        Row(
            installed: ["2.3.16", "2.3.16", "2.3.16"], target: "2.3.16", kind: .rolling, says: ["already runs 2.3.16"]),
    ]

    @Test("every row of the table", arguments: rows)
    func chooses(row: Row) {
        let installed = Dictionary(uniqueKeysWithValues: zip(["a", "b", "c"], row.installed))
        let path = UpgradePath.choose(
            installed: installed, target: row.target, elasticsearch: row.elasticsearch, inventoryFile: "inv.yml")
        #expect(path.kind == row.kind, "\(path.reasons)")
        let text = (path.reasons + [path.fix ?? ""]).joined(separator: "\n")
        for words in row.says { #expect(text.contains(words), "\(text)") }
        #expect((path.kind == .refused) == (path.fix != nil), "a refusal says what to do instead")
        #expect((path.kind == .refused) == (path.playbook == nil))
    }

    @Test func elasticsearchIsNeededOnlyFrom2To3() {
        #expect(UpgradePath.needsElasticsearch(installed: ["2.3.15"], target: "3.1.1"))
        #expect(UpgradePath.needsElasticsearch(installed: ["3.1.1", "2.3.15"], target: "3.1.1"))
        #expect(!UpgradePath.needsElasticsearch(installed: ["2.3.15"], target: "2.3.16"))
        #expect(!UpgradePath.needsElasticsearch(installed: ["1.4.6"], target: "3.1.1"))
    }

    @Test func versions() {
        #expect(ChefBackendVersion("2.3.16-1") == ChefBackendVersion(major: 2, minor: 3, patch: 16))
        #expect(ChefBackendVersion("3.1.1+20220101") == ChefBackendVersion(major: 3, minor: 1, patch: 1))
        #expect(ChefBackendVersion("2.3") == ChefBackendVersion(major: 2, minor: 3, patch: 0))
        #expect(ChefBackendVersion("2.3.9")! < ChefBackendVersion("2.3.16")!)
        #expect(ChefBackendVersion("2") == nil && ChefBackendVersion("2.x.1") == nil && ChefBackendVersion("") == nil)
    }

    @Test func indexSettingsAsElasticsearchWritesThem() throws {
        // The documented request with ?human returns created_string beside the numeric created.
        let human = #"{"chef":{"settings":{"index":{"version":{"created_string":"5.6.16","created":"5061699"}}}}}"#
        #expect(try ElasticsearchFacts.creationVersions(human) == ["chef": "5.6.16"])
        let pretty = """
            {
              "chef-2019" : { "settings" : { "index" : { "version" : { "created" : "5040199" } } } },
              "chef-2023" : { "settings" : { "index" : { "version" : { "created_string" : "6.8.23", "created" : "6082399" } } } }
            }
            """
        #expect(try ElasticsearchFacts.creationVersions(pretty) == ["chef-2019": "5.4.1", "chef-2023": "6.8.23"])
        let missing = #"{"error":{"root_cause":[{"type":"index_not_found_exception"}]},"status":404}"#
        #expect(throws: ParseError.self) { try ElasticsearchFacts.creationVersions(missing) }
        #expect(throws: ParseError.self) { try ElasticsearchFacts.creationVersions("curl: (7) Failed to connect") }
    }

    @Test func indexHealthRows() throws {
        #expect(try ElasticsearchFacts.unhealthyIndexes("green open chef\n") == [])
        #expect(
            try ElasticsearchFacts.unhealthyIndexes("green  open chef\nyellow open chef-old\nred    close x\n")
                == ["yellow open chef-old", "red close x"])
        #expect(try ElasticsearchFacts.unhealthyIndexes("") == [])
        #expect(throws: ParseError.self) { try ElasticsearchFacts.unhealthyIndexes("<html>502</html>\n") }
    }
}
