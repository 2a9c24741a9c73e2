// The framework's HTTP API (Hummingbird): JSON for clusters (create, get, list, scale, delete, failover), tasks,
// agents, offers and events under /api/v1 behind a bearer token; `/health` and `/metrics` (Prometheus text) open.
// Handlers are thin: they decode, call the driver, and encode what it returns.
//
//   GET    /health                               {"status":"ok","phase":"ready"}
//   GET    /metrics                              Prometheus text format
//   GET    /status                               HTML status page for a browser (open, read-only, like /metrics)
//   GET    /api/v1/clusters                      [ClusterStatus]
//   POST   /api/v1/clusters                      ClusterCreateRequest → 201 ClusterStatus
//   GET    /api/v1/clusters/{name}               ClusterStatus
//   POST   /api/v1/clusters/{name}/scale         {"replicas": n?, "shards": n?} → ClusterStatus (resharding: progress in .resharding)
//   POST   /api/v1/clusters/{name}/failover      {"shard": n} → 202
//   DELETE /api/v1/clusters/{name}               → {"deleted": name}
//   GET    /api/v1/tasks                         [TaskRow]
//   GET    /api/v1/agents                        [LocalAgentView]
//   GET    /api/v1/offers                        [Offer]
//   GET    /api/v1/events?after=N                [FrameworkEvent]
// Errors are {"error": {"code": "...", "message": "...", "missing": [...]?}} with a matching status.

public import CacheFramework
public import CacheFrameworkNFV
public import CacheFrameworkNFVRuntime
public import CacheFrameworkRuntime
import Foundation
public import Hummingbird
public import Prometheus

/// What `POST /api/v1/clusters` takes.
public struct ClusterCreateRequest: Codable, Sendable {
    public var name: String
    public var shards: Int
    public var replicas: Int
    public var memoryMB: Int
    public var cpus: Double?
    public var engine: CacheEngine?
    public var evictionPolicy: EvictionPolicy?
    public var persistence: Bool?
    public var secureReplication: Bool?
    /// Adds/removes shards on a metric (see `AutoscalingPolicy`); none by default.
    public var autoscaling: AutoscalingPolicy?

    /// Creates a request.
    public init(
        name: String, shards: Int, replicas: Int, memoryMB: Int, cpus: Double? = nil, engine: CacheEngine? = nil,
        evictionPolicy: EvictionPolicy? = nil, persistence: Bool? = nil, secureReplication: Bool? = nil,
        autoscaling: AutoscalingPolicy? = nil
    ) {
        self.name = name
        self.shards = shards
        self.replicas = replicas
        self.memoryMB = memoryMB
        self.cpus = cpus
        self.engine = engine
        self.evictionPolicy = evictionPolicy
        self.persistence = persistence
        self.secureReplication = secureReplication
        self.autoscaling = autoscaling
    }

    /// The cluster spec it asks for.
    public var spec: ClusterSpec {
        let engine = engine ?? .cacheNode
        return ClusterSpec(
            name: name, shardCount: shards, replicasPerShard: replicas, memoryMBPerNode: memoryMB, cpusPerNode: cpus ?? 0.5,
            engine: engine, evictionPolicy: evictionPolicy ?? .noEviction, persistence: persistence ?? false,
            secureReplication: secureReplication ?? (engine == .cacheNode), autoscaling: autoscaling)
    }
}

/// What `POST /api/v1/clusters/{name}/scale` takes.
public struct ClusterScaleRequest: Codable, Sendable {
    /// Replicas per shard (`nil`: unchanged).
    public var replicas: Int?
    /// Shards (`nil`: unchanged; a different count reshards with live slot migration).
    public var shards: Int?
    public init(replicas: Int? = nil, shards: Int? = nil) {
        self.replicas = replicas
        self.shards = shards
    }
}

/// What `POST /api/v1/clusters/{name}/failover` takes.
public struct ClusterFailoverRequest: Codable, Sendable {
    public var shard: Int
    public init(shard: Int) { self.shard = shard }
}

/// One task as `GET /api/v1/tasks` lists it: the scheduler's record joined with the backend's process.
public struct TaskRow: Codable, Sendable, Hashable {
    public var taskID: TaskID
    public var cluster: String?
    public var shard: Int?
    public var member: Int?
    public var role: MemberRole?
    public var state: TaskState?
    public var agentID: AgentID
    public var endpoint: String?
    public var pid: Int32?
    public var adopted: Bool?
    public var message: String?
}

/// `/health`'s answer.
public struct HealthStatus: Codable, Sendable {
    public var status: String
    public var phase: String
}

/// An error the API returns, as JSON.
public struct APIError: HTTPResponseError, Codable, Sendable {
    struct Body: Codable {
        var code: String
        var message: String
        var missing: [AdmissionReport.Missing]?
    }
    /// The HTTP status.
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }
    var statusCode: Int
    var error: Body

    enum CodingKeys: String, CodingKey { case error }

    init(_ status: HTTPResponse.Status, code: String, message: String, missing: [AdmissionReport.Missing]? = nil) {
        statusCode = status.code
        error = Body(code: code, message: message, missing: missing)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        error = try container.decode(Body.self, forKey: .error)
        statusCode = 0
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(error, forKey: .error)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(self)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The API form of a driver error.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError: return error
        case FrameworkError.insufficientResources(let report):
            return APIError(.conflict, code: "insufficient_resources", message: report.description, missing: report.missing)
        case FrameworkError.scheduler(.invalidSpec(let spec)):
            return APIError(.badRequest, code: "invalid_spec", message: spec.description)
        case FrameworkError.scheduler(.clusterExists(let name)):
            return APIError(.conflict, code: "cluster_exists", message: SchedulerError.clusterExists(name).description)
        case FrameworkError.scheduler(.unknownCluster(let name)):
            return APIError(.notFound, code: "unknown_cluster", message: SchedulerError.unknownCluster(name).description)
        case FrameworkError.scheduler(let other):
            return APIError(.badRequest, code: "refused", message: other.description)
        case FrameworkError.noPrimary:
            return APIError(.conflict, code: "no_primary", message: "\(error)")
        case FrameworkError.stopping:
            return APIError(.serviceUnavailable, code: "stopping", message: "\(error)")
        default:
            return APIError(.internalServerError, code: "internal", message: "\(error)")
        }
    }
}

/// Checks `Authorization: Bearer <token>` on every route it wraps.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), constantTimeEqual(String(header.dropFirst(7)), token) else {
            throw APIError(.unauthorized, code: "unauthorized", message: "missing or wrong bearer token: pass --token or set CACHECTL_TOKEN")
        }
        return try await next(request, context)
    }

    private func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8), b = Array(rhs.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Turns thrown errors into JSON `APIError`s.
struct ErrorMappingMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            throw APIError(error.status, code: "bad_request", message: error.body ?? "\(error.status)")
        } catch let error as DecodingError {
            throw APIError(.badRequest, code: "bad_request", message: "cannot decode the request body: \(error)")
        } catch {
            throw APIError.from(error)
        }
    }
}

/// Builds the API router.
public enum FrameworkAPI {
    /// The router for `driver`; `/api/v1` requires `Authorization: Bearer <token>` when `token` is set. With `nfv`
    /// the status page also shows its VNF instances (and the health `vnfHealth` reports, e.g. `NFVHealthMonitor`'s);
    /// its routes are added by `addNFVRoutes`.
    public static func router(
        driver: FrameworkDriver, registry: PrometheusCollectorRegistry, token: String?, nfv: NFVManager? = nil,
        vnfHealth: (@Sendable () -> [TaskID: VNFCHealth])? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorMappingMiddleware())
        router.get("/health") { _, _ in
            HealthStatus(status: driver.isStarted ? "ok" : "starting", phase: driver.phaseName)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/status") { _, _ in
            let html = StatusPage.render(
                phase: driver.phaseName, clusters: driver.clusterStatuses(), tasks: await taskRows(driver),
                agents: await driver.backend.agents(), events: driver.events(), vnfs: nfv?.instances() ?? [],
                vnfOperations: nfv?.operations() ?? [], vnfHealth: vnfHealth?() ?? [:])
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
        }
        let api = router.group("api/v1")
        if let token { api.add(middleware: BearerTokenMiddleware(token: token)) }
        api.get("clusters") { _, _ in driver.clusterStatuses() }
        api.post("clusters") { request, context -> EditedResponse<ClusterStatus> in
            let body = try await request.decode(as: ClusterCreateRequest.self, context: context)
            try await driver.createCluster(body.spec)
            guard let status = driver.clusterStatus(body.name) else {
                throw APIError(.internalServerError, code: "internal", message: "cluster vanished after creation")
            }
            return EditedResponse(status: .created, response: status)
        }
        api.get("clusters/:name") { _, context in
            let name = try context.parameters.require("name")
            guard let status = driver.clusterStatus(name) else {
                throw APIError(.notFound, code: "unknown_cluster", message: SchedulerError.unknownCluster(name).description)
            }
            return status
        }
        api.post("clusters/:name/scale") { request, context -> ClusterStatus in
            let name = try context.parameters.require("name")
            let body = try await request.decode(as: ClusterScaleRequest.self, context: context)
            try await driver.scaleCluster(name, replicasPerShard: body.replicas, shardCount: body.shards)
            return driver.clusterStatus(name)!
        }
        api.post("clusters/:name/failover") { request, context -> HTTPResponse.Status in
            let name = try context.parameters.require("name")
            let body = try await request.decode(as: ClusterFailoverRequest.self, context: context)
            try await driver.failover(name, shard: body.shard)
            return .accepted
        }
        api.delete("clusters/:name") { _, context -> [String: String] in
            let name = try context.parameters.require("name")
            try await driver.deleteCluster(name)
            return ["deleted": name]
        }
        api.get("tasks") { _, _ in await taskRows(driver) }
        api.get("agents") { _, _ in await driver.backend.agents() }
        api.get("offers") { _, _ in await driver.backend.outstandingOffers() }
        api.get("events") { request, _ in
            driver.events(after: request.uri.queryParameters.get("after", as: UInt64.self) ?? 0)
        }
        return router
    }

    /// The rows `GET /api/v1/tasks` answers: the scheduler's records joined with the backend's processes.
    public static func taskRows(_ driver: FrameworkDriver) async -> [TaskRow] {
        let processes = Dictionary(
            (await driver.backend.taskViews()).map { ($0.taskID, $0) }, uniquingKeysWith: { a, _ in a })
        return driver.taskRecords().map { record in
            let process = processes[record.taskID]
            return TaskRow(
                taskID: record.taskID, cluster: record.slot.cluster, shard: record.slot.shard, member: record.slot.member,
                role: record.role, state: record.lastState ?? process?.state, agentID: record.agentID,
                endpoint: "\(record.hostname):\(record.ports.first ?? 0)", pid: process?.pid, adopted: process?.adopted,
                message: process?.message)
        }
    }
}

extension ClusterStatus: ResponseEncodable {}
extension FrameworkEvent: ResponseEncodable {}
extension LocalAgentView: ResponseEncodable {}
extension TaskRow: ResponseEncodable {}
extension HealthStatus: ResponseEncodable {}
extension Offer: ResponseEncodable {}
