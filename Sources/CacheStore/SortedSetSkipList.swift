// The order-statistic index of a sorted set: a skiplist with spans, as redis's t_zset.c (zslInsert, zslDelete,
// zslGetRank, zslGetElementByRank). Elements are ordered by (score, member bytes); each forward link records how
// many level-0 steps it skips, so rank and rank→element are O(log n) expected.
//
// Nodes are classes linked forward strongly and backward unowned; the owner breaks the forward chain iteratively on
// deinit so releasing a large set does not recurse once per node.

/// One element of the skiplist.
public final class SortedSetNode {
    /// The member bytes.
    public let member: CompactBytes
    /// The score.
    public internal(set) var score: Double
    /// The previous node at level 0 (nil for the first element).
    public internal(set) unowned(unsafe) var backward: SortedSetNode?
    /// Forward links per level.
    var forward: [SortedSetNode?]
    /// Level-0 steps each forward link skips.
    var span: [Int]

    init(member: CompactBytes, score: Double, level: Int) {
        self.member = member
        self.score = score
        self.backward = nil
        self.forward = Array(repeating: nil, count: level)
        self.span = Array(repeating: 0, count: level)
    }

    /// The number of levels of this node.
    public var level: Int { forward.count }

    /// The next node at level 0 (nil for the last element).
    public var next: SortedSetNode? { forward[0] }
}

/// Whether (score, member) sorts strictly before (otherScore, otherMember).
@inline(__always)
func sortsBefore(_ score: Double, _ member: CompactBytes, _ otherScore: Double, _ otherMember: CompactBytes) -> Bool {
    if score != otherScore { return score < otherScore }
    return member.withBytes { a in otherMember.withBytes { b in ByteOrder.compare(a, b) < 0 } }
}

/// A skiplist ordered by (score, member) with spans for ranks (redis `zskiplist`).
public struct SortedSetSkipList {
    /// The most levels a node can have (redis ZSKIPLIST_MAXLEVEL).
    public static let maximumLevel = 32
    /// The probability of a node having one more level (redis ZSKIPLIST_P).
    static let levelProbability: UInt64 = UInt64.max / 4

    /// The head sentinel (no member, all levels).
    let head: SortedSetNode
    /// The last element.
    public private(set) unowned(unsafe) var tail: SortedSetNode?
    /// The number of elements.
    public private(set) var count = 0
    /// Levels in use.
    private(set) var level = 1
    /// State of the level generator (xorshift; deterministic per list so tests replay).
    private var randomState: UInt64

    /// An empty list; `seed` drives the node level generator.
    public init(seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        head = SortedSetNode(member: .empty, score: 0, level: Self.maximumLevel)
        randomState = seed == 0 ? 1 : seed
    }

    /// The first element.
    public var first: SortedSetNode? { head.forward[0] }

    private mutating func randomLevel() -> Int {
        var level = 1
        while level < Self.maximumLevel {
            randomState ^= randomState << 13
            randomState ^= randomState >> 7
            randomState ^= randomState << 17
            guard randomState < Self.levelProbability else { break }
            level += 1
        }
        return level
    }

    /// Inserts an element known to be absent and returns its node.
    @discardableResult
    public mutating func insert(member: CompactBytes, score: Double) -> SortedSetNode {
        var update = [SortedSetNode](repeating: head, count: Self.maximumLevel)
        var rank = [Int](repeating: 0, count: Self.maximumLevel)
        var node = head
        for i in stride(from: level - 1, through: 0, by: -1) {
            rank[i] = i == level - 1 ? 0 : rank[i + 1]
            while let next = node.forward[i], sortsBefore(next.score, next.member, score, member) {
                rank[i] += node.span[i]
                node = next
            }
            update[i] = node
        }
        let newLevel = randomLevel()
        if newLevel > level {
            for i in level..<newLevel {
                rank[i] = 0
                update[i] = head
                head.span[i] = count
            }
            level = newLevel
        }
        let created = SortedSetNode(member: member, score: score, level: newLevel)
        for i in 0..<newLevel {
            created.forward[i] = update[i].forward[i]
            update[i].forward[i] = created
            created.span[i] = update[i].span[i] - (rank[0] - rank[i])
            update[i].span[i] = (rank[0] - rank[i]) + 1
        }
        for i in newLevel..<level { update[i].span[i] += 1 }
        created.backward = update[0] === head ? nil : update[0]
        if let next = created.forward[0] { next.backward = created } else { tail = created }
        count += 1
        return created
    }

    /// Removes the element (score, member); returns its node, or nil if absent.
    @discardableResult
    public mutating func delete(member: CompactBytes, score: Double) -> SortedSetNode? {
        var update = [SortedSetNode](repeating: head, count: Self.maximumLevel)
        var node = head
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.forward[i], sortsBefore(next.score, next.member, score, member) { node = next }
            update[i] = node
        }
        guard let target = node.forward[0], target.score == score, target.member == member else { return nil }
        unlink(target, update: update)
        return target
    }

    private mutating func unlink(_ target: SortedSetNode, update: [SortedSetNode]) {
        for i in 0..<level {
            if update[i].forward[i] === target {
                update[i].span[i] += target.span[i] - 1
                update[i].forward[i] = target.forward[i]
            } else {
                update[i].span[i] -= 1
            }
        }
        if let next = target.forward[0] { next.backward = target.backward } else { tail = target.backward }
        while level > 1 && head.forward[level - 1] == nil { level -= 1 }
        count -= 1
    }

    /// Changes the score of an element in place when its position stays valid, otherwise moves it
    /// (redis zslUpdateScore). Returns the node now holding the element.
    @discardableResult
    public mutating func updateScore(member: CompactBytes, from oldScore: Double, to newScore: Double) -> SortedSetNode {
        guard let removed = delete(member: member, score: oldScore) else {
            preconditionFailure("updateScore of an element not in the skiplist")
        }
        _ = removed
        return insert(member: member, score: newScore)
    }

    /// The 1-based rank of (score, member), or 0 if absent (redis zslGetRank).
    public func rank(member: CompactBytes, score: Double) -> Int {
        var rank = 0
        var node = head
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.forward[i], !sortsBefore(score, member, next.score, next.member) {
                rank += node.span[i]
                node = next
            }
            if node !== head && node.member == member && node.score == score { return rank }
        }
        return 0
    }

    /// The element at 1-based `rank` (redis zslGetElementByRank).
    public func node(atRank rank: Int) -> SortedSetNode? {
        guard rank >= 1 && rank <= count else { return nil }
        var traversed = 0
        var node = head
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.forward[i], traversed + node.span[i] <= rank {
                traversed += node.span[i]
                node = next
            }
            if traversed == rank { return node }
        }
        return nil
    }

    /// The first element whose position satisfies `isAfterStart` (monotone: false…false true…true), with its
    /// 1-based rank, or nil if none does.
    public func firstNode(where isAfterStart: (SortedSetNode) -> Bool) -> (node: SortedSetNode, rank: Int)? {
        var node = head
        var rank = 0
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.forward[i], !isAfterStart(next) {
                rank += node.span[i]
                node = next
            }
        }
        guard let found = node.forward[0] else { return nil }
        return (found, rank + 1)
    }

    /// The last element whose position satisfies `isBeforeEnd` (monotone: true…true false…false), with its
    /// 1-based rank, or nil if none does.
    public func lastNode(where isBeforeEnd: (SortedSetNode) -> Bool) -> (node: SortedSetNode, rank: Int)? {
        var node = head
        var rank = 0
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.forward[i], isBeforeEnd(next) {
                rank += node.span[i]
                node = next
            }
        }
        guard node !== head else { return nil }
        return (node, rank)
    }

    /// Releases every node iteratively (no recursive release of a long forward chain).
    mutating func removeAll() {
        var node = head.forward[0]
        for i in 0..<Self.maximumLevel {
            head.forward[i] = nil
            head.span[i] = 0
        }
        while let current = node {
            node = current.forward[0]
            for i in 0..<current.forward.count { current.forward[i] = nil }
        }
        tail = nil
        count = 0
        level = 1
    }
}
