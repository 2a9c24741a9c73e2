// The storage of sorted sets: member → score plus an order by (score, member).

/// A sorted set (redis skiplist / listpack).
public final class SortedSetValue {
    /// Each member's score.
    public var scores: [CompactBytes: Double]
    /// Running estimate of heap bytes held.
    public internal(set) var memoryUsage: Int

    /// An empty sorted set.
    public init() {
        scores = [:]
        memoryUsage = 64
    }

    /// A copy of `other`.
    public func duplicate() -> SortedSetValue {
        let copy = SortedSetValue()
        copy.scores = scores
        copy.memoryUsage = memoryUsage
        return copy
    }
}
