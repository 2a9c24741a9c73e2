// The storage of sorted sets: a member → score dictionary for O(1) ZSCORE and membership, plus a skiplist with
// spans ordered by (score, member) for O(log n) rank, range and pop (redis's OBJ_ENCODING_SKIPLIST: dict + zsl).
// Every mutation goes through this type so both indexes and the memory estimate stay in step.

/// A sorted set (redis skiplist encoding).
public final class SortedSetValue {
    /// Each member's score.
    public private(set) var scores: [CompactBytes: Double]
    /// The members in (score, member) order.
    public private(set) var order: SortedSetSkipList
    /// Running estimate of heap bytes held.
    public internal(set) var memoryUsage: Int

    /// Fixed cost of an empty sorted set (object, dictionary and skiplist head).
    static let baseCost = 64 + 32 * 16
    /// The outcome of ``add(_:score:)``.
    public enum AddResult: Equatable, Sendable {
        case added
        case updated
        case unchanged
    }

    /// An empty sorted set.
    public init() {
        scores = [:]
        order = SortedSetSkipList()
        memoryUsage = Self.baseCost
    }

    deinit {
        order.removeAll()
    }

    /// A copy of `other`.
    public func duplicate() -> SortedSetValue {
        let copy = SortedSetValue()
        copy.scores = scores
        var node = order.first
        while let current = node {
            copy.order.insert(member: current.member, score: current.score)
            node = current.next
        }
        copy.recomputeMemoryUsage()
        return copy
    }

    /// The number of members.
    public var count: Int { scores.count }
    /// Whether the set has no members.
    public var isEmpty: Bool { scores.isEmpty }

    /// The score of `member`, or nil.
    public func score(of member: CompactBytes) -> Double? { scores[member] }

    /// Adds `member` or changes its score.
    @discardableResult
    public func add(_ member: CompactBytes, score: Double) -> AddResult {
        if let old = scores.updateValue(score, forKey: member) {
            guard old != score else { return .unchanged }
            // Re-insert the stored bytes (the dictionary keeps its original key): the estimate counted their
            // heap block, whose capacity may differ from the argument's.
            guard let removed = order.delete(member: member, score: old) else {
                preconditionFailure("sorted set dictionary and skiplist out of step")
            }
            let node = order.insert(member: removed.member, score: score)
            memoryUsage += Self.nodeCost(node) - Self.nodeCost(removed)
            return .updated
        }
        let node = order.insert(member: member, score: score)
        memoryUsage += Self.elementCost(member) + Self.nodeCost(node)
        return .added
    }

    /// Removes `member`; returns its score, or nil if absent.
    @discardableResult
    public func remove(_ member: CompactBytes) -> Double? {
        guard let score = scores.removeValue(forKey: member) else { return nil }
        if let node = order.delete(member: member, score: score) {
            // The stored bytes, not the argument: the estimate must subtract what `add` counted.
            memoryUsage -= Self.elementCost(node.member) + Self.nodeCost(node)
        }
        return score
    }

    /// The 0-based rank of `member` in ascending (or with `reverse`, descending) order, or nil.
    public func rank(of member: CompactBytes, reverse: Bool = false) -> Int? {
        guard let score = scores[member] else { return nil }
        let rank = order.rank(member: member, score: score)
        guard rank > 0 else { return nil }
        return reverse ? count - rank : rank - 1
    }

    /// The node at 0-based ascending `rank`.
    public func node(atRank rank: Int) -> SortedSetNode? { order.node(atRank: rank + 1) }

    /// The first node in `range` with its 0-based rank.
    public func firstNode(in range: SortedSetScoreRange) -> (node: SortedSetNode, rank: Int)? {
        guard !range.isEmpty, let found = order.firstNode(where: { range.isAboveMin($0.score) }),
              range.isBelowMax(found.node.score) else { return nil }
        return (found.node, found.rank - 1)
    }

    /// The last node in `range` with its 0-based rank.
    public func lastNode(in range: SortedSetScoreRange) -> (node: SortedSetNode, rank: Int)? {
        guard !range.isEmpty, let found = order.lastNode(where: { range.isBelowMax($0.score) }),
              range.isAboveMin(found.node.score) else { return nil }
        return (found.node, found.rank - 1)
    }

    /// The first node in the lexicographic `range` with its 0-based rank.
    public func firstNode(in range: SortedSetLexRange) -> (node: SortedSetNode, rank: Int)? {
        guard !range.isEmpty, let found = order.firstNode(where: { range.isAboveMin($0.member) }),
              range.isBelowMax(found.node.member) else { return nil }
        return (found.node, found.rank - 1)
    }

    /// The last node in the lexicographic `range` with its 0-based rank.
    public func lastNode(in range: SortedSetLexRange) -> (node: SortedSetNode, rank: Int)? {
        guard !range.isEmpty, let found = order.lastNode(where: { range.isBelowMax($0.member) }),
              range.isAboveMin(found.node.member) else { return nil }
        return (found.node, found.rank - 1)
    }

    /// The number of members with scores in `range` (O(log n)).
    public func count(in range: SortedSetScoreRange) -> Int {
        guard let first = firstNode(in: range), let last = lastNode(in: range) else { return 0 }
        return last.rank - first.rank + 1
    }

    /// The number of members in the lexicographic `range` (O(log n)).
    public func count(in range: SortedSetLexRange) -> Int {
        guard let first = firstNode(in: range), let last = lastNode(in: range) else { return 0 }
        return last.rank - first.rank + 1
    }

    /// Removes the members at 0-based ranks `start...end` (clamped by the caller); returns how many.
    @discardableResult
    public func removeRange(ranks start: Int, _ end: Int) -> Int {
        guard start <= end, var node = self.node(atRank: start) else { return 0 }
        var doomed: [CompactBytes] = []
        doomed.reserveCapacity(end - start + 1)
        for _ in start...end {
            doomed.append(node.member)
            guard let next = node.next else { break }
            node = next
        }
        for member in doomed { remove(member) }
        return doomed.count
    }

    /// Removes every member, releasing nodes iteratively.
    public func removeAll() {
        order.removeAll()
        scores = [:]
        memoryUsage = Self.baseCost
    }

    /// Recomputes the estimate after bulk changes (O(n)).
    public func recomputeMemoryUsage() {
        var total = Self.baseCost
        var node = order.first
        while let current = node {
            total += Self.elementCost(current.member) + Self.nodeCost(current)
            node = current.next
        }
        memoryUsage = total
    }

    /// Adjusts the estimate for a member added (`sign` 1) or removed (`sign` -1) by code that changed the
    /// indexes itself (level-1 node assumed).
    public func account(_ member: CompactBytes, sign: Int) {
        memoryUsage += sign * (Self.elementCost(member) + 64 + 16)
    }

    /// Dictionary share of one member: the key, the score and hash-table overhead; the skiplist node shares the
    /// member's heap block (CompactBytes is a value with a shared immutable heap block).
    static func elementCost(_ member: CompactBytes) -> Int {
        memberCost(member) + MemoryLayout<Double>.stride + hashOverheadPerElement
    }

    /// Skiplist share of one node: object header, member, score, backward link and level, then 16 bytes a level,
    /// all in one allocation.
    static func nodeCost(_ node: SortedSetNode) -> Int {
        64 + 16 * node.level
    }
}
