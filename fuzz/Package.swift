// swift-tools-version:6.1
// The fuzz targets of cache-node, built apart from the main package because they need
// `-sanitize=fuzzer,address` (see run.sh). `RESPServerSubset/` holds symlinks to the decoder's three source files
// (they depend only on NIOCore), so the fuzzer builds quickly without the rest of the server.
import PackageDescription

let package = Package(
    name: "cache-node-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3")
    ],
    targets: [
        .target(
            name: "RESPServer",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "RESPServerSubset",
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(
            name: "FuzzRESPDecoder",
            dependencies: ["RESPServer", .product(name: "NIOCore", package: "swift-nio")],
            path: "FuzzRESPDecoder",
            swiftSettings: [
                .define("FUZZING"),
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
    ]
)
