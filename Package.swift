// swift-tools-version:6.0
import PackageDescription

/// Drover: rolling upgrades and guided repairs of Chef Backend clusters over SSH.
///
/// Layout (one job per module):
/// - `CLibSSH2`, `CCrypto`: system libraries (Debian's libssh2-1-dev, libssl-dev).
/// - `DroverSSH`: the SSH transport over libssh2; knows nothing about Chef.
/// - `DroverTestSupport`: real OpenSSH servers on loopback for tests and the sandbox.
/// - `DroverInventory`, `DroverCluster`, `DroverReporting`, `DroverEngine`: inventory, cluster model and parsers,
///   events and output, playbooks and the runner (with the built-in playbooks compiled in).
/// - `DroverCommands`: what each `drover` command does, over the engine.
/// - `drover`: the command-line tool; parses arguments and calls into the libraries.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Drover",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "drover", targets: ["drover"]),
        .library(name: "DroverSSH", targets: ["DroverSSH"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"]), .brew(["libssh2"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl"])]
        ),
        .target(
            name: "DroverSSH",
            dependencies: [
                "CLibSSH2", "CCrypto",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "DroverInventory",
            dependencies: ["DroverSSH", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "DroverCluster",
            swiftSettings: strict
        ),
        .target(
            name: "DroverReporting",
            dependencies: ["DroverCluster"],
            exclude: ["Assets"],
            swiftSettings: strict,
            plugins: ["EmbedReportAssets"]
        ),
        .target(
            name: "DroverEngine",
            dependencies: [
                "DroverSSH", "DroverInventory", "DroverCluster", "DroverReporting",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Each topology is a module of its own over the engine's seam: its readings and parsers, its
        // implementation of `Topology`, its status view. `DroverTopologies` is the one list of them.
        // Each compiles its playbooks in (`EmbeddedPlaybooks` names their directory under Playbooks/).
        .target(
            name: "DroverChefBackend",
            dependencies: [
                "DroverSSH", "DroverInventory", "DroverCluster", "DroverReporting", "DroverEngine",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["EmbeddedPlaybooks"],
            swiftSettings: strict,
            plugins: ["EmbedPlaybooks"]
        ),
        .target(
            name: "DroverDRBDPair",
            dependencies: ["DroverSSH", "DroverInventory", "DroverCluster", "DroverReporting", "DroverEngine"],
            exclude: ["EmbeddedPlaybooks"],
            swiftSettings: strict,
            plugins: ["EmbedPlaybooks"]
        ),
        .target(
            name: "DroverTopologies",
            dependencies: [
                "DroverSSH", "DroverInventory", "DroverEngine", "DroverChefBackend", "DroverDRBDPair",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "DroverCommands",
            dependencies: [
                "DroverSSH", "DroverInventory", "DroverCluster", "DroverReporting", "DroverEngine", "DroverTopologies",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Playbooks/TOPOLOGY/*.yml compiled into each topology's module, and the HTML report's Assets/ into
        // DroverReporting, at build time, so the drover binary alone is a working install: build-tool plugins
        // and the generator they run.
        .executableTarget(name: "drover-embed-files", swiftSettings: strict),
        .plugin(
            name: "EmbedPlaybooks", capability: .buildTool(), dependencies: ["drover-embed-files"],
            path: "Sources/EmbedPlaybooks"),
        .plugin(
            name: "EmbedReportAssets", capability: .buildTool(), dependencies: ["drover-embed-files"],
            path: "Sources/EmbedReportAssets"),
        .target(name: "CPseudoTerminal"),
        .target(
            name: "DroverTestSupport",
            dependencies: [
                "DroverSSH", "CPseudoTerminal",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "drover",
            dependencies: [
                "DroverSSH", "DroverCommands", "DroverEngine", "DroverInventory", "DroverReporting", "DroverTopologies",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "drover-bench",
            dependencies: [
                "DroverSSH", "DroverTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/SSHRoundTrip",
            swiftSettings: strict
        ),
        // The simulated Chef Backend node (Fixtures/Simulator): a state library and the executable that
        // answers as chef-backend-ctl, dpkg, rpm, yum and df on each sandbox node. It shares no code with
        // Drover's parsers, so Drover cannot come to depend on its quirks.
        .target(
            name: "SimulatedChefBackend",
            path: "Fixtures/Simulator/SimulatedChefBackend",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "chef-backend-sim",
            dependencies: ["SimulatedChefBackend"],
            path: "Fixtures/Simulator/chef-backend-sim",
            swiftSettings: strict
        ),
        .target(
            name: "DroverSandbox",
            dependencies: ["DroverSSH", "DroverTestSupport", "SimulatedChefBackend"],
            path: "Fixtures/Sandbox/DroverSandbox",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "drover-sandbox",
            dependencies: [
                "DroverSandbox", "SimulatedChefBackend",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Fixtures/Sandbox/drover-sandbox",
            swiftSettings: strict
        ),
        // The parsers of outside input under libFuzzer (`make fuzz`); in other builds it replays a corpus.
        .executableTarget(
            name: "drover-fuzz",
            dependencies: [
                "DroverEngine", "DroverCluster", "DroverInventory", "DroverReporting", "DroverSSH", "DroverChefBackend",
                "DroverDRBDPair", "DroverTopologies",
            ],
            path: "Fixtures/Fuzz/drover-fuzz",
            swiftSettings: strict
        ),
        .testTarget(
            name: "DroverSSHTests",
            dependencies: [
                "DroverSSH", "DroverTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DroverInventoryTests",
            dependencies: ["DroverInventory", "DroverSSH", "DroverTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DroverEngineTests",
            dependencies: [
                "DroverEngine", "DroverCluster", "DroverInventory", "DroverReporting", "DroverSSH", "DroverTestSupport",
                "DroverChefBackend", "DroverDRBDPair", "DroverTopologies",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DroverReportingTests",
            dependencies: ["DroverReporting", "DroverCluster", "DroverChefBackend", "DroverDRBDPair"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DroverClusterTests",
            dependencies: ["DroverCluster", "DroverChefBackend", "DroverDRBDPair", "DroverTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SimulatorTests",
            dependencies: ["SimulatedChefBackend", "DroverSandbox", "DroverSSH", "DroverTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DroverCLITests",
            dependencies: [
                "DroverSSH", "DroverTestSupport", "DroverSandbox", "SimulatedChefBackend",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
    ]
)
