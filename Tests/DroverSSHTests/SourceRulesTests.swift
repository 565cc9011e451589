import DroverTestSupport
import Foundation
import Testing

/// Rules about our own sources that the compiler does not enforce.
@Suite("source rules")
struct SourceRulesTests {
    /// Lines that return or yield a tuple literal in which an element after the first awaits, e.g.
    /// `return (endpoint, try await connect())`. Swift 6.3's optimizer drops the earlier elements' stores
    /// when the tuple is a task's result (swiftlang/swift#91911): await first, then form the tuple.
    static func tuplesSplitAcrossAwait(in text: String) -> [Int] {
        var result: [Int] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let code =
                line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            for opener in ["return (", "{ ("] {
                guard let start = code.range(of: opener) else { continue }
                var depth = 1
                var sawComma = false
                var rest = code[start.upperBound...]
                while let character = rest.first, depth > 0 {
                    if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
                    if character == ",", depth == 1 { sawComma = true }
                    if sawComma, rest.hasPrefix("await ") || rest.hasPrefix("await\t") {
                        result.append(index + 1)
                        break
                    }
                    rest = rest.dropFirst()
                }
            }
        }
        return result
    }

    @Test(
        "the rule finds the pattern",
        arguments: [
            ("return (endpoint, .success(try await connect(to: endpoint)))", true),
            ("group.addTask { (index, try await Processes.offPool { 1 }) }", true),
            ("return (endpoint, result)", false),
            ("return (try await first(), second)", false),
            ("let (data, response) = try await URLSession.shared.data(for: request)", false),
        ])
    func detects(line: String, flagged: Bool) {
        #expect(!Self.tuplesSplitAcrossAwait(in: line).isEmpty == flagged)
    }

    @Test func noTaskResultTupleIsFormedAcrossAnAwait() throws {
        var offenders: [String] = []
        for folder in ["Sources", "Fixtures", "Benchmarks", "Tests"] {
            let root = Repository.root.appendingPathComponent(folder).path
            for case let file as String in FileManager.default.enumerator(atPath: root) ?? NSEnumerator()
            where file.hasSuffix(".swift") {
                guard !file.hasSuffix("SourceRulesTests.swift") else { continue }
                let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
                offenders += Self.tuplesSplitAcrossAwait(in: text).map { "\(folder)/\(file):\($0)" }
            }
        }
        #expect(offenders.isEmpty, "await first, then form the tuple (swiftlang/swift#91911): \(offenders)")
    }

    /// Words that name a topology or what one runs; the engine's code (not its comments) must use none.
    static let topologyWords = [
        "chef", "drbd", "keepalived", "frontend", "elasticsearch", "postgres", "etcd", "leaderl", "opscode",
    ]

    /// The lines of `text` whose code (comments left out) contains one of ``topologyWords``, any case.
    static func topologyNames(in text: String) -> [Int] {
        var result: [Int] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " }
            guard !trimmed.hasPrefix("//") else { continue }
            let code = (line.range(of: " // ").map { line[..<$0.lowerBound] } ?? line[...]).lowercased()
            if topologyWords.contains(where: code.contains) { result.append(index + 1) }
        }
        return result
    }

    @Test(
        "the topology rule reads code, not comments",
        arguments: [
            ("let place = \"/var/opt/opscode/drover-runs\"", true),
            ("if role.contains(\"Frontend\") { watch = true }", true),
            ("/// Chef Backend's leader, for example", false),
            ("let leader = observation.leader  // chef-backend's term", false),
        ])
    func findsTopologyNames(line: String, flagged: Bool) {
        #expect(!Self.topologyNames(in: line).isEmpty == flagged)
    }

    @Test func theEngineNamesNoTopology() throws {
        let root = Repository.root.appendingPathComponent("Sources/DroverEngine").path
        var offenders: [String] = []
        for case let file as String in FileManager.default.enumerator(atPath: root) ?? NSEnumerator()
        where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
            offenders += Self.topologyNames(in: text).map { "Sources/DroverEngine/\(file):\($0)" }
        }
        #expect(
            offenders.isEmpty,
            "the engine names no topology: move it into the topology's module behind the seam: \(offenders)")
    }
}
