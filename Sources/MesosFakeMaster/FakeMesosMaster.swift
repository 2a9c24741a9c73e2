// A wire-exact fake of a Mesos master's scheduler API (apache/mesos src/master/http.cpp `Master::Http::scheduler`,
// docs/scheduler-http-api.md), for tests and demos: swap it for a real master by changing one URL.
//
// This actor is the masters' shared brain; `FakeMesosMasterServer` puts one HTTP front end per master in front of it.
// It checks each request in the order the real master does: not leading → 307 to the leader; not POST → 405; no
// or wrong Content-Type → 400/415; unparsable → 400; invalid call → 400; SUBSCRIBE with Mesos-Stream-Id → 400;
// unknown framework → 400; framework not subscribed → 403; missing or stale Mesos-Stream-Id → 400; otherwise 202.
// SUBSCRIBE answers 200 with a RecordIO event stream (SUBSCRIBED first, HEARTBEATs every interval).
//
// Its agents are a real `LocalBackend`: accepted LAUNCH operations start child processes, and their status updates
// come back as UPDATEs with a base64 uuid, delivered one at a time per task and redelivered until acknowledged (the
// agent's status update manager). Offers expire after `offerTimeout` (RESCIND); an ACCEPT of an offer that is gone
// or already used answers TASK_DROPPED (TASK_LOST for frameworks that are not PARTITION_AWARE) with
// REASON_INVALID_OFFERS. A master failover closes the stream and makes another master leader: the old one
// redirects, offers are dropped, tasks keep running, and the framework resubscribes with its id. If it does not
// within its `failover_timeout`, its tasks are killed and its id is refused ("Framework has been removed").
//
// Reservations and persistent volumes (docs/reservation.md, docs/persistent-volume.md) are modelled for disk: the
// operations of an ACCEPT are applied in order to the offered resources, as the master does. RESERVE moves
// unreserved disk into a dynamic reservation for the framework's role (checked as validation.cpp does: dynamically
// reserved, allocated, allocation role = reservation role = one of the framework's roles); CREATE turns reserved disk
// into a volume with a persistence id unique on the agent, and fails ("… does not contain …") without a matching
// reservation; DESTROY (only of a volume no task uses) and UNRESERVE (never of a volume) undo them. A LAUNCH using
// reserved resources or a volume must find them in the offer. Reserved disk comes back in later offers in the
// post-refinement shape (`reservations`, `disk.persistence`, `disk.volume`) while no task uses it; it outlives tasks
// and the framework (TEARDOWN), as reservations belong to the role. A volume is a directory
// `<sandboxes>/volumes/<agent>/roles/<role>/<persistence id>` linked into the sandbox of every task that uses it at
// its `container_path`, so its files survive task restarts on that agent. The master runs without authentication,
// so principals are recorded but not checked.
//
// Agent partitions (master.cpp `markUnreachable`, `__removeSlave`, `_reregisterSlave`, `markGone`, `reconcile`,
// `kill`): `partitionAgent` cuts an agent off the master. Its processes keep running; its status updates wait on the
// agent (as its status update manager keeps them) and its resources are no longer offered (the fake stops them at
// once; outstanding ones are rescinded). After `agentUnreachableTimeout` (agent_ping_timeout × max_agent_ping_timeouts,
// 15 s × 5 by default) the master marks it unreachable: each task of a PARTITION_AWARE framework becomes
// TASK_UNREACHABLE (SOURCE_MASTER, REASON_SLAVE_REMOVED, "health check timed out", `unreachable_time`, no uuid:
// master-generated updates are not acknowledged and not resent; TASK_LOST for other frameworks), followed by a
// FAILURE event naming the agent. Unreachable tasks leave implicit reconciliation; explicit reconciliation and KILL
// (which the master answers with a reconciliation) report "Reconciliation: Task is unreachable". `reconnectAgent`
// (the agent reregisters) re-reports each of its tasks in the state it runs in (SOURCE_MASTER,
// REASON_SLAVE_REREGISTERED, "Unreachable agent re-reregistered", no uuid; tasks of frameworks that are not
// partition-aware are killed instead) and then delivers the updates the agent kept, acknowledged as usual.
// `markAgentGone` (the operator's MARK_AGENT_GONE) ends the agent: its tasks become TASK_GONE_BY_OPERATOR
// (REASON_SLAVE_REMOVED_BY_OPERATOR, "Agent has been marked gone"), its processes are killed without any further
// update, its reservations and volumes are gone, and it never offers again.

public import CacheFramework
public import CacheFrameworkMesos
public import CacheFrameworkRuntime
import Foundation
public import Logging
public import NIOCore
import NIOFoundationCompat

/// The shared state of a fake Mesos cluster's masters and agents.
public actor FakeMesosMaster {
    /// Settings.
    public struct Configuration: Sendable {
        /// The agents (slices of this machine) tasks run on.
        public var agents: [LocalAgentSpec]
        /// Where task sandboxes go.
        public var sandboxDirectory: String
        /// Where executables are looked up first.
        public var executableSearchPaths: [String]
        /// How many masters (HTTP front ends) the cluster has.
        public var masterCount: Int
        /// The HEARTBEAT interval announced in SUBSCRIBED (Mesos' default is 15 s).
        public var heartbeatInterval: Duration
        /// Offers not answered within this are rescinded (`--offer_timeout`; none by default, as in Mesos).
        public var offerTimeout: Duration?
        /// Unacknowledged status updates are resent this often.
        public var updateRetryInterval: Duration
        /// How often the agents re-offer free resources.
        public var offerInterval: Duration
        /// Decides when a started task is reported RUNNING (default: at once, as Mesos' command executor does).
        public var readiness: LocalBackend.ReadinessCheck
        /// How long a partitioned agent stays registered before the master marks it unreachable
        /// (`--agent_ping_timeout` × `--max_agent_ping_timeouts`: 15 s × 5 in Mesos).
        public var agentUnreachableTimeout: Duration = .seconds(75)

        /// Creates a configuration.
        public init(
            agents: [LocalAgentSpec],
            sandboxDirectory: String,
            executableSearchPaths: [String] = [],
            masterCount: Int = 2,
            heartbeatInterval: Duration = .seconds(15),
            offerTimeout: Duration? = nil,
            updateRetryInterval: Duration = .seconds(10),
            offerInterval: Duration = .milliseconds(200),
            readiness: @escaping LocalBackend.ReadinessCheck = { _ in true }
        ) {
            self.agents = agents
            self.sandboxDirectory = sandboxDirectory
            self.executableSearchPaths = executableSearchPaths
            self.masterCount = masterCount
            self.heartbeatInterval = heartbeatInterval
            self.offerTimeout = offerTimeout
            self.updateRetryInterval = updateRetryInterval
            self.offerInterval = offerInterval
            self.readiness = readiness
        }
    }

    /// What a request is answered with.
    public enum Reply: Sendable {
        /// A plain response: status code, body text, and the Location of a redirect.
        case status(Int, String, location: String?)
        /// 200 OK with `Mesos-Stream-Id` and a chunked RecordIO event stream.
        case stream(streamID: String, events: AsyncStream<ByteBuffer>)

        /// The status code.
        public var code: Int {
            switch self {
            case .status(let code, _, _): code
            case .stream: 200
            }
        }
    }

    /// One request as the masters saw it.
    public struct CallRecord: Hashable, Sendable {
        /// The master that received it.
        public var master: Int
        /// The call type (or `?` if it did not parse).
        public var type: String
        /// The Mesos-Stream-Id header sent.
        public var streamIDHeader: String?
        /// The status answered.
        public var status: Int
        /// The framework id the call named.
        public var frameworkID: FrameworkID?
    }

    /// A task as the master knows it.
    public struct TaskView: Hashable, Sendable {
        /// The launched task.
        public var info: Mesos.TaskInfo
        /// Its latest state.
        public var state: TaskState
    }

    private struct Subscription {
        var streamID: String
        var continuation: AsyncStream<ByteBuffer>.Continuation
        var lastHeartbeat: ContinuousClock.Instant
    }

    private struct Framework {
        var id: FrameworkID
        var info: Mesos.FrameworkInfo
        var subscription: Subscription?
        var disconnectedAt: ContinuousClock.Instant?
    }

    private struct PendingUpdate {
        var status: Mesos.TaskStatus
        var lastSent: ContinuousClock.Instant?
    }

    /// The settings.
    public nonisolated let configuration: Configuration
    /// The agents: real processes.
    public nonisolated let agents: LocalBackend
    private let logger: Logger
    private let clock = ContinuousClock()
    private let masterID = String(UUID().uuidString.prefix(8)).lowercased()

    private var endpoints: [Int: String] = [:]
    private var leader = 0
    private var framework: Framework?
    private var completed: Set<FrameworkID> = []
    private var offers: [OfferID: (offer: Mesos.Offer, expiresAt: ContinuousClock.Instant?)] = [:]
    private var tasks: [TaskID: TaskView] = [:]
    private var pending: [TaskID: [PendingUpdate]] = [:]
    private var silencedStream: String?
    private var frameworkCounter = 0
    private var log: [CallRecord] = []
    /// Dynamically reserved disk and persistent volumes per agent, as checkpointed (no allocation info).
    private var reserved: [AgentID: [Mesos.Resource]] = [:]
    /// Which task uses each persistent volume (by persistence id).
    private var volumeUsers: [String: TaskID] = [:]
    private var acknowledged: [String] = []
    private var subscribeCount = 0
    /// Agents cut off the master, and what they keep meanwhile.
    private var partitions: [AgentID: Partition] = [:]
    /// Agents marked gone: nothing of theirs reaches the master again.
    private var goneAgents: Set<AgentID> = []

    private struct Partition {
        var since: ContinuousClock.Instant
        /// When the master marked the agent unreachable (`unreachable_time`), once it did.
        var unreachableTime: Date?
        /// The state each task had when it became unreachable.
        var states: [TaskID: TaskState] = [:]
        /// Status updates the agent keeps until it reaches the master again, in order.
        var held: [Mesos.TaskStatus] = []
    }

    /// Creates the brain; `run()` drives the agents and timers.
    public init(configuration: Configuration, logger: Logger = Logger(label: "fake-mesos-master")) {
        self.configuration = configuration
        self.logger = logger
        agents = LocalBackend(
            configuration: LocalBackendConfiguration(
                agents: configuration.agents, sandboxDirectory: configuration.sandboxDirectory,
                executableSearchPaths: configuration.executableSearchPaths, offerInterval: configuration.offerInterval,
                killGracePeriod: .seconds(2)),
            journal: InMemoryLocalTaskJournal(), frameworkID: FrameworkID("fake-agents"), logger: logger,
            readiness: configuration.readiness)
    }

    // MARK: running

    /// Runs the agents, relays their offers and updates, and drives heartbeats, offer expiry, update retries and
    /// the failover timeout until cancelled.
    public func run() async throws {
        try await agents.start()
        let agents = agents
        await withDiscardingTaskGroup { group in
            group.addTask { await agents.run() }
            group.addTask {
                for await event in agents.events { await self.agentEvent(event) }
            }
            group.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
                    await self.tick()
                }
            }
        }
    }

    /// Kills every task and closes the stream.
    public func stop() async {
        framework?.subscription?.continuation.finish()
        framework?.subscription = nil
        await agents.shutdown(killTasks: true)
    }

    /// Records where master `index` listens (`host:port`), for redirects.
    public func setEndpoint(_ index: Int, _ authority: String) { endpoints[index] = authority }

    // MARK: test controls

    /// Makes master `index` the leader: the stream closes, outstanding offers are dropped, the other masters
    /// redirect to it; tasks keep running and the framework must resubscribe.
    public func failover(to index: Int) async {
        leader = index
        logger.notice("master failover", metadata: ["leader": "\(index)"])
        await disconnect(reason: "master failover")
        // The new leader's allocator starts without the framework's refuse filters.
        try? await agents.revive()
    }

    /// Stops sending any event, heartbeats included, on the current stream while keeping it open (a silent
    /// partition); a later subscription is not affected.
    public func silenceCurrentStream() { silencedStream = framework?.subscription?.streamID }

    /// Rescinds an outstanding offer now.
    public func rescind(_ id: OfferID) async {
        guard offers.removeValue(forKey: id) != nil else { return }
        send(.rescind(id))
        try? await agents.decline(offerIDs: [id], filters: Filters(refuseSeconds: 0))
    }

    /// Cuts `agent` off the master (a network partition or a hung agent): its tasks keep running, its updates wait,
    /// its resources are no longer offered; after `agentUnreachableTimeout` its tasks become TASK_UNREACHABLE.
    public func partitionAgent(_ agent: AgentID) async {
        guard partitions[agent] == nil, !goneAgents.contains(agent) else { return }
        var partition = Partition(since: clock.now)
        // Updates not yet acknowledged stay with the agent, which resends them once it reaches the master again.
        for (taskID, task) in tasks.sorted(by: { $0.key < $1.key }) where task.info.agentID == agent {
            if let queue = pending.removeValue(forKey: taskID) { partition.held += queue.map(\.status) }
        }
        partitions[agent] = partition
        logger.notice("agent partitioned", metadata: ["agent": "\(agent)"])
        for (id, entry) in offers.sorted(by: { $0.key < $1.key }) where entry.offer.agentID == agent { await rescind(id) }
    }

    /// The partitioned `agent` reaches the master again and reregisters.
    public func reconnectAgent(_ agent: AgentID) async {
        guard let partition = partitions.removeValue(forKey: agent) else { return }
        logger.notice("agent reregistered", metadata: ["agent": "\(agent)"])
        let partitionAware = framework?.info.has(.partitionAware) ?? false
        if partition.unreachableTime != nil {
            var latest = partition.states
            for status in partition.held where latest[status.taskID] != nil { latest[status.taskID] = status.state }
            for (taskID, state) in latest.sorted(by: { $0.key < $1.key }) {
                guard let task = tasks[taskID], task.state == .unreachable else { continue }
                tasks[taskID]?.state = state
                if !partitionAware && !state.isTerminal {
                    // Not partition-aware: the master already reported TASK_LOST and shuts such tasks down.
                    try? await agents.kill(taskID: taskID, agentID: agent)
                    continue
                }
                send(.update(Mesos.TaskStatus(
                    taskID: taskID, state: state, message: "Unreachable agent re-reregistered", source: "SOURCE_MASTER",
                    reason: "REASON_SLAVE_REREGISTERED", agentID: agent, executorID: Mesos.ExecutorID(taskID.value),
                    timestamp: Date().timeIntervalSince1970)))
            }
        }
        // The agent's status update manager delivers what it kept, to be acknowledged as usual.
        for status in partition.held { enqueue(status) }
    }

    /// An operator marks `agent` gone (`MARK_AGENT_GONE`): its tasks are TASK_GONE_BY_OPERATOR, it is shut down
    /// (its processes are killed, its reservations and volumes are gone), and it never offers again.
    public func markAgentGone(_ agent: AgentID) async {
        guard goneAgents.insert(agent).inserted else { return }
        partitions[agent] = nil
        logger.notice("agent marked gone", metadata: ["agent": "\(agent)"])
        for (id, entry) in offers.sorted(by: { $0.key < $1.key }) where entry.offer.agentID == agent { await rescind(id) }
        let partitionAware = framework?.info.has(.partitionAware) ?? false
        for (taskID, task) in tasks.sorted(by: { $0.key < $1.key }) where task.info.agentID == agent {
            pending[taskID] = nil
            guard !task.state.isTerminal else { continue }
            tasks[taskID]?.state = .goneByOperator
            send(.update(Mesos.TaskStatus(
                taskID: taskID, state: partitionAware ? .goneByOperator : .lost, message: "Agent has been marked gone",
                source: "SOURCE_MASTER", reason: partitionAware ? "REASON_SLAVE_REMOVED_BY_OPERATOR" : "REASON_SLAVE_REMOVED",
                agentID: agent, executorID: Mesos.ExecutorID(taskID.value),
                timestamp: Date().timeIntervalSince1970)))
            volumeUsers = volumeUsers.filter { $0.value != taskID }
            try? await agents.kill(taskID: taskID, agentID: agent)
        }
        reserved[agent] = nil
    }

    /// The master marks a partitioned agent unreachable (its health checks timed out).
    private func markUnreachable(_ agent: AgentID) {
        guard var partition = partitions[agent], partition.unreachableTime == nil else { return }
        let now = Date()
        partition.unreachableTime = now
        let partitionAware = framework?.info.has(.partitionAware) ?? false
        for (taskID, task) in tasks.sorted(by: { $0.key < $1.key }) where task.info.agentID == agent && !task.state.isTerminal {
            partition.states[taskID] = task.state
            tasks[taskID]?.state = .unreachable
            var status = Mesos.TaskStatus(
                taskID: taskID, state: partitionAware ? .unreachable : .lost, message: "health check timed out",
                source: "SOURCE_MASTER", reason: "REASON_SLAVE_REMOVED", agentID: agent,
                executorID: Mesos.ExecutorID(taskID.value), timestamp: now.timeIntervalSince1970)
            status.unreachableTime = Self.timeInfo(now)
            send(.update(status))
        }
        partitions[agent] = partition
        logger.notice("agent marked unreachable", metadata: ["agent": "\(agent)"])
        send(.failure(agentID: agent))
    }

    static func timeInfo(_ date: Date) -> Mesos.TimeInfo {
        Mesos.TimeInfo(nanoseconds: Int64((date.timeIntervalSince1970 * 1e9).rounded()))
    }

    /// The agents the master cannot reach, and whether it marked them unreachable yet.
    public var partitionedAgents: [AgentID: Bool] { partitions.mapValues { $0.unreachableTime != nil } }

    // MARK: introspection

    /// The leading master's index.
    public var leaderIndex: Int { leader }
    /// Every request received, in order.
    public var callLog: [CallRecord] { log }
    /// How many SUBSCRIBE calls opened a stream.
    public var subscriptions: Int { subscribeCount }
    /// The subscribed framework's id and whether it is connected.
    public var frameworkState: (id: FrameworkID, connected: Bool)? {
        framework.map { ($0.id, $0.subscription != nil) }
    }
    /// The framework info of the subscribed framework.
    public var frameworkInfo: Mesos.FrameworkInfo? { framework?.info }
    /// The tasks, by id.
    public var taskViews: [TaskID: TaskView] { tasks }
    /// Outstanding offers.
    public var outstandingOfferIDs: [OfferID] { offers.keys.sorted() }
    /// The uuids acknowledged, in order.
    public var acknowledgedUUIDs: [String] { acknowledged }
    /// Reserved disk and persistent volumes, by agent.
    public var reservedResources: [AgentID: [Mesos.Resource]] { reserved }
    /// The directory of persistent volume `id` reserved for `role` on `agent`.
    public nonisolated func volumeDirectory(agent: AgentID, role: String, id: String) -> String {
        configuration.sandboxDirectory + "/volumes/\(agent.value)/roles/\(role)/\(id)"
    }
    /// Status updates waiting for acknowledgement, by task.
    public var unacknowledged: [TaskID: [Mesos.TaskStatus]] { pending.mapValues { $0.map(\.status) } }

    // MARK: requests

    /// Answers one request to `/api/v1/scheduler` received by master `index`.
    public func handle(
        master index: Int, method: String, contentType: String?, streamIDHeader: String?, body: ByteBuffer
    ) async -> Reply {
        var record = CallRecord(master: index, type: "?", streamIDHeader: streamIDHeader, status: 0)
        let reply = await answer(master: index, method: method, contentType: contentType, streamIDHeader: streamIDHeader, body: body, record: &record)
        record.status = reply.code
        log.append(record)
        return reply
    }

    private func answer(
        master index: Int, method: String, contentType: String?, streamIDHeader: String?, body: ByteBuffer,
        record: inout CallRecord
    ) async -> Reply {
        if index != leader {
            let location = endpoints[leader].map { "//\($0)/api/v1/scheduler" }
            return .status(307, "", location: location)
        }
        guard method == "POST" else { return .status(405, "Expecting one of { 'POST' }, but received '\(method)'", location: nil) }
        guard let contentType else { return .status(400, "Expecting 'Content-Type' to be present", location: nil) }
        guard contentType.lowercased().hasPrefix("application/json") else {
            return .status(415, "Expecting 'Content-Type' of application/json or application/x-protobuf", location: nil)
        }
        guard (try? JSONSerialization.jsonObject(with: Data(buffer: body))) != nil else {
            return .status(400, "Failed to parse body into JSON", location: nil)
        }
        let call: Mesos.Call
        do { call = try JSONDecoder().decode(Mesos.Call.self, from: body) } catch {
            return .status(400, "Failed to convert JSON into Call protobuf: \(error)", location: nil)
        }
        record.type = call.type.rawValue
        record.frameworkID = call.frameworkID
        if let problem = call.validationError() {
            return .status(400, "Failed to validate scheduler::Call: \(problem)", location: nil)
        }
        if call.type == .subscribe {
            if streamIDHeader != nil {
                return .status(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header", location: nil)
            }
            return await subscribe(call.subscribe!.frameworkInfo)
        }
        guard let framework, framework.id == call.frameworkID else {
            return .status(400, "Framework cannot be found", location: nil)
        }
        guard let subscription = framework.subscription else {
            return .status(403, "Framework is not subscribed", location: nil)
        }
        guard let streamIDHeader else {
            return .status(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header", location: nil)
        }
        guard streamIDHeader == subscription.streamID else {
            return .status(
                400,
                "The stream ID '\(streamIDHeader)' included in this request didn't match the stream ID currently "
                    + "associated with framework ID \(framework.id.value)", location: nil)
        }
        await dispatch(call, framework: framework)
        return .status(202, "", location: nil)
    }

    private func subscribe(_ info: Mesos.FrameworkInfo) async -> Reply {
        let (events, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let streamID = UUID().uuidString.lowercased()
        if let id = info.id, completed.contains(id) {
            continuation.yield(Self.frame(.error("Framework has been removed")))
            continuation.finish()
            return .stream(streamID: streamID, events: events)
        }
        if let framework, let id = info.id, id != framework.id {
            continuation.yield(Self.frame(.error("this fake master runs one framework; \(framework.id.value) is subscribed")))
            continuation.finish()
            return .stream(streamID: streamID, events: events)
        }
        // A resubscription replaces the previous connection: the master tells the old scheduler it failed over
        // (master.cpp `failoverFramework`) and closes its stream.
        if let previous = framework?.subscription {
            if previous.streamID != silencedStream { previous.continuation.yield(Self.frame(.error(MesosBackend.failedOverMessage))) }
            previous.continuation.finish()
        }
        await dropOffers()
        let id = info.id ?? framework?.id ?? newFrameworkID()
        var info = info
        info.id = id
        framework = Framework(
            id: id, info: info, subscription: Subscription(streamID: streamID, continuation: continuation, lastHeartbeat: clock.now),
            disconnectedAt: nil)
        subscribeCount += 1
        continuation.onTermination = { _ in Task { await self.streamEnded(streamID) } }
        send(.subscribed(id, heartbeatIntervalSeconds: Self.seconds(configuration.heartbeatInterval)))
        // Unacknowledged updates are resent to the new connection.
        for taskID in pending.keys.sorted() { deliverHead(of: taskID) }
        logger.info("framework subscribed", metadata: ["framework": "\(id)", "stream": "\(streamID)"])
        return .stream(streamID: streamID, events: events)
    }

    private func newFrameworkID() -> FrameworkID {
        defer { frameworkCounter += 1 }
        return FrameworkID("\(masterID)-\(String(format: "%04d", frameworkCounter))")
    }

    private func streamEnded(_ streamID: String) async {
        guard framework?.subscription?.streamID == streamID else { return }
        await disconnect(reason: "subscription connection closed")
    }

    private func disconnect(reason: String) async {
        if let subscription = framework?.subscription {
            framework?.subscription = nil
            framework?.disconnectedAt = clock.now
            subscription.continuation.finish()
            logger.info("framework disconnected", metadata: ["reason": "\(reason)"])
        }
        await dropOffers()
    }

    private func dropOffers() async {
        let ids = Array(offers.keys)
        offers = [:]
        if !ids.isEmpty { try? await agents.decline(offerIDs: ids, filters: Filters(refuseSeconds: 0)) }
    }

    // MARK: calls

    private func dispatch(_ call: Mesos.Call, framework: Framework) async {
        switch call.type {
        case .teardown:
            await removeFramework(reason: "TEARDOWN")
        case .accept:
            await accept(call.accept!, framework: framework)
        case .decline:
            let decline = call.decline!
            let known = decline.offerIDs.filter { offers.removeValue(forKey: $0) != nil }
            if !known.isEmpty { try? await agents.decline(offerIDs: known, filters: decline.filters ?? Filters(refuseSeconds: 5)) }
        case .revive:
            try? await agents.revive()
        case .suppress:
            try? await agents.suppress()
        case .kill:
            let kill = call.kill!
            if let task = tasks[kill.taskID], task.state == .unreachable || task.state == .goneByOperator {
                // Not among the master's tasks any more: it answers with a reconciliation of the task.
                reconcile([Mesos.Call.Reconcile.Task(taskID: kill.taskID, agentID: kill.agentID)], partitionAware: framework.info.has(.partitionAware))
            } else if let task = tasks[kill.taskID], !task.state.isTerminal {
                try? await agents.kill(taskID: kill.taskID, agentID: task.info.agentID)
            } else if tasks[kill.taskID] == nil {
                send(.update(Mesos.TaskStatus(
                    taskID: kill.taskID, state: .lost, message: "Attempted to kill an unknown task", source: "SOURCE_MASTER",
                    reason: "REASON_TASK_UNKNOWN", agentID: kill.agentID, timestamp: Date().timeIntervalSince1970)))
            }
        case .acknowledge:
            let ack = call.acknowledge!
            acknowledge(taskID: ack.taskID, uuid: ack.uuid)
        case .reconcile:
            reconcile(call.reconcile!.tasks, partitionAware: framework.info.has(.partitionAware))
        case .shutdown, .message, .request, .acknowledgeOperationStatus, .reconcileOperations, .acceptInverseOffers,
            .declineInverseOffers, .updateFramework, .subscribe, .unknown:
            break
        }
    }

    private func accept(_ accept: Mesos.Call.Accept, framework: Framework) async {
        let found = accept.offerIDs.compactMap { offers[$0]?.offer }
        let invalid: String? =
            if accept.offerIDs.isEmpty { "No offers specified" }
            else if found.count != accept.offerIDs.count {
                "Offer \(accept.offerIDs.first { offers[$0] == nil }!.value) is no longer valid"
            } else if Set(found.map(\.agentID)).count > 1 { "Aggregated offers must belong to one single agent" }
            else { nil }
        for id in accept.offerIDs { offers[id] = nil }
        let lostState: TaskState = framework.info.has(.partitionAware) ? .dropped : .lost
        guard invalid == nil else {
            for operation in accept.operations {
                for info in operation.launch?.taskInfos ?? operation.launchGroup?.taskGroup.tasks ?? [] {
                    send(.update(Mesos.TaskStatus(
                        taskID: info.taskID, state: lostState, message: "Task launched with invalid offers: \(invalid!)",
                        source: "SOURCE_MASTER", reason: "REASON_INVALID_OFFERS", agentID: info.agentID,
                        timestamp: Date().timeIntervalSince1970)))
                }
                if let id = operation.id {
                    send(.updateOperationStatus(Mesos.OperationStatus(
                        operationID: id, state: "OPERATION_DROPPED", message: invalid, agentID: found.first?.agentID)))
                }
            }
            return
        }
        let agent = found[0].agentID
        let roles = Set(framework.info.roles ?? ["*"])
        // The offered resources, converted operation by operation: unreserved quantities and reserved resources.
        var available = ResourceQuantities(found.flatMap { $0.resources.filter { !Self.isReserved($0) }.map(\.model) })
        var pool = found.flatMap { $0.resources.filter(Self.isReserved).map(Self.checkpointed) }
        var launches: [CacheFramework.TaskInfo] = []
        for operation in accept.operations {
            switch operation.type {
            case .launch:
                for info in operation.launch?.taskInfos ?? [] {
                    let needed = ResourceQuantities(info.resources.filter { !Self.isReserved($0) }.map(\.model))
                    var remaining = pool
                    let usesReserved = info.resources.filter(Self.isReserved).allSatisfy { resource in
                        guard let index = remaining.firstIndex(of: Self.checkpointed(resource)) else { return false }
                        remaining.remove(at: index)
                        return true
                    }
                    let error: String? =
                        if let known = tasks[info.taskID], !known.state.isTerminal { "Task has duplicate ID: \(info.taskID.value)" }
                        else if info.agentID != agent { "Task uses agent \(info.agentID.value), not the offer's" }
                        else if needed.cpus > available.cpus + 1e-9 || needed.memMB > available.memMB + 1e-9
                            || needed.diskMB > available.diskMB + 1e-9 || !available.ports.contains(needed.ports) || !usesReserved
                        { "Task uses more resources \(Self.describe(info.resources)) than available \(available) + \(Self.describe(pool))" }
                        else { nil }
                    if let error {
                        send(.update(Mesos.TaskStatus(
                            taskID: info.taskID, state: .error, message: error, source: "SOURCE_MASTER",
                            reason: "REASON_TASK_INVALID", agentID: info.agentID, timestamp: Date().timeIntervalSince1970)))
                        continue
                    }
                    available.cpus -= needed.cpus
                    available.memMB -= needed.memMB
                    available.diskMB -= needed.diskMB
                    available.ports = available.ports.subtracting(needed.ports)
                    pool = remaining
                    tasks[info.taskID] = TaskView(info: info, state: .staging)
                    mountVolumes(of: info)
                    launches.append(Self.runnable(info))
                }
            case .reserve, .create, .unreserve, .destroy:
                if let error = apply(operation, agent: agent, roles: roles, available: &available, pool: &pool) {
                    logger.warning("dropping operation", metadata: ["type": "\(operation.type.rawValue)", "error": "\(error)"])
                    if let id = operation.id {
                        send(.updateOperationStatus(Mesos.OperationStatus(operationID: id, state: "OPERATION_ERROR", message: error)))
                    }
                } else if let id = operation.id {
                    send(.updateOperationStatus(Mesos.OperationStatus(
                        operationID: id, state: "OPERATION_FINISHED", uuid: Mesos.UUIDValue(Self.newUUID()), agentID: agent,
                        convertedResources: operation.reserve?.resources ?? operation.create?.volumes
                            ?? operation.unreserve?.resources ?? operation.destroy?.volumes)))
                }
            default:
                if let id = operation.id {
                    send(.updateOperationStatus(Mesos.OperationStatus(
                        operationID: id, state: "OPERATION_ERROR",
                        message: "operation \(operation.type.rawValue) is not supported by the fake master")))
                }
            }
        }
        try? await agents.accept(
            offerIDs: accept.offerIDs, operations: launches.isEmpty ? [] : [.launch(launches)],
            filters: accept.filters ?? Filters(refuseSeconds: 5))
    }

    /// Applies a RESERVE, CREATE, UNRESERVE or DESTROY to the offered resources and the agent's checkpointed ones;
    /// returns why it was dropped (in the master's words) instead.
    private func apply(
        _ operation: Mesos.Operation, agent: AgentID, roles: Set<String>, available: inout ResourceQuantities,
        pool: inout [Mesos.Resource]
    ) -> String? {
        switch operation.type {
        case .reserve:
            let resources = operation.reserve?.resources ?? []
            guard !resources.isEmpty else { return "Expecting 'reserve' to be present" }
            for resource in resources {
                let text = Self.describe([resource])
                guard let reservation = resource.reservations?.last, reservation.type == "DYNAMIC" else {
                    return "Resource \(text) is not dynamically reserved"
                }
                guard let allocated = resource.allocationInfo?.role else {
                    return "A reserve operation was attempted on unallocated resource \(text), but frameworks can only "
                        + "perform reservations on allocated resources"
                }
                let role = reservation.role ?? "*"
                if allocated != role {
                    return "A reserve operation was attempted for a resource with role '\(role)', but the resource was "
                        + "allocated to role '\(allocated)'"
                }
                if !roles.contains(role) {
                    return "A reserve operation was attempted for a resource with role '\(role)', but the framework can "
                        + "only reserve resources with roles '\(roles.sorted())'"
                }
                guard resource.name == "disk", resource.type == .scalar, resource.disk == nil else {
                    return "the fake master reserves plain disk only, not \(text)"
                }
            }
            let amount = resources.reduce(0) { $0 + ($1.scalar?.value ?? 0) }
            guard amount <= available.diskMB + 1e-9 else {
                return "\(available) does not contain \(Self.describe(resources))"
            }
            available.diskMB -= amount
            for resource in resources {
                pool.append(Self.checkpointed(resource))
                reserved[agent, default: []].append(Self.checkpointed(resource))
            }
        case .create:
            let volumes = operation.create?.volumes ?? []
            guard !volumes.isEmpty else { return "Expecting 'create' to be present" }
            var ids = Set((reserved[agent] ?? []).compactMap { $0.disk?.persistence?.id })
            for volume in volumes {
                guard let disk = volume.disk else { return "Not a persistent volume: Resource \(Self.describe([volume])) does not have DiskInfo" }
                guard let id = disk.persistence?.id else { return "Not a persistent volume: 'persistence' is not set in DiskInfo" }
                guard disk.volume != nil else { return "Not a persistent volume: Expecting 'volume' to be set for persistent volume" }
                guard ids.insert(id).inserted else { return "Persistence ID '\(id)' is not unique" }
            }
            for volume in volumes {
                var consumed = Self.checkpointed(volume)
                consumed.disk = nil
                guard let index = pool.firstIndex(of: consumed) else {
                    return "\(Self.describe(pool)) does not contain \(Self.describe([consumed]))"
                }
                pool[index] = Self.checkpointed(volume)
                if let stored = reserved[agent]?.firstIndex(of: consumed) { reserved[agent]![stored] = Self.checkpointed(volume) }
                let role = volume.reservations?.last?.role ?? "*"
                try? FileManager.default.createDirectory(
                    atPath: volumeDirectory(agent: agent, role: role, id: volume.disk!.persistence!.id), withIntermediateDirectories: true)
            }
        case .destroy:
            let volumes = operation.destroy?.volumes ?? []
            guard !volumes.isEmpty else { return "Expecting 'destroy' to be present" }
            for volume in volumes {
                guard let id = volume.disk?.persistence?.id else { return "Not a persistent volume: 'persistence' is not set in DiskInfo" }
                if volumeUsers[id] != nil { return "Persistent volumes in use" }
                guard pool.contains(Self.checkpointed(volume)) else { return "Persistent volumes not found" }
            }
            for volume in volumes {
                let stored = Self.checkpointed(volume)
                var plain = stored
                plain.disk = nil
                if let index = pool.firstIndex(of: stored) { pool[index] = plain }
                if let index = reserved[agent]?.firstIndex(of: stored) { reserved[agent]![index] = plain }
                let role = volume.reservations?.last?.role ?? "*"
                try? FileManager.default.removeItem(atPath: volumeDirectory(agent: agent, role: role, id: volume.disk!.persistence!.id))
            }
        case .unreserve:
            let resources = operation.unreserve?.resources ?? []
            guard !resources.isEmpty else { return "Expecting 'unreserve' to be present" }
            for resource in resources {
                let text = Self.describe([resource])
                guard resource.reservations?.last?.type == "DYNAMIC" else { return "Resource \(text) is not dynamically reserved" }
                if resource.disk?.persistence != nil {
                    return "A dynamically reserved persistent volume \(text) cannot be unreserved directly. Please destroy "
                        + "the persistent volume first then unreserve the resource"
                }
                guard pool.contains(Self.checkpointed(resource)) else {
                    return "\(Self.describe(pool)) does not contain \(text)"
                }
            }
            for resource in resources {
                let stored = Self.checkpointed(resource)
                if let index = pool.firstIndex(of: stored) { pool.remove(at: index) }
                if let index = reserved[agent]?.firstIndex(of: stored) { reserved[agent]!.remove(at: index) }
                available.diskMB += resource.scalar?.value ?? 0
            }
        default:
            return "not a reservation or volume operation"
        }
        return nil
    }

    /// Marks the task's volumes used and links each into its sandbox at its container path (the agent's
    /// `filesystem/linux` isolator mounts it there; without isolation Mesos links it, as here).
    private func mountVolumes(of info: Mesos.TaskInfo) {
        let sandbox = configuration.sandboxDirectory + "/" + info.taskID.value
        for resource in info.resources {
            guard let id = resource.disk?.persistence?.id, let path = resource.disk?.volume?.containerPath else { continue }
            volumeUsers[id] = info.taskID
            let directory = volumeDirectory(agent: info.agentID, role: resource.reservations?.last?.role ?? "*", id: id)
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? FileManager.default.createDirectory(atPath: sandbox, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: sandbox + "/" + path)
            try? FileManager.default.createSymbolicLink(atPath: sandbox + "/" + path, withDestinationPath: directory)
        }
    }

    static func isReserved(_ resource: Mesos.Resource) -> Bool { !(resource.reservations ?? []).isEmpty }

    /// A resource as the master checkpoints it: without the allocation info it carries in offers.
    static func checkpointed(_ resource: Mesos.Resource) -> Mesos.Resource {
        var resource = resource
        resource.allocationInfo = nil
        resource.role = nil
        return resource
    }

    /// Resources in the master's log notation, e.g. `disk(reservations: [(DYNAMIC,cache,p)])[id:data]:64`.
    static func describe(_ resources: [Mesos.Resource]) -> String {
        if resources.isEmpty { return "{}" }
        return resources.map { resource in
            var text = resource.name
            if let reservations = resource.reservations, !reservations.isEmpty {
                text += "(reservations: [" + reservations.map { "(\($0.type ?? "?"),\($0.role ?? "*")\($0.principal.map { ",\($0)" } ?? ""))" }.joined(separator: ",") + "])"
            }
            if let disk = resource.disk, let id = disk.persistence?.id { text += "[\(id):\(disk.volume?.containerPath ?? "")]" }
            if let value = resource.scalar?.value {
                text += value == value.rounded() && abs(value) < 1e15 ? ":\(Int64(value))" : ":\(value)"
            }
            if let ranges = resource.ranges { text += ":\(ranges)" }
            return text
        }.joined(separator: "; ")
    }

    /// The task as the local agents run it: a shell command runs under /bin/sh -c; disk is the master's to account
    /// (reservations and volumes), so the agents do not count it again.
    private static func runnable(_ info: Mesos.TaskInfo) -> CacheFramework.TaskInfo {
        var task = info.model
        task.resources.removeAll { $0.name == "disk" }
        if task.command.shell {
            task.command = CacheFramework.CommandInfo(
                value: "/bin/sh", arguments: ["-c", task.command.value], environment: task.command.environment)
        }
        return task
    }

    private func reconcile(_ list: [Mesos.Call.Reconcile.Task], partitionAware: Bool) {
        let now = Date().timeIntervalSince1970
        if list.isEmpty {
            // Unreachable tasks are not among the framework's tasks: implicit reconciliation leaves them out.
            for (id, task) in tasks.sorted(by: { $0.key < $1.key }) where !task.state.isTerminal && task.state != .unreachable {
                send(.update(Mesos.TaskStatus(
                    taskID: id, state: task.state, source: "SOURCE_MASTER", reason: TaskStatus.reconciliationReason,
                    agentID: task.info.agentID, timestamp: now)))
            }
            return
        }
        for entry in list {
            if let task = tasks[entry.taskID], task.state == .unreachable || task.state == .goneByOperator {
                // Unknown to the master as a task; its agent is unreachable (with the time it became so) or gone.
                let unreachable = task.state == .unreachable
                var status = Mesos.TaskStatus(
                    taskID: entry.taskID,
                    state: partitionAware ? task.state : .lost,
                    message: unreachable ? "Reconciliation: Task is unreachable" : "Reconciliation: Task is gone",
                    source: "SOURCE_MASTER", reason: TaskStatus.reconciliationReason, agentID: task.info.agentID, timestamp: now)
                if unreachable { status.unreachableTime = partitions[task.info.agentID]?.unreachableTime.map(Self.timeInfo) }
                send(.update(status))
            } else if let task = tasks[entry.taskID] {
                send(.update(Mesos.TaskStatus(
                    taskID: entry.taskID, state: task.state, source: "SOURCE_MASTER", reason: TaskStatus.reconciliationReason,
                    agentID: task.info.agentID, timestamp: now)))
            } else {
                send(.update(Mesos.TaskStatus(
                    taskID: entry.taskID, state: partitionAware ? .unknown : .lost, message: "Reconciliation: Task is unknown",
                    source: "SOURCE_MASTER", reason: TaskStatus.reconciliationReason, agentID: entry.agentID, timestamp: now)))
            }
        }
    }

    private func acknowledge(taskID: TaskID, uuid: String) {
        guard var queue = pending[taskID], queue.first?.status.uuid == uuid else { return }
        acknowledged.append(uuid)
        queue.removeFirst()
        pending[taskID] = queue.isEmpty ? nil : queue
        deliverHead(of: taskID)
    }

    private func removeFramework(reason: String) async {
        guard let id = framework?.id else { return }
        completed.insert(id)
        for (taskID, task) in tasks where !task.state.isTerminal {
            try? await agents.kill(taskID: taskID, agentID: task.info.agentID)
        }
        await disconnect(reason: reason)
        framework = nil
        pending = [:]
        logger.notice("framework removed", metadata: ["framework": "\(id)", "reason": "\(reason)"])
    }

    // MARK: agents

    private func agentEvent(_ event: BackendEvent) async {
        switch event {
        case .offers(var agentOffers):
            // A partitioned or gone agent's resources are not offered.
            let cutOff = agentOffers.filter { partitions[$0.agentID] != nil || goneAgents.contains($0.agentID) }.map(\.id)
            if !cutOff.isEmpty {
                try? await agents.decline(offerIDs: cutOff, filters: Filters(refuseSeconds: 1))
                agentOffers.removeAll { cutOff.contains($0.id) }
                if agentOffers.isEmpty { return }
            }
            guard let framework, let subscription = framework.subscription, subscription.streamID != silencedStream else {
                try? await agents.decline(offerIDs: agentOffers.map(\.id), filters: Filters(refuseSeconds: 1))
                return
            }
            let role = framework.info.has(.multiRole) ? (framework.info.roles?.first ?? "*") : nil
            let expiry = configuration.offerTimeout.map { clock.now.advanced(by: $0) }
            let wire = agentOffers.map { offer in
                // Reserved disk leaves the unreserved pool; what no task uses comes back in its reserved shape.
                let held = reserved[offer.agentID] ?? []
                let reservedMB = held.reduce(0) { $0 + ($1.scalar?.value ?? 0) }
                var resources = offer.resources.compactMap { resource -> Mesos.Resource? in
                    guard resource.name == "disk", let value = resource.scalar?.value else {
                        return Mesos.Resource(resource, allocationRole: role)
                    }
                    let left = value - reservedMB
                    return left > 0 ? Mesos.Resource(.scalar("disk", left), allocationRole: role) : nil
                }
                for resource in held where resource.disk?.persistence.map({ volumeUsers[$0.id] == nil }) ?? true {
                    var offered = resource
                    offered.allocationInfo = role.map { Mesos.AllocationInfo(role: $0) }
                    resources.append(offered)
                }
                return Mesos.Offer(
                    id: offer.id, frameworkID: framework.id, agentID: offer.agentID, hostname: offer.hostname,
                    resources: resources, attributes: offer.attributes, allocationInfo: role.map { Mesos.AllocationInfo(role: $0) })
            }
            for offer in wire { offers[offer.id] = (offer, expiry) }
            send(.offers(wire))
        case .update(let status):
            guard let task = tasks[status.taskID] else { return }
            // A gone agent's updates never reach the master.
            if goneAgents.contains(task.info.agentID) { return }
            let update = Mesos.TaskStatus(
                taskID: status.taskID, state: status.state, message: status.message,
                source: status.state == .failed || status.state == .lost ? "SOURCE_AGENT" : "SOURCE_EXECUTOR",
                reason: status.reason, agentID: status.agentID, executorID: Mesos.ExecutorID(status.taskID.value),
                timestamp: status.timestamp, uuid: Self.newUUID())
            // A partitioned agent keeps its updates until it reaches the master again.
            if partitions[task.info.agentID] != nil {
                partitions[task.info.agentID]!.held.append(update)
                return
            }
            enqueue(update)
        case .subscribed, .rescind, .disconnected:
            break
        }
    }

    /// An agent's status update reaches the master: it updates the task and is delivered once the ones before it
    /// were acknowledged.
    private func enqueue(_ update: Mesos.TaskStatus) {
        guard tasks[update.taskID] != nil else { return }
        tasks[update.taskID]?.state = update.state
        if update.state.isTerminal { volumeUsers = volumeUsers.filter { $0.value != update.taskID } }
        guard framework != nil else { return }
        let wasEmpty = pending[update.taskID]?.isEmpty ?? true
        pending[update.taskID, default: []].append(PendingUpdate(status: update))
        if wasEmpty { deliverHead(of: update.taskID) }
    }

    private func deliverHead(of taskID: TaskID) {
        guard let subscription = framework?.subscription, subscription.streamID != silencedStream,
            var queue = pending[taskID], !queue.isEmpty
        else { return }
        queue[0].lastSent = clock.now
        pending[taskID] = queue
        send(.update(queue[0].status))
    }

    private func tick() async {
        let now = clock.now
        if let subscription = framework?.subscription, now - subscription.lastHeartbeat >= configuration.heartbeatInterval {
            framework?.subscription?.lastHeartbeat = now
            send(.heartbeat)
        }
        for (agent, partition) in partitions.sorted(by: { $0.key < $1.key })
        where partition.unreachableTime == nil && now - partition.since >= configuration.agentUnreachableTimeout {
            markUnreachable(agent)
        }
        let expired = offers.filter { $0.value.expiresAt.map { $0 <= now } ?? false }.keys.sorted()
        for id in expired { await rescind(id) }
        for (taskID, queue) in pending.sorted(by: { $0.key < $1.key }) {
            if let sent = queue.first?.lastSent, now - sent >= configuration.updateRetryInterval { deliverHead(of: taskID) }
        }
        if let framework, framework.subscription == nil, let since = framework.disconnectedAt {
            let timeout = framework.info.failoverTimeout ?? 0
            if Self.seconds(now - since) >= timeout { await removeFramework(reason: "failover timeout of \(timeout) s elapsed") }
        }
    }

    private func send(_ event: Mesos.Event) {
        guard let subscription = framework?.subscription, subscription.streamID != silencedStream else { return }
        subscription.continuation.yield(Self.frame(event))
    }

    // MARK: encoding

    /// `event` as JSON framed as one RecordIO record.
    public static func frame(_ event: Mesos.Event) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(event)) ?? Data()
        return RecordIO.frame(ByteBuffer(data: json))
    }

    /// 16 random bytes in base64, as a status update's `uuid`.
    static func newUUID() -> String {
        let uuid = UUID().uuid
        return withUnsafeBytes(of: uuid) { Data($0).base64EncodedString() }
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
