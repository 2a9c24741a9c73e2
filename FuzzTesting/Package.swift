// swift-tools-version:6.1
// libFuzzer targets for ReplicationSec, kept out of the main package because they need -sanitize=fuzzer.
// Build and run (see README.md):
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//   .build/debug/FuzzSecureFrames -max_len=4096 FailCases/
import PackageDescription

let package = Package(
    name: "FuzzTesting",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "cache-framework", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzSecureFrames",
            dependencies: [
                .product(name: "ReplicationSec", package: "cache-framework"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        )
    ]
)
