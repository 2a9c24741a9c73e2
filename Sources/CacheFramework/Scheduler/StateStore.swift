// The durable record of the scheduler's intents. The scheduler writes every intent (a cluster spec, a task it is about
// to launch, a role change) through a `StateStore` before acting on it, so a restarted framework reconciles the tasks
// it recorded instead of losing or duplicating them. `InMemoryStateStore` serves tests; a GRDB (SQLite) store in the
// data directory implements the same protocol later.

/// What a task record says about the task's life so far.
public enum TaskPhase: String, Hashable, Codable, Sendable {
    /// The launch intent is recorded; the launch may or may not have reached the master.
    case launching
    /// The master or agent reported it (staging, starting, running, unreachable, …): see `TaskRecord.lastState`.
    case reported
}

/// The role a member plays in its shard.
public enum MemberRole: String, Hashable, Codable, Sendable {
    case primary
    case replica
}

/// Everything the scheduler remembers about one task.
public struct TaskRecord: Hashable, Codable, Sendable {
    /// The task's identifier.
    public var taskID: TaskID
    /// The member slot it fills.
    public var slot: MemberSlot
    /// Its role in the shard.
    public var role: MemberRole
    /// Launching or reported.
    public var phase: TaskPhase
    /// The last state reported for it.
    public var lastState: TaskState?
    /// The agent it was launched on.
    public var agentID: AgentID
    /// The agent's hostname.
    public var hostname: String
    /// Its ports: the client port first, then the replication port for cache-node.
    public var ports: [UInt64]
    /// The agent's failure domain, kept so replacements avoid it.
    public var failureDomain: String?
    /// For cluster-mode members: the node id the member reported (`CLUSTER MYID`), used in pushed topologies.
    public var clusterNodeID: String?

    /// Creates a record.
    public init(
        taskID: TaskID, slot: MemberSlot, role: MemberRole, phase: TaskPhase, lastState: TaskState?, agentID: AgentID,
        hostname: String, ports: [UInt64], failureDomain: String?, clusterNodeID: String? = nil
    ) {
        self.clusterNodeID = clusterNodeID
        self.taskID = taskID
        self.slot = slot
        self.role = role
        self.phase = phase
        self.lastState = lastState
        self.agentID = agentID
        self.hostname = hostname
        self.ports = ports
        self.failureDomain = failureDomain
    }

    /// Whether the task is running as far as the scheduler knows.
    public var isRunning: Bool { lastState == .running }

    /// The task's client endpoint.
    public var endpoint: TaskEndpoint { TaskEndpoint(taskID: taskID, hostname: hostname, port: ports.first ?? 0) }

    /// The endpoint replicas of this member connect to: its secure replication port (the second port) when
    /// `secure`, else its client port.
    public func replicationEndpoint(secure: Bool) -> TaskEndpoint {
        guard secure, ports.count > 1 else { return endpoint }
        return TaskEndpoint(taskID: taskID, hostname: hostname, port: ports[1])
    }
}

/// Where a task serves clients.
public struct TaskEndpoint: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The task.
    public var taskID: TaskID
    /// Its agent's hostname.
    public var hostname: String
    /// Its client port.
    public var port: UInt64
    /// For control commands (topology pushes, slot migration, REPLICAOF, INFO): the member's secure replication port,
    /// where the framework reaches it through the secure channel with its own identity (role framework), expecting
    /// node id = task id. `nil`: plain RESP on `port` (redis-server members, clusters without secure replication).
    /// Set by the driver (``SchedulerStateMachine/controlEndpoint(_:)``), not by the scheduler's actions.
    public var securePort: UInt64?

    /// Creates an endpoint.
    public init(taskID: TaskID, hostname: String, port: UInt64, securePort: UInt64? = nil) {
        self.taskID = taskID
        self.hostname = hostname
        self.port = port
        self.securePort = securePort
    }
    public var description: String { "\(taskID)@\(hostname):\(port)" }
}

/// One durable change.
public enum StateIntent: Hashable, Codable, Sendable {
    /// Remember the framework id the master assigned (needed to re-subscribe and keep tasks).
    case setFrameworkID(FrameworkID)
    /// Create or replace a cluster spec.
    case putCluster(ClusterSpec)
    /// Forget a cluster.
    case deleteCluster(name: String)
    /// Create or replace a task record.
    case putTask(TaskRecord)
    /// Forget a task (it is terminal, or its launch was cancelled before it was sent).
    case deleteTask(TaskID)
    /// The next task number, so task ids are never reused after a restart.
    case setNextTaskNumber(UInt64)
    /// Create or replace a cluster's topology state (slots per shard, topology epoch, heal history). Written before
    /// a topology with a new epoch is pushed, so epochs only grow across restarts. `deleteCluster` removes it too.
    case putLayout(ClusterLayout)
    /// Remember the agent holding the persistent volume of a member slot (`Configuration.pinPersistentMembers`), so a
    /// member lost while its slot is empty or the framework is down is still relaunched on its volume after a restart.
    case putVolumeHome(MemberSlot, AgentID)
    /// Forget a slot's volume home (its cluster was deleted, or the agent is gone).
    case deleteVolumeHome(MemberSlot)
}

/// A group of intents written atomically; `id` lets the scheduler know which batch is durable.
public struct PersistBatch: Hashable, Codable, Sendable {
    /// Increases with every batch of one scheduler.
    public var id: UInt64
    /// The changes, applied in order.
    public var intents: [StateIntent]

    /// Creates a batch.
    public init(id: UInt64, intents: [StateIntent]) {
        self.id = id
        self.intents = intents
    }
}

/// Everything a store holds; what a restarted scheduler starts from.
public struct SchedulerSnapshot: Hashable, Codable, Sendable {
    /// The framework id, if the framework ever subscribed.
    public var frameworkID: FrameworkID?
    /// The clusters by name.
    public var clusters: [String: ClusterSpec]
    /// The tasks by id.
    public var tasks: [TaskID: TaskRecord]
    /// The next task number.
    public var nextTaskNumber: UInt64
    /// The topology state of cluster-mode clusters, by cluster name.
    public var layouts: [String: ClusterLayout]
    /// The agent holding each persistent member slot's volume.
    public var volumeHomes: [MemberSlot: AgentID] = [:]

    /// An empty snapshot.
    public init(
        frameworkID: FrameworkID? = nil,
        clusters: [String: ClusterSpec] = [:],
        tasks: [TaskID: TaskRecord] = [:],
        nextTaskNumber: UInt64 = 1,
        layouts: [String: ClusterLayout] = [:]
    ) {
        self.layouts = layouts
        self.frameworkID = frameworkID
        self.clusters = clusters
        self.tasks = tasks
        self.nextTaskNumber = nextTaskNumber
    }

    /// Applies one batch.
    public mutating func apply(_ batch: PersistBatch) {
        for intent in batch.intents {
            switch intent {
            case .setFrameworkID(let id): frameworkID = id
            case .putCluster(let spec): clusters[spec.name] = spec
            case .deleteCluster(let name):
                clusters[name] = nil
                layouts[name] = nil
            case .putTask(let record): tasks[record.taskID] = record
            case .deleteTask(let id): tasks[id] = nil
            case .setNextTaskNumber(let number): nextTaskNumber = max(nextTaskNumber, number)
            case .putLayout(let layout): layouts[layout.cluster] = layout
            case .putVolumeHome(let slot, let agentID): volumeHomes[slot] = agentID
            case .deleteVolumeHome(let slot): volumeHomes[slot] = nil
            }
        }
    }
}

/// Durable storage of the scheduler's state.
///
/// ## Implementing StateStore
/// - `apply` returns only once the batch is durable (for SQLite: the transaction committed), and applies a batch
///   all or nothing.
/// - `load` returns the result of every batch `apply` returned from, in order.
/// - Batches from one scheduler arrive in `id` order; a store may reject a batch whose id is not larger than the last.
public protocol StateStore: Sendable {
    /// The state as of the last applied batch.
    func load() async throws -> SchedulerSnapshot
    /// Durably applies a batch.
    func apply(_ batch: PersistBatch) async throws
}

/// A `StateStore` in memory, for tests: survives a scheduler "restart" within one process.
public actor InMemoryStateStore: StateStore {
    private var snapshot: SchedulerSnapshot
    /// Every batch applied, in order.
    public private(set) var appliedBatches: [PersistBatch] = []

    /// Creates a store holding `snapshot`.
    public init(_ snapshot: SchedulerSnapshot = SchedulerSnapshot()) { self.snapshot = snapshot }

    public func load() async throws -> SchedulerSnapshot { snapshot }

    public func apply(_ batch: PersistBatch) async throws {
        snapshot.apply(batch)
        appliedBatches.append(batch)
    }
}
