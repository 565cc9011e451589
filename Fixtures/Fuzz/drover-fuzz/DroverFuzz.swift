import DroverCluster
import DroverInventory
import DroverReporting
import Foundation

@testable import DroverEngine
@testable import DroverSSH

/// Every parser of outside input, one libFuzzer target each (`make fuzz`): the input is whatever an
/// inventory, a node, a file on the workstation or a second drover could hand it. A target fails only on a
/// crash, a sanitizer report, a timeout or running out of memory; errors thrown are the parsers' answer.
enum FuzzTargets {
    /// The targets by name (`DROVER_FUZZ_TARGET`), each fed the input as UTF-8 text.
    static let all: [String: @Sendable (String) -> Void] = [
        "inventory": { _ = try? Inventory.parse($0, file: "fuzz.yml") },
        "ansible": { text in
            guard let inventory = try? AnsibleInventory.parse(text, file: "fuzz.ini") else { return }
            for group in inventory.order { _ = try? inventory.inventory(group: group) }
        },
        "ssh-config": { text in
            // Include lines read files of this machine: left out, so that the target reads only its input.
            let hermetic = text.split(separator: "\n", omittingEmptySubsequences: false).filter {
                !$0.lowercased().contains("include")
            }.joined(separator: "\n")
            _ = try? SSHConfig.parse(hermetic, file: "config").resolve("be1.example.com")
        },
        "playbook": { _ = try? Playbook.parse($0, file: "fuzz.yml") },
        "chef-backend": { text in
            _ = try? StatusReport.parse(text)
            _ = try? ClusterStatusTable.parse(text)
            _ = PublishAddress.parse(text)
            _ = try? FrontendServices.parse(text)
        },
        "drbd": { text in
            _ = try? ProcDRBD.parse(text)
            _ = try? DRBDRole.parse(text)
            _ = try? HAStatus.parse(text, exitStatus: 1)
        },
        "node-stream": { text in
            for line in text.split(separator: "\n") {
                for part in NodeCommand.split(OutputLine(stream: .stderr, text: String(line))) {
                    _ = NodeCommand.state(of: part)
                    _ = NodeCommand.section(of: part)
                }
            }
            let script = ClusterDiscovery.NodeScript(parts: [
                .init("a", "true"), .init("b", "true"),
            ])
            _ = script.split(stdout: text, stderr: text)
            var splitter = LineSplitter(stream: .stdout)
            splitter.feed(Array(text.utf8)[...], to: { _ in })
            splitter.flush(to: { _ in })
        },
        "records": { text in
            _ = try? Journal.decoder.decode(Journal.self, from: Data(text.utf8))
            for line in text.split(separator: "\n") {
                _ = Event(jsonLine: line)
                _ = TranscriptRecord(jsonLine: line)
            }
            _ = LockOwner.parse(text, node: "be1")
        },
        "text": { text in
            _ = Redactor().redact(text)
            _ = TerminalText.readableLines(text)
            _ = DurationText.parse(text)
        },
    ]

    static func run(_ target: String, _ bytes: UnsafeBufferPointer<UInt8>) {
        all[target]?(String(decoding: bytes, as: UTF8.self))
    }

    static var target: String {
        ProcessInfo.processInfo.environment["DROVER_FUZZ_TARGET"] ?? ""
    }
}

#if DROVER_FUZZ
    // Built by `make fuzz` (-sanitize=fuzzer,address): libFuzzer drives the target named by DROVER_FUZZ_TARGET.
    @_silgen_name("LLVMFuzzerRunDriver")
    func runDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    @_cdecl("drover_fuzz_main")
    func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        guard FuzzTargets.all[FuzzTargets.target] != nil else {
            FileHandle.standardError.write(
                Data("set DROVER_FUZZ_TARGET to one of \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8)
            )
            return 64
        }
        var count = argc
        var arguments = argv
        return runDriver(&count, &arguments) { data, size in
            guard let data else { return 0 }
            FuzzTargets.run(FuzzTargets.target, UnsafeBufferPointer(start: data, count: size))
            return 0
        }
    }
#else
    /// Without libFuzzer (every other build): replays the files given (a target's corpus, crashes found)
    /// through the target, as `make test` does, so each input kept stays fixed.
    @main
    struct ReplayCorpus {
        static func main() {
            let target = FuzzTargets.target
            guard FuzzTargets.all[target] != nil else {
                print("set DROVER_FUZZ_TARGET to one of \(FuzzTargets.all.keys.sorted().joined(separator: ", "))")
                exit(64)
            }
            var count = 0
            for path in CommandLine.arguments.dropFirst() {
                let files =
                    (try? FileManager.default.contentsOfDirectory(atPath: path)).map { $0.map { path + "/" + $0 } }
                    ?? [path]
                for file in files.sorted() {
                    guard let data = FileManager.default.contents(atPath: file) else { continue }
                    data.withUnsafeBytes { FuzzTargets.run(target, $0.bindMemory(to: UInt8.self)) }
                    count += 1
                }
            }
            print("\(target): \(count) inputs replayed")
        }
    }
#endif
