// The Mesos backend: a `SchedulerBackend` (and `DriverBackend`) over the v1 scheduler HTTP API
// (apache/mesos docs/scheduler-http-api.md) with AsyncHTTPClient.
//
// Connection life cycle (`run()`): POST SUBSCRIBE (never with Mesos-Stream-Id) to the last known leader; a 307 moves
// to the master its Location names; a 200 opens a chunked RecordIO stream whose `Mesos-Stream-Id` header every later
// call sends back. Events are decoded record by record (chunk boundaries are irrelevant) and mapped to
// `BackendEvent`s. A heartbeat watchdog on the injected clock ends the stream when no event came for
// `missedHeartbeats` × heartbeat_interval_seconds. When the stream ends for any reason the backend emits
// `.disconnected` and resubscribes with the framework id it was given (`framework_info.id`), at once after an
// established subscription and with exponential backoff after failed attempts. The master keeps the tasks for
// `failover_timeout` seconds meanwhile.
//
// Calls are fire-and-forget as in Mesos: a call that fails (not subscribed, 4xx, transport error) is logged and
// dropped; the scheduler's reconciliation after the next SUBSCRIBED repairs the view, status updates are
// redelivered until acknowledged, and kills are re-sent after every resubscription until a terminal update
// arrives. `send(_:)` exposes the typed result for callers that need it.

public import AsyncHTTPClient
public import CacheFramework
public import CacheFrameworkRuntime
import Foundation
public import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// A `SchedulerBackend` speaking the Mesos v1 scheduler HTTP API.
public actor MesosBackend: DriverBackend {
    /// Counters of the connection's history (for tests and the API).
    public struct Statistics: Hashable, Sendable {
        /// SUBSCRIBED events received.
        public var subscriptions = 0
        /// 307 redirects followed.
        public var redirects = 0
        /// Streams ended by the heartbeat watchdog.
        public var heartbeatLosses = 0
        /// Calls that failed (and were dropped).
        public var failedCalls = 0
        /// Status updates acknowledged.
        public var acknowledgements = 0
        /// ERROR events received, last first.
        public var errors: [String] = []
    }

    public nonisolated let events: AsyncStream<BackendEvent>
    private let continuation: AsyncStream<BackendEvent>.Continuation
    /// Every decoded master event (bounded to the newest 1024 unread), including MESSAGE, FAILURE, ERROR,
    /// UPDATE_OPERATION_STATUS and HEARTBEAT, which have no `BackendEvent`.
    public nonisolated let mesosEvents: AsyncStream<Mesos.Event>
    private let mesosContinuation: AsyncStream<Mesos.Event>.Continuation
    /// The settings.
    public nonisolated let configuration: MesosBackendConfiguration

    private let client: HTTPClient
    private let ownsClient: Bool
    private let clock: any FrameworkClock
    private let loadFrameworkID: @Sendable () async throws -> FrameworkID?
    private let logger: Logger
    private let startSignal: AsyncStream<Void>
    private let startContinuation: AsyncStream<Void>.Continuation

    private var frameworkID: FrameworkID?
    private var leader: MasterURL
    private var streamID: String?
    private var heartbeatInterval: Double
    private var lastEventAt: SchedulerTime
    private var outstanding: [OfferID: Mesos.Offer] = [:]
    private var capacity: [AgentID: Mesos.Offer] = [:]
    private var tasks: [TaskID: LocalTaskView] = [:]
    private var pendingKills: [TaskID: AgentID?] = [:]
    private var volumes: [String: AgentID] = [:]
    /// Persistence id prefixes (`<cluster>.`) of deleted clusters whose volumes are destroyed when offered.
    private var releasing: Set<String> = []
    private var tornDown = false
    /// Another scheduler subscribed with this framework id (ERROR "Framework failed over"): never resubscribe, or
    /// the two would take the framework from each other in turn (an HA instance that lost its leadership).
    private var failedOver = false
    private var started = false
    private var attempt: Task<Bool, any Error>?
    private var stats = Statistics()

    /// Creates a backend.
    /// - Parameters:
    ///   - configuration: the master and framework info.
    ///   - frameworkID: the framework id to resubscribe with (from a previous run), or `nil`.
    ///   - loadFrameworkID: read at `start()` when `frameworkID` is nil, e.g. from the state store.
    ///   - clock: time for the heartbeat watchdog and backoff.
    ///   - httpClient: a client to use (its redirects must be disallowed); by default the backend owns one.
    public init(
        configuration: MesosBackendConfiguration,
        frameworkID: FrameworkID? = nil,
        loadFrameworkID: @escaping @Sendable () async throws -> FrameworkID? = { nil },
        clock: any FrameworkClock = WallClock(),
        httpClient: HTTPClient? = nil,
        logger: Logger = Logger(label: "cache-framework.mesos")
    ) {
        self.configuration = configuration
        self.frameworkID = frameworkID ?? configuration.frameworkInfo.id
        self.loadFrameworkID = loadFrameworkID
        self.clock = clock
        self.logger = logger
        self.leader = configuration.master
        self.heartbeatInterval = configuration.defaultHeartbeatInterval.seconds
        self.lastEventAt = clock.now()
        if let httpClient {
            client = httpClient
            ownsClient = false
        } else {
            client = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: HTTPClient.Configuration(
                    redirectConfiguration: .disallow, timeout: HTTPClient.Configuration.Timeout(connect: .seconds(5))))
            ownsClient = true
        }
        (events, continuation) = AsyncStream.makeStream(of: BackendEvent.self)
        (mesosEvents, mesosContinuation) = AsyncStream.makeStream(of: Mesos.Event.self, bufferingPolicy: .bufferingNewest(1024))
        (startSignal, startContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    // MARK: life cycle

    /// Loads the saved framework id (if any) and lets `run()` subscribe.
    public func start() async throws {
        guard !started else { return }
        started = true
        if frameworkID == nil { frameworkID = try await loadFrameworkID() }
        startContinuation.yield()
        startContinuation.finish()
    }

    /// Subscribes and keeps the subscription alive (resubscribing after any loss) until cancelled or torn down.
    public func run() async {
        for await _ in startSignal { break }
        var backoff = configuration.initialBackoff
        while !Task.isCancelled && !tornDown {
            let wasSubscribed: Bool
            // The attempt is its own task so `shutdown` can end the stream even when `run` is not cancelled.
            let attempt = Task { try await self.subscribeOnce() }
            self.attempt = attempt
            do {
                wasSubscribed = try await withTaskCancellationHandler {
                    try await attempt.value
                } onCancel: {
                    attempt.cancel()
                }
            } catch let error as MesosError {
                wasSubscribed = streamID != nil
                logger.warning("subscription ended", metadata: ["error": "\(error)"])
            } catch {
                wasSubscribed = streamID != nil
                if Task.isCancelled { break }
                logger.warning("subscription ended", metadata: ["error": "\(error)"])
            }
            if streamID != nil {
                streamID = nil
                outstanding = [:]
                continuation.yield(.disconnected)
            }
            if tornDown || failedOver || Task.isCancelled { break }
            if wasSubscribed {
                backoff = configuration.initialBackoff
                continue
            }
            do { try await clock.sleep(for: backoff) } catch { break }
            backoff = min(backoff * 2, configuration.maximumBackoff)
        }
    }

    /// Stops. With `killTasks`, TEARDOWN removes the framework and kills its tasks (resubscribing first if the
    /// stream is already closed, as it is after `run` was cancelled: TEARDOWN is only accepted on a subscription);
    /// otherwise the stream is just closed and the master keeps the tasks for `failover_timeout` (a restarted
    /// framework resubscribes to them).
    public func shutdown(killTasks: Bool) async {
        // Idempotent: a second call (a test fixture and its owner, a driver and a signal) waits for the first to end,
        // so nobody stops the master's side while the first still sends its TEARDOWN.
        if let shutdownInProgress {
            await shutdownInProgress.value
            return
        }
        let work = Task { await self.performShutdown(killTasks: killTasks) }
        shutdownInProgress = work
        await work.value
    }

    private var shutdownInProgress: Task<Void, Never>?

    private func performShutdown(killTasks: Bool) async {
        if killTasks && !tornDown && frameworkID != nil {
            // `shutdown` may run in a cancelled task (a cancelled driver); the TEARDOWN must go out all the same.
            await Task { await self.teardownForShutdown() }.value
        }
        tornDown = true
        attempt?.cancel()
        attempt = nil
        continuation.finish()
        mesosContinuation.finish()
        if ownsClient { try? await client.shutdown() }
    }

    /// TEARDOWN: the master kills every task of the framework and forgets it; the backend stops resubscribing.
    public func teardown() async throws(MesosError) {
        try await send(Mesos.Call(frameworkID: frameworkID, type: .teardown))
        tornDown = true
    }

    private func teardownForShutdown() async {
        if streamID == nil { await resubscribeForTeardown() }
        do { try await teardown() } catch { logger.warning("TEARDOWN failed", metadata: ["error": "\(error)"]) }
    }

    /// Opens a subscription just to send TEARDOWN on it (bounded wait: 10 s).
    private func resubscribeForTeardown() async {
        let attempt = Task { try await self.subscribeOnce() }
        self.attempt = attempt
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while streamID == nil && ContinuousClock.now < deadline {
            do { try await Task.sleep(for: .milliseconds(10)) } catch { return }
        }
    }

    // MARK: introspection

    /// The framework id the master gave (or that will be resubscribed with).
    public var currentFrameworkID: FrameworkID? { frameworkID }
    /// The master the backend talks to now (the leader after redirects).
    public var currentLeader: MasterURL { leader }
    /// The Mesos-Stream-Id of the open subscription.
    public var currentStreamID: String? { streamID }
    /// Counters.
    public var statistics: Statistics { stats }
    /// Whether another scheduler took the framework over (the backend then stays disconnected).
    public var isFailedOver: Bool { failedOver }

    /// The ERROR message the master sends to a scheduler's connection when another subscribes as its framework.
    public static let failedOverMessage = "Framework failed over"

    /// What each agent last offered, minus what was launched on it since.
    public func capacityOffers() -> [Offer] {
        capacity.values.sorted { $0.agentID < $1.agentID }.map(\.model)
    }

    /// The agents seen in offers.
    public func agents() -> [LocalAgentView] {
        capacity.values.sorted { $0.agentID < $1.agentID }.map { offer in
            let free = ResourceQuantities(offer.model.resources)
            let ports = free.ports.ranges
            let envelope = ports.isEmpty
                ? ValueRange(begin: 0, end: 0) : ValueRange(begin: ports[0].begin, end: ports[ports.count - 1].end)
            return LocalAgentView(
                spec: LocalAgentSpec(
                    id: offer.agentID, hostname: offer.hostname, cpus: free.cpus, memMB: free.memMB, diskMB: free.diskMB,
                    ports: envelope, attributes: offer.attributes ?? []),
                free: free,
                taskCount: tasks.values.filter { $0.agentID == offer.agentID && !$0.state.isTerminal }.count)
        }
    }

    /// The tasks launched or reported, by id.
    public func taskViews() -> [LocalTaskView] { tasks.values.sorted { $0.taskID < $1.taskID } }

    /// Offers received and not yet answered.
    public func outstandingOffers() -> [Offer] { outstanding.values.sorted { $0.id < $1.id }.map(\.model) }

    // MARK: SchedulerBackend

    public func accept(offerIDs: [OfferID], operations: [OfferOperation], filters: Filters) async throws {
        let offers = offerIDs.compactMap { outstanding[$0] }
        let role = offers.first.flatMap(Self.allocationRole)
        var mesosOperations: [Mesos.Operation] = []
        // Free volumes in these offers, by persistence id: a member whose volume is here is relaunched on it.
        var offeredVolumes: [String: Mesos.Resource] = [:]
        // Reserved disk without a volume (left by a CREATE that failed): used before reserving more.
        var offeredReservedDisk: [Mesos.Resource] = []
        for resource in offers.flatMap(\.resources) where resource.name == "disk" && !(resource.reservations ?? []).isEmpty {
            if let id = resource.disk?.persistence?.id {
                if offeredVolumes[id] == nil { offeredVolumes[id] = resource }
            } else {
                offeredReservedDisk.append(resource)
            }
        }
        for case .launch(let infos) in operations {
            var reserves: [Mesos.Resource] = []
            var creates: [Mesos.Resource] = []
            var launches: [Mesos.TaskInfo] = []
            for info in infos {
                var task = Mesos.TaskInfo(info, allocationRole: role)
                if let volumeID = info.labels[TaskTemplate.volumeLabel] {
                    // RESERVE + CREATE in the same ACCEPT on first launch; afterwards the offered volume is reused.
                    let volume: Mesos.Resource
                    if let offered = offeredVolumes.removeValue(forKey: volumeID) {
                        volume = offered
                    } else if volumes[volumeID] == info.agentID {
                        // It exists on this agent but is not in this offer (still in use, or the offer predates its
                        // release): the master refuses the launch and the scheduler tries again on the next offer.
                        volume = persistentVolume(volumeID, on: reservedDisk(megabytes: volumeSize(for: info), role: role))
                    } else {
                        let size = volumeSize(for: info)
                        let reserved: Mesos.Resource
                        if let index = offeredReservedDisk.firstIndex(where: { $0.scalar?.value == size }) {
                            reserved = offeredReservedDisk.remove(at: index)
                        } else {
                            reserved = reservedDisk(megabytes: size, role: role)
                            reserves.append(reserved)
                        }
                        volume = persistentVolume(volumeID, on: reserved)
                        creates.append(volume)
                    }
                    task.resources.append(volume)
                    // The data (snapshot, append-only file) lives on the volume; a cluster node's nodes.conf is per
                    // task (a relaunched member is a new task, and so a new node with a fresh topology epoch, to the
                    // scheduler), so the previous incarnation's id and topology are not loaded again.
                    task.command?.arguments?.append(contentsOf: ["--dir", configuration.volumeContainerPath])
                    if info.command.arguments.contains("--cluster-enabled") {
                        task.command?.arguments?.append(contentsOf: ["--cluster-config-file", "nodes-\(info.taskID.value).conf"])
                    }
                    volumes[volumeID] = info.agentID
                }
                launches.append(task)
            }
            if !reserves.isEmpty { mesosOperations.append(.reserve(reserves)) }
            if !creates.isEmpty { mesosOperations.append(.create(creates)) }
            mesosOperations.append(.launch(launches))
            for info in infos {
                let ports = ResourceQuantities(info.resources).ports.ranges.flatMap { Array($0.begin...$0.end) }
                tasks[info.taskID] = LocalTaskView(
                    taskID: info.taskID, agentID: info.agentID, state: .staging, pid: nil, adopted: false, ports: ports,
                    message: "launch sent")
                consume(info.resources, on: info.agentID)
            }
        }
        await accept(offerIDs: offerIDs, mesosOperations: mesosOperations, filters: filters)
    }

    /// The volume of a new member: `volumeMBPerMemoryMB` × its memory, at least `minimumVolumeMB`.
    private func volumeSize(for info: TaskInfo) -> Double {
        max(configuration.minimumVolumeMB, ResourceQuantities(info.resources).memMB * configuration.volumeMBPerMemoryMB)
    }

    /// `megabytes` of disk dynamically reserved for `role` (the offer's allocation role) by the framework's principal.
    private func reservedDisk(megabytes: Double, role: String?) -> Mesos.Resource {
        let role = role ?? configuration.frameworkInfo.roles?.first ?? "*"
        return Mesos.Resource(
            name: "disk", type: .scalar, scalar: ScalarValue(value: megabytes), allocationInfo: Mesos.AllocationInfo(role: role),
            reservations: [Mesos.ReservationInfo(type: "DYNAMIC", role: role, principal: configuration.frameworkInfo.principal)])
    }

    /// The persistent volume `id` made of `reserved` disk, mounted read-write at `volumeContainerPath`.
    private func persistentVolume(_ id: String, on reserved: Mesos.Resource) -> Mesos.Resource {
        var volume = reserved
        volume.disk = Mesos.DiskInfo(
            persistence: Mesos.DiskInfo.Persistence(id: id, principal: configuration.frameworkInfo.principal),
            volume: Mesos.DiskInfo.Volume(mode: "RW", containerPath: configuration.volumeContainerPath))
        return volume
    }

    /// The volumes of `cluster` are no longer wanted: each is destroyed and its disk unreserved (DESTROY +
    /// UNRESERVE in one ACCEPT) when its agent next offers it, i.e. once no member uses it.
    public func clusterDeleted(_ cluster: String) async {
        releasing.insert(cluster + ".")
    }

    /// Persistent volumes this backend created or saw in offers: persistence id → agent.
    public var knownVolumes: [String: AgentID] { volumes }

    /// DESTROY + UNRESERVE of the unused volumes of deleted clusters in `offer`; returns whether the offer was used.
    private func releaseVolumes(in offer: Mesos.Offer) async -> Bool {
        let doomed = offer.resources.filter { resource in
            guard let id = resource.disk?.persistence?.id else { return false }
            return releasing.contains { id.hasPrefix($0) }
        }
        guard !doomed.isEmpty else { return false }
        let reserved = doomed.map { volume -> Mesos.Resource in
            var disk = volume
            disk.disk = nil
            return disk
        }
        for volume in doomed { if let id = volume.disk?.persistence?.id { volumes[id] = nil } }
        var destroy = Mesos.Operation(type: .destroy)
        destroy.destroy = .init(volumes: doomed)
        var unreserve = Mesos.Operation(type: .unreserve)
        unreserve.unreserve = .init(resources: reserved)
        logger.info("destroying volumes of deleted clusters", metadata: [
            "agent": "\(offer.agentID)", "volumes": "\(doomed.compactMap { $0.disk?.persistence?.id })",
        ])
        await accept(offerIDs: [offer.id], mesosOperations: [destroy, unreserve], filters: Filters(refuseSeconds: 0))
        return true
    }

    /// ACCEPT with any operations (RESERVE, CREATE, LAUNCH_GROUP, …).
    public func accept(offerIDs: [OfferID], mesosOperations: [Mesos.Operation], filters: Filters?) async {
        for id in offerIDs { outstanding[id] = nil }
        var call = Mesos.Call(frameworkID: frameworkID, type: .accept)
        call.accept = .init(offerIDs: offerIDs, operations: mesosOperations, filters: filters)
        await sendLogging(call)
    }

    public func decline(offerIDs: [OfferID], filters: Filters) async throws {
        for id in offerIDs { outstanding[id] = nil }
        var call = Mesos.Call(frameworkID: frameworkID, type: .decline)
        call.decline = .init(offerIDs: offerIDs, filters: filters)
        await sendLogging(call)
    }

    public func acknowledge(agentID: AgentID, taskID: TaskID, uuid: String) async throws {
        var call = Mesos.Call(frameworkID: frameworkID, type: .acknowledge)
        call.acknowledge = .init(agentID: agentID, taskID: taskID, uuid: uuid)
        if await sendLogging(call) { stats.acknowledgements += 1 }
    }

    public func kill(taskID: TaskID, agentID: AgentID?) async throws {
        pendingKills[taskID] = agentID
        await sendKill(taskID, agentID)
    }

    public func reconcile(_ list: [ReconcileTask]) async throws {
        var call = Mesos.Call(frameworkID: frameworkID, type: .reconcile)
        call.reconcile = .init(tasks: list.map { .init(taskID: $0.taskID, agentID: $0.agentID) })
        await sendLogging(call)
    }

    public func revive() async throws {
        var call = Mesos.Call(frameworkID: frameworkID, type: .revive)
        call.revive = .init(roles: nil)
        await sendLogging(call)
    }

    public func suppress() async throws {
        var call = Mesos.Call(frameworkID: frameworkID, type: .suppress)
        call.suppress = .init(roles: nil)
        await sendLogging(call)
    }

    /// SHUTDOWN a custom executor.
    public func shutdownExecutor(_ executorID: Mesos.ExecutorID, agentID: AgentID) async throws(MesosError) {
        var call = Mesos.Call(frameworkID: frameworkID, type: .shutdown)
        call.shutdown = .init(executorID: executorID, agentID: agentID)
        try await send(call)
    }

    // MARK: calls

    /// Sends a non-SUBSCRIBE call on its own connection with the current Mesos-Stream-Id, following 307s.
    /// - Throws: `MesosError` with the master's status and message when it is not answered 202 Accepted.
    public func send(_ call: Mesos.Call) async throws(MesosError) {
        guard let streamID else { throw MesosError(.notSubscribed, "no subscription is open for \(call.type.rawValue)") }
        let body: ByteBuffer
        do { body = ByteBuffer(data: try JSONEncoder().encode(call)) } catch {
            throw MesosError(.malformedEvent, "cannot encode \(call.type.rawValue): \(error)")
        }
        var target = leader
        for _ in 0...configuration.maximumRedirects {
            var request = HTTPClientRequest(url: target.schedulerEndpoint)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "Mesos-Stream-Id", value: streamID)
            request.body = .bytes(body)
            let status: HTTPResponseStatus
            let text: String
            let location: String?
            do {
                let response = try await client.execute(request, timeout: .milliseconds(Int64(configuration.requestTimeout.seconds * 1000)))
                status = response.status
                location = response.headers.first(name: "Location")
                text = String(buffer: try await response.body.collect(upTo: 64 * 1024))
            } catch {
                throw MesosError(.transport, "\(call.type.rawValue) to \(target) failed: \(error)")
            }
            switch status.code {
            case 200, 202: return
            case 307:
                guard let location, let next = target.resolving(location: location) else {
                    throw MesosError(.invalidRedirect, status: 307, "\(target) redirected without a usable Location")
                }
                stats.redirects += 1
                target = next
            case 400: throw MesosError(.badRequest, status: 400, "\(call.type.rawValue) refused: \(text)")
            case 403: throw MesosError(.forbidden, status: 403, "\(call.type.rawValue) refused: \(text)")
            default: throw MesosError(.unexpectedStatus, status: Int(status.code), "\(call.type.rawValue) refused: \(text)")
            }
        }
        throw MesosError(.tooManyRedirects, "more than \(configuration.maximumRedirects) redirects for \(call.type.rawValue)")
    }

    @discardableResult
    private func sendLogging(_ call: Mesos.Call) async -> Bool {
        do {
            try await send(call)
            return true
        } catch {
            stats.failedCalls += 1
            logger.warning("call dropped", metadata: ["call": "\(call.type.rawValue)", "error": "\(error)"])
            return false
        }
    }

    private func sendKill(_ taskID: TaskID, _ agentID: AgentID?) async {
        var call = Mesos.Call(frameworkID: frameworkID, type: .kill)
        call.kill = .init(taskID: taskID, agentID: agentID)
        await sendLogging(call)
    }

    // MARK: subscription

    /// One SUBSCRIBE: follows redirects, then reads events until the stream ends. Returns whether SUBSCRIBED came.
    private func subscribeOnce() async throws -> Bool {
        var info = configuration.frameworkInfo
        info.id = frameworkID
        var call = Mesos.Call(frameworkID: frameworkID, type: .subscribe)
        call.subscribe = .init(frameworkInfo: info)
        let body = ByteBuffer(data: try JSONEncoder().encode(call))
        for _ in 0...configuration.maximumRedirects {
            var request = HTTPClientRequest(url: leader.schedulerEndpoint)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json")
            request.body = .bytes(body)
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, deadline: .distantFuture)
            } catch {
                throw MesosError(.transport, "SUBSCRIBE to \(leader) failed: \(error)")
            }
            switch response.status.code {
            case 307:
                guard let location = response.headers.first(name: "Location"),
                    let next = leader.resolving(location: location)
                else { throw MesosError(.invalidRedirect, status: 307, "\(leader) redirected without a usable Location") }
                _ = try? await response.body.collect(upTo: 64 * 1024)
                stats.redirects += 1
                logger.info("redirected to the leading master", metadata: ["from": "\(leader)", "to": "\(next)"])
                leader = next
            case 200:
                guard let id = response.headers.first(name: "Mesos-Stream-Id") else {
                    throw MesosError(.missingStreamID, status: 200, "SUBSCRIBE response from \(leader) has no Mesos-Stream-Id")
                }
                return try await consume(response.body, streamID: id)
            default:
                let text = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
                let kind: MesosError.Kind =
                    switch response.status.code {
                    case 400: .badRequest
                    case 403: .forbidden
                    default: .unexpectedStatus
                    }
                throw MesosError(kind, status: Int(response.status.code), "SUBSCRIBE refused by \(leader): \(text)")
            }
        }
        throw MesosError(.tooManyRedirects, "more than \(configuration.maximumRedirects) redirects for SUBSCRIBE")
    }

    private func consume(_ body: HTTPClientResponse.Body, streamID id: String) async throws -> Bool {
        lastEventAt = clock.now()
        let maximumRecordSize = configuration.maximumRecordSize
        let checkInterval = configuration.heartbeatCheckInterval
        let clock = clock
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let processor = NIOSingleStepByteToMessageProcessor(
                    RecordIODecoder(maximumRecordSize: maximumRecordSize), maximumBufferSize: maximumRecordSize + 32)
                for try await chunk in body {
                    var records: [ByteBuffer] = []
                    try processor.process(buffer: chunk) { records.append($0) }
                    for record in records { try await self.receive(record, streamID: id) }
                }
                try processor.finishProcessing(seenEOF: true) { _ in }
            }
            group.addTask {
                while true {
                    try await clock.sleep(for: checkInterval)
                    if let silence = await self.heartbeatSilence() {
                        throw MesosError(.heartbeatLost, "no event for \(silence) s; the connection is presumed dead")
                    }
                }
            }
            defer { group.cancelAll() }
            do {
                _ = try await group.next()
            } catch let error as MesosError where error.kind == .heartbeatLost {
                stats.heartbeatLosses += 1
                throw error
            }
        }
        return streamID == id
    }

    private func heartbeatSilence() -> Double? {
        let silence = clock.now().seconds - lastEventAt.seconds
        return silence > heartbeatInterval * configuration.missedHeartbeats ? silence : nil
    }

    /// Handles one record of the stream `id`.
    private func receive(_ record: ByteBuffer, streamID id: String) async throws {
        let event: Mesos.Event
        do {
            event = try JSONDecoder().decode(Mesos.Event.self, from: record)
        } catch {
            throw MesosError(.malformedEvent, "undecodable event \(String(buffer: record).prefix(200)): \(error)")
        }
        lastEventAt = clock.now()
        mesosContinuation.yield(event)
        switch event.type {
        case .subscribed:
            guard let subscribed = event.subscribed else { throw MesosError(.malformedEvent, "SUBSCRIBED without 'subscribed'") }
            frameworkID = subscribed.frameworkID
            streamID = id
            heartbeatInterval = subscribed.heartbeatIntervalSeconds ?? configuration.defaultHeartbeatInterval.seconds
            stats.subscriptions += 1
            logger.info("subscribed", metadata: ["framework": "\(subscribed.frameworkID)", "master": "\(leader)"])
            continuation.yield(.subscribed(subscribed.frameworkID))
            for (taskID, agentID) in pendingKills.sorted(by: { $0.key < $1.key }) { await sendKill(taskID, agentID) }
        case .offers:
            var offers: [Mesos.Offer] = []
            for offer in event.offers?.offers ?? [] {
                for resource in offer.resources {
                    if let id = resource.disk?.persistence?.id { volumes[id] = offer.agentID }
                }
                outstanding[offer.id] = offer
                if await releaseVolumes(in: offer) { continue }
                capacity[offer.agentID] = offer
                offers.append(offer)
            }
            if !offers.isEmpty { continuation.yield(.offers(offers.map(\.model))) }
        case .rescind:
            if let id = event.rescind?.offerID {
                outstanding[id] = nil
                continuation.yield(.rescind(id))
            }
        case .update:
            guard let status = event.update?.status else { throw MesosError(.malformedEvent, "UPDATE without 'update.status'") }
            if status.state.isTerminal { pendingKills[status.taskID] = nil }
            var view = tasks[status.taskID] ?? LocalTaskView(
                taskID: status.taskID, agentID: status.agentID ?? AgentID(""), state: status.state, pid: nil,
                adopted: true, ports: [], message: nil)
            view.state = status.state
            view.message = status.message
            tasks[status.taskID] = view
            continuation.yield(.update(status.model))
        case .updateOperationStatus:
            if let status = event.updateOperationStatus?.status, let uuid = status.uuid, let operationID = status.operationID {
                var call = Mesos.Call(frameworkID: frameworkID, type: .acknowledgeOperationStatus)
                call.acknowledgeOperationStatus = .init(agentID: status.agentID, uuid: uuid.value, operationID: operationID)
                await sendLogging(call)
            }
        case .error:
            let message = event.error?.message ?? "(no message)"
            stats.errors.insert(message, at: 0)
            logger.error("master error", metadata: ["message": "\(message)"])
            if message == Self.failedOverMessage { failedOver = true }
        case .failure:
            logger.warning("failure", metadata: ["agent": "\(event.failure?.agentID?.value ?? "?")"])
        case .message, .heartbeat, .inverseOffers, .rescindInverseOffer, .unknown:
            break
        }
    }

    private func consume(_ resources: [Resource], on agentID: AgentID) {
        guard var offer = capacity[agentID] else { return }
        let used = ResourceQuantities(resources)
        var free = ResourceQuantities(offer.model.resources)
        free.cpus = max(0, free.cpus - used.cpus)
        free.memMB = max(0, free.memMB - used.memMB)
        free.diskMB = max(0, free.diskMB - used.diskMB)
        free.ports = free.ports.subtracting(used.ports)
        let role = Self.allocationRole(offer)
        offer.resources = free.resources.map { Mesos.Resource($0, allocationRole: role) }
        capacity[agentID] = offer
    }

    private static func allocationRole(_ offer: Mesos.Offer) -> String? {
        offer.allocationInfo?.role ?? offer.resources.first?.allocationInfo?.role
    }
}
