import Foundation

// Writes a Swift file that holds files' text as an enum, so that the `drover` binary alone is a working
// install (its playbooks, its report's style sheet). Run by the EmbedPlaybooks and EmbedReportAssets
// build-tool plugins on every build:
//     drover-embed-files ENUM OUTPUT.swift FILE...

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2, arguments[0].allSatisfy({ $0.isLetter || $0.isNumber }) else {
    FileHandle.standardError.write(Data("usage: drover-embed-files ENUM OUTPUT.swift FILE...\n".utf8))
    exit(64)
}
let (name, output) = (arguments[0], arguments[1])

/// A raw string literal that holds `text` exactly: enough `#` that no line of it can end the literal.
func rawLiteral(_ text: String) -> String {
    var hashes = "#"
    while text.contains("\"\"\"" + hashes) || text.contains("\\" + hashes) { hashes += "#" }
    return "\(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)"
}

var entries: [String] = []
for path in arguments.dropFirst(2).sorted() {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("drover-embed-files: cannot read \(path)\n".utf8))
        exit(1)
    }
    let file = URL(fileURLWithPath: path).lastPathComponent
    entries.append("        (name: \(rawLiteral(file)), text: \(rawLiteral(String(decoding: data, as: UTF8.self)))),")
}
let source = """
    // Generated at build time by drover-embed-files; do not edit.

    /// Files compiled into the binary: file name and text.
    enum \(name) {
        static let files: [(name: String, text: String)] = [
    \(entries.joined(separator: "\n"))
        ]
    }

    """
do {
    // Rewrite only on change, so an unchanged set of files does not recompile the module.
    if FileManager.default.contents(atPath: output) != Data(source.utf8) {
        try source.write(toFile: output, atomically: true, encoding: .utf8)
    }
} catch {
    FileHandle.standardError.write(Data("drover-embed-files: cannot write \(output): \(error)\n".utf8))
    exit(1)
}
