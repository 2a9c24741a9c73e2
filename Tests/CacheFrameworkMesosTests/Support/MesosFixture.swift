// Test support for the Mesos backend: a manual clock, an event recorder, a fake master cluster on free loopback
// ports with a backend subscribed to it, and polling with deadlines (real processes and sockets: poll, never
// sleep for a fixed time).

import AsyncHTTPClient
import CacheFramework
import CacheFrameworkMesos
import CacheFrameworkRuntime
import Foundation
import Logging
import MesosFakeMaster
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

enum TestPaths {
    /// The package root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// Where `swift build` put the executables (cache-node).
    static var buildDirectory: String {
        ProcessInfo.processInfo.environment["CACHE_BUILD_DIR"] ?? root.appendingPathComponent(".build/debug").path
    }

    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mesos-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The first of `blocks` consecutive 100-port blocks in 11000–19999 (below the ephemeral range and apart from the
    /// local backend tests' 20000–28999), handed out by a counter that starts at a random block: fixtures of one run
    /// never share ports (one agent takes a block), and runs side by side rarely do.
    static func portBase(blocks: Int) -> UInt64 {
        precondition(blocks >= 1 && blocks <= 90)
        let first = nextPortBlock.withLock { next in
            if next % 90 + blocks > 90 { next += 90 - next % 90 }
            defer { next += blocks }
            return next % 90
        }
        return 11_000 + UInt64(first) * 100
    }
    private static let nextPortBlock = Mutex(Int.random(in: 0..<90))
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
func waitUntil(_ what: String, seconds: Double = 20, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TimedOut(description: "timed out after \(seconds) s waiting until \(what)")
}

/// A clock that only moves when the test advances it; sleepers wake when their deadline passes (or throw
/// `CancellationError` when their task is cancelled).
final class ManualClock: FrameworkClock {
    private struct Sleeper {
        var id: Int
        var deadline: Double
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var now: Double = 1_000
        var nextID = 0
        var sleepers: [Sleeper] = []
        var cancelled: Set<Int> = []
    }
    private let state = Mutex(State())

    func now() -> SchedulerTime { SchedulerTime(seconds: state.withLock { $0.now }) }

    func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state -> Bool in
                    if state.cancelled.remove(id) != nil { return true }
                    let deadline = state.now + seconds
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                if let index = state.sleepers.firstIndex(where: { $0.id == id }) { return state.sleepers.remove(at: index) }
                state.cancelled.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline passed.
    func advance(by seconds: Double) {
        let due = state.withLock { state in
            state.now += seconds
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.map(\.continuation)
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for continuation in due { continuation.resume() }
    }

    /// How many sleepers wait.
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }
}

/// Collects a backend's events for assertions.
final class EventRecorder: Sendable {
    private final class Storage: Sendable {
        let events = Mutex<[BackendEvent]>([])
    }
    private let storage: Storage
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<BackendEvent>) {
        let storage = Storage()
        self.storage = storage
        task = Task { for await event in stream { storage.events.withLock { $0.append(event) } } }
    }

    deinit { task.cancel() }

    var all: [BackendEvent] { storage.events.withLock { $0 } }

    var offers: [Offer] {
        all.flatMap { event -> [Offer] in
            if case .offers(let offers) = event { return offers }
            return []
        }
    }

    var updates: [TaskStatus] {
        all.compactMap { event in
            if case .update(let status) = event { return status }
            return nil
        }
    }

    var subscriptions: [FrameworkID] {
        all.compactMap { event in
            if case .subscribed(let id) = event { return id }
            return nil
        }
    }

    var disconnects: Int { all.filter { $0 == .disconnected }.count }

    var rescinded: [OfferID] {
        all.compactMap { event in
            if case .rescind(let id) = event { return id }
            return nil
        }
    }

    func updates(of task: TaskID) -> [TaskStatus] { updates.filter { $0.taskID == task } }
}

/// A fake master cluster (two masters) with a backend.
final class MesosFixture: Sendable {
    let server: FakeMesosMasterServer
    let urls: [MasterURL]
    let directory: String
    let firstPort: UInt64
    /// Every backend made by ``backend(master:frameworkInfo:clock:frameworkID:)``: `stop()` shuts them down before
    /// the masters, so no backend resubscribes into a listener that is shutting down (Hummingbird traps in debug
    /// builds when a connection is accepted while its server stops).
    private let created = Mutex<[MesosBackend]>([])

    var master: FakeMesosMaster { server.master }

    init(
        agents: Int = 2, heartbeatInterval: Duration = .seconds(2), offerTimeout: Duration? = nil,
        updateRetryInterval: Duration = .seconds(10), agentUnreachableTimeout: Duration = .seconds(75),
        readiness: @escaping LocalBackend.ReadinessCheck = { _ in true }
    ) async throws {
        directory = TestPaths.temporaryDirectory()
        firstPort = TestPaths.portBase(blocks: agents)
        var logger = Logger(label: "test.fake-mesos-master")
        logger.logLevel = .critical
        var configuration = FakeMesosMaster.Configuration(
            agents: LocalAgentSpec.split(count: agents, cpus: Double(agents) * 4, memMB: Double(agents) * 2048, firstPort: firstPort, portsPerAgent: 100),
            sandboxDirectory: directory + "/sandboxes", executableSearchPaths: [TestPaths.buildDirectory],
            masterCount: 2, heartbeatInterval: heartbeatInterval, offerTimeout: offerTimeout,
            updateRetryInterval: updateRetryInterval, offerInterval: .milliseconds(100), readiness: readiness)
        configuration.agentUnreachableTimeout = agentUnreachableTimeout
        server = FakeMesosMasterServer(configuration: configuration, logger: logger)
        urls = try await server.start()
    }

    /// A backend pointed at master `index`.
    func backend(
        master index: Int = 0, frameworkInfo: Mesos.FrameworkInfo = MesosBackendConfiguration.defaultFrameworkInfo(),
        clock: any FrameworkClock = WallClock(), frameworkID: FrameworkID? = nil
    ) -> MesosBackend {
        var logger = Logger(label: "test.mesos-backend")
        logger.logLevel = .critical
        let backend = MesosBackend(
            configuration: MesosBackendConfiguration(master: urls[index], frameworkInfo: frameworkInfo),
            frameworkID: frameworkID, clock: clock, logger: logger)
        created.withLock { $0.append(backend) }
        return backend
    }

    /// Shuts `backend` (made elsewhere) down before the masters stop, as ``stop()`` does for its own.
    func track(_ backend: MesosBackend) { created.withLock { $0.append(backend) } }

    func stop() async {
        for backend in created.withLock({ $0 }) { await backend.shutdown(killTasks: false) }
        await server.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A backend running in a task.
final class RunningBackend: Sendable {
    let backend: MesosBackend
    let recorder: EventRecorder
    private let task: Task<Void, Never>

    init(_ backend: MesosBackend) async throws {
        self.backend = backend
        recorder = EventRecorder(backend.events)
        task = Task { await backend.run() }
        try await backend.start()
    }

    func stop(killTasks: Bool = false) async {
        await backend.shutdown(killTasks: killTasks)
        task.cancel()
        await task.value
    }

    /// Waits for SUBSCRIBED number `count`.
    func waitSubscribed(_ count: Int = 1) async throws {
        try await waitUntil("SUBSCRIBED #\(count)") { recorder.subscriptions.count >= count }
    }

    /// Waits for an offer not yet used, and returns it.
    func nextOffer(excluding used: Set<OfferID> = []) async throws -> Offer {
        var found: Offer?
        try await waitUntil("an offer arrives") {
            let outstanding = Set(await backend.outstandingOffers().map(\.id))
            found = recorder.offers.last { !used.contains($0.id) && outstanding.contains($0.id) }
            return found != nil
        }
        return found!
    }
}

/// A raw HTTP client for status-code tests.
struct RawClient {
    let client: HTTPClient

    static func make() -> HTTPClient {
        HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
    }

    /// POSTs `body` to `url`'s scheduler endpoint; returns the status, headers and (for non-streams) the body.
    func post(
        _ url: MasterURL, _ body: String, contentType: String? = "application/json", streamID: String? = nil
    ) async throws -> (status: Int, location: String?, streamID: String?, body: String) {
        var request = HTTPClientRequest(url: url.schedulerEndpoint)
        request.method = .POST
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let streamID { request.headers.add(name: "Mesos-Stream-Id", value: streamID) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(10))
        let isStream = response.status.code == 200
        var text = ""
        if !isStream { text = String(buffer: try await response.body.collect(upTo: 1 << 20)) }
        return (Int(response.status.code), response.headers.first(name: "Location"), response.headers.first(name: "Mesos-Stream-Id"), text)
    }
}

/// A sleep task: `sleep 600` with its resources.
func sleepTask(_ id: String, on offer: Offer, cpus: Double = 0.1, memMB: Double = 16, port: UInt64? = nil) -> TaskInfo {
    var resources: [Resource] = [.scalar("cpus", cpus), .scalar("mem", memMB)]
    if let port { resources.append(.ranges("ports", RangeSet.of([port]))) }
    return TaskInfo(
        name: id, taskID: TaskID(id), agentID: offer.agentID, resources: resources,
        command: CommandInfo(value: "sleep", arguments: ["600"]))
}
