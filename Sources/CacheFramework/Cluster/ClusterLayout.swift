// The durable topology state of a cluster-mode (cache-node) cluster: which slots each shard serves, the highest
// topology epoch used, and the last heals. The scheduler derives the topology it pushes (`SlotTopology`) from this
// layout plus its task records: each shard's running primary with its slots and its running replicas, identified by
// the node ids they reported. A topology is only derived when every shard has a running primary with a known node id.

/// One heal the scheduler carried out, for status.
public struct HealRecord: Hashable, Codable, Sendable {
    /// The shard healed.
    public var shard: Int
    /// The member that was lost (`nil`: lost while the framework was down, its record already gone).
    public var lostTask: TaskID?
    /// Its role when it was lost.
    public var lostRole: MemberRole
    /// The replica promoted in its place (lost primaries with a surviving replica).
    public var promoted: TaskID?
    /// When the loss was seen (scheduler seconds).
    public var lostAt: Double
    /// When the new primary was chosen (scheduler seconds).
    public var promotedAt: Double?

    /// Creates a record.
    public init(shard: Int, lostTask: TaskID?, lostRole: MemberRole, promoted: TaskID? = nil, lostAt: Double, promotedAt: Double? = nil) {
        self.shard = shard
        self.lostTask = lostTask
        self.lostRole = lostRole
        self.promoted = promoted
        self.lostAt = lostAt
        self.promotedAt = promotedAt
    }
}

/// A cluster's slot assignment and topology epoch, recorded durably (`StateIntent.putLayout`).
public struct ClusterLayout: Hashable, Codable, Sendable {
    /// How many heals `heals` keeps.
    public static let healHistory = 10

    /// The cluster.
    public var cluster: String
    /// The highest topology epoch used; a push always uses a higher one, recorded before it is sent.
    public var epoch: UInt64
    /// The slots of each shard, by shard index; empty until the cluster was provisioned (every member ran once).
    public var shardSlots: [[SlotRange]]
    /// The last heals, oldest first.
    public var heals: [HealRecord]
    /// A shard-count change under way, if any.
    public var resharding: Resharding?

    /// A layout with no slots assigned yet.
    public init(cluster: String, epoch: UInt64 = 0, shardSlots: [[SlotRange]] = [], heals: [HealRecord] = []) {
        self.cluster = cluster
        self.epoch = epoch
        self.shardSlots = shardSlots
        self.heals = heals
    }

    /// Whether slots were assigned.
    public var isProvisioned: Bool { !shardSlots.isEmpty }

    /// Assigns every shard its even share of the slots (``ClusterPlan/slots(shard:of:)``).
    public mutating func assignSlotsEvenly(shardCount: Int) {
        shardSlots = ClusterPlan.slotRanges(shardCount: shardCount).map { [$0] }
    }

    /// Appends a heal, keeping the last ``healHistory``.
    public mutating func record(_ heal: HealRecord) {
        heals.append(heal)
        if heals.count > Self.healHistory { heals.removeFirst(heals.count - Self.healHistory) }
    }

    /// The topology for `members` (the cluster's live task records) with `epoch`, or `nil` while some shard with slots
    /// has no running primary with a known node id (a shard without slots is left out until its primary runs). Replicas appear once they run and reported their node id.
    public func topology(epoch: UInt64, members: [TaskRecord]) -> SlotTopology? {
        guard isProvisioned else { return nil }
        var shards: [SlotTopology.Shard] = []
        for (index, slots) in shardSlots.enumerated() {
            let shardMembers = members.filter { $0.slot.shard == index && $0.isRunning && $0.clusterNodeID != nil }
                .sorted { $0.slot.member < $1.slot.member }
            guard let primary = shardMembers.first(where: { $0.role == .primary }) else {
                // A shard without slots (one being added, or emptied by a scale-in) is left out until it runs.
                if slots.isEmpty { continue }
                return nil
            }
            shards.append(
                SlotTopology.Shard(
                    primary: Self.member(primary),
                    replicas: shardMembers.filter { $0.role == .replica }.map(Self.member),
                    slots: slots.map(\.closedRange)))
        }
        return SlotTopology(epoch: epoch, shards: shards)
    }

    /// A cache-node member's second port is its secure replication port: announced as its bus port, so peers reach
    /// it for MIGRATE without asking its client port first.
    private static func member(_ record: TaskRecord) -> SlotTopology.Member {
        SlotTopology.Member(
            nodeID: record.clusterNodeID ?? "", host: record.hostname, port: Int(record.ports.first ?? 0),
            busPort: record.ports.count > 1 ? Int(record.ports[1]) : nil)
    }
}
