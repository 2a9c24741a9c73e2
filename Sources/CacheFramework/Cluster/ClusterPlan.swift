// The layout of a cache cluster: which slots each shard serves, which member slots exist, and the healing decision
// when a member is lost.

/// An inclusive range of hash slots.
public struct SlotRange: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The first slot.
    public var first: Int
    /// The last slot, inclusive.
    public var last: Int

    /// Creates a range.
    public init(first: Int, last: Int) {
        self.first = first
        self.last = last
    }

    /// The range as a `ClosedRange`.
    public var closedRange: ClosedRange<Int> { first...last }
    /// How many slots.
    public var count: Int { last - first + 1 }

    public var description: String { "\(first)-\(last)" }
}

/// One place in a cluster a task fills: member `member` of shard `shard` of cluster `cluster`.
public struct MemberSlot: Hashable, Codable, Sendable, Comparable, CustomStringConvertible {
    /// The cluster name.
    public var cluster: String
    /// The shard index.
    public var shard: Int
    /// The member index within the shard (0 is the first primary, but roles move on failover).
    public var member: Int

    /// Creates a member slot.
    public init(cluster: String, shard: Int, member: Int) {
        self.cluster = cluster
        self.shard = shard
        self.member = member
    }

    /// The placement anti-affinity group: all members of one shard.
    public var group: String { "\(cluster)/\(shard)" }

    public var description: String { "\(cluster)/shard-\(shard)/member-\(member)" }

    /// Parses ``description`` back (`nil` if `text` is not one).
    public init?(description text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[parts.count - 2].hasPrefix("shard-"), parts[parts.count - 1].hasPrefix("member-"),
            let shard = Int(parts[parts.count - 2].dropFirst(6)), let member = Int(parts[parts.count - 1].dropFirst(7))
        else { return nil }
        self.init(cluster: parts.dropLast(2).joined(separator: "/"), shard: shard, member: member)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.cluster, lhs.shard, lhs.member) < (rhs.cluster, rhs.shard, rhs.member)
    }
}

/// The static layout of a cluster spec.
public enum ClusterPlan {
    /// Redis Cluster's number of hash slots.
    public static let slotCount = 16384

    /// The slots of `shard` when the 16384 slots are split over `shardCount` shards the way
    /// `redis-cli --cluster create` splits them (0-5460, 5461-10922, 10923-16383 for three): shard `i` ends at
    /// `round((i + 1) × 16384 / shardCount − 1)`, the last shard at 16383. The one split the framework uses
    /// (task labels, status, the pushed topology: ``SlotTopology/evenSlotRanges(shardCount:)`` calls this).
    public static func slots(shard: Int, of shardCount: Int) -> SlotRange {
        precondition(shardCount > 0 && shardCount <= slotCount && (0..<shardCount).contains(shard), "shard out of range")
        let first = shard == 0 ? 0 : lastSlot(shard - 1, of: shardCount) + 1
        return SlotRange(first: first, last: max(first, lastSlot(shard, of: shardCount)))
    }

    /// Every shard's slots, in shard order.
    public static func slotRanges(shardCount: Int) -> [SlotRange] {
        (0..<shardCount).map { slots(shard: $0, of: shardCount) }
    }

    /// redis-cli's `last = lround(cursor + slotsPerNode - 1)` with `cursor = shard × slotsPerNode`.
    private static func lastSlot(_ shard: Int, of shardCount: Int) -> Int {
        if shard == shardCount - 1 { return slotCount - 1 }
        let perShard = Double(slotCount) / Double(shardCount)
        return min(slotCount - 1, Int((Double(shard) * perShard + perShard - 1).rounded()))
    }

    /// Every member slot of a spec, shard by shard.
    public static func memberSlots(of spec: ClusterSpec) -> [MemberSlot] {
        (0..<spec.shardCount).flatMap { shard in
            (0..<spec.membersPerShard).map { MemberSlot(cluster: spec.name, shard: shard, member: $0) }
        }
    }
}

/// What to do when a member of a shard is lost.
public enum HealDecision: Hashable, Sendable {
    /// Promote `newPrimary` (the surviving replica with the highest replication offset), point `repoint` at it,
    /// and launch a replacement replica into the lost member's slot.
    case promote(newPrimary: TaskID, repoint: [TaskID])
    /// The lost member was a replica, or the primary had no replica left: launch a replacement into its slot.
    case replace

    /// Decides for a lost member.
    ///
    /// - Parameters:
    ///   - lostWasPrimary: whether the lost member was the shard's primary.
    ///   - survivingReplicas: the shard's running replicas with the replication offset each reported (`nil`: it
    ///     did not answer); replicas that answered are preferred over those that did not.
    public static func decide(lostWasPrimary: Bool, survivingReplicas: [(TaskID, offset: UInt64?)]) -> HealDecision {
        guard lostWasPrimary, !survivingReplicas.isEmpty else { return .replace }
        let best = survivingReplicas.max { lhs, rhs in
            let left = lhs.offset.map { Int64(bitPattern: $0) } ?? -1
            let right = rhs.offset.map { Int64(bitPattern: $0) } ?? -1
            return left != right ? left < right : lhs.0 > rhs.0
        }!.0
        return .promote(newPrimary: best, repoint: survivingReplicas.map(\.0).filter { $0 != best }.sorted())
    }
}
