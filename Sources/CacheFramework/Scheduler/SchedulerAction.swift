// The inputs and outputs of `SchedulerStateMachine`: events that happened, and actions for the driver to carry out.

/// Something that happened: a backend event, a timer, or a store confirmation.
public enum SchedulerEvent: Hashable, Sendable {
    /// The backend (re)subscribed; `frameworkID` is the id the master gave.
    case subscribed(FrameworkID, now: SchedulerTime)
    /// The connection to the master is gone: offers are void, tasks keep running until failover timeout.
    case disconnected
    /// New offers.
    case offers([Offer], now: SchedulerTime)
    /// The master took an offer back.
    case rescind(OfferID)
    /// A task status update or reconciliation answer.
    case update(TaskStatus, now: SchedulerTime)
    /// The store made a batch durable.
    case persisted(batchID: UInt64)
    /// A running replica reported its replication offset (answer to `.queryReplicationOffsets`).
    case replicationOffset(TaskID, offset: UInt64)
    /// Time passed.
    case tick(now: SchedulerTime)
    /// A cluster-mode member reported its node id (answer to `.queryClusterNodeID`).
    case clusterNodeID(TaskID, String)
    /// A member answered a topology push (`error` is `nil` when it applied `epoch`).
    case topologyApplied(TaskID, epoch: UInt64, error: String?)
    /// The nodes finished moving a batch of slots (answer to `.migrateSlots`; `error` is `nil` on success).
    case slotsMigrated(cluster: String, SlotRange, error: String?)
}

/// One batch of a resharding as the driver carries it out (``SchedulerAction/migrateSlots(cluster:_:)``).
public struct SlotMigration: Hashable, Sendable {
    /// The slots, moved in ascending order.
    public var slots: SlotRange
    /// The primary giving them away, and its node id.
    public var source: TaskEndpoint
    public var sourceNodeID: String
    /// The primary taking them, and its node id.
    public var target: TaskEndpoint
    public var targetNodeID: String

    /// Creates a migration.
    public init(slots: SlotRange, source: TaskEndpoint, sourceNodeID: String, target: TaskEndpoint, targetNodeID: String) {
        self.slots = slots
        self.source = source
        self.sourceNodeID = sourceNodeID
        self.target = target
        self.targetNodeID = targetNodeID
    }
}

/// A task to reconcile: the master answers with its current status.
public struct ReconcileTask: Hashable, Codable, Sendable {
    /// The task.
    public var taskID: TaskID
    /// The agent the scheduler believes it runs on.
    public var agentID: AgentID?

    /// Creates an entry.
    public init(taskID: TaskID, agentID: AgentID?) {
        self.taskID = taskID
        self.agentID = agentID
    }
}

/// What the driver must do, in order. A `.persist` must be durable before the following actions run; launches
/// additionally wait for the `.persisted` event, so an accept is never sent for an intent that is not recorded.
public enum SchedulerAction: Hashable, Sendable {
    /// Durably apply a batch, then report `.persisted(batchID:)`.
    case persist(PersistBatch)
    /// ACCEPT offers (all of one agent) with operations.
    case accept(offerIDs: [OfferID], operations: [OfferOperation], filters: Filters)
    /// DECLINE offers, refusing them for `filters.refuseSeconds`.
    case decline(offerIDs: [OfferID], filters: Filters)
    /// ACKNOWLEDGE a status update.
    case acknowledge(agentID: AgentID, taskID: TaskID, uuid: String)
    /// KILL a task.
    case kill(taskID: TaskID, agentID: AgentID?)
    /// RECONCILE these tasks; an empty list asks for every task the master knows (implicit reconciliation).
    case reconcile([ReconcileTask])
    /// REVIVE: remove refuse filters and ask for offers again.
    case revive
    /// SUPPRESS: stop sending offers until revive.
    case suppress
    /// Ask the replicas of a shard for their replication offsets (answers come as `.replicationOffset`).
    case queryReplicationOffsets([TaskEndpoint])
    /// Make a replica the primary of its shard (`REPLICAOF NO ONE`).
    case promote(TaskEndpoint)
    /// Point a replica at its shard's primary (`REPLICAOF host port`); `primary` is the address replicas connect to
    /// (the primary's secure replication port for secure cache-node clusters).
    case replicate(replica: TaskEndpoint, primary: TaskEndpoint)
    /// Ask a cluster-mode member for its node id (`CLUSTER MYID`; the answer comes as `.clusterNodeID`).
    case queryClusterNodeID(TaskEndpoint)
    /// Push a cluster's topology to members (`CLUSTER TOPOLOGY SET`; answers come as `.topologyApplied`). Carry out
    /// after the preceding actions: a `.promote` before it must have been applied, so the new primary accepts
    /// writes for its slots as soon as clients learn them.
    case pushTopology(cluster: String, SlotTopology, to: [TaskEndpoint])
    /// Move a batch of slots between two primaries with the commands `redis-cli --cluster reshard` uses, pipelined
    /// per batch: `CLUSTER SETSLOT s IMPORTING <source>` on the target, `CLUSTER SETSLOT s MIGRATING <target>` on the
    /// source, `CLUSTER GETKEYSINSLOT` + `MIGRATE host port "" 0 timeout KEYS …` until every slot is empty, then
    /// `CLUSTER SETSLOT s NODE <target>` on the target and then on the source; answer with `.slotsMigrated`. Every step is
    /// idempotent, so a batch recorded as in flight is simply sent again after a restart (a target that owns the
    /// slot already skips to `SETSLOT NODE`, a source that no longer owns it has no keys left to move). No topology
    /// is pushed to the cluster while a batch runs (a push would clear the nodes' MIGRATING/IMPORTING states).
    case migrateSlots(cluster: String, SlotMigration)
}

/// Why a user intent was refused.
public enum SchedulerError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidSpec(ClusterSpecError)
    case clusterExists(String)
    case unknownCluster(String)
    case reshardingUnsupported(cluster: String, from: Int, to: Int)
    case reshardingInProgress(cluster: String, from: Int, to: Int)
    case notProvisioned(cluster: String)

    public var description: String {
        switch self {
        case .invalidSpec(let error): "invalid cluster spec: \(error)"
        case .clusterExists(let name): "cluster '\(name)' exists already: scale it or delete it first"
        case .unknownCluster(let name): "no cluster named '\(name)'"
        case .reshardingUnsupported(let name, let from, let to):
            "cluster '\(name)' has \(from) shards; changing to \(to) needs slot migration, which only cache-node "
                + "(cluster-mode) clusters support: create a cache-node cluster, or change only the replicas"
        case .reshardingInProgress(let name, let from, let to):
            "cluster '\(name)' is being resharded from \(from) to \(to) shards: wait until it finishes "
                + "(cachectl cluster status \(name)) and scale again"
        case .notProvisioned(let name):
            "cluster '\(name)' has no slots assigned yet (its members are still starting): wait until it serves and scale again"
        }
    }
}
