import DroverCluster
import DroverDRBDPair
import DroverTestSupport
import Foundation
import Testing

@Suite("parsers of /proc/drbd, drbdadm role and ha-status")
struct DRBDParserTests {
    struct Sample: Sendable, CustomTestStringConvertible {
        var file: String
        var connection: String
        var role: String, peerRole: String
        var disk: String, peerDisk: String
        var oos: Int
        var testDescription: String { file }
    }

    static let samples: [Sample] = [
        Sample(
            file: "proc-drbd-primary-connected.txt", connection: "Connected", role: "Primary", peerRole: "Secondary",
            disk: "UpToDate", peerDisk: "UpToDate", oos: 0),
        Sample(
            file: "proc-drbd-secondary-connected.txt", connection: "Connected", role: "Secondary", peerRole: "Primary",
            disk: "UpToDate", peerDisk: "UpToDate", oos: 0),
        Sample(
            file: "proc-drbd-peer-down.txt", connection: "WFConnection", role: "Primary", peerRole: "Unknown",
            disk: "UpToDate", peerDisk: "DUnknown", oos: 130_760),
        Sample(
            file: "proc-drbd-sync-target.txt", connection: "SyncTarget", role: "Secondary", peerRole: "Primary",
            disk: "Inconsistent", peerDisk: "UpToDate", oos: 1_670_512),
        Sample(
            file: "proc-drbd-sync-source.txt", connection: "SyncSource", role: "Primary", peerRole: "Secondary",
            disk: "UpToDate", peerDisk: "Inconsistent", oos: 1_121_600),
        Sample(
            file: "proc-drbd-primary-lost.txt", connection: "WFConnection", role: "Secondary", peerRole: "Unknown",
            disk: "UpToDate", peerDisk: "DUnknown", oos: 0),
        Sample(
            file: "proc-drbd-inconsistent-survivor.txt", connection: "WFConnection", role: "Secondary",
            peerRole: "Unknown", disk: "Inconsistent", peerDisk: "DUnknown", oos: 40_552),
    ]

    @Test("every device line of the documented samples", arguments: samples)
    func deviceLine(sample: Sample) throws {
        let devices = try ProcDRBD.parse(try Repository.fixture("Recorded/drbd/" + sample.file))
        #expect(devices.count == 1)
        let device = try #require(devices.first)
        #expect(device.minor == 0 && device.connection == sample.connection)
        #expect(device.role == sample.role && device.peerRole == sample.peerRole)
        #expect(device.disk == sample.disk && device.peerDisk == sample.peerDisk)
        #expect(device.outOfSyncKiB == sample.oos)
        #expect(device.isSyncing == sample.connection.hasPrefix("Sync"))
        #expect(device.fields["ns"] != nil && device.fields["wo"] != nil)
    }

    @Test func resyncProgress() throws {
        let target = try ProcDRBD.parse(try Repository.fixture("Recorded/drbd/proc-drbd-sync-target.txt"))[0].sync
        #expect(
            target
                == SyncProgress(
                    percent: 36.3, remainingKiB: 1_670_512, totalKiB: 2_613_068, finish: "0:00:47",
                    speedKiBPerSecond: 35_152))
        let source = try ProcDRBD.parse(try Repository.fixture("Recorded/drbd/proc-drbd-sync-source.txt"))[0].sync
        #expect(source?.percent == 57.3 && source?.finish == "0:00:32" && source?.speedKiBPerSecond == 34_328)
    }

    @Test func otherDeviceNumbersExtraFieldsAndUnknownLines() throws {
        let devices = try ProcDRBD.parse(try Repository.fixture("Recorded/drbd/proc-drbd-two-devices.txt"))
        #expect(devices.map(\.minor) == [0, 1])
        #expect(devices[0].connection == "Unconfigured")
        #expect(devices[1].role == "Secondary" && devices[1].fields["future"] == "1" && devices[1].outOfSyncKiB == 0)
    }

    @Test(
        "output that is not /proc/drbd is refused",
        arguments: ["", "cat: /proc/drbd: No such file or directory", "version: 8.4.0 (api:1/proto:86-100)"])
    func notProcDRBD(text: String) {
        #expect(throws: ParseError.self) { try ProcDRBD.parse(text) }
    }

    @Test(
        "drbdadm role",
        arguments: [("Primary/Unknown\n", "Primary", "Unknown"), ("Secondary/Primary", "Secondary", "Primary")])
    func role(text: String, local: String, peer: String) throws {
        #expect(try DRBDRole.parse(text) == DRBDRole(local: local, peer: peer))
    }

    @Test func roleRefusesOtherText() {
        #expect(throws: ParseError.self) { try DRBDRole.parse("'pc1' not defined in your config (for this host).") }
    }

    @Test(
        "ha-status samples that pass",
        arguments: [("ha-status-backup.txt", "backup", false), ("ha-status-master.txt", "master", true)])
    func passing(file: String, status: String, vip: Bool) throws {
        let ha = try HAStatus.parse(try Repository.fixture("Recorded/drbd/" + file), exitStatus: 0)
        #expect(ha.passed && ha.clusterStatus == status && ha.keepalived == status && ha.holdsVIP == vip)
        #expect(ha.errors.isEmpty && ha.misplacedServices.isEmpty && ha.inconsistent == nil)
    }

    @Test func errorsTransitionAndMisplacedServices() throws {
        let ha = try HAStatus.parse(try Repository.fixture("Recorded/drbd/ha-status-errors.txt"), exitStatus: 2)
        #expect(!ha.passed && ha.keepalived == "transition" && ha.clusterStatus == nil)
        #expect(ha.inconsistent?.requested == "backup" && ha.inconsistent?.current == "master")
        #expect(ha.holdsVIP == true)
        #expect(
            ha.misplacedServices.map(\.service) == ["nginx", "postgresql"]
                && ha.misplacedServices.map(\.running) == [true, false])
        #expect(
            ha.errors == [
                "found VRRP address and I am not master", "nginx is running, and I am not master.",
                "postgresql is not running correctly, and I am master.", "redis_lb is not running.",
            ])
    }

    @Test(
        "Chef Server 12.0.x reports opscode-chef-mover on a healthy master: known and harmless, judged by the lines",
        arguments: [Int32(7), 0, 1])
    func chefMoverIsHarmless(exitStatus: Int32) throws {
        let ha = try HAStatus.parse(
            try Repository.fixture("Recorded/drbd/ha-status-12.0-master-chef-mover.txt"), exitStatus: exitStatus)
        #expect(ha.passed, "the exit status (the last failing check's code) does not decide")
        #expect(ha.errors == ["opscode-chef-mover is not running."] && ha.significantErrors.isEmpty)
        #expect(ha.harmless.map(\.error) == ["opscode-chef-mover is not running."])
        #expect(ha.harmless.first?.why.contains("only during upgrades") == true)
        #expect(ha.keepalived == "master" && ha.holdsVIP == true && ha.misplacedServices.isEmpty)
        #expect(!ha.lines.contains { $0.message.contains("DRBD") }, "Chef Server 12 prints no DRBD lines")
    }

    @Test func aSignificantErrorStillFailsWhateverTheExitStatus() throws {
        let text = try Repository.fixture("Recorded/drbd/ha-status-master.txt")
            .replacingOccurrences(
                of: "[OK] all checks passed.", with: "[ERROR] redis_lb is not running.\n[ERROR] ERRORS WERE DETECTED.")
        let ha = try HAStatus.parse(text, exitStatus: 0)
        #expect(!ha.passed && ha.significantErrors == ["redis_lb is not running."])
    }

    @Test func releasesThatAreNotAPairAndNodesNotReconfiguredAreNamed() throws {
        let notEnabled = try HAStatus.parse(
            try Repository.fixture("Recorded/drbd/ha-status-12.9-not-enabled.txt"), exitStatus: 1)
        #expect(notEnabled.keepalivedNotEnabled && !notEnabled.notReconfigured && !notEnabled.passed)
        let notReconfigured = try HAStatus.parse(
            try Repository.fixture("Recorded/drbd/ha-status-not-reconfigured.txt"), exitStatus: 1)
        #expect(notReconfigured.notReconfigured && !notReconfigured.keepalivedNotEnabled && !notReconfigured.passed)
    }

    @Test func haStatusBeforeReconfigureIsRead() throws {
        let ha = try HAStatus.parse(
            "[ERROR] cannot check HA status if you haven't completed a reconfigure\n", exitStatus: 1)
        #expect(!ha.passed && ha.errors.count == 1)
        #expect(throws: ParseError.self) { try HAStatus.parse("ha-status: command not found", exitStatus: 127) }
    }
}
