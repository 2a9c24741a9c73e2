// What a user asks for: a cache cluster of shards × members, the engine that runs each member and its settings.

/// The server a cluster's members run.
public enum CacheEngine: String, Hashable, Codable, Sendable, CaseIterable {
    /// Our Redis-compatible server, with secure replication.
    case cacheNode = "cache-node"
    /// Stock redis-server (no secure replication).
    case redisServer = "redis-server"

    /// How many ports a member needs: the client port, plus the secure replication port for cache-node.
    public var portCount: Int { self == .cacheNode ? 2 : 1 }
}

/// What a member evicts when it reaches its memory limit (Redis `maxmemory-policy` names).
public enum EvictionPolicy: String, Hashable, Codable, Sendable, CaseIterable {
    case noEviction = "noeviction"
    case allKeysLRU = "allkeys-lru"
    case allKeysLFU = "allkeys-lfu"
    case allKeysRandom = "allkeys-random"
    case volatileLRU = "volatile-lru"
    case volatileLFU = "volatile-lfu"
    case volatileRandom = "volatile-random"
    case volatileTTL = "volatile-ttl"
}

/// A cache cluster as the user specifies it.
public struct ClusterSpec: Hashable, Codable, Sendable {
    /// The cluster name: letters, digits and `-`, used in task ids.
    public var name: String
    /// How many shards the 16384 hash slots are split over.
    public var shardCount: Int
    /// Replicas per shard, in addition to the shard's primary (Redis' `--cluster-replicas`).
    public var replicasPerShard: Int
    /// Memory per member in MB (the member's `maxmemory`; the task asks for 25% more for overhead).
    public var memoryMBPerNode: Int
    /// CPU shares per member.
    public var cpusPerNode: Double
    /// The server each member runs.
    public var engine: CacheEngine
    /// The eviction policy.
    public var evictionPolicy: EvictionPolicy
    /// Whether members persist (append-only file) to their sandbox.
    public var persistence: Bool
    /// Whether replication runs over the authenticated encrypted channel (on by default).
    public var secureReplication: Bool
    /// Adds or removes shards on its own when set (see ``AutoscalingPolicy``).
    public var autoscaling: AutoscalingPolicy?

    /// Creates a spec; secure replication is on unless turned off.
    public init(
        name: String,
        shardCount: Int,
        replicasPerShard: Int,
        memoryMBPerNode: Int,
        cpusPerNode: Double = 1,
        engine: CacheEngine = .cacheNode,
        evictionPolicy: EvictionPolicy = .noEviction,
        persistence: Bool = false,
        secureReplication: Bool = true,
        autoscaling: AutoscalingPolicy? = nil
    ) {
        self.name = name
        self.shardCount = shardCount
        self.replicasPerShard = replicasPerShard
        self.memoryMBPerNode = memoryMBPerNode
        self.cpusPerNode = cpusPerNode
        self.engine = engine
        self.evictionPolicy = evictionPolicy
        self.persistence = persistence
        self.secureReplication = secureReplication
        self.autoscaling = autoscaling
    }

    /// Members per shard: the primary and its replicas.
    public var membersPerShard: Int { 1 + replicasPerShard }

    /// The memory a member's task asks for: `maxmemory` plus 25% for fragmentation and buffers.
    public var taskMemoryMB: Double { Double(memoryMBPerNode) * 1.25 }

    /// Checks the spec; throws a `ClusterSpecError` that says what to change.
    public func validate() throws(ClusterSpecError) {
        let allowed = name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
        guard !name.isEmpty, name.count <= 63, allowed else { throw .invalidName(name) }
        guard (1...ClusterPlan.slotCount).contains(shardCount) else { throw .invalidShardCount(shardCount) }
        guard (0...15).contains(replicasPerShard) else { throw .invalidReplicaCount(replicasPerShard) }
        guard memoryMBPerNode >= 16 else { throw .memoryTooSmall(memoryMBPerNode) }
        guard cpusPerNode > 0 else { throw .invalidCpus(cpusPerNode) }
        if secureReplication && engine == .redisServer { throw .secureReplicationUnsupported(engine) }
        if let autoscaling {
            guard engine == .cacheNode else { throw .invalidAutoscaling("autoscaling reshards live, which needs cache-node members") }
            try autoscaling.validate(shardCount: shardCount)
        }
    }
}

/// Why a cluster spec or a change to it was refused.
public enum ClusterSpecError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidName(String)
    case invalidShardCount(Int)
    case invalidReplicaCount(Int)
    case memoryTooSmall(Int)
    case invalidCpus(Double)
    case secureReplicationUnsupported(CacheEngine)
    case invalidAutoscaling(String)

    public var description: String {
        switch self {
        case .invalidName(let name):
            "invalid cluster name '\(name)': use 1–63 letters, digits or '-'"
        case .invalidShardCount(let count):
            "invalid shard count \(count): use 1…\(ClusterPlan.slotCount)"
        case .invalidReplicaCount(let count):
            "invalid replicas per shard \(count): use 0…15"
        case .memoryTooSmall(let mb):
            "memory per node \(mb) MB is too small: use at least 16 MB"
        case .invalidCpus(let cpus):
            "cpus per node \(cpus) must be positive"
        case .secureReplicationUnsupported(let engine):
            "\(engine.rawValue) has no secure replication: turn secure replication off or use cache-node"
        case .invalidAutoscaling(let why):
            "invalid autoscaling policy: \(why)"
        }
    }
}
