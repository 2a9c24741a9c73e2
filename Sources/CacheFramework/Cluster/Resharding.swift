// Resharding a cluster-mode cluster: the durable progress of a shard-count change, and the pure planning functions
// behind it (the target split, the next batch of slots to move, the layout after a batch moved).
//
// Target split. The final split is `ClusterPlan`'s even split for the new shard count, but the even ranges are given
// to shards by overlap (greedily, largest overlap first) rather than in shard order, so slots that already sit on a
// shard whose even range covers them stay put: 3 → 5 shards moves 6,554 slots instead of the 12,014 an in-order
// split would move, and 5 → 2 moves the slots of the removed shards plus what evens the two survivors out. Shards
// that are removed (scale-in) must keep the highest indices, so they get no range.
//
// Progress. `Resharding` is stored in the cluster's `ClusterLayout` (one `putLayout` per step): before a batch of
// slots is sent to the nodes it is recorded as `inFlight` (which slots, from which shard to which), and when the
// nodes report it done the layout's slots, `movedSlots` and the next `inFlight` are recorded together. A restarted
// scheduler re-sends the recorded batch; every node command of a batch is idempotent (see
// ``SchedulerAction/migrateSlots(cluster:_:)``).

/// A batch of consecutive slots that moves from one shard to another.
public struct SlotMove: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The slots.
    public var slots: SlotRange
    /// The shard giving them away.
    public var fromShard: Int
    /// The shard taking them.
    public var toShard: Int

    /// Creates a move.
    public init(slots: SlotRange, fromShard: Int, toShard: Int) {
        self.slots = slots
        self.fromShard = fromShard
        self.toShard = toShard
    }

    public var description: String { "slots \(slots) from shard \(fromShard) to shard \(toShard)" }
}

/// A shard-count change under way (durable, part of ``ClusterLayout``).
public struct Resharding: Hashable, Codable, Sendable {
    /// Where a resharding is.
    public enum Phase: String, Hashable, Codable, Sendable {
        /// Scale-out: the new shards' members are being placed and started; slots move once every new primary runs,
        /// reported its node id and acknowledged a topology that lists it.
        case launching
        /// Slots are moving, one batch at a time.
        case moving
        /// Scale-in: every slot left the removed shards; a topology without them was pushed, and their members are
        /// killed once every remaining member acknowledged it.
        case retiring
    }

    /// The shard count before.
    public var fromShardCount: Int
    /// The shard count after.
    public var toShardCount: Int
    /// The slots every shard serves at the end, by shard index (`max(from, to)` entries; removed shards: none).
    public var targetSlots: [[SlotRange]]
    /// How many slots change shard in all.
    public var totalSlots: Int
    /// How many have moved.
    public var movedSlots: Int
    /// The phase.
    public var phase: Phase
    /// The batch sent to the nodes and not yet reported done (re-sent after a restart).
    public var inFlight: SlotMove?
    /// Scale-in, retiring: the removed members, killed once `retiringEpoch` is acknowledged.
    public var retiring: [TaskRecord]
    /// Scale-in, retiring: the first topology epoch without the removed shards.
    public var retiringEpoch: UInt64?
    /// The last error a batch reported (cleared when a batch succeeds).
    public var lastError: String?

    /// Creates a resharding of a cluster whose shards serve `current` (by shard index) to `toShardCount` shards.
    public init(current: [[SlotRange]], toShardCount: Int) {
        fromShardCount = current.count
        self.toShardCount = toShardCount
        targetSlots = Self.targetSlots(current: current, toShardCount: toShardCount)
        totalSlots = Self.moves(current: current, target: targetSlots)
        movedSlots = 0
        phase = toShardCount > current.count ? .launching : .moving
        inFlight = nil
        retiring = []
        retiringEpoch = nil
        lastError = nil
    }

    /// Whether this is a scale-in.
    public var isScaleIn: Bool { toShardCount < fromShardCount }

    // MARK: planning (pure)

    /// The owner shard of every slot (`-1`: none).
    public static func owners(_ shardSlots: [[SlotRange]]) -> [Int] {
        var owner = [Int](repeating: -1, count: ClusterPlan.slotCount)
        for (shard, ranges) in shardSlots.enumerated() {
            for range in ranges { for slot in range.closedRange { owner[slot] = shard } }
        }
        return owner
    }

    /// The ranges of each shard (`shardCount` entries) for an owner array.
    public static func ranges(_ owner: [Int], shardCount: Int) -> [[SlotRange]] {
        var result = [[SlotRange]](repeating: [], count: shardCount)
        var start = 0
        for slot in 1...owner.count {
            if slot == owner.count || owner[slot] != owner[start] {
                if owner[start] >= 0 && owner[start] < shardCount {
                    result[owner[start]].append(SlotRange(first: start, last: slot - 1))
                }
                start = slot
            }
        }
        return result
    }

    /// The final split: the even ranges for `toShardCount`, each given to the kept shard it overlaps most
    /// (greedy), the rest to the new shards in order. `max(current.count, toShardCount)` entries.
    public static func targetSlots(current: [[SlotRange]], toShardCount: Int) -> [[SlotRange]] {
        let even = ClusterPlan.slotRanges(shardCount: toShardCount)
        let owner = owners(current)
        let kept = min(current.count, toShardCount)
        var overlaps: [(overlap: Int, range: Int, shard: Int)] = []
        for (index, range) in even.enumerated() {
            var counts = [Int](repeating: 0, count: kept)
            for slot in range.closedRange where owner[slot] >= 0 && owner[slot] < kept { counts[owner[slot]] += 1 }
            for shard in 0..<kept where counts[shard] > 0 { overlaps.append((counts[shard], index, shard)) }
        }
        overlaps.sort { ($0.overlap, -$0.range, -$0.shard) > ($1.overlap, -$1.range, -$1.shard) }
        var rangeOf = [Int?](repeating: nil, count: toShardCount)
        var taken = Set<Int>()
        for candidate in overlaps where rangeOf[candidate.shard] == nil && !taken.contains(candidate.range) {
            rangeOf[candidate.shard] = candidate.range
            taken.insert(candidate.range)
        }
        var free = (0..<even.count).filter { !taken.contains($0) }[...]
        for shard in 0..<toShardCount where rangeOf[shard] == nil { rangeOf[shard] = free.popFirst() }
        var target = [[SlotRange]](repeating: [], count: max(current.count, toShardCount))
        for shard in 0..<toShardCount { target[shard] = [even[rangeOf[shard]!]] }
        return target
    }

    /// How many slots differ between `current` and `target`.
    public static func moves(current: [[SlotRange]], target: [[SlotRange]]) -> Int {
        zip(owners(current), owners(target)).filter { $0 != $1 }.count
    }

    /// The next batch: the lowest slot whose shard differs from its target, with the following slots that move
    /// between the same two shards, at most `limit`. `nil` when every slot is where it belongs.
    public static func nextMove(current: [[SlotRange]], target: [[SlotRange]], limit: Int) -> SlotMove? {
        let from = owners(current)
        let to = owners(target)
        guard let first = (0..<from.count).first(where: { from[$0] != to[$0] && from[$0] >= 0 && to[$0] >= 0 }) else {
            return nil
        }
        var last = first
        while last + 1 < from.count && last + 1 - first < limit && from[last + 1] == from[first] && to[last + 1] == to[first] {
            last += 1
        }
        return SlotMove(slots: SlotRange(first: first, last: last), fromShard: from[first], toShard: to[first])
    }
}

extension ClusterLayout {
    /// Gives `slots` to `shard` (the layout after a batch moved).
    public mutating func assign(_ slots: SlotRange, to shard: Int) {
        var owner = Resharding.owners(shardSlots)
        for slot in slots.closedRange { owner[slot] = shard }
        shardSlots = Resharding.ranges(owner, shardCount: max(shardSlots.count, shard + 1))
    }
}
