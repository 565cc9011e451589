import Foundation

// Writes a Swift file that holds the built-in playbooks' text, so that the `drover` binary alone is a
// working install. Run by the EmbedPlaybooks build-tool plugin on every build:
//     drover-embed-playbooks OUTPUT.swift Playbooks/a.yml Playbooks/b.yml ...

let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: drover-embed-playbooks OUTPUT.swift PLAYBOOK.yml...\n".utf8))
    exit(64)
}

/// A raw string literal that holds `text` exactly: enough `#` that no line of it can end the literal.
func rawLiteral(_ text: String) -> String {
    var hashes = "#"
    while text.contains("\"\"\"" + hashes) || text.contains("\\" + hashes) { hashes += "#" }
    return "\(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)"
}

var entries: [String] = []
for path in arguments.dropFirst().sorted() {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("drover-embed-playbooks: cannot read \(path)\n".utf8))
        exit(1)
    }
    let name = URL(fileURLWithPath: path).lastPathComponent
    entries.append("        (name: \(rawLiteral(name)), text: \(rawLiteral(String(decoding: data, as: UTF8.self)))),")
}
let source = """
    // Generated at build time from Playbooks/*.yml by drover-embed-playbooks; do not edit.

    /// The playbooks compiled into the binary: file name and text.
    enum BuiltInPlaybookFiles {
        static let files: [(name: String, text: String)] = [
    \(entries.joined(separator: "\n"))
        ]
    }

    """
do {
    // Rewrite only on change, so an unchanged playbook set does not recompile the module.
    if FileManager.default.contents(atPath: output) != Data(source.utf8) {
        try source.write(toFile: output, atomically: true, encoding: .utf8)
    }
} catch {
    FileHandle.standardError.write(Data("drover-embed-playbooks: cannot write \(output): \(error)\n".utf8))
    exit(1)
}
