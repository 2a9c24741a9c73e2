// HTTP front ends of the fake Mesos masters (Hummingbird): one listener per master, each routing
// POST /api/v1/scheduler to the shared `FakeMesosMaster` and streaming SUBSCRIBE's events as a chunked response.
// `start()` binds every master to a free loopback port and returns their URLs.

public import CacheFrameworkMesos
import Hummingbird
import HTTPTypes
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A running fake Mesos cluster: the shared master state plus one HTTP listener per master.
public final class FakeMesosMasterServer: Sendable {
    /// The masters' shared state.
    public let master: FakeMesosMaster
    private let host: String
    private let ports: [Int]
    private let logger: Logger
    private let brainTask = LockedTasks()
    private let listenerTasks = LockedTasks()
    private let listeners = Mutex<[ServiceGroup]>([])

    /// Creates the servers; `ports` are the ports to bind (0: any free port), one per master.
    public init(
        configuration: FakeMesosMaster.Configuration, host: String = "127.0.0.1", ports: [Int]? = nil,
        logger: Logger = Logger(label: "fake-mesos-master")
    ) {
        master = FakeMesosMaster(configuration: configuration, logger: logger)
        self.host = host
        self.ports = ports ?? Array(repeating: 0, count: configuration.masterCount)
        self.logger = logger
    }

    /// Starts the brain and every master's listener; returns the masters' base URLs (`http://host:port`), index
    /// 0 first (the initial leader).
    public func start() async throws -> [MasterURL] {
        let master = master
        brainTask.add(Task { try await master.run() })
        var urls: [MasterURL] = []
        for (index, port) in ports.enumerated() {
            let (bound, continuation) = AsyncStream.makeStream(of: Int.self)
            let application = Application(
                router: Self.router(master: master, index: index),
                configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "fake-mesos-master-\(index)"),
                onServerRunning: { channel in
                    continuation.yield(channel.localAddress?.port ?? port)
                    continuation.finish()
                },
                logger: logger)
            // Each listener runs in a service group of its own so that `stop()` can shut it down gracefully:
            // cancelling a NIO async server can drop a connection it accepted but had not handed out yet, which
            // traps ("Deinited NIOAsyncWriter without calling finish()", apple/swift-nio#2813).
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [application], logger: logger))
            listeners.withLock { $0.append(group) }
            listenerTasks.add(Task { try await group.run() })
            var boundPort = port
            for await value in bound {
                boundPort = value
                break
            }
            await master.setEndpoint(index, "\(host):\(boundPort)")
            urls.append(MasterURL("http://\(host):\(boundPort)")!)
        }
        return urls
    }

    /// Kills the tasks, closes the streams and stops the listeners: each stops accepting, serves the connections it
    /// already accepted and closes them (cancelled only if that takes longer than `gracePeriod`).
    public func stop(gracePeriod: Duration = .seconds(10)) async {
        await master.stop()
        for group in listeners.withLock({ $0 }) { await group.triggerGracefulShutdown() }
        await listenerTasks.awaitAll(cancellingAfter: gracePeriod)
        await brainTask.cancelAll()
    }

    static func router(master: FakeMesosMaster, index: Int) -> Router<BasicRequestContext> {
        let router = Router()
        let streamIDName = HTTPField.Name("Mesos-Stream-Id")!
        router.on("/api/v1/scheduler", method: .post) { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 16 * 1024 * 1024)
            let reply = await master.handle(
                master: index, method: request.method.rawValue, contentType: request.headers[.contentType],
                streamIDHeader: request.headers[streamIDName], body: body)
            return response(reply, streamIDName: streamIDName)
        }
        for method in [HTTPRequest.Method.get, .put, .delete] {
            router.on("/api/v1/scheduler", method: method) { request, _ -> Response in
                let reply = await master.handle(
                    master: index, method: request.method.rawValue, contentType: request.headers[.contentType],
                    streamIDHeader: request.headers[streamIDName], body: ByteBuffer())
                return response(reply, streamIDName: streamIDName)
            }
        }
        return router
    }

    private static func response(_ reply: FakeMesosMaster.Reply, streamIDName: HTTPField.Name) -> Response {
        switch reply {
        case .status(let code, let text, let location):
            var headers = HTTPFields()
            if let location { headers[.location] = location }
            if !text.isEmpty { headers[.contentType] = "text/plain; charset=utf-8" }
            return Response(
                status: HTTPResponse.Status(code: code), headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        case .stream(let streamID, let events):
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[streamIDName] = streamID
            headers[.cacheControl] = "no-cache"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    for await record in events { try await writer.write(record) }
                    try await writer.finish(nil)
                })
        }
    }
}

/// The background tasks of a server, cancelled together.
private final class LockedTasks: Sendable {
    private let tasks = Mutex<[Task<Void, any Error>]>([])
    func add(_ task: Task<Void, any Error>) { tasks.withLock { $0.append(task) } }
    func cancelAll() async {
        let all = tasks.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        for task in all { task.cancel() }
        for task in all { _ = try? await task.value }
    }

    /// Waits for every task to end, cancelling those still running after `timeout`.
    func awaitAll(cancellingAfter timeout: Duration) async {
        let all = tasks.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            for task in all { task.cancel() }
        }
        for task in all { _ = try? await task.value }
        watchdog.cancel()
    }
}
