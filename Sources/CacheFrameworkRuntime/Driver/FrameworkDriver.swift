// The driver: a swift-service-lifecycle `Service` that runs `SchedulerStateMachine` against a backend, a state
// store and the member control seam. Everything the machine sees goes through one input stream (backend events,
// ticks, user intents, replication offsets), so the machine is driven by one loop and its actions run in order:
// `.persist` is awaited (durable) and its `.persisted` fed back before any later action; backend calls are awaited;
// member control (REPLICAOF, INFO replication, CLUSTER MYID, topology pushes) runs in child tasks so a slow member
// never stalls offers; the one exception is `REPLICAOF NO ONE` of a promotion, awaited in order so the topology push
// that follows it finds the new primary writable. Before an accept, the members it launches get their identities
// from the framework's authority (`MemberCredentialIssuer`). Members of clusters with secure replication are
// controlled through the secure channel on their replication port, as the framework (its authority's framework
// identity, `ControlSecurity`): every control call's endpoint goes through `SchedulerStateMachine.controlEndpoint`.
//
// On start it loads the store's snapshot, starts the backend (which re-adopts running processes and subscribes),
// and the machine reconciles every recorded task before it launches anything. On graceful shutdown it stops the
// loop and shuts the backend down (killing tasks unless `keepTasksOnShutdown`).

public import CacheFramework
public import CoreMetrics
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Time as the driver sees it; inject a manual one in tests.
public protocol FrameworkClock: Sendable {
    /// The current scheduler time.
    func now() -> SchedulerTime
    /// Sleeps for `duration` (throws on cancellation).
    func sleep(for duration: Duration) async throws
}

/// Wall-clock time.
public struct WallClock: FrameworkClock {
    /// Creates the clock.
    public init() {}
    public func now() -> SchedulerTime { SchedulerTime(seconds: Date().timeIntervalSince1970) }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// A backend the driver can start, run and stop, and ask about capacity (the local backend; the Mesos backend later).
public protocol DriverBackend: SchedulerBackend {
    /// Connects/subscribes; events follow on `events`.
    func start() async throws
    /// Runs until cancelled (watching processes, re-offering).
    func run() async
    /// Stops; kills the tasks if `killTasks`.
    func shutdown(killTasks: Bool) async
    /// What every agent has free now, one offer-shaped entry per agent, ignoring refuse filters.
    func capacityOffers() async -> [Offer]
    /// The agents and their free resources.
    func agents() async -> [LocalAgentView]
    /// The backend's view of its tasks.
    func taskViews() async -> [LocalTaskView]
    /// Offers made and not answered.
    func outstandingOffers() async -> [Offer]
    /// A cluster was deleted: release what the backend keeps for it beyond its tasks (the Mesos backend destroys
    /// its members' persistent volumes and unreserves their disk).
    func clusterDeleted(_ name: String) async
}

extension DriverBackend {
    /// Nothing is kept beyond the tasks.
    public func clusterDeleted(_ name: String) async {}
}

extension LocalBackend: DriverBackend {}

/// Something that happened in the framework, for the events API.
public struct FrameworkEvent: Hashable, Codable, Sendable {
    /// Increasing sequence number.
    public var sequence: UInt64
    /// When (scheduler seconds).
    public var time: Double
    /// A short kind: `update`, `launch`, `decline`, `cluster`, `replication`, `error`, …
    public var kind: String
    /// What happened.
    public var message: String
}

/// A member of a cluster as the API shows it.
public struct MemberStatus: Hashable, Codable, Sendable {
    /// Shard index.
    public var shard: Int
    /// Member index within the shard.
    public var member: Int
    /// The task filling the slot, if any.
    public var taskID: TaskID?
    /// Its role.
    public var role: MemberRole?
    /// Its last reported state (`nil` while the launch is being recorded/sent).
    public var state: TaskState?
    /// `host:port` clients connect to.
    public var endpoint: String?
    /// Why the slot is not placed yet, if the last offer round said.
    public var shortfall: String?
    /// Cluster mode: the member's node id (`CLUSTER MYID`).
    public var clusterNodeID: String?
    /// Cluster mode: the topology epoch the member acknowledged.
    public var topologyEpoch: UInt64?
}

/// A shard of a cluster-mode cluster as the API shows it.
public struct ShardStatus: Hashable, Codable, Sendable {
    /// Shard index.
    public var shard: Int
    /// Its hash slots (`first-last` ranges).
    public var slots: [String]
    /// The task serving them (its primary), if it runs.
    public var primary: TaskID?
    /// Whether the primary runs and acknowledged the current topology epoch (the slots are served).
    public var serving: Bool
    /// `promoting` while a replica is being chosen after the primary's loss, `replacing` while a member slot is
    /// empty or starting, else `nil`.
    public var healing: String?
}

/// A cluster as the API shows it.
public struct ClusterStatus: Hashable, Codable, Sendable {
    /// The spec.
    public var spec: ClusterSpec
    /// Every member slot.
    public var members: [MemberStatus]
    /// Whether every member runs.
    public var ready: Bool
    /// Running members / all members.
    public var runningMembers: Int
    /// Cluster mode: the epoch of the topology last pushed (`nil`: none pushed yet).
    public var topologyEpoch: UInt64?
    /// Cluster mode: whether every shard's slots are served (see `ShardStatus.serving`).
    public var serving: Bool?
    /// Cluster mode: the shards with their slots and health.
    public var shards: [ShardStatus]?
    /// Cluster mode: the last heals, oldest first.
    public var heals: [HealRecord]?
    /// Cluster mode: the shard-count change under way, if any.
    public var resharding: ReshardingStatus?
}

/// A shard-count change as the API shows it.
public struct ReshardingStatus: Hashable, Codable, Sendable {
    /// Shards before and after.
    public var fromShards: Int
    public var toShards: Int
    /// `launching` (new shards starting), `moving` (slots migrating) or `retiring` (removed shards stopping).
    public var phase: String
    /// Slots moved so far, of all that move.
    public var movedSlots: Int
    public var totalSlots: Int
    /// The batch being moved (`slots a-b from shard x to shard y`).
    public var inFlight: String?
    /// The last error a batch reported; the batch is retried.
    public var lastError: String?
}

/// Why a user request failed.
public enum FrameworkError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The scheduler refused the intent.
    case scheduler(SchedulerError)
    /// The agents cannot hold the cluster.
    case insufficientResources(AdmissionReport)
    /// No such shard, or it has no primary to fail over.
    case noPrimary(cluster: String, shard: Int)
    /// The framework is shutting down.
    case stopping
    /// Secure replication was asked for, but the framework has no cluster authority to issue identities.
    case noAuthority(cluster: String)

    public var description: String {
        switch self {
        case .scheduler(let error): error.description
        case .insufficientResources(let report): report.description
        case .noPrimary(let cluster, let shard): "cluster '\(cluster)' shard \(shard) has no running primary to fail over"
        case .stopping: "the framework is shutting down"
        case .noAuthority(let cluster):
            "cluster '\(cluster)' asks for secure replication, but this framework runs without a cluster authority: "
                + "start it with one (cachectl serve creates it in its data directory) or create the cluster with secure replication off"
        }
    }
}

/// The driver service.
public final class FrameworkDriver: Service, Sendable {
    /// Driver settings.
    public struct Configuration: Sendable {
        /// The state machine's settings.
        public var scheduler = SchedulerStateMachine.Configuration()
        /// How often `.tick` is fed.
        public var tickInterval: Duration = .seconds(1)
        /// Leave tasks running on graceful shutdown (a later start adopts them); by default they are killed.
        public var keepTasksOnShutdown = false
        /// Refuse clusters that the agents' free resources cannot hold.
        public var admissionCheck = true
        /// How many events the events API keeps.
        public var eventLimit = 1_000
        /// How often clusters with an autoscaling policy have their primaries sampled.
        public var autoscaleInterval: Duration = .seconds(5)
        /// The defaults.
        public init() {}
    }

    enum Input: Sendable {
        case backend(BackendEvent)
        case tick
        case offset(TaskID, UInt64)
        case load(cluster: String, mean: Double?)
        case event(SchedulerEvent)
        case intent(Intent, CheckedContinuation<Void, any Error>)
        case shutdown
    }

    enum Intent: Sendable {
        case create(ClusterSpec)
        case scale(String, replicas: Int?, shards: Int?)
        case delete(String)
        case failover(String, shard: Int)
    }

    struct View: Sendable {
        var phase: SchedulerStateMachine.Phase = .disconnected
        var clusters: [String: ClusterSpec] = [:]
        var tasks: [TaskID: TaskRecord] = [:]
        var shortfalls: [MemberSlot: PlacementShortfall] = [:]
        var layouts: [String: ClusterLayout] = [:]
        var pushedTopologies: [String: SlotTopology] = [:]
        var appliedEpochs: [TaskID: UInt64] = [:]
        var promoting: Set<String> = []
        var events: [FrameworkEvent] = []
        var eventSequence: UInt64 = 0
        var started = false
        var stopping = false
    }

    /// The backend.
    public let backend: any DriverBackend
    private let store: any StateStore
    private let control: any CacheNodeControl
    private let credentials: (any MemberCredentialIssuer)?
    private let clock: any FrameworkClock
    private let configuration: Configuration
    private let logger: Logger
    private let inputs: AsyncStream<Input>
    private let inputContinuation: AsyncStream<Input>.Continuation
    private let view = Mutex(View())
    private let metrics: DriverMetrics

    /// Creates a driver.
    public init(
        backend: any DriverBackend,
        store: any StateStore,
        control: any CacheNodeControl = RESPNodeControl(),
        clock: any FrameworkClock = WallClock(),
        configuration: Configuration = Configuration(),
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger = Logger(label: "cache-framework.driver"),
        credentials: (any MemberCredentialIssuer)? = nil
    ) {
        self.backend = backend
        self.store = store
        // With an authority that has a framework identity, secure members are controlled through the secure channel.
        var secured = control
        do {
            if let security = try credentials?.controlSecurity() { secured = control.securing(with: security) }
        } catch {
            logger.error("the framework identity is unavailable, secure members cannot be controlled: \(error)")
        }
        self.control = secured
        self.credentials = credentials
        self.clock = clock
        var configuration = configuration
        if let credentials, configuration.scheduler.credentialsDirectory == nil {
            configuration.scheduler.credentialsDirectory = credentials.directory
        }
        self.configuration = configuration
        self.logger = logger
        self.metrics = DriverMetrics(factory: metricsFactory)
        (inputs, inputContinuation) = AsyncStream.makeStream(of: Input.self)
    }

    // MARK: Service

    public func run() async throws {
        let snapshot = try await store.load()
        var machine = SchedulerStateMachine(restoring: snapshot, configuration: configuration.scheduler)
        publish(machine)
        view.withLock { $0.started = true }
        record("framework", "started with \(snapshot.clusters.count) clusters and \(snapshot.tasks.count) recorded tasks")
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                let backend = self.backend
                group.addTask { await backend.run() }
                group.addTask {
                    for await event in backend.events { self.inputContinuation.yield(.backend(event)) }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do { try await self.clock.sleep(for: self.configuration.tickInterval) } catch { return }
                        self.inputContinuation.yield(.tick)
                    }
                }
                var autoscalers: [String: ClusterAutoscaler] = [:]
                var lastSample = self.clock.now()
                try await backend.start()
                loop: for await input in self.inputs {
                    switch input {
                    case .shutdown:
                        break loop
                    case .backend(let event):
                        let actions = machine.handle(self.schedulerEvent(event))
                        try await self.execute(actions, on: &machine, group: &group)
                        if case .update(let status) = event, status.state.needsReplacement {
                            self.revokeMember(status.taskID, machine: machine, group: &group)
                        }
                    case .tick:
                        let now = self.clock.now()
                        try await self.execute(machine.handle(.tick(now: now)), on: &machine, group: &group)
                        if Duration.seconds(now.seconds - lastSample.seconds) >= self.configuration.autoscaleInterval {
                            lastSample = now
                            self.sampleAutoscaledClusters(machine, group: &group)
                        }
                    case .load(let name, let mean):
                        try await self.autoscale(name, mean: mean, autoscalers: &autoscalers, machine: &machine, group: &group)
                    case .offset(let taskID, let offset):
                        let actions = machine.handle(.replicationOffset(taskID, offset: offset))
                        try await self.execute(actions, on: &machine, group: &group)
                    case .event(let event):
                        try await self.execute(machine.handle(event), on: &machine, group: &group)
                    case .intent(let intent, let continuation):
                        do {
                            let actions = try await self.apply(intent, to: &machine)
                            try await self.execute(actions, on: &machine, group: &group)
                            // Callers read the views right after: publish before resuming them.
                            self.publish(machine)
                            continuation.resume()
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                    self.publish(machine)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.inputContinuation.yield(.shutdown)
        }
        view.withLock { $0.stopping = true }
        await backend.shutdown(killTasks: !configuration.keepTasksOnShutdown)
        inputContinuation.finish()
    }

    // MARK: user intents

    /// Adds a cluster (after an admission check); members launch from the next offers.
    public func createCluster(_ spec: ClusterSpec) async throws { try await submit(.create(spec)) }
    /// Changes the replicas per shard (`nil`: keep) and/or the shard count (`nil`: keep; a different count reshards
    /// with live slot migration, see `SchedulerStateMachine`; the call returns once it started).
    public func scaleCluster(_ name: String, replicasPerShard: Int?, shardCount: Int? = nil) async throws {
        try await submit(.scale(name, replicas: replicasPerShard, shards: shardCount))
    }
    /// Deletes a cluster and kills its members.
    public func deleteCluster(_ name: String) async throws { try await submit(.delete(name)) }
    /// Fails over a shard: kills its primary, so the scheduler promotes the best replica and replaces the member.
    public func failover(_ name: String, shard: Int) async throws { try await submit(.failover(name, shard: shard)) }

    private func submit(_ intent: Intent) async throws {
        if view.withLock({ $0.stopping }) { throw FrameworkError.stopping }
        try await withCheckedThrowingContinuation { continuation in
            inputContinuation.yield(.intent(intent, continuation))
        }
    }

    private func apply(_ intent: Intent, to machine: inout SchedulerStateMachine) async throws -> [SchedulerAction] {
        do {
            switch intent {
            case .create(let spec):
                do { try spec.validate() } catch { throw SchedulerError.invalidSpec(error) }
                if machine.clusters[spec.name] != nil { throw SchedulerError.clusterExists(spec.name) }
                if spec.engine == .cacheNode && spec.secureReplication && configuration.scheduler.credentialsDirectory == nil {
                    throw FrameworkError.noAuthority(cluster: spec.name)
                }
                if configuration.admissionCheck {
                    let report = AdmissionCheck.check(spec, capacity: await backend.capacityOffers(), strategy: configuration.scheduler.strategy)
                    guard report.fits else {
                        record("cluster", report.description)
                        throw FrameworkError.insufficientResources(report)
                    }
                }
                let actions = try machine.createCluster(spec)
                record("cluster", "created \(spec.name): \(spec.shardCount) shards × \(spec.membersPerShard) members, \(spec.engine.rawValue)")
                return actions
            case .scale(let name, let replicas, let shards):
                guard let spec = machine.clusters[name] else { throw SchedulerError.unknownCluster(name) }
                let replicas = replicas ?? spec.replicasPerShard
                if configuration.admissionCheck, let shards, shards > spec.shardCount {
                    // The new shards must fit in what the agents have free.
                    var added = spec
                    added.shardCount = shards - spec.shardCount
                    added.replicasPerShard = replicas
                    let report = AdmissionCheck.check(added, capacity: await backend.capacityOffers(), strategy: configuration.scheduler.strategy)
                    guard report.fits else {
                        record("cluster", report.description)
                        throw FrameworkError.insufficientResources(report)
                    }
                }
                let actions = try machine.scaleCluster(name, replicasPerShard: replicas, shardCount: shards)
                record("cluster", "scaled \(name) to \(shards ?? spec.shardCount) shards × \(replicas) replicas per shard"
                    + (shards.map { $0 != spec.shardCount ? " (resharding from \(spec.shardCount))" : "" } ?? ""))
                return actions
            case .delete(let name):
                let actions = try machine.deleteCluster(name)
                await backend.clusterDeleted(name)
                record("cluster", "deleted \(name)")
                return actions
            case .failover(let name, let shard):
                guard machine.clusters[name] != nil else { throw SchedulerError.unknownCluster(name) }
                guard let primary = machine.tasks.values.first(where: {
                    $0.slot.cluster == name && $0.slot.shard == shard && $0.role == .primary && $0.isRunning
                }) else { throw FrameworkError.noPrimary(cluster: name, shard: shard) }
                record("cluster", "failover of \(name) shard \(shard): killing primary \(primary.taskID)")
                return [.kill(taskID: primary.taskID, agentID: primary.agentID)]
            }
        } catch let error as SchedulerError {
            throw FrameworkError.scheduler(error)
        }
    }

    // MARK: autoscaling

    /// Reads the load of every primary of each cluster with an autoscaling policy, off the loop; each cluster's mean
    /// comes back as `.load` (nil when a primary could not be read).
    private func sampleAutoscaledClusters(_ machine: SchedulerStateMachine, group: inout ThrowingDiscardingTaskGroup<any Error>) {
        guard machine.phase == .ready else { return }
        for (name, spec) in machine.clusters {
            guard let policy = spec.autoscaling else { continue }
            let primaries = machine.tasks.values.filter { $0.slot.cluster == name && $0.role == .primary && $0.isRunning }
            guard primaries.count == spec.shardCount else {
                inputContinuation.yield(.load(cluster: name, mean: nil))
                continue
            }
            let endpoints = primaries.map { machine.controlEndpoint($0.endpoint) }
            group.addTask {
                var sum = 0.0
                for endpoint in endpoints {
                    guard let value = try? await self.control.memberLoad(endpoint).value(of: policy.metric) else {
                        self.inputContinuation.yield(.load(cluster: name, mean: nil))
                        return
                    }
                    sum += value
                }
                self.inputContinuation.yield(.load(cluster: name, mean: sum / Double(endpoints.count)))
            }
        }
    }

    /// Feeds a cluster's sampled mean to its autoscaler and starts the resharding it decides on.
    private func autoscale(
        _ name: String, mean: Double?, autoscalers: inout [String: ClusterAutoscaler], machine: inout SchedulerStateMachine,
        group: inout ThrowingDiscardingTaskGroup<any Error>
    ) async throws {
        let now = clock.now()
        guard let spec = machine.clusters[name], let policy = spec.autoscaling else {
            autoscalers[name] = nil
            return
        }
        let busy = machine.layouts[name]?.resharding != nil || machine.layouts[name]?.isProvisioned != true
            || machine.promotingGroups.contains { $0.hasPrefix(name + "/") } || !machine.pendingSlots.filter { $0.cluster == name }.isEmpty
        var autoscaler = autoscalers[name] ?? ClusterAutoscaler(now: now)
        let decision = autoscaler.observe(mean: mean, shardCount: spec.shardCount, busy: busy, policy: policy, now: now)
        autoscalers[name] = autoscaler
        guard case .scale(let shards, let reason)? = decision else { return }
        record("autoscale", "\(name): \(spec.shardCount) → \(shards) shards (\(reason))")
        do {
            try await execute(apply(.scale(name, replicas: nil, shards: shards), to: &machine), on: &machine, group: &group)
        } catch {
            record("autoscale", "\(name): scaling to \(shards) shards was refused: \(error)")
        }
    }

    // MARK: actions

    private func execute(
        _ initial: [SchedulerAction], on machine: inout SchedulerStateMachine,
        group: inout ThrowingDiscardingTaskGroup<any Error>
    ) async throws {
        var queue = initial[...]
        while let action = queue.popFirst() {
            switch action {
            case .persist(let batch):
                try await store.apply(batch)
                queue.append(contentsOf: machine.handle(.persisted(batchID: batch.id)))
            case .accept(let offerIDs, let operations, let filters):
                for case .launch(let infos) in operations {
                    issueCredentials(infos)
                    metrics.launched.increment(by: Int64(infos.count))
                    record("launch", "launching \(infos.count) tasks: \(infos.map(\.taskID.value).joined(separator: ", "))")
                }
                try await backend.accept(offerIDs: offerIDs, operations: operations, filters: filters)
            case .decline(let offerIDs, let filters):
                metrics.declined.increment(by: Int64(offerIDs.count))
                try await backend.decline(offerIDs: offerIDs, filters: filters)
            case .acknowledge(let agentID, let taskID, let uuid):
                try await backend.acknowledge(agentID: agentID, taskID: taskID, uuid: uuid)
            case .kill(let taskID, let agentID):
                record("kill", "killing \(taskID)")
                try await backend.kill(taskID: taskID, agentID: agentID)
            case .reconcile(let tasks):
                record("reconcile", tasks.isEmpty ? "implicit reconciliation" : "reconciling \(tasks.count) tasks")
                try await backend.reconcile(tasks)
            case .revive:
                try await backend.revive()
            case .suppress:
                try await backend.suppress()
            case .queryReplicationOffsets(let endpoints):
                for endpoint in endpoints.map(machine.controlEndpoint) {
                    group.addTask {
                        if let info = try? await self.control.replicationInfo(endpoint) {
                            self.inputContinuation.yield(.offset(endpoint.taskID, info.offset))
                        }
                    }
                }
            case .promote(let endpoint):
                // Awaited: a topology push that follows must find the new primary writable.
                record("replication", "promoting \(endpoint)")
                await self.control(replica: machine.controlEndpoint(endpoint), primary: nil)
            case .replicate(let replica, let primary):
                let replica = machine.controlEndpoint(replica)
                group.addTask { await self.control(replica: replica, primary: primary) }
            case .queryClusterNodeID(let endpoint):
                let endpoint = machine.controlEndpoint(endpoint)
                group.addTask {
                    do {
                        let id = try await self.control.clusterNodeID(endpoint)
                        self.inputContinuation.yield(.event(.clusterNodeID(endpoint.taskID, id)))
                    } catch {
                        self.metrics.controlErrors.increment()
                        self.logger.debug("node id query failed: \(error)")
                    }
                }
            case .migrateSlots(let cluster, var migration):
                migration.source = machine.controlEndpoint(migration.source)
                migration.target = machine.controlEndpoint(migration.target)
                group.addTask {
                    var failure: String?
                    let started = ContinuousClock.now
                    do {
                        let keys = try await self.control.migrateSlots(migration)
                        self.metrics.migratedSlots.increment(by: Int64(migration.slots.count))
                        self.metrics.migratedKeys.increment(by: Int64(keys))
                        self.logger.debug("\(cluster): moved slots \(migration.slots) (\(keys) keys) in \(ContinuousClock.now - started)")
                    } catch {
                        failure = "\(error)"
                        self.metrics.controlErrors.increment()
                        self.record("error", "\(cluster): moving slots \(migration.slots) failed (retried): \(error)")
                    }
                    self.inputContinuation.yield(.event(.slotsMigrated(cluster: cluster, migration.slots, error: failure)))
                }
            case .pushTopology(let cluster, let topology, let targets):
                record("topology", "pushing epoch \(topology.epoch) of \(cluster) to \(targets.count) members")
                for target in targets.map(machine.controlEndpoint) {
                    group.addTask {
                        var failure: String?
                        do {
                            try await self.control.pushTopology(topology, to: target)
                        } catch {
                            failure = "\(error)"
                            self.metrics.controlErrors.increment()
                            self.record("error", "\(error)")
                        }
                        self.inputContinuation.yield(.event(.topologyApplied(target.taskID, epoch: topology.epoch, error: failure)))
                    }
                }
            }
        }
    }

    /// Writes the identity of every launched member whose task asks for one (`TaskTemplate.identityLabel`). A member
    /// whose identity cannot be written still launches, fails to start, and is replaced like any failed member.
    private func issueCredentials(_ infos: [TaskInfo]) {
        guard let credentials else { return }
        for info in infos {
            guard let path = info.labels[TaskTemplate.identityLabel] else { continue }
            do {
                try credentials.issue(
                    taskID: info.taskID,
                    credentials: MemberCredentials(identityPath: path, authorityPath: credentials.directory + "/authority.pub"))
            } catch {
                metrics.controlErrors.increment()
                record("error", "\(error)")
            }
        }
    }

    /// Revokes a lost or replaced member's identity and pushes the re-signed list to every running secure member
    /// (`CONFIG SET revocation-list`), which refuses the revoked identity from then on and drops its open links.
    private func revokeMember(_ taskID: TaskID, machine: SchedulerStateMachine, group: inout ThrowingDiscardingTaskGroup<any Error>) {
        guard let credentials else { return }
        let path: String
        do {
            guard let revoked = try credentials.revoke(taskID: taskID) else { return }
            path = revoked
        } catch {
            metrics.controlErrors.increment()
            record("error", "\(error)")
            return
        }
        let targets = machine.tasks.values.filter { record in
            guard record.isRunning, record.taskID != taskID, let spec = machine.clusters[record.slot.cluster] else { return false }
            return spec.engine == .cacheNode && spec.secureReplication
        }.map { machine.controlEndpoint($0.endpoint) }
        record("revoke", "revoked the identity of \(taskID); pushing the revocation list to \(targets.count) members")
        for target in targets {
            group.addTask {
                do {
                    try await self.control.pushRevocationList(path, to: target)
                } catch {
                    self.metrics.controlErrors.increment()
                    self.record("error", "\(error)")
                }
            }
        }
    }

    /// Sends REPLICAOF; on failure retries every half second for up to 30 s while the scheduler's records still
    /// want it (a member reported RUNNING may not listen yet: a Mesos command executor reports RUNNING at process
    /// start), and stops as soon as a later decision (a promotion, a lost member) makes it stale.
    private func control(replica: TaskEndpoint, primary: TaskEndpoint?) async {
        for attempt in 0..<60 {
            if attempt > 0 {
                do { try await Task.sleep(for: .milliseconds(500)) } catch { return }
                guard stillWanted(replica: replica, primary: primary) else { return }
            }
            do {
                try await control.replicaOf(replica, primary: primary)
                metrics.replicationCommands.increment()
                record("replication", primary.map { "\(replica) replicates \($0)" } ?? "\(replica) is primary")
                return
            } catch {
                metrics.controlErrors.increment()
                if attempt == 0 { record("error", "\(error.description) (retrying)") }
            }
        }
        record("error", "\(replica): REPLICAOF \(primary.map(\.description) ?? "NO ONE") kept failing for 30 s; gave up")
    }

    /// Whether the records still make `replica` follow `primary` (or, with nil, be a primary).
    private func stillWanted(replica: TaskEndpoint, primary: TaskEndpoint?) -> Bool {
        let records = taskRecords()
        guard let member = records.first(where: { $0.taskID == replica.taskID }),
            member.hostname == replica.hostname, member.endpoint.port == replica.port
        else { return false }
        guard let primary else { return member.role == .primary }
        guard member.role == .replica,
            let leader = records.first(where: { $0.taskID == primary.taskID }), leader.role == .primary,
            leader.hostname == primary.hostname, leader.ports.contains(primary.port)
        else { return false }
        return true
    }

    private func schedulerEvent(_ event: BackendEvent) -> SchedulerEvent {
        let now = clock.now()
        switch event {
        case .subscribed(let id):
            record("backend", "subscribed as \(id)")
            return .subscribed(id, now: now)
        case .offers(let offers):
            metrics.offers.increment(by: Int64(offers.count))
            return .offers(offers, now: now)
        case .rescind(let id): return .rescind(id)
        case .update(let status):
            metrics.updates(status.state).increment()
            if status.reason != TaskStatus.reconciliationReason || status.state.needsReplacement {
                record("update", "\(status.taskID) \(status.state.rawValue)\(status.message.map { ": \($0)" } ?? "")")
            }
            return .update(status, now: now)
        case .disconnected: return .disconnected
        }
    }

    // MARK: views

    private func publish(_ machine: SchedulerStateMachine) {
        let shortfalls = machine.lastShortfalls
        metrics.shortfalls.record(shortfalls.count)
        metrics.runningTasks.record(machine.tasks.values.filter(\.isRunning).count)
        view.withLock {
            $0.phase = machine.phase
            $0.clusters = machine.clusters
            $0.tasks = machine.tasks
            $0.shortfalls = shortfalls
            $0.layouts = machine.layouts
            $0.pushedTopologies = machine.pushedTopologies
            $0.appliedEpochs = machine.appliedEpochs
            $0.promoting = machine.promotingGroups
        }
    }

    private func record(_ kind: String, _ message: String) {
        let time = clock.now().seconds
        let limit = configuration.eventLimit
        view.withLock { view in
            view.eventSequence += 1
            view.events.append(FrameworkEvent(sequence: view.eventSequence, time: time, kind: kind, message: message))
            if view.events.count > limit { view.events.removeFirst(view.events.count - limit) }
        }
        logger.info("\(kind): \(message)")
    }

    /// Whether the driver has loaded its state and runs.
    public var isStarted: Bool { view.withLock { $0.started } }

    /// The scheduler's phase: `disconnected`, `reconciling` or `ready`.
    public var phaseName: String {
        switch view.withLock({ $0.phase }) {
        case .disconnected: "disconnected"
        case .reconciling: "reconciling"
        case .ready: "ready"
        }
    }

    /// The events after `sequence`.
    public func events(after sequence: UInt64 = 0) -> [FrameworkEvent] {
        view.withLock { $0.events.filter { $0.sequence > sequence } }
    }

    /// The scheduler's task records.
    public func taskRecords() -> [TaskRecord] { view.withLock { $0.tasks.values.sorted { $0.taskID < $1.taskID } } }

    /// Every cluster's status, by name.
    public func clusterStatuses() -> [ClusterStatus] {
        let view = view.withLock { $0 }
        return view.clusters.keys.sorted().compactMap { clusterStatus($0, view: view) }
    }

    /// One cluster's status.
    public func clusterStatus(_ name: String) -> ClusterStatus? { clusterStatus(name, view: view.withLock { $0 }) }

    private func clusterStatus(_ name: String, view: View) -> ClusterStatus? {
        guard let spec = view.clusters[name] else { return nil }
        let bySlot = Dictionary(
            view.tasks.values.filter { $0.slot.cluster == name }.map { ($0.slot, $0) }, uniquingKeysWith: { a, _ in a })
        let members = ClusterPlan.memberSlots(of: spec).map { slot in
            let record = bySlot[slot]
            return MemberStatus(
                shard: slot.shard, member: slot.member, taskID: record?.taskID, role: record?.role,
                state: record?.lastState, endpoint: record.map { "\($0.hostname):\($0.ports.first ?? 0)" },
                shortfall: view.shortfalls[slot]?.description, clusterNodeID: record?.clusterNodeID,
                topologyEpoch: record.flatMap { view.appliedEpochs[$0.taskID] })
        }
        let running = members.filter { $0.state == .running }.count
        var status = ClusterStatus(spec: spec, members: members, ready: running == members.count, runningMembers: running)
        guard spec.engine == .cacheNode else { return status }
        // Cluster mode: ready once every member runs and acknowledged a topology that lists all of them.
        let pushed = view.pushedTopologies[name]
        let layout = view.layouts[name]
        let listed = Set(pushed.map { $0.shards.flatMap { [$0.primary.nodeID] + $0.replicas.map(\.nodeID) } } ?? [])
        status.topologyEpoch = pushed?.epoch
        status.heals = layout?.heals ?? []
        status.shards = (0..<spec.shardCount).map { shard in
            let shardMembers = members.filter { $0.shard == shard }
            let primary = shardMembers.first { $0.role == .primary && $0.state == .running }
            let slots = layout.flatMap { shard < $0.shardSlots.count ? $0.shardSlots[shard] : nil }
                ?? [ClusterPlan.slots(shard: shard, of: spec.shardCount)]
            let healing: String? =
                view.promoting.contains("\(name)/\(shard)") ? "promoting"
                : shardMembers.allSatisfy({ $0.state == .running }) ? nil : "replacing"
            return ShardStatus(
                shard: shard, slots: slots.map(\.description), primary: primary?.taskID,
                serving: primary != nil && pushed != nil && primary?.topologyEpoch == pushed?.epoch, healing: healing)
        }
        status.serving = status.shards?.allSatisfy(\.serving)
        if let resharding = layout?.resharding {
            status.resharding = ReshardingStatus(
                fromShards: resharding.fromShardCount, toShards: resharding.toShardCount, phase: resharding.phase.rawValue,
                movedSlots: resharding.movedSlots, totalSlots: resharding.totalSlots,
                inFlight: resharding.inFlight?.description, lastError: resharding.lastError)
        }
        status.ready = status.ready && pushed != nil && layout?.resharding == nil
            && members.allSatisfy { member in
                member.topologyEpoch == pushed?.epoch && member.clusterNodeID.map { listed.contains($0) } == true
            }
        return status
    }
}

/// The driver's counters and gauges (swift-metrics; exported by the API's Prometheus registry).
struct DriverMetrics: Sendable {
    let offers: Counter
    let declined: Counter
    let launched: Counter
    let replicationCommands: Counter
    let controlErrors: Counter
    let migratedSlots: Counter
    let migratedKeys: Counter
    let shortfalls: Gauge
    let runningTasks: Gauge
    private let factory: (any MetricsFactory)?
    private let updateCounters: [TaskState: Counter]

    init(factory: (any MetricsFactory)?) {
        self.factory = factory
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            if let factory { return Counter(label: label, dimensions: dimensions, factory: factory) }
            return Counter(label: label, dimensions: dimensions)
        }
        func gauge(_ label: String) -> Gauge {
            if let factory { return Gauge(label: label, dimensions: [], factory: factory) }
            return Gauge(label: label)
        }
        offers = counter("cacheframework_offers_received_total")
        declined = counter("cacheframework_offers_declined_total")
        launched = counter("cacheframework_tasks_launched_total")
        replicationCommands = counter("cacheframework_replication_commands_total")
        controlErrors = counter("cacheframework_control_errors_total")
        migratedSlots = counter("cacheframework_migrated_slots_total")
        migratedKeys = counter("cacheframework_migrated_keys_total")
        shortfalls = gauge("cacheframework_placement_shortfalls")
        runningTasks = gauge("cacheframework_tasks_running")
        updateCounters = Dictionary(uniqueKeysWithValues: TaskState.allCases.map {
            ($0, counter("cacheframework_task_updates_total", [("state", $0.rawValue)]))
        })
    }

    func updates(_ state: TaskState) -> Counter { updateCounters[state]! }
}
