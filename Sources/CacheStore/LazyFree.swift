// Lazy freeing (redis lazyfree.c): a value or a whole table whose teardown would take long is released on a
// background queue, so UNLINK, FLUSHALL/FLUSHDB ASYNC and the lazyfree-lazy-* settings do not hold a stripe lock (and
// the event loop waiting on it) while a large collection is freed. Small values are freed at once, where they are
// removed: handing them over would cost more than freeing them.
import Dispatch
public import Synchronization

/// What may free values in the background besides UNLINK and FLUSHALL/FLUSHDB ASYNC (redis's lazyfree-lazy-*).
public struct LazyFreeTriggers: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// DEL (lazyfree-lazy-user-del).
    public static let userDelete = LazyFreeTriggers(rawValue: 1 << 0)
    /// A value a command replaces or removes as a side effect: SET over a key, RENAME's destination, a *STORE
    /// destination (lazyfree-lazy-server-del).
    public static let serverDelete = LazyFreeTriggers(rawValue: 1 << 1)
    /// Expiry, lazy and active (lazyfree-lazy-expire).
    public static let expire = LazyFreeTriggers(rawValue: 1 << 2)
    /// Eviction (lazyfree-lazy-eviction).
    public static let eviction = LazyFreeTriggers(rawValue: 1 << 3)
}

extension StoredValue {
    /// How much work freeing this value takes (redis lazyfreeGetFreeEffort): its elements for a collection; a
    /// stream's entries, plus one per consumer group and its pending entries; one for a string.
    public var freeEffort: Int {
        switch self {
        case .shortString, .string: return 1
        case .list(let list): return list.count
        case .hash(let hash): return hash.count
        case .set(let set): return set.count
        case .sortedSet(let sortedSet): return sortedSet.count
        case .stream(let stream):
            return stream.count + stream.groups.values.reduce(0) { $0 + 1 + $1.pending.count }
        }
    }
}

/// The background queue values are freed on, and its counts (INFO memory's `lazyfree_pending_objects` and
/// `lazyfreed_objects`).
public final class LazyFreeQueue: Sendable {
    /// redis LAZYFREE_THRESHOLD: a value whose ``StoredValue/freeEffort`` is above this is freed in the background.
    public static var effortThreshold: Int { 64 }

    private let queue = DispatchQueue(label: "cache-store.lazyfree", qos: .utility)
    private let pending = Atomic<Int>(0)
    private let freed = Atomic<Int>(0)

    public init() {}

    /// Objects handed to the queue and not freed yet (a flushed table counts its keys).
    public var pendingObjects: Int { pending.load(ordering: .relaxed) }
    /// Objects freed in the background since start-up or the last ``resetFreedCount()`` (CONFIG RESETSTAT).
    public var freedObjects: Int { freed.load(ordering: .relaxed) }

    public func resetFreedCount() { freed.store(0, ordering: .relaxed) }

    /// Frees `value` in the background if that takes long enough to be worth it, and returns whether it did; a value
    /// it leaves is freed by the caller as it goes out of scope.
    @discardableResult
    public func release(_ value: StoredValue) -> Bool {
        guard value.freeEffort > Self.effortThreshold else { return false }
        submit(Garbage(value: value), objects: 1)
        return true
    }

    /// Frees a table removed whole (FLUSHALL/FLUSHDB ASYNC) in the background, counting its keys as objects.
    public func release(table: KeyTable) {
        submit(Garbage(table: table), objects: max(1, table.count))
    }

    /// Returns once everything handed over before has been freed (tests, and a node that stops).
    public func drain() {
        queue.sync {}
    }

    private func submit(_ garbage: Garbage, objects: Int) {
        pending.add(objects, ordering: .relaxed)
        queue.async { [self] in
            garbage.free()
            pending.subtract(objects, ordering: .relaxed)
            freed.add(objects, ordering: .relaxed)
        }
    }
}

/// What the queue frees: the last references to a removed value or table. Only the queue touches it once handed
/// over (the keyspace no longer holds it).
private final class Garbage: @unchecked Sendable {
    private var value: StoredValue?
    private var table: KeyTable?

    init(value: StoredValue? = nil, table: KeyTable? = nil) {
        self.value = value
        self.table = table
    }

    /// Drops the references, freeing what nothing else holds, on the calling thread.
    func free() {
        value = nil
        table = nil
    }
}
