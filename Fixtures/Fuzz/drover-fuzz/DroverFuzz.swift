import DroverCluster
import DroverDRBDPair
import DroverInventory
import DroverReporting
import DroverTopologies
import Foundation

@testable import DroverChefBackend
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
        "playbook": { _ = try? Playbook.parse($0, file: "fuzz.yml", topologies: .drover) },
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
            // A saved plan (`drover apply FILE`) and the plan a run recorded.
            _ = try? JSONRecord.decode(SavedPlan.self, from: Data(text.utf8))
            _ = try? JSONRecord.decode(JSONValue.self, from: Data(text.utf8))
            for line in text.split(separator: "\n") {
                _ = Event(jsonLine: line)
                _ = TranscriptRecord(jsonLine: line)
            }
            _ = LockOwner.parse(text, node: "be1")
        },
        "keys": { text in
            // A private key file as a user may point Drover at, an agent identity's blob and an agent's answer.
            _ = PrivateKeyInfo(contents: text)
            _ = try? RSAKey.load(contents: text, passphrase: nil)
            let bytes = Array(text.utf8)
            _ = SessionCore.publicParts(ofBlob: bytes)
            _ = AgentSigner.rawSignature(answer: bytes, algorithm: "rsa-sha2-512")
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
    /// through the target, as `make test` does, so each input kept stays fixed. With `--mutate SECONDS`, then
    /// also runs a short, seeded mutation pass over them (`make test`'s fuzz pass, no fuzzing build needed):
    /// each input is written to `--current FILE` before it runs, so a crash leaves it there, and one that takes
    /// over `--slow SECONDS` is kept there and fails the pass.
    @main
    struct ReplayCorpus {
        static func main() {
            let target = FuzzTargets.target
            guard FuzzTargets.all[target] != nil else {
                print("set DROVER_FUZZ_TARGET to one of \(FuzzTargets.all.keys.sorted().joined(separator: ", "))")
                exit(64)
            }
            var arguments = Array(CommandLine.arguments.dropFirst())
            func option(_ name: String) -> String? {
                guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
                defer { arguments.removeSubrange(index...(index + 1)) }
                return arguments[index + 1]
            }
            let seconds = option("--mutate").flatMap(Double.init)
            let current = option("--current") ?? ".build/fuzz-current-\(target)"
            let slow = option("--slow").flatMap(Double.init) ?? 5
            let seed = option("--seed").flatMap(UInt64.init) ?? 20_261_207
            var inputs: [[UInt8]] = []
            for path in arguments {
                let files =
                    (try? FileManager.default.contentsOfDirectory(atPath: path)).map { $0.map { path + "/" + $0 } }
                    ?? [path]
                for file in files.sorted() {
                    guard let data = FileManager.default.contents(atPath: file) else { continue }
                    data.withUnsafeBytes { FuzzTargets.run(target, $0.bindMemory(to: UInt8.self)) }
                    inputs.append(Array(data))
                }
            }
            print("\(target): \(inputs.count) inputs replayed")
            guard let seconds else { return }
            var mutator = Mutator(seed: seed, corpus: inputs.isEmpty ? [[]] : inputs)
            let deadline = ContinuousClock.now + .seconds(seconds)
            var runs = 0
            while ContinuousClock.now < deadline {
                let input = mutator.next()
                _ = FileManager.default.createFile(atPath: current, contents: Data(input))
                let started = ContinuousClock.now
                input.withUnsafeBufferPointer { FuzzTargets.run(target, $0) }
                let took = ContinuousClock.now - started
                if took > .seconds(slow) {
                    print("\(target): an input took \(took) (over \(slow) s); it is kept in \(current)")
                    exit(1)
                }
                runs += 1
            }
            try? FileManager.default.removeItem(atPath: current)
            print("\(target): \(runs) mutated inputs in \(Int(seconds)) s (seed \(seed)), none crashed or was slow")
        }
    }

    /// Seeded mutations of a corpus (byte flips, insertions, deletions, repeated ranges, splices and tokens of
    /// the formats read), up to 64 KiB an input: what a plain build can do of libFuzzer's work.
    struct Mutator {
        var state: UInt64
        let corpus: [[UInt8]]
        static let tokens: [[UInt8]] = [
            "{{", "}}", "\n", ": ", "- ", "&a ", "*a", "[", "]", "=", "\"", "'", "\\", "##drover-node-command## ",
            "\u{1b}[", "\u{9b}", "-----BEGIN RSA PRIVATE KEY-----\n", "password: ", "run_id=", ":children]",
            "<<: *a", "Host ", "ProxyJump ", "postgres://u:p@h/", "exit 0\n", "\t",
        ].map { Array($0.utf8) }

        init(seed: UInt64, corpus: [[UInt8]]) {
            state = seed
            self.corpus = corpus
        }

        /// SplitMix64.
        mutating func random(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(max(bound, 1)))
        }

        mutating func next() -> [UInt8] {
            var input = corpus[random(corpus.count)]
            for _ in 0...random(4) {
                let at = random(input.count + 1)
                switch random(6) {
                case 0 where !input.isEmpty: input[min(at, input.count - 1)] ^= UInt8(1 << random(8))
                case 1: input.insert(UInt8(random(256)), at: at)
                case 2 where !input.isEmpty:
                    input.removeSubrange(at..<min(input.count, at + 1 + random(16)))
                case 3 where !input.isEmpty:
                    let start = random(input.count)
                    let range = Array(input[start..<min(input.count, start + 1 + random(64))])
                    for _ in 0..<(1 + random(64)) { input.insert(contentsOf: range, at: at) }
                case 4:
                    let other = corpus[random(corpus.count)]
                    let start = random(other.count + 1)
                    input.insert(contentsOf: other[start..<min(other.count, start + random(256))], at: at)
                default: input.insert(contentsOf: Self.tokens[random(Self.tokens.count)], at: at)
                }
                if input.count > 65_536 { input.removeSubrange(65_536...) }
            }
            return input
        }
    }
#endif
