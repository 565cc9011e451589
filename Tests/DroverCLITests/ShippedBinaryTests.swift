import DroverTestSupport
import Foundation
import Testing

/// What users install: the release binary on its own, and the Debian package `make deb` builds.
@Suite("the binary users install", .timeLimit(.minutes(3 * TestTime.factor)))
struct ShippedBinaryTests {
    /// The binary under test, copied alone into an empty directory (no Playbooks/, no build tree).
    static func copiedAlone() async throws -> String {
        try await Processes.offPool {
            let directory = try temporaryDirectory("bin")
            try Processes.copyExecutable(DroverBinary.path, to: directory + "/drover")
            return directory + "/drover"
        }
    }

    @Test(needsSandbox) func aloneInAnEmptyDirectoryItListsItsPlaybooksAndUpgradesTheSandbox() async throws {
        let alone = try await Self.copiedAlone()
        let listed = try await Processes.offPool {
            try Processes.run(alone, ["playbooks"], environment: try DroverBinary.environment())
        }
        #expect(listed.status == 0, "\(listed.stderr)")
        for name in ["upgrade", "set-failover", "resync-node", "replace-failed-node"] {
            #expect(
                listed.stdout.split(separator: "\n").contains { $0.hasPrefix(name + " ") && $0.contains(" built-in ") },
                "\(name) is built in: \(listed.stdout)")
        }
        try await SandboxCluster.with { cluster in
            let output = try await cluster.drover(["upgrade", "--yes"], binary: alone)
            #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
            try await expectUpgradedSafely(cluster)
        }
    }

    @Test func aDirectoryOfPlaybooksAddsAndOverridesByName() async throws {
        let directory = try temporaryDirectory("playbooks")
        let override =
            "name: set-failover\ndescription: A site's own set-failover.\npreflight: basic\nsteps:\n  - name: a\n    target: leader\n    run: chef-backend-ctl set-cluster-failover on\n"
        let added =
            "name: site-check\ndescription: A site's own check.\nsteps:\n  - name: a\n    target: all\n    run: chef-backend-ctl status\n"
        try override.write(toFile: directory + "/set-failover.yml", atomically: true, encoding: .utf8)
        try added.write(toFile: directory + "/site-check.yml", atomically: true, encoding: .utf8)
        for environment in [["DROVER_PLAYBOOKS": directory], [:]] {
            let arguments = ["playbooks"] + (environment.isEmpty ? ["--playbooks", directory] : [])
            let output = try await DroverBinary.run(arguments, environment: environment)
            #expect(output.status == 0, "\(output.stderr)")
            let lines = output.stdout.split(separator: "\n")
            #expect(
                lines.contains {
                    $0.hasPrefix("set-failover ") && $0.contains(directory + "/set-failover.yml")
                        && $0.contains("A site's own")
                })
            #expect(lines.contains { $0.hasPrefix("site-check ") && $0.contains(directory + "/site-check.yml") })
            #expect(lines.contains { $0.hasPrefix("upgrade ") && $0.contains(" built-in ") })
        }
        let missing = try await DroverBinary.run(["playbooks", "--playbooks", directory + "/nope"])
        #expect(
            missing.status == 64 && missing.stderr.contains(directory + "/nope: no such directory of playbooks"),
            "\(missing.stderr)")
        try "name: other\ndescription: d\nsteps:\n  - name: a\n    run: true\n".write(
            toFile: directory + "/misnamed.yml", atomically: true, encoding: .utf8)
        let misnamed = try await DroverBinary.run(["playbooks", "--playbooks", directory])
        #expect(
            misnamed.status == 64
                && misnamed.stderr.contains("misnamed.yml:1: name: 'other' differs from the file name"),
            "\(misnamed.stderr)")
    }

    @Test(
        .enabled(
            if: ProcessInfo.processInfo.environment["DROVER_DEB"] != nil,
            "make test builds the package and sets DROVER_DEB"))
    func thePackageRunsWithoutTheSwiftToolchain() async throws {
        let deb = try #require(ProcessInfo.processInfo.environment["DROVER_DEB"])
        let root = try temporaryDirectory("deb")
        let depends = try await Processes.offPool { () -> String in
            #expect(try Processes.run("/usr/bin/dpkg-deb", ["-x", deb, root]).status == 0)
            return try Processes.run("/usr/bin/dpkg-deb", ["-f", deb, "Depends"]).stdout
        }
        #expect(
            depends.contains("libssh2-1") && depends.contains("libssl3") && depends.contains("libc6"),
            "Depends: \(depends)")
        #expect(!depends.lowercased().contains("swift"), "Depends: \(depends)")
        let binary = root + "/usr/bin/drover"
        for file in [
            "/usr/share/man/man1/drover.1", "/usr/share/bash-completion/completions/drover",
            "/usr/share/zsh/site-functions/_drover", "/usr/share/fish/vendor_completions.d/drover.fish",
        ] {
            #expect(FileManager.default.fileExists(atPath: root + file), "the package has \(file)")
        }
        let libraries = try await Processes.offPool { try Processes.run("/usr/bin/ldd", [binary]) }
        #expect(libraries.status == 0)
        #expect(!libraries.stdout.contains("not found"), "\(libraries.stdout)")
        #expect(
            !libraries.stdout.lowercased().contains("swift") && !libraries.stdout.contains("libdispatch")
                && !libraries.stdout.contains("libFoundation"),
            "no library of the Swift toolchain: \(libraries.stdout)")
        // Run without the toolchain on the library path or PATH.
        let clean = try DroverBinary.environment(["LD_LIBRARY_PATH": "", "PATH": "/usr/bin:/bin"])
        let listed = try await Processes.offPool { try Processes.run(binary, ["playbooks"], environment: clean) }
        #expect(
            listed.status == 0 && listed.stdout.contains("upgrade ") && listed.stdout.contains("built-in"),
            "\(listed.stderr)")
        let manual = try String(contentsOfFile: root + "/usr/share/man/man1/drover.1", encoding: .utf8)
        #expect(
            manual.contains(".Dt DROVER 1") && manual.contains("upgrade"), "swift-argument-parser's manual of drover")
        #expect(
            !manual.split(separator: "\n", omittingEmptySubsequences: false).dropLast().contains(""),
            "no empty input line (man warns of each): a paragraph break is .Pp")
        // Rendered as man renders it, with every warning on.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") {
            let page = root + "/usr/share/man/man1/drover.1"
            let rendered = try await Processes.offPool {
                try Processes.run("/usr/bin/groff", ["-mandoc", "-Tutf8", "-ww", "-z", page])
            }
            #expect(rendered.stderr.isEmpty, "groff warns: \(rendered.stderr)")
        }
    }
}
