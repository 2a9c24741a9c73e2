// HAFrameworkServer: `cachectl serve --etcd URL[,URL…] --instance-id X` — one of several framework instances sharing
// their state in etcd. Every instance serves the API; an `EtcdLeaderElection` decides which one runs the scheduler:
// while leading, the instance runs the parts `FrameworkAssembly` builds (as a single `serve` does: backend, NFV offer
// router and manager, driver, API) over an `EtcdStateStore` and `EtcdNFVStore` fenced by its election key. With the
// local backend its process journal is in etcd too (so the next leader adopts the running members by pid); with
// `--master` the Mesos framework id is (so the next leader resubscribes as the same framework and the master hands
// it the running tasks). When it stops leading, the driver is cancelled (members keep running, the Mesos
// subscription is closed without TEARDOWN) before the instance stands by again.
//
// The API of a standby: `/health` answers `{"status":"standby","role":"standby","leader":{…}}`; every other request is
// redirected (307, method and body kept) to the leader's advertised URL, or answered 503 `no_leader` during an election.
//
// Lines on stdout (the HA tests read them as an event log; times in unix milliseconds):
//   cachectl serve: API on http://H:P (data dir D, instance X)
//   cachectl serve: elected leader X (term /prefix/leader@R) at T
//   cachectl serve: stepped down X (reason) at T
//   cachectl serve: standby X, leader is Y at URL
//   cachectl serve: etcd unavailable: …

import CacheFramework
import CacheFrameworkAPI
import CacheFrameworkNFVRuntime
import CacheFrameworkRuntime
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `/health` of an instance in HA mode.
struct HAHealthStatus: Codable, Sendable {
    /// `ok` (leading and started), `starting` (leading, loading state), `standby`.
    var status: String
    /// The scheduler's phase while leading; `standby` otherwise.
    var phase: String
    /// `leader` or `standby`.
    var role: String
    /// This instance.
    var instance: String
    /// Who leads, if known.
    var leader: LeaderIdentity?
}

/// The HA framework daemon.
struct HAFrameworkServer {
    /// The leader's running parts, while this instance leads.
    struct Leading: Sendable {
        let driver: FrameworkDriver
        let responder: RouterResponder<BasicRequestContext>
    }

    final class Shared: Sendable {
        let leading = Mutex<Leading?>(nil)
        let election = Mutex<EtcdLeaderElection<ContinuousClock>?>(nil)
    }

    let options: ServeOptions
    let instanceID: String
    let client: EtcdClient
    let dataDirectory: String
    let token: String?
    let logger: Logger

    init(options: ServeOptions) throws {
        self.options = options
        instanceID = options.instanceID ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        client = try EtcdClient(endpoints: (options.etcd ?? "").split(separator: ",").map(String.init))
        dataDirectory = (options.dataDirectory as NSString).standardizingPath
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        token = options.token ?? ProcessInfo.processInfo.environment["CACHECTL_TOKEN"]
        var logger = Logger(label: "cachectl.serve")
        logger.logLevel = Logger.Level(rawValue: options.logLevel) ?? .notice
        self.logger = logger
    }

    func run() async throws {
        let shared = Shared()
        let registry = PrometheusCollectorRegistry()
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let options = options, instanceID = instanceID, token = token, dataDirectory = dataDirectory
        let application = Application(
            responder: CallbackResponder<BasicRequestContext> { request, context in
                try await Self.respond(request, context: context, shared: shared, registry: registry, instanceID: instanceID)
            },
            configuration: ApplicationConfiguration(address: .hostname(options.host, port: options.port), serverName: "cachectl"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? options.port
                let file = FrameworkEndpointFile(url: "http://\(options.host):\(port)", token: token, pid: ProcessInfo.processInfo.processIdentifier)
                if let data = try? JSONEncoder().encode(file) {
                    _ = FileManager.default.createFile(
                        atPath: FrameworkEndpointFile.path(dataDirectory: dataDirectory), contents: data, attributes: [.posixPermissions: 0o600])
                }
                Self.say("API on http://\(options.host):\(port) (data dir \(options.dataDirectory), instance \(instanceID))")
                portContinuation.yield(port)
                portContinuation.finish()
            },
            logger: logger)
        let election = ElectionService(server: self, shared: shared, registry: registry, ports: ports)
        var serviceLogger = Logger(label: "cachectl.services")
        serviceLogger.logLevel = .warning
        // Shutdown runs in reverse: the election first (the driver stops, the lease is revoked), then the API.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: application), .init(service: election)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: serviceLogger))
        try await group.run()
        try? FileManager.default.removeItem(atPath: FrameworkEndpointFile.path(dataDirectory: dataDirectory))
    }

    /// Starts the election once the API listens (its URL goes into the election key), and runs it.
    struct ElectionService: Service {
        let server: HAFrameworkServer
        let shared: Shared
        let registry: PrometheusCollectorRegistry
        let ports: AsyncStream<Int>

        func run() async throws {
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { return }
            let options = server.options
            let apiURL = options.advertiseURL ?? "http://\(options.host):\(port)"
            var configuration = EtcdLeaderElection<ContinuousClock>.Configuration(
                key: EtcdStateStore.leaderKey(prefix: options.etcdPrefix),
                identity: LeaderIdentity(instanceID: server.instanceID, apiURL: apiURL), leaseTTL: Int64(options.leaseTTL))
            configuration.retryInterval = .milliseconds(500)
            let server = self.server, shared = self.shared, registry = self.registry
            let unavailable = Mutex(false)
            let election = EtcdLeaderElection(
                client: server.client, configuration: configuration, clock: ContinuousClock(), logger: server.logger,
                onEvent: { event in
                    let now = Int64(Date().timeIntervalSince1970 * 1000)
                    switch event {
                    case .elected(let term):
                        unavailable.withLock { $0 = false }
                        HAFrameworkServer.say("elected leader \(term.identity.instanceID) (term \(term.fence)) at \(now)")
                    case .steppedDown(let term, let reason):
                        HAFrameworkServer.say("stepped down \(term.identity.instanceID) (\(reason)) at \(now)")
                    case .following(let leader):
                        unavailable.withLock { $0 = false }
                        HAFrameworkServer.say("standby \(server.instanceID), leader is \(leader.instanceID) at \(leader.apiURL ?? "?")")
                    case .etcdUnavailable(let message):
                        if !unavailable.withLock({ flag in defer { flag = true }; return flag }) {
                            HAFrameworkServer.say("etcd unavailable: \(message)")
                        }
                    }
                },
                whileLeader: { term in try await server.lead(term, shared: shared, registry: registry) })
            shared.election.withLock { $0 = election }
            try await election.run()
        }
    }

    /// The leader's work: the NFV manager and the driver (`FrameworkAssembly`, as `serve` wires them) over the fenced
    /// etcd stores, until cancelled. On Mesos the backend subscribes with the framework id the stores hold, so a new
    /// leader fails over the same framework and the master keeps its tasks; a deposed leader's driver is cancelled,
    /// which closes its subscription without TEARDOWN.
    func lead(_ term: LeadershipTerm, shared: Shared, registry: PrometheusCollectorRegistry) async throws {
        let store = EtcdStateStore(client: client, prefix: options.etcdPrefix, fence: term.fence)
        // Every leader issues member identities from the one authority kept in etcd (its local copy is written first).
        try await EtcdAuthorityStore(client: client, prefix: options.etcdPrefix, fence: term.fence)
            .materialize(into: options.authorityPath(dataDirectory: dataDirectory))
        // Members outlive a leader: the next one adopts them. `cluster delete` stops them.
        let assembly = try FrameworkAssembly(
            options: options, dataDirectory: dataDirectory, store: store, journal: store,
            nfvStore: EtcdNFVStore(client: client, prefix: options.etcdPrefix, fence: term.fence), keepTasksOnShutdown: true,
            registry: registry, token: token, logger: logger)
        shared.leading.withLock { $0 = Leading(driver: assembly.driver, responder: assembly.router.buildResponder()) }
        defer { shared.leading.withLock { $0 = nil } }
        let nfv = assembly.nfv, driver = assembly.driver, nfvHealth = assembly.nfvHealth, nfvMetrics = assembly.nfvMetrics
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await nfv.run() }
            group.addTask { try await nfvHealth.run() }
            group.addTask { try await nfvMetrics.run() }
            group.addTask { try await driver.run() }
        }
    }

    /// The API: the leader's router while leading; otherwise health, metrics, and a redirect to the leader.
    static func respond(
        _ request: Request, context: BasicRequestContext, shared: Shared, registry: PrometheusCollectorRegistry, instanceID: String
    ) async throws -> Response {
        let leading = shared.leading.withLock { $0 }
        let role = shared.election.withLock { $0 }?.role ?? .unknown
        var leader: LeaderIdentity?
        switch role {
        case .leader(let term): leader = term.identity
        case .standby(let holder): leader = holder
        case .unknown: leader = nil
        }
        if request.uri.path == "/health" {
            let health: HAHealthStatus
            if let leading, case .leader = role {
                health = HAHealthStatus(
                    status: leading.driver.isStarted ? "ok" : "starting", phase: leading.driver.phaseName, role: "leader",
                    instance: instanceID, leader: leader)
            } else {
                health = HAHealthStatus(status: "standby", phase: "standby", role: "standby", instance: instanceID, leader: leader)
            }
            return try json(health, status: .ok)
        }
        if let leading { return try await leading.responder.respond(to: request, context: context) }
        if request.uri.path == "/metrics" {
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        if let leader, leader.instanceID != instanceID, let url = leader.apiURL {
            return Response(status: .temporaryRedirect, headers: [.location: url + request.uri.description])
        }
        return try json(
            ["error": ["code": "no_leader", "message": "no framework instance leads right now (an election is under way or etcd is unreachable); retry shortly"]],
            status: .serviceUnavailable)
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func say(_ line: String) {
        print("cachectl serve: \(line)")
        fflush(nil)
    }
}
