// Set operations (redis t_set.c storage side), keeping the memory estimate right, plus the sampling and cursor
// helpers shared by the hash and set families (HRANDFIELD, SRANDMEMBER, SPOP, HSCAN, SSCAN).

extension SetValue {
    /// The number of members.
    @inlinable public var count: Int { members.count }

    /// Adds `member`. Returns whether it was new.
    @discardableResult
    public func add(_ member: CompactBytes) -> Bool {
        guard members.insert(member).inserted else { return false }
        account(member, sign: 1)
        return true
    }

    /// Removes `member`. Returns whether it was present.
    @discardableResult
    public func remove(_ member: CompactBytes) -> Bool {
        guard let removed = members.remove(member) else { return false }
        account(removed, sign: -1)
        return true
    }

    /// A set holding `members`, with its memory estimate computed.
    public static func make(_ members: Set<CompactBytes>) -> SetValue {
        let value = SetValue()
        value.members = members
        value.recomputeMemoryUsage()
        return value
    }
}

/// Random sampling over a collection's iteration order, as redis's SRANDMEMBER/HRANDFIELD/SPOP cases need.
///
/// Swift's hash tables give no O(1) access to a random bucket, so a single random element costs a walk to a random
/// position (a bitmap scan, no allocation) and distinct samples are drawn in one pass with selection sampling
/// (Knuth's algorithm S), which yields exactly `count` distinct elements, each subset equally likely.
public enum CollectionSampling {
    /// The element at a uniformly random position of a non-empty `collection`.
    public static func randomElement<C: Collection, G: RandomNumberGenerator>(
        of collection: C, using generator: inout G
    ) -> C.Element {
        let offset = Int.random(in: 0..<collection.count, using: &generator)
        return collection[collection.index(collection.startIndex, offsetBy: offset)]
    }

    /// `count` distinct elements (`count` ≤ the collection's size), in iteration order.
    public static func distinctElements<C: Collection, G: RandomNumberGenerator>(
        of collection: C, count: Int, using generator: inout G
    ) -> [C.Element] {
        var result: [C.Element] = []
        result.reserveCapacity(count)
        var remaining = collection.count
        var needed = count
        for element in collection where needed > 0 {
            if Int.random(in: 0..<remaining, using: &generator) < needed {
                result.append(element)
                needed -= 1
            }
            remaining -= 1
        }
        return result
    }

    /// `count` elements drawn independently (repetitions allowed), in random order, with one walk of the collection.
    public static func elementsWithRepetition<C: Collection, G: RandomNumberGenerator>(
        of collection: C, count: Int, using generator: inout G
    ) -> [C.Element] {
        let size = collection.count
        var picks = (0..<count).map { _ in Int.random(in: 0..<size, using: &generator) }
        picks.sort()
        var result: [C.Element] = []
        result.reserveCapacity(count)
        var index = collection.startIndex
        var position = 0
        for pick in picks {
            if pick > position {
                index = collection.index(index, offsetBy: pick - position)
                position = pick
            }
            result.append(collection[index])
        }
        result.shuffle(using: &generator)
        return result
    }

    /// One step of a cursor over a collection (HSCAN/SSCAN): up to `count` elements from ordinal position `cursor`,
    /// and the next cursor (0 when done). Small collections (at most `wholeBelow` elements) are returned whole, as
    /// redis does for its listpack/intset encodings. The cursor is a position in iteration order, which is stable
    /// while the collection does not change; elements added or removed meanwhile may shift others by a few places.
    public static func scanStep<C: Collection>(
        _ collection: C, cursor: UInt64, count: Int, wholeBelow: Int = 128, _ body: (C.Element) -> Void
    ) -> UInt64 {
        let size = collection.count
        if size <= wholeBelow {
            for element in collection { body(element) }
            return 0
        }
        guard cursor < UInt64(size) else { return 0 }
        let start = Int(cursor)
        var index = collection.index(collection.startIndex, offsetBy: start)
        var visited = 0
        while visited < count && index != collection.endIndex {
            body(collection[index])
            collection.formIndex(after: &index)
            visited += 1
        }
        let next = start + visited
        return next >= size ? 0 : UInt64(next)
    }
}

extension Database {
    /// Calls `body` with the pseudo-random generator of `key`'s stripe (seeded by the keyspace, so runs can be
    /// repeated). The caller must hold that stripe's lock, as every command does for its keys.
    public func withRandomGenerator<Result, Failure: Error>(
        for key: KeyRef, _ body: (inout SplitMix64) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let stripe = stripe(for: key)
        return try body(&stripe.random)
    }
}
