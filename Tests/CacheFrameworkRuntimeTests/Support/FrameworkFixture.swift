// A framework under test: a temp data directory, a SQLite store, a local backend over real processes and the driver
// service, run in a task; plus polling helpers with deadlines (real processes: poll, never fixed sleeps).

import CacheFramework
import CacheFrameworkRuntime
import CoreMetrics
import Foundation
import Synchronization
import Logging

enum TestPaths {
    /// The package root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// Where `swift build` put the executables (cache-node, cachectl).
    static var buildDirectory: String {
        ProcessInfo.processInfo.environment["CACHE_BUILD_DIR"] ?? root.appendingPathComponent(".build/debug").path
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

/// One framework instance over a data directory; `stop()` ends it gracefully.
final class FrameworkFixture: Sendable {
    let directory: String
    let driver: FrameworkDriver
    let backend: LocalBackend
    let store: SQLiteStateStore
    private let runTask: Task<Void, any Error>

    /// The next of 45 blocks of 200 loopback ports in 20000–28999 (below the ephemeral range), starting at a random
    /// block: fixtures of one test run never share ports (random blocks did: a member then failed to bind and was
    /// replaced), and test runs side by side rarely do.
    static func portBase() -> UInt64 {
        let block = nextPortBlock.withLock { next in
            defer { next += 1 }
            return next
        }
        return 20_000 + UInt64(block % 45) * 200
    }
    private static let nextPortBlock = Mutex(Int.random(in: 0..<45))

    init(directory: String, agents: Int, firstPort: UInt64, keepTasksOnShutdown: Bool = false, memMB: Double = 4096,
        metricsFactory: (any MetricsFactory)? = nil, isolation: LocalIsolation = .process,
        network: NamespaceNetwork = NamespaceNetwork(), autoscaleInterval: Duration = .seconds(5)
    ) throws {
        precondition(agents <= 2, "a portBase() block holds two agents' 100 ports each")
        self.directory = directory
        store = try SQLiteStateStore(directory: directory)
        let control = RESPNodeControl(timeout: .milliseconds(500))
        var logger = Logger(label: "test.framework")
        logger.logLevel = .warning
        backend = LocalBackend(
            configuration: LocalBackendConfiguration(
                agents: LocalAgentSpec.split(count: agents, cpus: Double(agents) * 4, memMB: memMB, firstPort: firstPort, portsPerAgent: 100),
                sandboxDirectory: directory + "/sandboxes", executableSearchPaths: [TestPaths.buildDirectory],
                isolation: isolation, network: network, offerInterval: .milliseconds(200), killGracePeriod: .seconds(2)),
            journal: store, frameworkID: FrameworkID("test-framework"), logger: logger,
            readiness: control.pingReadiness())
        var configuration = FrameworkDriver.Configuration()
        configuration.keepTasksOnShutdown = keepTasksOnShutdown
        configuration.tickInterval = .milliseconds(200)
        configuration.scheduler.offsetQueryTimeoutSeconds = 1
        configuration.autoscaleInterval = autoscaleInterval
        driver = FrameworkDriver(
            backend: backend, store: store, control: control, configuration: configuration, metricsFactory: metricsFactory,
            logger: logger, credentials: try FrameworkAuthority(directory: directory + "/authority"))
        let driver = driver
        runTask = Task { try await driver.run() }
    }

    /// Stops the driver (cancellation: the backend kills tasks unless `keepTasksOnShutdown`).
    func stop() async {
        runTask.cancel()
        _ = try? await runTask.value
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass.
    @discardableResult
    static func waitUntil(
        _ what: String, seconds: Double = 30, _ condition: () async throws -> Bool
    ) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError(description: "timed out after \(seconds) s waiting until \(what)")
    }

    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cf-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Whether a process with this pid exists (and is not a zombie).
func processExists(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}
