// A deterministic driver for tests: runs `SchedulerStateMachine` against a `SimulatedCluster` and a snapshot that
// stands in for the durable store, feeding every action's consequences back as events.

import CacheFramework

struct SchedulerHarness {
    var machine: SchedulerStateMachine
    var simulation: SimulatedCluster
    /// What the store holds durably.
    var durable = SchedulerSnapshot()
    /// Every action, in order.
    var log: [SchedulerAction] = []
    /// Replication offsets replicas report when asked (missing: no answer).
    var offsets: [TaskID: UInt64] = [:]
    /// When false, persisted batches are not confirmed (a crash between persist and accept).
    var confirmPersists = true
    /// Cluster-mode members answer `CLUSTER MYID` with `node-<task id>` unless listed here.
    var silentNodes: Set<TaskID> = []
    /// Members that do not answer topology pushes.
    var unacknowledgedPushes: Set<TaskID> = []
    /// Members that refuse topology pushes.
    var refusingPushes: Set<TaskID> = []
    /// Slot migrations are held (not answered) while true; `release()` answers them.
    var holdMigrations = false
    /// Slot migrations answer with this error while set.
    var migrationError: String?
    /// Migrations sent and not answered yet (held).
    var heldMigrations: [(cluster: String, migration: SlotMigration)] = []
    /// The nodes' view of slot ownership, as the migrations left it (slot → node id), seeded from the first push.
    var nodeOwners: [Int: String] = [:]
    /// The scheduler's configuration (kept across restarts).
    var configuration = SchedulerStateMachine.Configuration()

    init(agents: Int, zones: Int = 0, cpus: Double = 4, memMB: Double = 8192, configuration: SchedulerStateMachine.Configuration = .init()) {
        let list = (0..<agents).map { index in
            SimulatedAgent(
                id: AgentID("agent-\(index)"), hostname: "host-\(index)",
                attributes: zones > 0 ? [.text("zone", "z\(index % zones)")] : [],
                total: ResourceQuantities(
                    cpus: cpus, memMB: memMB, diskMB: 10_000, ports: RangeSet([ValueRange(begin: 31_000, end: 31_099)])
                )
            )
        }
        self.configuration = configuration
        machine = SchedulerStateMachine(configuration: configuration)
        simulation = SimulatedCluster(agents: list, now: SchedulerTime(seconds: 1000))
    }

    var now: SchedulerTime { simulation.now }

    mutating func send(_ event: SchedulerEvent) { run(machine.handle(event)) }

    mutating func run(_ actions: [SchedulerAction]) {
        var queue = actions
        while !queue.isEmpty {
            let action = queue.removeFirst()
            log.append(action)
            switch action {
            case .persist(let batch):
                durable.apply(batch)
                if confirmPersists { queue += machine.handle(.persisted(batchID: batch.id)) }
            case .queryReplicationOffsets(let endpoints):
                for endpoint in endpoints {
                    if let offset = offsets[endpoint.taskID] {
                        queue += machine.handle(.replicationOffset(endpoint.taskID, offset: offset))
                    }
                }
            case .queryClusterNodeID(let endpoint):
                if !silentNodes.contains(endpoint.taskID) {
                    queue += machine.handle(.clusterNodeID(endpoint.taskID, "node-\(endpoint.taskID.value)"))
                }
            case .migrateSlots(let cluster, let migration):
                if holdMigrations {
                    heldMigrations.append((cluster, migration))
                } else {
                    queue += answer(cluster, migration)
                }
            case .pushTopology(_, let topology, let targets):
                if nodeOwners.isEmpty {
                    for shard in topology.shards { for range in shard.slots { for slot in range { nodeOwners[slot] = shard.primary.nodeID } } }
                }
                for target in targets where !unacknowledgedPushes.contains(target.taskID) {
                    let error = refusingPushes.contains(target.taskID) ? "refused" : nil
                    queue += machine.handle(.topologyApplied(target.taskID, epoch: topology.epoch, error: error))
                }
            default:
                for event in simulation.apply(action) { queue += machine.handle(schedulerEvent(event)) }
            }
        }
    }

    /// Carries a migration out on the simulated nodes: every slot must be owned by the source, or by the target
    /// already (a batch re-sent after a restart).
    mutating func answer(_ cluster: String, _ migration: SlotMigration) -> [SchedulerAction] {
        if let migrationError { return machine.handle(.slotsMigrated(cluster: cluster, migration.slots, error: migrationError)) }
        for slot in migration.slots.closedRange {
            precondition(
                [migration.sourceNodeID, migration.targetNodeID].contains(nodeOwners[slot]),
                "slot \(slot) is owned by \(nodeOwners[slot] ?? "nobody"), not by the migration's source \(migration.sourceNodeID)")
            nodeOwners[slot] = migration.targetNodeID
        }
        return machine.handle(.slotsMigrated(cluster: cluster, migration.slots, error: nil))
    }

    /// Answers the held migrations.
    mutating func release() {
        let held = heldMigrations
        heldMigrations = []
        for (cluster, migration) in held { run(answer(cluster, migration)) }
    }

    /// The migrations in the log, in order.
    var migrations: [SlotMigration] {
        log.compactMap { if case .migrateSlots(_, let migration) = $0 { migration } else { nil } }
    }

    func schedulerEvent(_ event: BackendEvent) -> SchedulerEvent {
        switch event {
        case .subscribed(let id): .subscribed(id, now: now)
        case .offers(let offers): .offers(offers, now: now)
        case .rescind(let id): .rescind(id)
        case .update(let status): .update(status, now: now)
        case .disconnected: .disconnected
        }
    }

    mutating func deliver(_ event: BackendEvent?) {
        if let event { send(schedulerEvent(event)) }
    }

    mutating func subscribe() { send(.subscribed(FrameworkID("fw-1"), now: now)) }

    mutating func create(_ spec: ClusterSpec) throws {
        run(try machine.createCluster(spec))
    }

    mutating func offerRound() {
        let offers = simulation.makeOffers()
        if !offers.isEmpty { send(.offers(offers, now: now)) }
    }

    /// Moves every staging task to running.
    mutating func startAll() {
        for task in simulation.tasks.values.sorted(by: { $0.info.taskID < $1.info.taskID }) where task.state == .staging {
            deliver(simulation.setState(task.info.taskID, .running))
        }
    }

    /// A scheduler restart: a new state machine from what the store holds; the master voids its offers.
    mutating func restart() {
        machine = SchedulerStateMachine(restoring: durable, configuration: configuration)
        simulation.voidOutstandingOffers()
        confirmPersists = true
    }

    /// The topology pushes in the log, in order.
    var pushes: [(topology: SlotTopology, targets: [TaskEndpoint])] {
        log.compactMap { if case .pushTopology(_, let topology, let targets) = $0 { (topology, targets) } else { nil } }
    }

    func count(where predicate: (SchedulerAction) -> Bool) -> Int { log.filter(predicate).count }

    func primaries(of cluster: String) -> [TaskRecord] {
        machine.tasks.values.filter { $0.slot.cluster == cluster && $0.role == .primary }
    }
}
