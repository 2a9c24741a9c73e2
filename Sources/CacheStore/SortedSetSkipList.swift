// The order-statistic index of a sorted set: a skiplist with spans, as redis's t_zset.c (zslInsert, zslDelete,
// zslGetRank, zslGetElementByRank). Elements are ordered by (score, member bytes); each forward link records how
// many level-0 steps it skips, so rank and rank→element are O(log n) expected.
//
// Nodes are classes linked forward strongly and backward unowned; the owner breaks the forward chain iteratively on
// deinit so releasing a large set does not recurse once per node.

/// One forward link of a node: the next node at that level and how many level-0 steps it skips.
public struct SortedSetLink {
    var forward: SortedSetNode?
    var span: Int
}

/// The fixed part of a node: its element, its backward link and how many levels follow it.
public struct SortedSetNodeHeader {
    let member: CompactBytes
    var score: Double
    unowned(unsafe) var backward: SortedSetNode?
    let level: Int
}

/// One element of the skiplist: a header and `level` links in a single allocation.
public final class SortedSetNode: ManagedBuffer<SortedSetNodeHeader, SortedSetLink> {
    static func make(member: CompactBytes, score: Double, level: Int) -> SortedSetNode {
        let buffer = SortedSetNode.create(minimumCapacity: level) { _ in
            SortedSetNodeHeader(member: member, score: score, backward: nil, level: level)
        }
        let node = unsafeDowncast(buffer, to: SortedSetNode.self)
        node.withUnsafeMutablePointerToElements { $0.initialize(repeating: SortedSetLink(forward: nil, span: 0), count: level) }
        return node
    }

    deinit {
        withUnsafeMutablePointers { header, links in _ = links.deinitialize(count: header.pointee.level) }
    }

    /// The member bytes.
    public var member: CompactBytes { header.member }
    /// The score.
    public var score: Double { header.score }
    /// The previous node at level 0 (nil for the first element).
    public internal(set) var backward: SortedSetNode? {
        get { header.backward }
        set { header.backward = newValue }
    }
    /// The number of levels of this node.
    public var level: Int { header.level }
    /// The links, valid while the node lives.
    var links: UnsafeMutablePointer<SortedSetLink> { withUnsafeMutablePointerToElements { $0 } }
    /// The next node at level 0 (nil for the last element).
    public var next: SortedSetNode? { links[0].forward }
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
        head = SortedSetNode.make(member: .empty, score: 0, level: Self.maximumLevel)
        randomState = seed == 0 ? 1 : seed
    }

    /// The first element.
    public var first: SortedSetNode? { head.links[0].forward }

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

    /// Calls `body` with a stack buffer for the per-level predecessors of an insert or delete (no heap traffic).
    @inline(__always)
    private func withUpdateBuffer<Result>(_ body: (UnsafeMutableBufferPointer<Unmanaged<SortedSetNode>>) -> Result) -> Result {
        withUnsafeTemporaryAllocation(of: Unmanaged<SortedSetNode>.self, capacity: Self.maximumLevel) { update in
            body(update)
        }
    }

    /// Inserts an element known to be absent and returns its node.
    @discardableResult
    public mutating func insert(member: CompactBytes, score: Double) -> SortedSetNode {
        let newLevel = randomLevel()
        let head = self.head
        var level = self.level
        let count = self.count
        let created = SortedSetNode.make(member: member, score: score, level: newLevel)
        withUpdateBuffer { update in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: Self.maximumLevel) { rank in
                var node = head
                for i in stride(from: level - 1, through: 0, by: -1) {
                    rank[i] = i == level - 1 ? 0 : rank[i + 1]
                    while let next = node.links[i].forward, sortsBefore(next.score, next.member, score, member) {
                        rank[i] += node.links[i].span
                        node = next
                    }
                    update[i] = Unmanaged.passUnretained(node)
                }
                if newLevel > level {
                    for i in level..<newLevel {
                        rank[i] = 0
                        update[i] = Unmanaged.passUnretained(head)
                        head.links[i].span = count
                    }
                    level = newLevel
                }
                for i in 0..<newLevel {
                    let previous = update[i].takeUnretainedValue()
                    created.links[i].forward = previous.links[i].forward
                    created.links[i].span = previous.links[i].span - (rank[0] - rank[i])
                    previous.links[i].forward = created
                    previous.links[i].span = (rank[0] - rank[i]) + 1
                }
                for i in newLevel..<level { update[i].takeUnretainedValue().links[i].span += 1 }
                let previous = update[0].takeUnretainedValue()
                created.backward = previous === head ? nil : previous
            }
        }
        self.level = level
        if let next = created.links[0].forward { next.backward = created } else { tail = created }
        self.count += 1
        return created
    }

    /// Removes the element (score, member); returns its node, or nil if absent.
    @discardableResult
    public mutating func delete(member: CompactBytes, score: Double) -> SortedSetNode? {
        let head = self.head
        let level = self.level
        let target: SortedSetNode? = withUpdateBuffer { update in
            var node = head
            for i in stride(from: level - 1, through: 0, by: -1) {
                while let next = node.links[i].forward, sortsBefore(next.score, next.member, score, member) { node = next }
                update[i] = Unmanaged.passUnretained(node)
            }
            guard let target = node.links[0].forward, target.score == score, target.member == member else { return nil }
            for i in 0..<level {
                let previous = update[i].takeUnretainedValue()
                if previous.links[i].forward === target {
                    previous.links[i].span += target.links[i].span - 1
                    previous.links[i].forward = target.links[i].forward
                } else {
                    previous.links[i].span -= 1
                }
            }
            return target
        }
        guard let target else { return nil }
        if let next = target.links[0].forward { next.backward = target.backward } else { tail = target.backward }
        while self.level > 1 && head.links[self.level - 1].forward == nil { self.level -= 1 }
        count -= 1
        return target
    }

    /// The 1-based rank of (score, member), or 0 if absent (redis zslGetRank).
    public func rank(member: CompactBytes, score: Double) -> Int {
        var rank = 0
        var node = head
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.links[i].forward, !sortsBefore(score, member, next.score, next.member) {
                rank += node.links[i].span
                node = next
            }
            if node !== head && node.score == score && node.member == member { return rank }
        }
        return 0
    }

    /// The element at 1-based `rank` (redis zslGetElementByRank).
    public func node(atRank rank: Int) -> SortedSetNode? {
        guard rank >= 1 && rank <= count else { return nil }
        var traversed = 0
        var node = head
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.links[i].forward, traversed + node.links[i].span <= rank {
                traversed += node.links[i].span
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
            while let next = node.links[i].forward, !isAfterStart(next) {
                rank += node.links[i].span
                node = next
            }
        }
        guard let found = node.links[0].forward else { return nil }
        return (found, rank + 1)
    }

    /// The last element whose position satisfies `isBeforeEnd` (monotone: true…true false…false), with its
    /// 1-based rank, or nil if none does.
    public func lastNode(where isBeforeEnd: (SortedSetNode) -> Bool) -> (node: SortedSetNode, rank: Int)? {
        var node = head
        var rank = 0
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let next = node.links[i].forward, isBeforeEnd(next) {
                rank += node.links[i].span
                node = next
            }
        }
        guard node !== head else { return nil }
        return (node, rank)
    }

    /// Releases every node iteratively (no recursive release of a long forward chain).
    mutating func removeAll() {
        var node = head.links[0].forward
        for i in 0..<Self.maximumLevel { head.links[i] = SortedSetLink(forward: nil, span: 0) }
        while let current = node {
            node = current.links[0].forward
            for i in 0..<current.level { current.links[i].forward = nil }
        }
        tail = nil
        count = 0
        level = 1
    }
}
