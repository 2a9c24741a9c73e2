// The storage of the collection types. Each family (t_list, t_hash, t_set, t_zset) adds its operations in its own
// file as extensions; this file only fixes the storage and the shared memory-estimate rule.
public import DequeModule
import OrderedCollections

/// Estimated heap cost of one member held in a collection: its inline slot plus any heap block.

func memberCost(_ member: CompactBytes) -> Int {
    MemoryLayout<CompactBytes>.stride + member.heapSize
}

/// Hash-table overhead per element of Swift's Set/Dictionary at a typical load factor.
let hashOverheadPerElement = 12

/// A list: a double-ended queue of members (redis quicklist).
public final class ListValue {
    /// The elements, head first.
    public var items: Deque<CompactBytes>
    /// Running estimate of heap bytes held.
    public internal(set) var memoryUsage: Int

    /// An empty list.
    public init() {
        items = Deque()
        memoryUsage = 64
    }

    /// A copy of `other`.
    public func duplicate() -> ListValue {
        let copy = ListValue()
        copy.items = items
        copy.memoryUsage = memoryUsage
        return copy
    }

    /// Recomputes the estimate after bulk changes (O(n)); single-element operations adjust it directly.
    public func recomputeMemoryUsage() {
        memoryUsage = 64 + items.reduce(0) { $0 + memberCost($1) }
    }

    /// Adjusts the estimate for an element added (`sign` 1) or removed (`sign` -1).

    public func account(_ member: CompactBytes, sign: Int) {
        memoryUsage += sign * memberCost(member)
    }
}

/// A hash: field → value (redis hashtable / listpack).
///
/// Fields live in an `OrderedDictionary` kept dense by swap-removal (HashValue+Operations.swift): position `i` is
/// O(1) to reach, so HRANDFIELD samples in O(1) per field, and positions only move from the end into holes, which
/// gives HSCAN redis's guarantee when it walks from the end down.
public final class HashValue {
    /// The fields and their values, dense, in no meaningful order. Change them only through the operations.
    var storage: OrderedDictionary<CompactBytes, CompactBytes>
    /// Running estimate of heap bytes held.
    public internal(set) var memoryUsage: Int

    /// An empty hash.
    public init() {
        storage = [:]
        memoryUsage = 64
    }

    /// The fields and values as a random-access collection of `(key: field, value: value)` pairs.
    public var fields: HashFields { HashFields(storage: storage) }

    /// A copy of `other`.
    public func duplicate() -> HashValue {
        let copy = HashValue()
        copy.storage = storage
        copy.memoryUsage = memoryUsage
        return copy
    }

    /// Recomputes the estimate after bulk changes.
    public func recomputeMemoryUsage() {
        memoryUsage = 64 + storage.reduce(0) { $0 + memberCost($1.key) + memberCost($1.value) + hashOverheadPerElement }
    }

    /// Adjusts the estimate for a field/value pair added (`sign` 1) or removed (`sign` -1).

    public func account(field: CompactBytes, value: CompactBytes, sign: Int) {
        memoryUsage += sign * (memberCost(field) + memberCost(value) + hashOverheadPerElement)
    }
}

/// A read-only view of a hash's fields: random access by position, O(1) lookup by field.
public struct HashFields: RandomAccessCollection {
    let storage: OrderedDictionary<CompactBytes, CompactBytes>

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count }

    /// The field and value at `position`.
    public subscript(position: Int) -> (key: CompactBytes, value: CompactBytes) { storage.elements[position] }

    /// The value of `field`, or `nil`.
    public subscript(field: CompactBytes) -> CompactBytes? { storage[field] }
}

/// A set of members (redis intset / listpack / hashtable).
///
/// Members live in an `OrderedSet` kept dense by swap-removal (SetValue+Operations.swift), for O(1) SPOP and
/// SRANDMEMBER and an SSCAN cursor with redis's guarantee.
public final class SetValue {
    /// The members, dense, in no meaningful order. Change them only through the operations.
    var storage: OrderedSet<CompactBytes>
    /// Running estimate of heap bytes held.
    public internal(set) var memoryUsage: Int

    /// An empty set.
    public init() {
        storage = []
        memoryUsage = 64
    }

    /// The members as a random-access collection with O(1) `contains`.
    public var members: SetMembers { SetMembers(storage: storage) }

    /// A copy of `other`.
    public func duplicate() -> SetValue {
        let copy = SetValue()
        copy.storage = storage
        copy.memoryUsage = memoryUsage
        return copy
    }

    /// Recomputes the estimate after bulk changes.
    public func recomputeMemoryUsage() {
        memoryUsage = 64 + storage.reduce(0) { $0 + memberCost($1) + hashOverheadPerElement }
    }

    /// Adjusts the estimate for a member added (`sign` 1) or removed (`sign` -1).

    public func account(_ member: CompactBytes, sign: Int) {
        memoryUsage += sign * (memberCost(member) + hashOverheadPerElement)
    }
}

/// A read-only view of a set's members: random access by position, O(1) membership test.
public struct SetMembers: RandomAccessCollection {
    let storage: OrderedSet<CompactBytes>

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count }

    /// The member at `position`.
    public subscript(position: Int) -> CompactBytes { storage[position] }

    /// Whether `member` belongs to the set (O(1)).
    public func contains(_ member: CompactBytes) -> Bool { storage.contains(member) }
}
