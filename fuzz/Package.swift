// swift-tools-version:6.1
// The libFuzzer targets of the project, built apart from the main package because they need
// `-sanitize=fuzzer,address -parse-as-library` (see run.sh). Their modules come in through symlinks to the main
// package's sources (`RESPServerSubset/` holds the decoder's files, which depend only on NIOCore;
// `ReplicationSecModule` is the whole secure-channel module), so the fuzzers build without the rest of the server.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "cache-node-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    ],
    targets: [
        // MARK: RESP command decoder
        .target(
            name: "RESPServer",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "RESPServerSubset",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "FuzzRESPDecoder",
            dependencies: ["RESPServer", .product(name: "NIOCore", package: "swift-nio")],
            path: "FuzzRESPDecoder",
            swiftSettings: strictSettings + [.define("FUZZING")]
        ),

        // MARK: secure channel frames, handshake and records
        .target(
            name: "ReplicationSec",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "ReplicationSecModule",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "FuzzSecureFrames",
            dependencies: [
                "ReplicationSec",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "FuzzSecureFrames",
            swiftSettings: strictSettings
        ),
    ]
)
