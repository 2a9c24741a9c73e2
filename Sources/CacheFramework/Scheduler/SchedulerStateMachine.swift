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
//
// Cluster mode (cache-node members). Each running member is asked for its cluster node id (`CLUSTER MYID`). Once
// every member of a new cluster runs with a known id, the slots are assigned evenly (`ClusterLayout`) and the
// topology is pushed to every member (`CLUSTER TOPOLOGY SET`); after that, any change of the derived topology (a
// promotion, a replica lost or added) is pushed with the next epoch. The layout, with the epoch, is persisted before
// each push, so epochs only grow; no topology is pushed while a shard of the cluster is promoting or has no running
// primary. Pushes a member did not acknowledge, and node ids that did not arrive, are retried on ticks.
//
// Resharding (cache-node clusters). A shard-count change is recorded in the layout (`Resharding`, see that file for
// the target split). Scale-out first launches the new shards like any pending member slot (their identities come from
// the authority at accept, as for create); once every new primary runs, reported its node id and acknowledged a
// topology listing it (without slots), slots move batch by batch (`.migrateSlots`): the batch is recorded as in
// flight, sent, and when the nodes report it done the layout gets the slots and a new topology epoch is pushed to
// every member; the next batch starts once the primaries acknowledged it and no push is outstanding, because a push
// replaces the nodes' MIGRATING/IMPORTING states — so no push (new epoch or retry) is sent while a batch runs.
// Scale-in moves every slot of the removed (highest) shards to the kept ones the same way, then records the smaller
// spec, drops the removed members from the records and pushes a topology without them (the nodes forget them), and
// kills them (SIGTERM) once every remaining primary acknowledged that topology. A restart mid-resharding re-sends the
// recorded in-flight batch before anything is pushed. Heals during a resharding: no batch starts while a shard of the
// cluster is promoting; a batch whose source or target primary died fails, the heal's topology is pushed, and the
// batch is sent again (after `topologyRetrySeconds`) to the shards' current primaries.
//
// Restarts mid-heal. Everything a heal decides is recorded before it is acted on (the lost task's deletion, the
// promoted replica's role, the layout), and nothing else is needed: when a restarted scheduler becomes ready it
// re-asserts replication for every shard (`REPLICAOF NO ONE` on primaries, which is a no-op on a primary, and
// `REPLICAOF primary` on replicas, a no-op when already linked), starts a promotion for any shard that has running
// replicas but no primary, and pushes the topology again with a new epoch.
//
// Partitions (a PARTITION_AWARE framework on Mesos). TASK_UNREACHABLE (the agent stopped reaching the master; the
// task may still run) is handled like a loss: the member no longer counts, a primary's replica is promoted and the
// slot gets a replacement. TASK_GONE / TASK_GONE_BY_OPERATOR (the agent is gone) is a loss too, and forgets the
// volume home of a persistent member. A task the records no longer hold that reports itself alive (its agent came
// back: TASK_RUNNING with REASON_SLAVE_REREGISTERED) is killed, so it never serves next to its replacement.

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
        /// Where member identities live (`<dir>/<task id>.identity`, `<dir>/authority.pub`); cache-node members of
        /// clusters with secure replication are launched with them (see `TaskTemplate`). `nil`: no identity flags.
        public var credentialsDirectory: String?
        /// How long after a refused or failed topology push, or an unanswered node id query, it is sent again.
        public var topologyRetrySeconds: Double = 1
        /// How long a topology push may stay unanswered before it is sent again (the driver answers every push, with
        /// an error after its control timeout, so this only matters if an answer is lost).
        public var topologyPushTimeoutSeconds: Double = 30
        /// Relaunch a lost member of a cluster with `persistence` on the agent it ran on (where a backend with
        /// persistent volumes keeps its data: the Mesos backend), for up to `volumeWaitSeconds`; after that it goes
        /// wherever it fits (a new, empty volume). Off by default: the local backend keeps no data across launches.
        public var pinPersistentMembers = false
        /// How long a lost persistent member waits for its agent before it is placed elsewhere.
        public var volumeWaitSeconds: Double = 300
        /// How many slots one `.migrateSlots` batch moves at most (a topology is pushed after each batch). The nodes
        /// hand a batch over in rounds (`CLUSTER SETSLOTSRANGE`), so the cost of a batch is its keys plus one push:
        /// larger batches mean fewer pushes, smaller ones a shorter wait for a heal's push (none is sent while a
        /// batch runs).
        public var migrationBatchSlots = 1024

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
        var lost: TaskID?
        var lostAt: SchedulerTime
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
    /// Killed members of deleted clusters that held a persistent volume. When one ends, offers are revived: its
    /// agent must offer the freed volume for the backend to destroy it and unreserve its disk, and an idle scheduler
    /// has suppressed offers.
    private var endingVolumeMembers: Set<TaskID> = []
    private var lastReconcile: SchedulerTime?
    /// The topology state of cluster-mode clusters, by name (durable).
    public private(set) var layouts: [String: ClusterLayout]
    /// The topology last pushed to each cluster since this scheduler started.
    public private(set) var pushedTopologies: [String: SlotTopology] = [:]
    /// The topology epoch each member acknowledged.
    public private(set) var appliedEpochs: [TaskID: UInt64] = [:]
    private var pushSentAt: [TaskID: SchedulerTime] = [:]
    private var pushFailedAt: [TaskID: SchedulerTime] = [:]
    private var nodeIDQueriedAt: [TaskID: SchedulerTime] = [:]
    /// Clusters with a `.migrateSlots` batch sent and not answered.
    private var migrationsRunning: Set<String> = []
    private var migrationFailedAt: [String: SchedulerTime] = [:]
    private var lastNow = SchedulerTime(seconds: 0)
    /// Where each persistent member's volume is (`Configuration.pinPersistentMembers`), and since when its slot is
    /// empty. Rebuilt from the recorded tasks on restart.
    private var volumeHomes: [MemberSlot: VolumeHome] = [:]

    /// Restored homes of empty slots: their wait for the volume's agent starts with the first event's time.
    private var unclockedHomes: Set<MemberSlot> = []

    struct VolumeHome: Sendable {
        var agentID: AgentID
        var emptySince: SchedulerTime?
    }

    /// Creates a scheduler from what its store recorded (an empty snapshot for a first start).
    public init(restoring snapshot: SchedulerSnapshot = SchedulerSnapshot(), configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.frameworkID = snapshot.frameworkID
        self.clusters = snapshot.clusters
        self.tasks = snapshot.tasks
        self.nextTaskNumber = snapshot.nextTaskNumber
        self.layouts = snapshot.layouts
        for record in snapshot.tasks.values { taskBySlot[record.slot] = record.taskID }
        if configuration.pinPersistentMembers {
            // Recorded homes first (slots left empty when the scheduler stopped), then the agents members run on.
            for (slot, agentID) in snapshot.volumeHomes where snapshot.clusters[slot.cluster]?.persistence == true {
                volumeHomes[slot] = VolumeHome(agentID: agentID)
                if !snapshot.tasks.values.contains(where: { $0.slot == slot }) { unclockedHomes.insert(slot) }
            }
            for record in snapshot.tasks.values where snapshot.clusters[record.slot.cluster]?.persistence == true {
                volumeHomes[record.slot] = VolumeHome(agentID: record.agentID)
            }
        }
    }

    /// Whether promotion of a new primary is under way for the shard `group` (`MemberSlot.group`).
    public func isPromoting(_ group: String) -> Bool { promotions[group] != nil }

    /// The shard groups (`MemberSlot.group`) whose promotion is under way.
    public var promotingGroups: Set<String> { Set(promotions.keys) }

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
        case .subscribed(_, let now), .offers(_, let now), .update(_, let now), .tick(let now): lastNow = max(lastNow, now)
        default: break
        }
        if !unclockedHomes.isEmpty && lastNow.seconds > 0 {
            for slot in unclockedHomes where volumeHomes[slot]?.emptySince == nil { volumeHomes[slot]?.emptySince = lastNow }
            unclockedHomes = []
        }
        return dispatch(event)
    }

    private mutating func dispatch(_ event: SchedulerEvent) -> [SchedulerAction] {
        switch event {
        case .subscribed(let id, let now): subscribed(id, now: now)
        case .disconnected: disconnected()
        case .offers(let offers, let now): received(offers, now: now)
        case .rescind(let offerID): rescind(offerID)
        case .update(let status, let now): update(status, now: now)
        case .persisted(let batchID): persisted(batchID)
        case .replicationOffset(let taskID, let offset): replicationOffset(taskID, offset: offset)
        case .tick(let now): tick(now)
        case .clusterNodeID(let taskID, let nodeID): clusterNodeID(taskID, nodeID)
        case .topologyApplied(let taskID, let epoch, let error): topologyApplied(taskID, epoch: epoch, error: error)
        case .slotsMigrated(let cluster, let slots, let error): slotsMigrated(cluster, slots, error: error)
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
        // A restart may have stopped a heal half way: re-assert what the records say, finish what they imply.
        pushedTopologies = [:]
        for name in clusters.keys.sorted() {
            let spec = clusters[name]!
            for shard in 0..<spec.shardCount {
                let members = members(ofShardOf: MemberSlot(cluster: name, shard: shard, member: 0))
                let replicas = members.filter { $0.role == .replica && $0.isRunning }
                if let primary = members.first(where: { $0.role == .primary }) {
                    guard primary.isRunning else { continue }
                    actions.append(.promote(primary.endpoint))
                    let target = primary.replicationEndpoint(secure: secureReplication(spec))
                    actions += replicas.map { .replicate(replica: $0.endpoint, primary: target) }
                } else if !replicas.isEmpty {
                    actions += startPromotion("\(name)/\(shard)", survivors: replicas, lost: nil, now: lastNow)
                }
            }
            for record in members(of: name) where record.isRunning && record.clusterNodeID == nil && isClusterMode(spec) {
                nodeIDQueriedAt[record.taskID] = lastNow
                actions.append(.queryClusterNodeID(record.endpoint))
            }
            // A batch recorded as in flight is finished before any topology is pushed.
            if layouts[name]?.resharding?.inFlight != nil { actions += advanceResharding(name) }
            actions += converge(name)
        }
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
                memMB: spec.taskMemoryMB, portCount: spec.engine.portCount, agentID: volumeAgent(of: slot, now: now)
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
            if configuration.pinPersistentMembers && clusters[slot.cluster]?.persistence == true {
                if volumeHomes[slot]?.agentID != assignment.agentID { intents.append(.putVolumeHome(slot, assignment.agentID)) }
                volumeHomes[slot] = VolumeHome(agentID: assignment.agentID)
            }
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
                    credentials: configuration.credentialsDirectory.map { MemberCredentials.under($0, taskID: id) }
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
        if status.state.isTerminal && endingVolumeMembers.remove(status.taskID) != nil && phase == .ready {
            suppressed = false
            actions.append(.revive)
        }
        if var record = tasks[status.taskID] {
            if status.state.needsReplacement {
                actions += lost(record, state: status.state, now: now)
            } else {
                let wasRunning = record.isRunning
                record.phase = .reported
                record.lastState = status.state
                if let agent = status.agentID { record.agentID = agent }
                // With IP-per-task isolation the task is reached at its own address, not its agent's.
                if let address = status.containerIP, !address.isEmpty { record.hostname = address }
                tasks[record.taskID] = record
                actions.append(.persist(makeBatch([.putTask(record)])))
                if status.state == .running && !wasRunning {
                    actions += wireReplication(record)
                    if let spec = clusters[record.slot.cluster], isClusterMode(spec), record.clusterNodeID == nil {
                        nodeIDQueriedAt[record.taskID] = now
                        actions.append(.queryClusterNodeID(record.endpoint))
                    }
                }
            }
        } else if !status.state.needsReplacement {
            // A task the records do not hold reports itself alive: one replaced while unreachable (or marked gone)
            // whose agent came back, or one launched by an instance that did not record it. It must not serve
            // next to its replacement. (An unknown task reported UNREACHABLE cannot be killed yet: the master
            // answers such a KILL with a reconciliation, so killing again would loop; it is killed when it returns.)
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
        appliedEpochs[record.taskID] = nil
        pushSentAt[record.taskID] = nil
        pushFailedAt[record.taskID] = nil
        nodeIDQueriedAt[record.taskID] = nil
        if taskBySlot[record.slot] == record.taskID { taskBySlot[record.slot] = nil }
        volumeHomes[record.slot]?.emptySince = now
        var intents: [StateIntent] = [.deleteTask(record.taskID)]
        // The agent is gone (TASK_GONE / TASK_GONE_BY_OPERATOR): so is the volume on it; place the member anywhere.
        if (state == .gone || state == .goneByOperator) && volumeHomes.removeValue(forKey: record.slot) != nil {
            intents.append(.deleteVolumeHome(record.slot))
        }
        var actions: [SchedulerAction] = [.persist(makeBatch(intents))]
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
                actions += startPromotion(group, survivors: survivors, lost: record.taskID, now: now)
                return actions
            }
        }
        if clusters[record.slot.cluster] != nil {
            actions += recordHeal(
                record.slot.cluster,
                HealRecord(shard: record.slot.shard, lostTask: record.taskID, lostRole: record.role, lostAt: now.seconds))
            actions += converge(record.slot.cluster)
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
        let cluster = String(group[..<(group.lastIndex(of: "/") ?? group.endIndex)])
        var heal = HealRecord(
            shard: Int(group[group.index(after: group.lastIndex(of: "/") ?? group.startIndex)...]) ?? 0,
            lostTask: promotion.lost, lostRole: .primary, lostAt: promotion.lostAt.seconds)
        if case .promote(let newPrimary, let repoint) = decision, var record = tasks[newPrimary] {
            record.role = .primary
            tasks[newPrimary] = record
            heal.promoted = newPrimary
            heal.promotedAt = lastNow.seconds
            actions.append(.persist(makeBatch([.putTask(record)])))
            actions.append(.promote(record.endpoint))
            let target = record.replicationEndpoint(secure: clusters[cluster].map(secureReplication) ?? false)
            for replica in repoint.compactMap({ tasks[$0] }) {
                actions.append(.replicate(replica: replica.endpoint, primary: target))
            }
        }
        if clusters[cluster] != nil {
            actions += recordHeal(cluster, heal)
            actions += converge(cluster)
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
        if phase == .ready {
            actions += retryClusterControl(now)
            for name in layouts.keys.sorted() where layouts[name]?.resharding != nil { actions += advanceResharding(name) }
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

    /// Changes the replicas per shard and/or the shard count of a cluster. Scaling the replicas down keeps each
    /// shard's primary and its running replicas first and kills the rest. A different shard count starts a
    /// resharding with live slot migration (cache-node clusters that serve already; one resharding at a time).
    public mutating func scaleCluster(
        _ name: String, replicasPerShard: Int, shardCount: Int? = nil
    ) throws(SchedulerError) -> [SchedulerAction] {
        guard let spec = clusters[name] else { throw .unknownCluster(name) }
        if let shardCount, shardCount != spec.shardCount || layouts[name]?.resharding != nil {
            return try reshard(name, replicasPerShard: replicasPerShard, shardCount: shardCount)
        }
        return try scaleReplicas(name, replicasPerShard: replicasPerShard)
    }

    private mutating func reshard(_ name: String, replicasPerShard: Int, shardCount: Int) throws(SchedulerError) -> [SchedulerAction] {
        let spec = clusters[name]!
        if let resharding = layouts[name]?.resharding {
            // Scaling back to the old count before any slot moved cancels a scale-out (e.g. new members that cannot
            // be placed): the new shards are retired like removed ones.
            if resharding.phase == .launching && shardCount == resharding.fromShardCount
                && replicasPerShard == spec.replicasPerShard
            {
                return cancelLaunch(name)
            }
            throw .reshardingInProgress(cluster: name, from: resharding.fromShardCount, to: resharding.toShardCount)
        }
        guard isClusterMode(spec) else { throw .reshardingUnsupported(cluster: name, from: spec.shardCount, to: shardCount) }
        var target = spec
        target.shardCount = shardCount
        target.replicasPerShard = replicasPerShard
        do { try target.validate() } catch { throw .invalidSpec(error) }
        guard layouts[name]?.isProvisioned == true else { throw .notProvisioned(cluster: name) }
        var actions: [SchedulerAction] = []
        if replicasPerShard != spec.replicasPerShard { actions += try scaleReplicas(name, replicasPerShard: replicasPerShard) }
        var layout = layouts[name]!
        let resharding = Resharding(current: layout.shardSlots, toShardCount: shardCount)
        layout.resharding = resharding
        var intents: [StateIntent] = []
        if shardCount > layout.shardSlots.count {
            layout.shardSlots += Array(repeating: [], count: shardCount - layout.shardSlots.count)
            var grown = clusters[name]!
            grown.shardCount = shardCount
            clusters[name] = grown
            intents.append(.putCluster(grown))
        }
        layouts[name] = layout
        intents.append(.putLayout(layout))
        actions.append(.persist(makeBatch(intents)))
        if shardCount > spec.shardCount && phase == .ready {
            suppressed = false
            actions.append(.revive)
        }
        return actions + advanceResharding(name)
    }

    private mutating func scaleReplicas(_ name: String, replicasPerShard: Int) throws(SchedulerError) -> [SchedulerAction] {
        guard var spec = clusters[name] else { throw .unknownCluster(name) }
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
        actions += converge(name)
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
            if volumeHomes[record.slot] != nil { endingVolumeMembers.insert(record.taskID) }
        }
        promotions = promotions.filter { !$0.key.hasPrefix("\(name)/") }
        intents += volumeHomes.keys.filter { $0.cluster == name }.sorted().map { StateIntent.deleteVolumeHome($0) }
        volumeHomes = volumeHomes.filter { $0.key.cluster != name }
        migrationsRunning.remove(name)
        migrationFailedAt[name] = nil
        layouts[name] = nil
        pushedTopologies[name] = nil
        return [.persist(makeBatch(intents))] + kills
    }

    // MARK: helpers

    /// The agent a persistent member must be relaunched on, while its volume is worth waiting for.
    private func volumeAgent(of slot: MemberSlot, now: SchedulerTime) -> AgentID? {
        guard let home = volumeHomes[slot] else { return nil }
        if let since = home.emptySince, now.seconds - since.seconds > configuration.volumeWaitSeconds { return nil }
        return home.agentID
    }

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
        let secure = clusters[record.slot.cluster].map(secureReplication) ?? false
        if record.role == .replica {
            guard let primary = shard.first(where: { $0.role == .primary && $0.isRunning }) else { return [] }
            return [.replicate(replica: record.endpoint, primary: primary.replicationEndpoint(secure: secure))]
        }
        return shard.filter { $0.role == .replica && $0.isRunning }.map {
            .replicate(replica: $0.endpoint, primary: record.replicationEndpoint(secure: secure))
        }
    }

    /// How the driver reaches the member of `endpoint` with control commands: a member of a cluster with secure
    /// replication that has a replication port gets it as `securePort` (the framework goes through the secure channel
    /// there, and a member with an identity accepts topology pushes only that way); any other endpoint is returned
    /// unchanged (plain RESP on its client port).
    public func controlEndpoint(_ endpoint: TaskEndpoint) -> TaskEndpoint {
        guard let record = tasks[endpoint.taskID], let spec = clusters[record.slot.cluster], secureReplication(spec),
            record.ports.count > 1
        else { return endpoint }
        var secured = endpoint
        secured.securePort = record.ports[1]
        return secured
    }

    /// Whether members of `spec` run in cluster mode with a pushed topology (cache-node members).
    private func isClusterMode(_ spec: ClusterSpec) -> Bool { spec.engine == .cacheNode }

    /// Whether replicas of `spec` connect to their primary's secure replication port.
    private func secureReplication(_ spec: ClusterSpec) -> Bool {
        spec.engine == .cacheNode && spec.secureReplication && configuration.credentialsDirectory != nil
    }

    /// The live tasks of a cluster, in slot order.
    private func members(of cluster: String) -> [TaskRecord] {
        guard let spec = clusters[cluster] else { return [] }
        return ClusterPlan.memberSlots(of: spec).compactMap { taskBySlot[$0].flatMap { tasks[$0] } }
    }

    /// Asks the survivors of a shard whose primary was lost for their offsets.
    private mutating func startPromotion(
        _ group: String, survivors: [TaskRecord], lost: TaskID?, now: SchedulerTime
    ) -> [SchedulerAction] {
        promotions[group] = Promotion(
            candidates: survivors.map(\.taskID), deadline: now.adding(seconds: configuration.offsetQueryTimeoutSeconds),
            lost: lost, lostAt: now)
        return [.queryReplicationOffsets(survivors.map(\.endpoint))]
    }

    /// Records a heal in the cluster's layout (cluster mode only).
    private mutating func recordHeal(_ cluster: String, _ heal: HealRecord) -> [SchedulerAction] {
        guard let spec = clusters[cluster], isClusterMode(spec) else { return [] }
        var layout = layouts[cluster] ?? ClusterLayout(cluster: cluster)
        layout.record(heal)
        layouts[cluster] = layout
        return [.persist(makeBatch([.putLayout(layout)]))]
    }

    /// Pushes the cluster's topology if it differs from the last one pushed: assigns slots once every member of a new
    /// cluster runs with a node id, records the layout with the next epoch, then pushes to every running member.
    private mutating func converge(_ name: String) -> [SchedulerAction] {
        guard phase == .ready, let spec = clusters[name], isClusterMode(spec),
            !promotions.keys.contains(where: { $0.hasPrefix("\(name)/") }), !migrationsRunning.contains(name)
        else { return [] }
        var layout = layouts[name] ?? ClusterLayout(cluster: name)
        let members = members(of: name)
        if !layout.isProvisioned {
            let complete = members.count == spec.shardCount * spec.membersPerShard
                && members.allSatisfy { $0.isRunning && $0.clusterNodeID != nil }
            guard complete else { return [] }
            layout.assignSlotsEvenly(shardCount: spec.shardCount)
        }
        guard var topology = layout.topology(epoch: 0, members: members) else { return [] }
        if let last = pushedTopologies[name], last.shards == topology.shards { return [] }
        layout.epoch += 1
        topology.epoch = layout.epoch
        layouts[name] = layout
        pushedTopologies[name] = topology
        let targets = members.filter { $0.isRunning && $0.clusterNodeID != nil }
        for target in targets { pushSentAt[target.taskID] = lastNow }
        return [
            .persist(makeBatch([.putLayout(layout)])),
            .pushTopology(cluster: name, topology, to: targets.map(\.endpoint)),
        ]
    }

    private mutating func clusterNodeID(_ taskID: TaskID, _ nodeID: String) -> [SchedulerAction] {
        nodeIDQueriedAt[taskID] = nil
        guard var record = tasks[taskID], record.clusterNodeID != nodeID else { return [] }
        record.clusterNodeID = nodeID
        tasks[taskID] = record
        return [.persist(makeBatch([.putTask(record)]))] + converge(record.slot.cluster) + advanceResharding(record.slot.cluster)
    }

    private mutating func topologyApplied(_ taskID: TaskID, epoch: UInt64, error: String?) -> [SchedulerAction] {
        pushSentAt[taskID] = nil
        guard tasks[taskID] != nil else { return [] }
        guard error == nil else {
            pushFailedAt[taskID] = lastNow
            return []
        }
        pushFailedAt[taskID] = nil
        appliedEpochs[taskID] = max(appliedEpochs[taskID] ?? 0, epoch)
        guard let cluster = tasks[taskID]?.slot.cluster, layouts[cluster]?.resharding != nil else { return [] }
        return advanceResharding(cluster)
    }

    /// Re-sends topology pushes and node id queries that were not answered within `topologyRetrySeconds`.
    private mutating func retryClusterControl(_ now: SchedulerTime) -> [SchedulerAction] {
        var actions: [SchedulerAction] = []
        let retry = configuration.topologyRetrySeconds
        func due(_ sent: SchedulerTime?) -> Bool { sent.map { now.seconds - $0.seconds >= retry } ?? true }
        for name in clusters.keys.sorted() where isClusterMode(clusters[name]!) {
            let members = members(of: name).filter(\.isRunning)
            // A push would clear the MIGRATING/IMPORTING states of a batch in progress: retry after it.
            if migrationsRunning.contains(name) { continue }
            for record in members where record.clusterNodeID == nil && due(nodeIDQueriedAt[record.taskID]) {
                nodeIDQueriedAt[record.taskID] = now
                actions.append(.queryClusterNodeID(record.endpoint))
            }
            guard let topology = pushedTopologies[name] else { continue }
            let listed = Set(topology.shards.flatMap { [$0.primary.nodeID] + $0.replicas.map(\.nodeID) })
            let stale = members.filter { member in
                guard member.clusterNodeID.map(listed.contains) == true, appliedEpochs[member.taskID] != topology.epoch
                else { return false }
                if let sent = pushSentAt[member.taskID] {
                    return now.seconds - sent.seconds >= configuration.topologyPushTimeoutSeconds
                }
                return due(pushFailedAt[member.taskID])
            }
            guard !stale.isEmpty else { continue }
            for record in stale { pushSentAt[record.taskID] = now }
            actions.append(.pushTopology(cluster: name, topology, to: stale.map(\.endpoint)))
        }
        return actions
    }

    // MARK: resharding

    /// The running primary of shard `shard` with a known node id.
    private func runningPrimary(_ cluster: String, shard: Int) -> TaskRecord? {
        members(ofShardOf: MemberSlot(cluster: cluster, shard: shard, member: 0)).first {
            $0.role == .primary && $0.isRunning && $0.clusterNodeID != nil
        }
    }

    /// Whether every running primary listed in the last pushed topology applied it and no push is outstanding.
    private func topologySettled(_ name: String) -> Bool {
        guard let pushed = pushedTopologies[name] else { return false }
        let listed = Set(pushed.shards.flatMap { [$0.primary.nodeID] + $0.replicas.map(\.nodeID) })
        for member in tasks.values where member.slot.cluster == name && member.isRunning {
            guard let id = member.clusterNodeID, listed.contains(id) else { continue }
            if pushSentAt[member.taskID] != nil { return false }
            if member.role == .primary && appliedEpochs[member.taskID] != pushed.epoch { return false }
        }
        return true
    }

    /// Takes the resharding of `name` one step further: re-sends the batch in flight, starts the next batch once
    /// the topology settled, or finishes (scale-in: retires the removed shards, then kills them).
    private mutating func advanceResharding(_ name: String) -> [SchedulerAction] {
        guard phase == .ready, clusters[name] != nil, var layout = layouts[name], var resharding = layout.resharding,
            !migrationsRunning.contains(name), !promotions.keys.contains(where: { $0.hasPrefix("\(name)/") })
        else { return [] }
        if let failed = migrationFailedAt[name], lastNow.seconds - failed.seconds < configuration.topologyRetrySeconds {
            return []
        }
        if let move = resharding.inFlight { return sendMigration(name, move) }
        switch resharding.phase {
        case .launching:
            guard let pushed = pushedTopologies[name], pushed.shards.count == layout.shardSlots.count, topologySettled(name)
            else { return [] }
            resharding.phase = .moving
            layout.resharding = resharding
            layouts[name] = layout
            return advanceResharding(name)
        case .moving:
            guard topologySettled(name) else { return [] }
            if let move = Resharding.nextMove(
                current: layout.shardSlots, target: resharding.targetSlots, limit: max(1, configuration.migrationBatchSlots))
            {
                resharding.inFlight = move
                layout.resharding = resharding
                layouts[name] = layout
                return [.persist(makeBatch([.putLayout(layout)]))] + sendMigration(name, move)
            }
            guard resharding.isScaleIn else {
                layout.resharding = nil
                layouts[name] = layout
                return [.persist(makeBatch([.putLayout(layout)]))] + converge(name)
            }
            return retire(name)
        case .retiring:
            // Killed once a topology without them was acknowledged: the retiring epoch, or an earlier push that never
            // listed them (a cancelled scale-out whose new members never reported a node id pushes nothing new).
            guard let epoch = resharding.retiringEpoch, let pushed = pushedTopologies[name], topologySettled(name)
            else { return [] }
            let listed = Set(pushed.shards.flatMap { [$0.primary.nodeID] + $0.replicas.map(\.nodeID) })
            let unlisted = resharding.retiring.allSatisfy { $0.clusterNodeID.map { !listed.contains($0) } ?? true }
            guard pushed.epoch >= epoch || unlisted else { return [] }
            layout.resharding = nil
            layouts[name] = layout
            return [.persist(makeBatch([.putLayout(layout)]))]
                + resharding.retiring.map { .kill(taskID: $0.taskID, agentID: $0.agentID) }
        }
    }

    /// Cancels a scale-out still launching its new shards (they own no slot yet): the resharding becomes a scale-in
    /// back to the old count with nothing to move, so the new shards' members are dropped from the records, a topology
    /// without them is pushed, and they are killed once it is acknowledged (``retire(_:)``).
    private mutating func cancelLaunch(_ name: String) -> [SchedulerAction] {
        guard var layout = layouts[name], var resharding = layout.resharding, resharding.phase == .launching else { return [] }
        resharding.toShardCount = resharding.fromShardCount
        resharding.targetSlots = Array(layout.shardSlots.prefix(resharding.fromShardCount))
        resharding.totalSlots = 0
        resharding.lastError = "scale-out to \(layout.shardSlots.count) shards cancelled before any slot moved"
        layout.resharding = resharding
        layouts[name] = layout
        return retire(name)
    }

    /// Scale-in, every slot moved: records the smaller spec, drops the removed shards' members from the records and
    /// pushes a topology without them; they are killed once it is acknowledged (`advanceResharding`).
    private mutating func retire(_ name: String) -> [SchedulerAction] {
        guard var spec = clusters[name], var layout = layouts[name], var resharding = layout.resharding else { return [] }
        let kept = resharding.toShardCount
        let removed = tasks.values.filter { $0.slot.cluster == name && $0.slot.shard >= kept }.sorted { $0.taskID < $1.taskID }
        var intents: [StateIntent] = []
        spec.shardCount = kept
        clusters[name] = spec
        intents.append(.putCluster(spec))
        for record in removed {
            tasks[record.taskID] = nil
            if taskBySlot[record.slot] == record.taskID { taskBySlot[record.slot] = nil }
            appliedEpochs[record.taskID] = nil
            pushSentAt[record.taskID] = nil
            pushFailedAt[record.taskID] = nil
            nodeIDQueriedAt[record.taskID] = nil
            intents.append(.deleteTask(record.taskID))
        }
        promotions = promotions.filter { key, _ in !removed.contains { $0.slot.group == key } }
        layout.shardSlots = Array(layout.shardSlots.prefix(kept))
        resharding.phase = .retiring
        resharding.retiring = removed
        resharding.retiringEpoch = layout.epoch + 1
        layout.resharding = resharding
        layouts[name] = layout
        intents.append(.putLayout(layout))
        return [.persist(makeBatch(intents))] + converge(name) + advanceResharding(name)
    }

    private mutating func sendMigration(_ name: String, _ move: SlotMove) -> [SchedulerAction] {
        guard let source = runningPrimary(name, shard: move.fromShard), let target = runningPrimary(name, shard: move.toShard)
        else { return [] }
        migrationsRunning.insert(name)
        return [
            .migrateSlots(
                cluster: name,
                SlotMigration(
                    slots: move.slots, source: source.endpoint, sourceNodeID: source.clusterNodeID!,
                    target: target.endpoint, targetNodeID: target.clusterNodeID!))
        ]
    }

    private mutating func slotsMigrated(_ name: String, _ slots: SlotRange, error: String?) -> [SchedulerAction] {
        migrationsRunning.remove(name)
        guard var layout = layouts[name], var resharding = layout.resharding, let move = resharding.inFlight,
            move.slots == slots
        else { return converge(name) }
        if let error {
            migrationFailedAt[name] = lastNow
            resharding.lastError = error
            layout.resharding = resharding
            layouts[name] = layout
            return converge(name)
        }
        migrationFailedAt[name] = nil
        layout.assign(move.slots, to: move.toShard)
        resharding.movedSlots += move.slots.count
        resharding.inFlight = nil
        resharding.lastError = nil
        layout.resharding = resharding
        layouts[name] = layout
        return [.persist(makeBatch([.putLayout(layout)]))] + converge(name) + advanceResharding(name)
    }
}
