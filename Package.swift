// swift-tools-version:6.1
// The distributed cache framework with secure replication: cache-node (a Redis-compatible server),
// ReplicationSec (the secure channel), CacheFramework (the offer-based scheduler) and cachectl.
import PackageDescription

/// Strict settings for every target of ours (Swift 6 mode is the default for tools 6.x).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The hot path is compiled with exclusivity checks off in release builds, as swift-nio does.
let hotPathSettings: [SwiftSetting] =
    strictSettings + [
        .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))
    ]

let package = Package(
    name: "cache-framework",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cache-node", targets: ["CacheNodeServer"]),
        .executable(name: "cachectl", targets: ["cachectl"]),
        .executable(name: "cache-bench", targets: ["CacheBench"]),
        .executable(name: "placement-bench", targets: ["PlacementBench"]),
        .executable(name: "snapshot-bench", targets: ["SnapshotBench"]),
        .executable(name: "provision-bench", targets: ["ProvisionBench"]),
        .executable(name: "fake-mesos-master", targets: ["FakeMesosMaster"]),
        .library(name: "CacheNode", targets: ["CacheNode"]),
        .library(name: "ReplicationSec", targets: ["ReplicationSec"]),
        .library(name: "CacheFramework", targets: ["CacheFramework"]),
        .executable(name: "vnf-sample", targets: ["VNFSample"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // MARK: cache node layers: protocol facade, storage engine, command families, executable.
        .target(
            name: "RESPServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "CacheStore",
            dependencies: [
                "CMemoryPrefetch",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "CacheNode",
            dependencies: [
                "RESPServer", "CacheStore", "CProcessStats", "ReplicationSec", "CLua",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(name: "CProcessStats"),
        // EVAL's Lua 5.1 engine (Debian liblua5.1-0-dev, lua-cjson-dev, lua-bitop-dev; SHA1 from libssl-dev).
        .target(
            name: "CLua",
            linkerSettings: [
                .linkedLibrary("lua5.1"), .linkedLibrary("lua5.1-cjson"), .linkedLibrary("lua5.1-bitop"),
                .linkedLibrary("crypto"),
            ]
        ),
        .target(name: "CMemoryPrefetch"),
        .executableTarget(
            name: "CacheNodeServer",
            dependencies: [
                "CacheNode",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/cache-node",
            swiftSettings: strictSettings
        ),

        // MARK: secure channel
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
            swiftSettings: strictSettings
        ),

        // MARK: scheduler framework
        .target(
            name: "CacheFramework",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The framework's runtime: SQLite state store, local process backend, RESP node control, driver service.
        .target(
            name: "CacheFrameworkRuntime",
            dependencies: [
                "CacheFramework",
                "ReplicationSec",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The etcd client (Etcd/): JSON gateway over HTTP.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The framework's HTTP API (Hummingbird) and Prometheus metrics.
        .target(
            name: "CacheFrameworkAPI",
            dependencies: [
                "CacheFramework", "CacheFrameworkRuntime",
                "CacheFrameworkNFV", "CacheFrameworkNFVRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // The Mesos v1 scheduler HTTP API backend (AsyncHTTPClient, RecordIO event stream).
        .target(
            name: "CacheFrameworkMesos",
            dependencies: [
                "CacheFramework", "CacheFrameworkRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // A wire-exact fake Mesos master (Hummingbird) whose agents run tasks through the local backend.
        .target(
            name: "MesosFakeMaster",
            dependencies: [
                "CacheFramework", "CacheFrameworkRuntime", "CacheFrameworkMesos",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // MARK: NFV on the scheduler core: descriptors (Yams), lifecycle state machines, its runtime, sample VNFs
        .target(
            name: "CacheFrameworkNFV",
            dependencies: [
                "CacheFramework",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CacheFrameworkNFVRuntime",
            dependencies: [
                "CacheFramework", "CacheFrameworkNFV", "CacheFrameworkRuntime",
                "ReplicationSec",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "FakeMesosMaster",
            dependencies: [
                "MesosFakeMaster", "CacheFramework", "CacheFrameworkMesos", "CacheFrameworkRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/fake-mesos-master",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "VNFSample",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                "ReplicationSec",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/vnf-sample",
            swiftSettings: strictSettings
        ),

        // MARK: command line
        .executableTarget(
            name: "cachectl",
            dependencies: [
                "ReplicationSec", "CacheFramework", "CacheFrameworkRuntime", "CacheFrameworkAPI", "CacheFrameworkMesos",
                "CacheFrameworkNFVRuntime",
                "CacheFrameworkNFV",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: libhiredis and the load generator built on it
        // No pkgConfig: hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM rejects with a warning; the
        // headers are included as <hiredis/…> from /usr/include and the modulemap links hiredis and event.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev", "libevent-dev"])]
        ),
        .executableTarget(
            name: "CacheBench",
            dependencies: [
                "CHiredis",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "benchmarks/LoadGenerator",
            swiftSettings: strictSettings
        ),

        // MARK: secure channel benchmark (prints a table; not a test)
        .executableTarget(
            name: "SecBench",
            dependencies: [
                "ReplicationSec",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "benchmarks/SecBench",
            swiftSettings: strictSettings
        ),
        // MARK: snapshot stall benchmark (release build: `swift run -c release snapshot-bench`)
        .executableTarget(
            name: "SnapshotBench",
            dependencies: ["CacheStore"],
            path: "benchmarks/SnapshotBench",
            swiftSettings: strictSettings
        ),
        // MARK: placement benchmark (release build: `swift run -c release placement-bench`)
        .executableTarget(
            name: "PlacementBench",
            dependencies: ["CacheFramework"],
            path: "benchmarks/PlacementBench",
            swiftSettings: strictSettings
        ),

        // MARK: provisioning benchmark (`swift build -c release --product provision-bench --product cache-node`)
        .executableTarget(
            name: "ProvisionBench",
            dependencies: [
                "CacheFramework", "CacheFrameworkRuntime",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "benchmarks/ProvisionBench",
            swiftSettings: strictSettings
        ),

        // MARK: tests (folders mirror Sources/)
        .testTarget(
            name: "RESPServerTests",
            dependencies: [
                "RESPServer", "LoopbackTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            // The fuzz corpus, read through #filePath by FuzzRegressionTests.
            exclude: ["FuzzCases"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "CacheStoreTests", dependencies: ["CacheStore"], swiftSettings: strictSettings),
        .target(
            name: "CacheNodeTestSupport",
            dependencies: [
                "CacheNode", "RESPServer", "CacheStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/CacheNodeTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CacheNodeTests",
            dependencies: [
                "CacheNode", "RESPServer", "CacheStore", "CacheNodeTestSupport", "LoopbackTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["CHiredis", "CacheStore", "EtcdTestSupport", "LoopbackTestSupport"],
            exclude: ["Clients", "Fixtures"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReplicationSecTests",
            dependencies: [
                "ReplicationSec",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            exclude: ["Vectors"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "cachectlTests",
            dependencies: [
                "cachectl", "ReplicationSec", "LoopbackTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "CacheFrameworkTests", dependencies: ["CacheFramework"], swiftSettings: strictSettings),
        // Starts real etcd members (single or 3-member clusters on free loopback ports) for the HA tests.
        .target(name: "EtcdTestSupport", dependencies: ["LoopbackTestSupport"], path: "Tests/EtcdTestSupport", swiftSettings: strictSettings),
        // Blocking loopback sockets (raw RESP/HTTP clients, free ports, send-and-read-to-close) for tests; no dependencies.
        .target(name: "LoopbackTestSupport", path: "Tests/LoopbackTestSupport", swiftSettings: strictSettings),
        .testTarget(
            name: "CacheFrameworkNFVTests",
            dependencies: [
                "CacheFramework", "CacheFrameworkNFV", "CacheFrameworkNFVRuntime", "CacheFrameworkRuntime",
                "CacheFrameworkAPI", "LoopbackTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                "ReplicationSec",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CacheFrameworkRuntimeTests",
            dependencies: [
                "CacheFramework", "CacheFrameworkRuntime", "CacheFrameworkAPI", "EtcdTestSupport",
                "ReplicationSec",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CacheFrameworkMesosTests",
            dependencies: [
                "CacheFramework", "CacheFrameworkRuntime", "CacheFrameworkMesos", "MesosFakeMaster",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
