import Foundation

/// `dpkg -i` and `dpkg-query`, and the package installation they share with `rpm` and `yum`.
extension Invocation {
    /// Reads the version from a simulated package file (`Version: 2.3.16-1` line) or its name.
    static func packageVersion(path: String) -> String? {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Version: ") })
        {
            return String(line.dropFirst("Version: ".count))
        }
        return nil
    }

    func install(_ path: String, format: String) throws -> Int32 {
        guard FileManager.default.fileExists(atPath: path) else {
            err(
                format == "deb"
                    ? "dpkg: error: cannot access archive '\(path)': No such file or directory\n"
                    : "error: open of \(path) failed: No such file or directory\n")
            return format == "deb" ? 2 : 1
        }
        guard let full = Self.packageVersion(path: path) else {
            err("\(format == "deb" ? "dpkg-deb" : "rpm"): '\(path)' is not a chef-backend package\n")
            return 2
        }
        return try store.update { cluster, _ in
            guard let index = cluster.index(node) else { return 1 }
            if cluster.nodes[index].faults.contains(.diskFull) {
                err("dpkg: error processing archive \(path): No space left on device\n")
                return 1
            }
            let upstream = String(full.split(separator: "-").first ?? Substring(full))
            let previous = installedVersion(cluster.nodes[index]) ?? "none"
            if format == "deb" {
                out("(Reading database ... 48213 files and directories currently installed.)\n")
                out(
                    "Preparing to unpack \(path) ...\nUnpacking chef-backend (\(full)) over (\(previous)-1) ...\nSetting up chef-backend (\(full)) ...\n"
                )
            } else {
                out(
                    "Preparing...                          ################################# [100%]\nUpdating / installing...\n   1:chef-backend-\(full)     ################################# [100%]\n"
                )
            }
            let manifest = cluster.nodes[index].hostPath(NodePaths.manifest)
            try? FileManager.default.createDirectory(
                atPath: (manifest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let json =
                #"{"manifest_format":2,"software":{},"build_version":"\#(upstream)","build_git_revision":"simulated","license":"Chef EULA"}"#
            _ = FileManager.default.createFile(atPath: manifest, contents: Data((json + "\n").utf8))
            return 0
        }
    }

    func dpkg(_ arguments: [String]) throws -> Int32 {
        guard arguments.count == 2, arguments[0] == "-i" || arguments[0] == "--install" else {
            err("dpkg: only 'dpkg -i FILE.deb' is simulated\n")
            return 2
        }
        return try install(arguments[1], format: "deb")
    }

    func installedFull() throws -> String? {
        try store.update { cluster, _ in cluster.node(node).flatMap(installedVersion).map { $0 + "-1" } }
    }

    func dpkgQuery(_ arguments: [String]) throws -> Int32 {
        guard arguments.last == "chef-backend", arguments.contains("-W") || arguments.contains("--show") else {
            err("dpkg-query: only '-W [-f=FORMAT] chef-backend' is simulated\n")
            return 2
        }
        guard let version = try installedFull() else {
            err("dpkg-query: no packages found matching chef-backend\n")
            return 1
        }
        let format =
            arguments.first { $0.hasPrefix("-f=") || $0.hasPrefix("--showformat=") }.map {
                String($0[$0.index(after: $0.firstIndex(of: "=")!)...])
            }
            ?? (arguments.firstIndex(of: "-f").map { arguments[$0 + 1] })
        if let format {
            out(
                format.replacingOccurrences(of: "${Version}", with: version).replacingOccurrences(
                    of: "${Package}", with: "chef-backend"
                ).replacingOccurrences(of: "\\n", with: "\n"))
        } else {
            out("chef-backend\t\(version)\n")
        }
        return 0
    }
}
