import DroverInventory
import DroverReporting
import DroverSSH
import Foundation
import Testing

@testable import DroverChefBackend
@testable import DroverEngine

/// The lock and the package upload over the transport seam (``AnsweringTransport``): which node gets which
/// command, in which order, and what their answers become, with no sshd.
@Suite("the lock and the package upload over any transport")
struct TransportSeamTests {
    static func inventory(upload: String? = nil, sha256: String? = nil, frontend: Bool = false) throws -> Inventory {
        var text = """
            cluster: seam
            package:
              path: /var/tmp/chef-backend_2.3.16-1_amd64.deb

            """
        if let upload { text += "  upload: \(upload)\n" }
        if let sha256 { text += "  sha256: \(sha256)\n" }
        text += """
            backends:
              - { name: be1, host: 10.0.0.1 }
              - { name: be2, host: 10.0.0.2 }
              - { name: be3, host: 10.0.0.3 }

            """
        if frontend { text += "frontends:\n  - { name: fe1, host: 10.0.1.1 }\n" }
        return try Inventory.parse(text, file: "/seam/inventory.yml")
    }

    /// A local package file of a test's own, removed when the test ends.
    static func package(_ body: (String, String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "drover-seam-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appending(path: "chef-backend_2.3.16-1_amd64.deb").path
        try Data("a package\n".utf8).write(to: URL(fileURLWithPath: file))
        try await body(file, try Digest.sha256Hex(ofFile: file))
    }

    @Test func theUploadSkipsNodesThatHaveThePackageAndSaysWhichFailed() async throws {
        try await Self.package { file, digest in
            let transport = AnsweringTransport(
                inventory: try Self.inventory(upload: file), unreachable: ["be3"], failingUploads: ["be2"]
            ) { node, command in
                command.hasPrefix("sha256sum -- ") && node == "be1" ? (0, "\(digest)  /var/tmp/x.deb\n") : (1, "")
            }
            let outcomes = try await PackageUpload.run(transport)
            #expect(outcomes.map(\.node) == ["be1", "be2"], "an unreachable node has no outcome")
            #expect(outcomes.first?.result == .alreadyPresent && outcomes.last?.ok == false)
            #expect(
                transport.log.filter { $0.contains(" upload ") } == [
                    "be2: upload \(file) -> /var/tmp/chef-backend_2.3.16-1_amd64.deb"
                ])
            #expect(!transport.log.contains { $0.hasPrefix("be3") }, "an unreachable node is not tried")
        }
    }

    @Test func aPackageThatIsNotTheOneNamedIsUploadedNowhere() async throws {
        try await Self.package { file, _ in
            let transport = AnsweringTransport(
                inventory: try Self.inventory(upload: file, sha256: String(repeating: "0", count: 64)))
            await #expect(throws: PackageUpload.UploadError.self) { try await PackageUpload.run(transport) }
            #expect(transport.log.isEmpty)
        }
    }

    @Test func releasingReconnectsALostNodeFirstAndPrunesOnTheFrontends() async throws {
        let transport = AnsweringTransport(
            inventory: try Self.inventory(frontend: true), frontends: ["fe1"], lost: ["be2"], unreachable: ["be3"])
        await ClusterLock.release(transport, runID: "run-7")
        let log = transport.log
        let reconnect = log.firstIndex(of: "be2: reconnect")
        let released = log.firstIndex { $0.hasPrefix("be2: ") && $0.contains("run_id=run-7") }
        #expect(reconnect != nil && released != nil && reconnect! < released!, "\(log)")
        #expect(log.contains { $0.hasPrefix("be1: ") && $0.contains("run_id=run-7") })
        #expect(log.contains { $0.hasPrefix("fe1: find ") && $0.contains(ChefBackendTopology.frontendRecordsRoot) })
        #expect(!log.contains { $0.hasPrefix("be3") }, "an unreachable node is not tried")
    }

    @Test func ownersAreReadFromEachNodeAndALockWithoutOneIsOwnerless() async throws {
        let transport = AnsweringTransport(inventory: try Self.inventory()) { node, _ in
            switch node {
            case "be1": (0, "run_id=run-7\nuser=alice\nhost=laptop\npid=42\n\ndrover-lock-present\n")
            case "be2": (0, "\ndrover-lock-present\n")
            default: (1, "")
            }
        }
        let owners = await ClusterLock.owners(transport)
        #expect(owners.map(\.node) == ["be1", "be2"])
        #expect(owners.first?.runID == "run-7" && owners.first?.user == "alice" && owners.first?.pid == 42)
        #expect(owners.last?.isOwnerless == true)
    }
}
