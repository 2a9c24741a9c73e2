// The storage of the collection types. Each family (t_list, t_hash, t_set, t_zset) adds its operations in its own
// file as extensions; this file only fixes the storage and the shared memory-estimate rule.
public import DequeModule

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
public final class HashValue {
    /// The fields and their values.
    public var fields: [CompactBytes: CompactBytes]
    /// Running estimate of heap bytes held.
    public internal(set) var memoryUsage: Int

    /// An empty hash.
    public init() {
        fields = [:]
        memoryUsage = 64
    }

    /// A copy of `other`.
    public func duplicate() -> HashValue {
        let copy = HashValue()
        copy.fields = fields
        copy.memoryUsage = memoryUsage
        return copy
    }

    /// Recomputes the estimate after bulk changes.
    public func recomputeMemoryUsage() {
        memoryUsage = 64 + fields.reduce(0) { $0 + memberCost($1.key) + memberCost($1.value) + hashOverheadPerElement }
    }

    /// Adjusts the estimate for a field/value pair added (`sign` 1) or removed (`sign` -1).

    public func account(field: CompactBytes, value: CompactBytes, sign: Int) {
        memoryUsage += sign * (memberCost(field) + memberCost(value) + hashOverheadPerElement)
    }
}

/// A set of members (redis intset / listpack / hashtable).
public final class SetValue {
    /// The members.
    public var members: Set<CompactBytes>
    /// Running estimate of heap bytes held.
    public internal(set) var memoryUsage: Int

    /// An empty set.
    public init() {
        members = []
        memoryUsage = 64
    }

    /// A copy of `other`.
    public func duplicate() -> SetValue {
        let copy = SetValue()
        copy.members = members
        copy.memoryUsage = memoryUsage
        return copy
    }

    /// Recomputes the estimate after bulk changes.
    public func recomputeMemoryUsage() {
        memoryUsage = 64 + members.reduce(0) { $0 + memberCost($1) + hashOverheadPerElement }
    }

    /// Adjusts the estimate for a member added (`sign` 1) or removed (`sign` -1).

    public func account(_ member: CompactBytes, sign: Int) {
        memoryUsage += sign * (memberCost(member) + hashOverheadPerElement)
    }
}
