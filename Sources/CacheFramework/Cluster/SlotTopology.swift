// The cluster topology the scheduler pushes to cache nodes in cluster mode: which member is the primary of each
// shard, its replicas, the hash slots each shard serves, and the configuration epoch. Rendered in the wire form of
// `CLUSTER TOPOLOGY SET <epoch> <payload>` (CLUSTER NODES lines; see CacheNode's "Cluster topology" article).
// The scheduler is the source of truth: it bumps the epoch on every change and pushes to every member; nodes refuse
// an older epoch with -STALEEPOCH.

/// A versioned slot map for a cache cluster.
public struct SlotTopology: Hashable, Sendable {
    /// One member as nodes know it: its cluster node id (`CLUSTER MYID`), client address and bus port.
    public struct Member: Hashable, Sendable {
        public var nodeID: String
        public var host: String
        public var port: Int
        /// The `@cport` of its CLUSTER NODES line: a cache-node member's secure (replication) port, where its peers
        /// send MIGRATE and MEET through the secure channel; redis's `port + 10000` when it has none.
        public var busPort: Int

        public init(nodeID: String, host: String, port: Int, busPort: Int? = nil) {
            self.nodeID = nodeID
            self.host = host
            self.port = port
            self.busPort = busPort ?? port + 10000
        }
    }

    /// A primary, its replicas and its slots.
    public struct Shard: Hashable, Sendable {
        public var primary: Member
        public var replicas: [Member]
        public var slots: [ClosedRange<Int>]

        public init(primary: Member, replicas: [Member] = [], slots: [ClosedRange<Int>]) {
            self.primary = primary
            self.replicas = replicas
            self.slots = slots
        }
    }

    /// The number of hash slots (one constant for the framework: ``ClusterPlan/slotCount``).
    public static var slotCount: Int { ClusterPlan.slotCount }

    /// The configuration epoch; every change the scheduler makes must use a higher one.
    public var epoch: UInt64
    public var shards: [Shard]

    public init(epoch: UInt64, shards: [Shard]) {
        self.epoch = epoch
        self.shards = shards
    }

    /// The slot ranges of `count` shards as `redis-cli --cluster create` assigns them (0-5460, 5461-10922,
    /// 10923-16383 for three): ``ClusterPlan/slots(shard:of:)``, the framework's one split.
    public static func evenSlotRanges(shardCount count: Int) -> [ClosedRange<Int>] {
        precondition(count > 0 && count <= slotCount, "between 1 and 16384 shards")
        return ClusterPlan.slotRanges(shardCount: count).map(\.closedRange)
    }

    /// Problems that nodes would refuse the push for (slots served twice, slots missing, duplicate members).
    public var problems: [String] {
        var problems: [String] = []
        var owner = [Int](repeating: -1, count: Self.slotCount)
        var seen = Set<String>()
        for (index, shard) in shards.enumerated() {
            for member in [shard.primary] + shard.replicas where !seen.insert(member.nodeID).inserted {
                problems.append("node \(member.nodeID) appears twice")
            }
            for range in shard.slots {
                guard range.lowerBound >= 0 && range.upperBound < Self.slotCount else {
                    problems.append("slot range \(range) is outside 0-16383")
                    continue
                }
                for slot in range {
                    if owner[slot] >= 0 { problems.append("slot \(slot) is served by shards \(owner[slot]) and \(index)") }
                    owner[slot] = index
                }
            }
        }
        let unassigned = owner.filter { $0 < 0 }.count
        if unassigned > 0 { problems.append("\(unassigned) slots are not served by any shard") }
        return problems
    }

    /// The `<payload>` of `CLUSTER TOPOLOGY SET`: one CLUSTER NODES line per member.
    public var payload: String {
        var lines: [String] = []
        for (index, shard) in shards.enumerated() {
            let ranges = shard.slots.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            lines.append(Self.line(shard.primary, role: "master", primaryID: "-", configEpoch: index + 1, slots: ranges))
            for replica in shard.replicas {
                lines.append(Self.line(replica, role: "slave", primaryID: shard.primary.nodeID, configEpoch: index + 1, slots: []))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The command to send to every member.
    public var command: [String] { ["CLUSTER", "TOPOLOGY", "SET", String(epoch), payload] }

    /// Each shard gets its own config epoch (its position + 1), unique as Redis Cluster expects; which topology wins
    /// is decided by the topology epoch alone.
    private static func line(_ member: Member, role: String, primaryID: String, configEpoch: Int, slots: [String]) -> String {
        (["\(member.nodeID) \(member.host):\(member.port)@\(member.busPort) \(role) \(primaryID) 0 0 \(configEpoch) connected"] + slots)
            .joined(separator: " ")
    }
}
