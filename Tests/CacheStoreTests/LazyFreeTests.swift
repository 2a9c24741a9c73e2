// Lazy freeing: large values removed by UNLINK-style deletes, flushed tables, and the lazyfree-lazy-* triggers are
// freed on the background queue (seen through its counts and a weak reference to the value), small ones at once.
import CacheStore
import Testing

struct LazyFreeTests {
    let now: Int64 = 1_700_000_000_000

    /// A set of `count` members, and a weak reference to it to see when it is freed.
    private func makeSet(_ count: Int) -> (value: StoredValue, set: SetValue) {
        let set = SetValue()
        for index in 0..<count { _ = set.add(CompactBytes("member-\(index)")) }
        return (.set(set), set)
    }

    @Test func effortCountsElementsAndStringsCountOne() {
        #expect(StoredValue.string(copying: UnsafeRawBufferPointer(start: nil, count: 0)).freeEffort == 1)
        #expect(makeSet(65).value.freeEffort == 65)
        let list = ListValue()
        for index in 0..<3 { list.push(CompactBytes("\(index)"), at: .tail) }
        #expect(StoredValue.list(list).freeEffort == 3)
    }

    @Test func onlyValuesOverTheThresholdGoToTheQueue() {
        let queue = LazyFreeQueue()
        #expect(!queue.release(makeSet(LazyFreeQueue.effortThreshold).value))
        weak var large: SetValue?
        do {
            let (value, set) = makeSet(LazyFreeQueue.effortThreshold + 1)
            large = set
            #expect(queue.release(value))
        }
        queue.drain()
        #expect(large == nil)
        #expect(queue.pendingObjects == 0)
        #expect(queue.freedObjects == 1)
        queue.resetFreedCount()
        #expect(queue.freedObjects == 0)
    }

    @Test func lazyDeletesAndFlushesLeaveNothingBehindAndCountWhatTheyFreed() {
        let keyspace = Keyspace(databases: 2)
        weak var unlinked: SetValue?
        keyspace.withAllLocked {
            let db = keyspace.database(0, now: now)
            let (value, set) = makeSet(1000)
            unlinked = set
            db.set(KeyRef("big"), value)
            db.set(KeyRef("small"), makeSet(3).value)
        }
        keyspace.withAllLocked {
            let db = keyspace.database(0, now: now)
            #expect(db.delete(KeyRef("big"), lazily: true))
            #expect(db.delete(KeyRef("small"), lazily: true))
            #expect(db.value(KeyRef("big")) == nil)
        }
        keyspace.lazyFree.drain()
        #expect(unlinked == nil)
        #expect(keyspace.lazyFree.freedObjects == 1)

        // Flushing lazily hands whole tables over: every key counts, the keyspace is empty at once.
        keyspace.withAllLocked {
            for database in 0..<2 {
                let db = keyspace.database(database, now: now)
                for index in 0..<50 { db.set(KeyRef("k\(index)"), .string(copying: UnsafeRawBufferPointer(start: nil, count: 0))) }
            }
            keyspace.database(1, now: now).removeAll(lazily: true)
            #expect(keyspace.keyCounts().map(\.keys) == [50, 0])
            keyspace.flushAll(lazily: true)
            #expect(keyspace.keyCounts().map(\.keys) == [0, 0])
            #expect(keyspace.estimatedBytes(locked: true) == 0)
            // The tables are made again on use.
            keyspace.database(1, now: now).set(KeyRef("again"), makeSet(1).value)
            #expect(keyspace.keyCounts().map(\.keys) == [0, 1])
        }
        keyspace.lazyFree.drain()
        #expect(keyspace.lazyFree.freedObjects == 101)
        #expect(keyspace.lazyFree.pendingObjects == 0)
    }

    @Test(arguments: [false, true])
    func expiryEvictionAndOverwritesFreeLazilyOnlyWhenAsked(triggered: Bool) {
        let keyspace = Keyspace(databases: 1)
        keyspace.lazyFreeTriggers = triggered ? [.expire, .eviction, .serverDelete] : []
        keyspace.withAllLocked {
            let db = keyspace.database(0, now: now)
            db.set(KeyRef("expiring"), makeSet(100).value, expiry: .at(now + 10))
            db.set(KeyRef("replaced"), makeSet(100).value)
            db.set(KeyRef("replaced"), makeSet(1).value)
            db.set(KeyRef("active"), makeSet(100).value, expiry: .at(now + 10))
        }
        // Lazy expiry of one, active expiry of the other.
        keyspace.withAllLocked { #expect(keyspace.database(0, now: now + 10).value(KeyRef("expiring")) == nil) }
        var cycles = 0
        while keyspace.withAllLocked({ keyspace.keyCounts()[0].volatile }) > 0 && cycles < 100 {
            _ = keyspace.activeExpireCycle(now: now + 10)
            cycles += 1
        }
        // Eviction of what is left.
        keyspace.withAllLocked { keyspace.database(0, now: now).set(KeyRef("evicted"), makeSet(100).value) }
        keyspace.evictionPolicy = .allKeysRandom
        keyspace.maxMemory = 1
        keyspace.publishSizes()
        _ = keyspace.evictIfNeeded(now: now)
        #expect(keyspace.withAllLocked { keyspace.keyCounts()[0].keys } == 0)
        keyspace.lazyFree.drain()
        #expect(keyspace.lazyFree.freedObjects == (triggered ? 4 : 0))
    }
}
