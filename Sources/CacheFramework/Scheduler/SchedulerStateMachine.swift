// The scheduler as a pure value: events in (`SchedulerEvent` and user intents), actions out (`SchedulerAction`).
//
// Life cycle. A scheduler starts `disconnected`, from the snapshot its `StateStore` holds. On `.subscribed` it
// reconciles every task it recorded (explicit reconciliation) and declines offers until every task is answered;
// then it asks for implicit reconciliation (tasks it does not know are killed) and becomes `ready`. When ready, each
// offer round places the member slots that have no task, records the launch intents (`.persist`), holds the offers
// until `.persisted` arrives, and only then accepts them; an offer rescinded in between cancels its launches.
// Unused offers are declined with a refuse filter; with nothing to do the scheduler suppresses offers and revives
// when work appears. Status updates are persisted before they are acknowledged. A lost replica frees its slot; a
// lost primary starts a promotion: the shard's running replicas are asked for their replication offsets, the
// highest is promoted (or the best that answered by the deadline), the others are pointed at it, and the freed slot
// is filled by a replacement replica.

/// The offer-based scheduler's state machine.
public struct SchedulerStateMachine: Sendable {
    /// Tunables.
    public struct Configuration: Sendable {
        /// Refuse filter for offers left unused while work is pending.
        public var refuseSeconds: Double = 5
        /// Refuse filter for offers declined while there is nothing to launch.
        public var idleRefuseSeconds: Double = 120
        /// Refuse filter for offers declined while reconciling.
        public var reconcilingRefuseSeconds: Double = 2
        /// How long to wait for reconciliation answers before asking again.
        public var reconcileRetrySeconds: Double = 30
        /// How long replicas have to report their offsets when a primary is lost.
        public var offsetQueryTimeoutSeconds: Double = 5
        /// How often a ready scheduler asks for implicit reconciliation.
        public var periodicReconcileSeconds: Double = 600
        /// Placement strategy.
        public var strategy: PlacementStrategy = .spread
        /// The executable each engine runs.
        public var executables: [CacheEngine: String] = [.cacheNode: "cache-node", .redisServer: "redis-server"]
        /// Whether cache-node members get `--replication-port`/`--secure-replication` (turn on once cache-node
        /// has secure replication; today it refuses unknown flags).
        public var cacheNodeReplicationFlags = false

        /// The defaults.
        public init() {}
    }

    /// Where the scheduler is in its life cycle.
    public enum Phase: Hashable, Sendable {
        case disconnected
        case reconciling(remaining: Set<TaskID>, deadline: SchedulerTime)
        case ready
    }

    struct AgentLaunch: Sendable {
        var offerIDs: [OfferID]
        var taskIDs: [TaskID]
        var rescinded = false
    }

    struct Promotion: Sendable {
        var candidates: [TaskID]
        var offsets: [TaskID: UInt64] = [:]
        var deadline: SchedulerTime
    }

    public let configuration: Configuration
    /// The life-cycle phase.
    public private(set) var phase: Phase = .disconnected
    /// The framework id, once subscribed.
    public private(set) var frameworkID: FrameworkID?
    /// The clusters by name.
    public private(set) var clusters: [String: ClusterSpec]
    /// The live tasks (launching or reported, never terminal) by id.
    public private(set) var tasks: [TaskID: TaskRecord]
    /// Why member slots could not be placed in the last offer round.
    public private(set) var lastShortfalls: [MemberSlot: PlacementShortfall] = [:]
    /// Whether offers are suppressed.
    public private(set) var suppressed = false
    private var taskBySlot: [MemberSlot: TaskID] = [:]
    private var nextTaskNumber: UInt64
    private var nextBatchID: UInt64 = 1
    private var launchesAwaitingPersist: [UInt64: [AgentLaunch]] = [:]
    private var batchOfHeldOffer: [OfferID: UInt64] = [:]
    private var promotions: [String: Promotion] = [:]
    private var lastReconcile: SchedulerTime?

    /// Creates a scheduler from what its store recorded (an empty snapshot for a first start).
    public init(restoring snapshot: SchedulerSnapshot = SchedulerSnapshot(), configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.frameworkID = snapshot.frameworkID
        self.clusters = snapshot.clusters
        self.tasks = snapshot.tasks
        self.nextTaskNumber = snapshot.nextTaskNumber
        for record in snapshot.tasks.values { taskBySlot[record.slot] = record.taskID }
    }

    /// Whether promotion of a new primary is under way for the shard `group` (`MemberSlot.group`).
    public func isPromoting(_ group: String) -> Bool { promotions[group] != nil }

    /// The member slots that have no task, in cluster, shard and member order (slots of shards being promoted wait).
    public var pendingSlots: [MemberSlot] {
        clusters.keys.sorted().flatMap { name in
            ClusterPlan.memberSlots(of: clusters[name]!).filter { taskBySlot[$0] == nil && promotions[$0.group] == nil }
        }
    }

    // MARK: events

    /// Handles an event and returns the actions to carry out, in order.
    public mutating func handle(_ event: SchedulerEvent) -> [SchedulerAction] {
        switch event {
        case .subscribed(let id, let now): subscribed(id, now: now)
        case .disconnected: disconnected()
        case .offers(let offers, let now): received(offers, now: now)
        case .rescind(let offerID): rescind(offerID)
        case .update(let status, let now): update(status, now: now)
        case .persisted(let batchID): persisted(batchID)
        case .replicationOffset(let taskID, let offset): replicationOffset(taskID, offset: offset)
        case .tick(let now): tick(now)
        }
    }

    private mutating func subscribed(_ id: FrameworkID, now: SchedulerTime) -> [SchedulerAction] {
        var actions: [SchedulerAction] = []
        if frameworkID != id {
            frameworkID = id
            actions.append(.persist(makeBatch([.setFrameworkID(id)])))
        }
        lastReconcile = now
        if tasks.isEmpty {
            actions += becomeReady()
        } else {
            let remaining = Set(tasks.keys)
            phase = .reconciling(remaining: remaining, deadline: now.adding(seconds: configuration.reconcileRetrySeconds))
            actions.append(.reconcile(reconcileList(remaining)))
        }
        return actions
    }

    private mutating func becomeReady() -> [SchedulerAction] {
        phase = .ready
        var actions: [SchedulerAction] = [.reconcile([])]
        if !pendingSlots.isEmpty {
            suppressed = false
            actions.append(.revive)
        }
        return actions
    }

    private mutating func disconnected() -> [SchedulerAction] {
        phase = .disconnected
        for batch in launchesAwaitingPersist.keys {
            for index in launchesAwaitingPersist[batch]!.indices { launchesAwaitingPersist[batch]![index].rescinded = true }
        }
        batchOfHeldOffer = [:]
        return []
    }

    private mutating func received(_ offers: [Offer], now: SchedulerTime) -> [SchedulerAction] {
        guard !offers.isEmpty else { return [] }
        let allIDs = offers.map(\.id)
        guard phase == .ready else {
            return [.decline(offerIDs: allIDs, filters: Filters(refuseSeconds: configuration.reconcilingRefuseSeconds))]
        }
        let slots = pendingSlots
        guard !slots.isEmpty else {
            var actions: [SchedulerAction] = [
                .decline(offerIDs: allIDs, filters: Filters(refuseSeconds: configuration.idleRefuseSeconds))
            ]
            if !suppressed {
                suppressed = true
                actions.append(.suppress)
            }
            return actions
        }
        let requests = slots.map { slot in
            let spec = clusters[slot.cluster]!
            return PlacementRequest(
                taskID: TaskID(slot.description), group: slot.group, cpus: spec.cpusPerNode,
                memMB: spec.taskMemoryMB, portCount: spec.engine.portCount
            )
        }
        let groups = Set(slots.map(\.group))
        let existing = tasks.values.filter { groups.contains($0.slot.group) }.map {
            ExistingPlacement(group: $0.slot.group, agentID: $0.agentID, failureDomain: $0.failureDomain)
        }
        let result = Placement.place(requests: requests, offers: offers, strategy: configuration.strategy, existing: existing)
        let slotByRequest = Dictionary(uniqueKeysWithValues: zip(requests.map(\.taskID), slots))
        lastShortfalls = [:]
        for unplaced in result.unplaced { lastShortfalls[slotByRequest[unplaced.request.taskID]!] = unplaced.shortfall }

        var intents: [StateIntent] = []
        var launches: [AgentID: AgentLaunch] = [:]
        var agentOrder: [AgentID] = []
        for assignment in result.assignments {
            let slot = slotByRequest[assignment.request.taskID]!
            let taskID = TaskID("\(slot.cluster).s\(slot.shard).m\(slot.member).\(nextTaskNumber)")
            nextTaskNumber += 1
            let record = TaskRecord(
                taskID: taskID, slot: slot,
                role: members(ofShardOf: slot).contains { $0.role == .primary } ? .replica : .primary,
                phase: .launching, lastState: nil, agentID: assignment.agentID, hostname: assignment.hostname,
                ports: assignment.ports, failureDomain: assignment.failureDomain
            )
            tasks[taskID] = record
            taskBySlot[slot] = taskID
            intents.append(.putTask(record))
            if launches[assignment.agentID] == nil {
                agentOrder.append(assignment.agentID)
                launches[assignment.agentID] = AgentLaunch(offerIDs: assignment.offerIDs, taskIDs: [])
            }
            launches[assignment.agentID]!.taskIDs.append(taskID)
        }
        var actions: [SchedulerAction] = []
        if !intents.isEmpty {
            intents.append(.setNextTaskNumber(nextTaskNumber))
            let batch = makeBatch(intents)
            launchesAwaitingPersist[batch.id] = agentOrder.map { launches[$0]! }
            for offerID in result.usedOfferIDs { batchOfHeldOffer[offerID] = batch.id }
            actions.append(.persist(batch))
        }
        let unused = allIDs.filter { !result.usedOfferIDs.contains($0) }
        if !unused.isEmpty {
            actions.append(.decline(offerIDs: unused, filters: Filters(refuseSeconds: configuration.refuseSeconds)))
        }
        return actions
    }

    private mutating func rescind(_ offerID: OfferID) -> [SchedulerAction] {
        guard let batchID = batchOfHeldOffer.removeValue(forKey: offerID) else { return [] }
        for index in launchesAwaitingPersist[batchID, default: []].indices
        where launchesAwaitingPersist[batchID]![index].offerIDs.contains(offerID) {
            launchesAwaitingPersist[batchID]![index].rescinded = true
            launchesAwaitingPersist[batchID]![index].offerIDs.removeAll { $0 == offerID }
        }
        return []
    }

    private mutating func persisted(_ batchID: UInt64) -> [SchedulerAction] {
        guard let launches = launchesAwaitingPersist.removeValue(forKey: batchID) else { return [] }
        var actions: [SchedulerAction] = []
        var cancelled: [StateIntent] = []
        for launch in launches {
            for offerID in launch.offerIDs { batchOfHeldOffer[offerID] = nil }
            if launch.rescinded {
                for taskID in launch.taskIDs {
                    if let record = tasks.removeValue(forKey: taskID) { taskBySlot[record.slot] = nil }
                    cancelled.append(.deleteTask(taskID))
                }
                if phase != .disconnected && !launch.offerIDs.isEmpty {
                    actions.append(.decline(offerIDs: launch.offerIDs, filters: Filters(refuseSeconds: 0)))
                }
                continue
            }
            let infos = launch.taskIDs.compactMap { id -> TaskInfo? in
                guard let record = tasks[id], let spec = clusters[record.slot.cluster] else { return nil }
                return TaskTemplate.taskInfo(
                    for: record, spec: spec, executable: configuration.executables[spec.engine] ?? spec.engine.rawValue,
                    replicationFlags: configuration.cacheNodeReplicationFlags
                )
            }
            actions.append(
                .accept(
                    offerIDs: launch.offerIDs, operations: [.launch(infos)],
                    filters: Filters(refuseSeconds: configuration.refuseSeconds)
                )
            )
        }
        if !cancelled.isEmpty {
            actions.append(.persist(makeBatch(cancelled)))
            if phase == .ready {
                suppressed = false
                actions.append(.revive)
            }
        }
        return actions
    }

    private mutating func update(_ status: TaskStatus, now: SchedulerTime) -> [SchedulerAction] {
        var actions: [SchedulerAction] = []
        if case .reconciling(var remaining, let deadline) = phase {
            remaining.remove(status.taskID)
            phase = .reconciling(remaining: remaining, deadline: deadline)
        }
        if var record = tasks[status.taskID] {
            if status.state.needsReplacement {
                actions += lost(record, state: status.state, now: now)
            } else {
                let wasRunning = record.isRunning
                record.phase = .reported
                record.lastState = status.state
                if let agent = status.agentID { record.agentID = agent }
                tasks[record.taskID] = record
                actions.append(.persist(makeBatch([.putTask(record)])))
                if status.state == .running && !wasRunning { actions += wireReplication(record) }
            }
        } else if !status.state.isTerminal {
            actions.append(.kill(taskID: status.taskID, agentID: status.agentID))
        }
        if let uuid = status.uuid, let agent = status.agentID {
            actions.append(.acknowledge(agentID: agent, taskID: status.taskID, uuid: uuid))
        }
        if case .reconciling(let remaining, _) = phase, remaining.isEmpty { actions += becomeReady() }
        return actions
    }

    /// Forgets a task that stopped serving and decides how to heal its shard.
    private mutating func lost(_ record: TaskRecord, state: TaskState, now: SchedulerTime) -> [SchedulerAction] {
        tasks[record.taskID] = nil
        if taskBySlot[record.slot] == record.taskID { taskBySlot[record.slot] = nil }
        var actions: [SchedulerAction] = [.persist(makeBatch([.deleteTask(record.taskID)]))]
        if state == .unreachable { actions.append(.kill(taskID: record.taskID, agentID: record.agentID)) }
        let group = record.slot.group
        if var promotion = promotions[group] {
            promotion.candidates.removeAll { $0 == record.taskID }
            promotions[group] = promotion
            if promotion.candidates.allSatisfy({ promotion.offsets[$0] != nil }) { actions += finishPromotion(group) }
            return actions
        }
        if record.role == .primary {
            let survivors = members(ofShardOf: record.slot).filter { $0.role == .replica && $0.isRunning }
            if !survivors.isEmpty {
                promotions[group] = Promotion(
                    candidates: survivors.map(\.taskID),
                    deadline: now.adding(seconds: configuration.offsetQueryTimeoutSeconds)
                )
                actions.append(.queryReplicationOffsets(survivors.map(\.endpoint)))
                return actions
            }
        }
        if clusters[record.slot.cluster] != nil && phase == .ready {
            suppressed = false
            actions.append(.revive)
        }
        return actions
    }

    private mutating func replicationOffset(_ taskID: TaskID, offset: UInt64) -> [SchedulerAction] {
        guard let group = tasks[taskID]?.slot.group, var promotion = promotions[group],
            promotion.candidates.contains(taskID)
        else { return [] }
        promotion.offsets[taskID] = offset
        promotions[group] = promotion
        guard promotion.candidates.allSatisfy({ promotion.offsets[$0] != nil }) else { return [] }
        return finishPromotion(group)
    }

    private mutating func finishPromotion(_ group: String) -> [SchedulerAction] {
        guard let promotion = promotions.removeValue(forKey: group) else { return [] }
        var actions: [SchedulerAction] = []
        let decision = HealDecision.decide(
            lostWasPrimary: true, survivingReplicas: promotion.candidates.map { ($0, promotion.offsets[$0]) }
        )
        if case .promote(let newPrimary, let repoint) = decision, var record = tasks[newPrimary] {
            record.role = .primary
            tasks[newPrimary] = record
            actions.append(.persist(makeBatch([.putTask(record)])))
            actions.append(.promote(record.endpoint))
            for replica in repoint.compactMap({ tasks[$0] }) {
                actions.append(.replicate(replica: replica.endpoint, primary: record.endpoint))
            }
        }
        if phase == .ready {
            suppressed = false
            actions.append(.revive)
        }
        return actions
    }

    private mutating func tick(_ now: SchedulerTime) -> [SchedulerAction] {
        var actions: [SchedulerAction] = []
        for group in promotions.keys.sorted() where promotions[group]!.deadline <= now {
            actions += finishPromotion(group)
        }
        switch phase {
        case .reconciling(let remaining, let deadline) where deadline <= now:
            phase = .reconciling(remaining: remaining, deadline: now.adding(seconds: configuration.reconcileRetrySeconds))
            actions.append(.reconcile(reconcileList(remaining)))
        case .ready:
            if let last = lastReconcile, now.seconds - last.seconds >= configuration.periodicReconcileSeconds {
                lastReconcile = now
                actions.append(.reconcile([]))
            }
        default:
            break
        }
        return actions
    }

    // MARK: user intents

    /// Adds a cluster; its members are launched from the next offers.
    public mutating func createCluster(_ spec: ClusterSpec) throws(SchedulerError) -> [SchedulerAction] {
        do { try spec.validate() } catch { throw .invalidSpec(error) }
        guard clusters[spec.name] == nil else { throw .clusterExists(spec.name) }
        clusters[spec.name] = spec
        var actions: [SchedulerAction] = [.persist(makeBatch([.putCluster(spec)]))]
        if phase == .ready {
            suppressed = false
            actions.append(.revive)
        }
        return actions
    }

    /// Changes the replicas per shard of a cluster. Scaling down keeps each shard's primary and its running replicas
    /// first and kills the rest; changing the shard count (resharding) is refused.
    public mutating func scaleCluster(
        _ name: String, replicasPerShard: Int, shardCount: Int? = nil
    ) throws(SchedulerError) -> [SchedulerAction] {
        guard var spec = clusters[name] else { throw .unknownCluster(name) }
        if let shardCount, shardCount != spec.shardCount {
            throw .reshardingUnsupported(cluster: name, from: spec.shardCount, to: shardCount)
        }
        let oldMembers = spec.membersPerShard
        spec.replicasPerShard = replicasPerShard
        do { try spec.validate() } catch { throw .invalidSpec(error) }
        clusters[name] = spec
        var intents: [StateIntent] = [.putCluster(spec)]
        var actions: [SchedulerAction] = []
        if spec.membersPerShard < oldMembers {
            for shard in 0..<spec.shardCount {
                let ranked = members(ofShardOf: MemberSlot(cluster: name, shard: shard, member: 0), shardSize: oldMembers).sorted {
                    ($0.role == .primary ? 0 : 1, $0.isRunning ? 0 : 1, $0.slot.member)
                        < ($1.role == .primary ? 0 : 1, $1.isRunning ? 0 : 1, $1.slot.member)
                }
                for record in ranked { taskBySlot[record.slot] = nil }
                for (index, var record) in ranked.enumerated() {
                    if index < spec.membersPerShard {
                        record.slot.member = index
                        tasks[record.taskID] = record
                        taskBySlot[record.slot] = record.taskID
                        intents.append(.putTask(record))
                    } else {
                        tasks[record.taskID] = nil
                        intents.append(.deleteTask(record.taskID))
                        actions.append(.kill(taskID: record.taskID, agentID: record.agentID))
                    }
                }
            }
        }
        actions.insert(.persist(makeBatch(intents)), at: 0)
        if spec.membersPerShard > oldMembers && phase == .ready {
            suppressed = false
            actions.append(.revive)
        }
        return actions
    }

    /// Deletes a cluster and kills its tasks.
    public mutating func deleteCluster(_ name: String) throws(SchedulerError) -> [SchedulerAction] {
        guard clusters.removeValue(forKey: name) != nil else { throw .unknownCluster(name) }
        var intents: [StateIntent] = [.deleteCluster(name: name)]
        var kills: [SchedulerAction] = []
        for record in tasks.values.filter({ $0.slot.cluster == name }).sorted(by: { $0.taskID < $1.taskID }) {
            tasks[record.taskID] = nil
            taskBySlot[record.slot] = nil
            intents.append(.deleteTask(record.taskID))
            kills.append(.kill(taskID: record.taskID, agentID: record.agentID))
        }
        promotions = promotions.filter { !$0.key.hasPrefix("\(name)/") }
        return [.persist(makeBatch(intents))] + kills
    }

    // MARK: helpers

    private mutating func makeBatch(_ intents: [StateIntent]) -> PersistBatch {
        defer { nextBatchID += 1 }
        return PersistBatch(id: nextBatchID, intents: intents)
    }

    private func reconcileList(_ ids: Set<TaskID>) -> [ReconcileTask] {
        ids.sorted().map { ReconcileTask(taskID: $0, agentID: tasks[$0]?.agentID) }
    }

    /// The live tasks of the shard `slot` belongs to, found through the slot index (no scan of all tasks).
    private func members(ofShardOf slot: MemberSlot, shardSize: Int? = nil) -> [TaskRecord] {
        let size = max(shardSize ?? clusters[slot.cluster]?.membersPerShard ?? 0, slot.member + 1)
        return (0..<size).compactMap { member in
            taskBySlot[MemberSlot(cluster: slot.cluster, shard: slot.shard, member: member)].flatMap { tasks[$0] }
        }
    }

    /// When a member starts running: point replicas at the shard's running primary.
    private func wireReplication(_ record: TaskRecord) -> [SchedulerAction] {
        let shard = members(ofShardOf: record.slot)
        if record.role == .replica {
            guard let primary = shard.first(where: { $0.role == .primary && $0.isRunning }) else { return [] }
            return [.replicate(replica: record.endpoint, primary: primary.endpoint)]
        }
        return shard.filter { $0.role == .replica && $0.isRunning }.map {
            .replicate(replica: $0.endpoint, primary: record.endpoint)
        }
    }
}
