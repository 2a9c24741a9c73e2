// Set operations (redis t_set.c storage side), keeping the memory estimate right and the storage dense (removal
// swaps the last member into the hole), plus the sampling and cursor rules shared by the hash and set families
// (HRANDFIELD, SRANDMEMBER, SPOP, HSCAN, SSCAN).
import OrderedCollections

extension SetValue {
    /// The number of members.
    public var count: Int { storage.count }

    /// Whether `member` belongs to the set.
    public func contains(_ member: CompactBytes) -> Bool { storage.contains(member) }

    /// The member at `position` (`0..<count`).
    public func member(at position: Int) -> CompactBytes { storage[position] }

    /// Adds `member`. Returns whether it was new.
    @discardableResult
    public func add(_ member: CompactBytes) -> Bool {
        guard storage.append(member).inserted else { return false }
        account(member, sign: 1)
        return true
    }

    /// Removes `member` in O(1), moving the last member into its place. Returns whether it was present.
    @discardableResult
    public func remove(_ member: CompactBytes) -> Bool {
        guard let index = storage.firstIndex(of: member) else { return false }
        remove(at: index)
        return true
    }

    /// Removes and returns the member at `position`, moving the last member into its place.
    @discardableResult
    public func remove(at position: Int) -> CompactBytes {
        let last = storage.count - 1
        if position != last { storage.swapAt(position, last) }
        let removed = storage.removeLast()
        account(removed, sign: -1)
        return removed
    }

    /// A set holding `members` (which must be distinct), with its memory estimate computed.
    public static func make<Members: Sequence>(distinct members: Members) -> SetValue where Members.Element == CompactBytes {
        let value = SetValue()
        value.storage = OrderedSet(uncheckedUniqueElements: members)
        value.recomputeMemoryUsage()
        return value
    }

    /// One SSCAN step: see ``CollectionSampling/scanStep(count:cursor:limit:wholeBelow:_:)``.
    public func scan(cursor: UInt64, count: Int, _ body: (CompactBytes) -> Void) -> UInt64 {
        let storage = self.storage
        return CollectionSampling.scanStep(count: storage.count, cursor: cursor, limit: count) { body(storage[$0]) }
    }
}

/// Random positions and cursors over dense collections (positions `0..<size`), as redis's SRANDMEMBER, HRANDFIELD
/// and SPOP cases and its SSCAN/HSCAN need.
public enum CollectionSampling {
    /// `count` distinct positions in `0..<size` (`count` ≤ `size`), each subset equally likely: rejection sampling
    /// when `count` is small against `size` (O(count)), selection sampling (Knuth's algorithm S, O(size)) otherwise.
    public static func distinctPositions<G: RandomNumberGenerator>(count: Int, size: Int, using generator: inout G) -> [Int] {
        precondition(count <= size, "cannot pick \(count) distinct positions of \(size)")
        var result: [Int] = []
        result.reserveCapacity(count)
        if count * 3 <= size {
            var chosen = Set<Int>(minimumCapacity: count)
            while result.count < count {
                let position = Int.random(in: 0..<size, using: &generator)
                if chosen.insert(position).inserted { result.append(position) }
            }
            return result
        }
        var needed = count
        for position in 0..<size where needed > 0 {
            if Int.random(in: 0..<(size - position), using: &generator) < needed {
                result.append(position)
                needed -= 1
            }
        }
        return result
    }

    /// One step of a cursor over a dense collection of `size` elements (HSCAN/SSCAN): calls `body` with at least
    /// `limit` positions (all of them when `size` ≤ `wholeBelow`, as redis returns its small listpack/intset
    /// encodings whole) and returns the next cursor, 0 when done.
    ///
    /// The cursor is the next position to visit plus one, walking from the end down. Removals move the last element
    /// into the hole, i.e. from the visited end to a lower position, and additions append at the visited end, so an
    /// element present during the whole scan is returned at least once (possibly twice), as redis guarantees.
    public static func scanStep(count size: Int, cursor: UInt64, limit: Int, wholeBelow: Int = 128, _ body: (Int) -> Void) -> UInt64 {
        if cursor == 0 && size <= wholeBelow {
            for position in stride(from: size - 1, through: 0, by: -1) { body(position) }
            return 0
        }
        var next = cursor == 0 ? size - 1 : min(Int(clamping: cursor) - 1, size - 1)
        var visited = 0
        while next >= 0 && visited < limit {
            body(next)
            next -= 1
            visited += 1
        }
        return next >= 0 ? UInt64(next + 1) : 0
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
