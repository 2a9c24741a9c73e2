// The keyspace: every database's keys, split into stripes by key hash, each stripe behind its own lock.
//
// Why stripes: the node runs one event loop per core, and any connection may touch any key. A single global lock
// would serialise the cores; shard-per-thread (dragonfly) would make half of all requests hop threads on two
// cores. With many stripes (the node uses 256) two cores rarely want the same lock, an uncontended lock costs
// ~20 ns, and multi-key commands lock their stripes in index order (no deadlock). Transactions and whole-keyspace commands (FLUSHALL,
// KEYS, SWAPDB) lock every stripe.
import CMemoryPrefetch
public import Synchronization

/// Receives keyspace events that happen inside the store (expiry and eviction deletes, key creation), e.g. to
/// propagate them to replicas as DELs or publish keyspace notifications. Called with the stripe's lock held: must be
/// quick and must not call back into the store.
public protocol KeyspaceObserver: AnyObject, Sendable {
    /// A key was removed because its TTL passed.
    func keyExpired(database: Int, key: CompactBytes)
    /// A key was removed to free memory under `maxmemory`.
    func keyEvicted(database: Int, key: CompactBytes)
    /// A key was created; reported only while ``Keyspace/reportsAddedKeys`` is set.
    func keyAdded(database: Int, key: CompactBytes)
    /// A key that the clients `readers` read while tracking it (``Keyspace/trackRead(_:by:)``) changed; it is no
    /// longer tracked for them. `client` is the client whose command changed it (0: none, e.g. active expiry).
    func trackedKeyChanged(_ key: CompactBytes, readers: Set<Int>, by client: Int)
    /// A key changed while ``Keyspace/broadcastsChanges`` is set (CLIENT TRACKING's broadcast mode).
    func keyChangedForBroadcast(_ key: CompactBytes, by client: Int)
}

extension KeyspaceObserver {
    /// Observers that do not follow key creation or client tracking need not implement these.
    public func keyAdded(database: Int, key: CompactBytes) {}
    public func trackedKeyChanged(_ key: CompactBytes, readers: Set<Int>, by client: Int) {}
    public func keyChangedForBroadcast(_ key: CompactBytes, by client: Int) {}
}

/// What every stripe of a keyspace shares for client tracking: the observer to tell and whether changes are
/// broadcast.
final class TrackingSignals: Sendable {
    let observer: (any KeyspaceObserver)?
    let broadcasting = Atomic<Bool>(false)
    /// Keys tracked for some client, over all stripes (INFO `tracking_total_keys`, `tracking-table-max-keys`).
    let keyCount = Atomic<Int>(0)
    /// Client ids over all tracked keys (INFO `tracking_total_items`).
    let itemCount = Atomic<Int>(0)

    init(observer: (any KeyspaceObserver)?) {
        self.observer = observer
    }

    /// Counts a tracked key dropped with its `readers`.
    func forgot(_ readers: Set<Int>) {
        keyCount.wrappingSubtract(1, ordering: .relaxed)
        itemCount.wrappingSubtract(readers.count, ordering: .relaxed)
    }
}

/// A client's interest in keys for WATCH: set dirty when any watched key is modified.
public final class WatchToken: @unchecked Sendable {
    /// Set (under the watched key's stripe lock) when a watched key changed; read by EXEC holding every stripe.
    public internal(set) var isDirty = false

    public init() {}
}

/// Identifies a key in a given database.
public struct DatabaseKey: Hashable, Sendable {
    public var database: Int
    public var key: CompactBytes

    public init(database: Int, key: CompactBytes) {
        self.database = database
        self.key = key
    }
}

/// One stripe: a lock and, per database, the table of the keys hashing here.
public final class Stripe: @unchecked Sendable {
    /// Guards everything in the stripe.
    public let lock = StripeLock()
    var tables: [KeyTable?]
    var watchers: [DatabaseKey: [Watch]] = [:]

    /// One WATCH of a key: the client's token, and whether the key had already expired (but was still stored) when
    /// it was watched. Deleting such a stale key is no logical change and does not abort the transaction (redis 7's
    /// `watchedKey.expired`).
    struct Watch {
        let token: WatchToken
        var stale: Bool
    }
    /// The stripe's estimated bytes, republished on unlock so the eviction check needs no lock.
    let publishedBytes = Atomic<Int>(0)
    var random: SplitMix64
    /// Snapshots waiting for this stripe's keys (Snapshot/KeyspaceSnapshot.swift); `nil` when none. Under the lock.
    var pendingCapture: PendingCapture?
    /// Mirrors `pendingCapture != nil` for lock-free peeks by background work (active expiry skips such stripes).
    let capturePending = Atomic<Bool>(false)
    /// Client-side caching (CLIENT TRACKING's default mode): keys of this stripe that tracking clients read, with
    /// their ids, by key name in any database (as redis tracks them). Under the lock.
    var trackedKeys: [CompactBytes: Set<Int>] = [:]
    let tracking: TrackingSignals

    init(databases: Int, seed: UInt64, tracking: TrackingSignals) {
        tables = Array(repeating: nil, count: databases)
        random = SplitMix64(seed: seed)
        self.tracking = tracking
    }

    /// The table of `database`, created on first use.

    public func table(_ database: Int) -> KeyTable {
        if let table = tables[database] { return table }
        let table = KeyTable()
        tables[database] = table
        return table
    }

    /// Removes every key of `database`: at once, or by handing the table to `lazyFree` (a new one is made on next
    /// use). The caller reports the change.
    func empty(_ database: Int, lazilyInto lazyFree: LazyFreeQueue?) {
        guard let table = tables[database], table.count > 0 else { return }
        if let lazyFree {
            tables[database] = nil
            lazyFree.release(table: table)
        } else {
            table.removeAll()
        }
    }

    /// The table of `database` if it exists.

    public func existingTable(_ database: Int) -> KeyTable? { tables[database] }

    /// Estimated bytes of all tables in this stripe.
    public var estimatedBytes: Int {
        var total = 0
        for case let table? in tables { total += table.estimatedBytes }
        return total
    }

    /// Marks the watchers of `key` dirty and tells the clients tracking it (`client` made the change; 0 for none).
    /// Cheap when nobody watches or tracks.

    public func keyModified(database: Int, key: CompactBytes, by client: Int = 0) {
        if !trackedKeys.isEmpty, let readers = trackedKeys.removeValue(forKey: key) {
            tracking.forgot(readers)
            tracking.observer?.trackedKeyChanged(key, readers: readers, by: client)
        }
        if tracking.broadcasting.load(ordering: .relaxed) { tracking.observer?.keyChangedForBroadcast(key, by: client) }
        if watchers.isEmpty { return }
        notifyWatchers(DatabaseKey(database: database, key: key))
    }

    /// Called after `key` changed: its watchers' transactions will abort, except where a key that was already
    /// expired when watched is now gone (redis touchWatchedKey).
    func notifyWatchers(_ key: DatabaseKey) {
        guard var entries = watchers[key] else { return }
        let exists = tables[key.database]?.find(KeyRef(key.key)) != nil
        for index in entries.indices {
            if entries[index].stale && !exists {
                entries[index].stale = false
            } else {
                entries[index].token.isDirty = true
            }
        }
        watchers[key] = entries
    }

    /// Before a whole database is emptied (FLUSHDB; every database when `database` is `nil`: FLUSHALL) or replaced
    /// by `replacement` (SWAPDB): marks dirty the watchers of its keys that exist here, or in `replacement`. A
    /// watched key missing before and after did not change, and its WATCH holds (redis 7's
    /// touchAllWatchedKeysInDb).
    /// Stale keys (expired when watched) as redis 7.2's touchAllWatchedKeysInDb treats them: one deleted, or replaced
    /// by another expired key, is no change; a missing key replaced by an expired one becomes a stale watch.
    func allKeysModified(database: Int?, replacement: Int? = nil, now: Int64 = .max) {
        if watchers.isEmpty { return }
        for (watched, var entries) in watchers where database == nil || watched.database == database {
            let key = KeyRef(watched.key)
            let existsInEmptied = tables[watched.database]?.find(key) != nil
            var replacementExpireAt: Int64?? = nil
            if let replacement, let table = tables[replacement], let position = table.find(key) {
                replacementExpireAt = .some(table.entry(at: position).pointee.meta.expireAt)
            }
            guard existsInEmptied || replacementExpireAt != nil else { continue }
            let replacementExpired = replacementExpireAt.map { $0.map { $0 <= now } ?? false } ?? false
            for index in entries.indices {
                if entries[index].stale {
                    if replacementExpireAt == nil {
                        entries[index].stale = false
                        continue
                    } else if replacementExpired {
                        continue
                    }
                } else if !existsInEmptied && replacementExpired {
                    entries[index].stale = true
                    continue
                }
                entries[index].token.isDirty = true
            }
            watchers[watched] = entries
        }
    }
}

/// All databases' keys, striped by hash.
public final class Keyspace: Sendable {
    /// The stripes; index with ``stripeIndex(for:)``.
    public let stripes: [Stripe]
    /// The number of databases (`databases`).
    public let databaseCount: Int
    /// Receives expiry and eviction events.
    public let observer: (any KeyspaceObserver)?

    let stripeMask: Int
    /// Cluster mode: a key's stripe is a function of its hash slot (`slot & stripeMask`), so the keys of one slot
    /// live in one stripe and ``keys(inSlot:limit:)`` scans one stripe (1/256 of the keyspace in the node). Fixed
    /// at creation.
    public let isSlotStriped: Bool
    let policyStorage = Atomic<Int>(EvictionPolicy.noEviction.rawValue)
    let maxMemoryStorage = Atomic<Int>(0)
    /// Where large values removed from the keyspace are freed (UNLINK, FLUSHALL ASYNC, ``lazyFreeTriggers``).
    public let lazyFree = LazyFreeQueue()
    private let lazyFreeTriggerStorage = Atomic<UInt8>(0)
    /// What else frees large values in the background (redis's lazyfree-lazy-* settings).
    public var lazyFreeTriggers: LazyFreeTriggers {
        get { LazyFreeTriggers(rawValue: lazyFreeTriggerStorage.load(ordering: .relaxed)) }
        set { lazyFreeTriggerStorage.store(newValue.rawValue, ordering: .relaxed) }
    }
    /// The sum of the stripes' published sizes, kept with them on unlock, so the eviction check before every command
    /// is one load rather than one per stripe.
    private let publishedTotal = Atomic<Int>(0)
    let replicaStorage = Atomic<Bool>(false)
    let keyRemovalPausedStorage = Atomic<Bool>(false)
    let lfuLogFactorStorage = Atomic<Int>(10)
    let lfuDecayTimeStorage = Atomic<Int>(1)
    let samplesStorage = Atomic<Int>(5)
    let reportsAddedKeysStorage = Atomic<Bool>(false)
    let trackingSignals: TrackingSignals
    let samplingRandom: Mutex<SplitMix64>
    /// Keys removed by expiry since start (INFO `expired_keys`).
    public let expiredKeys = Atomic<Int>(0)
    /// Keys removed by eviction since start (INFO `evicted_keys`).
    public let evictedKeys = Atomic<Int>(0)

    /// Creates an empty keyspace.
    /// - Parameters:
    ///   - databases: how many numbered databases (redis `databases`, default 16).
    ///   - stripeCount: a power of two; more stripes mean less lock contention and more per-stripe overhead.
    ///   - seed: seeds the sampling generators (eviction, RANDOMKEY, expiry), for repeatable tests.
    ///   - observer: receives expiry and eviction deletes.
    ///   - slotStriped: cluster mode: stripe keys by hash slot (see ``isSlotStriped``).
    public init(
        databases: Int = 16, stripeCount: Int = 64, seed: UInt64 = 0x5EED, observer: (any KeyspaceObserver)? = nil,
        slotStriped: Bool = false
    ) {
        precondition(stripeCount > 0 && stripeCount & (stripeCount - 1) == 0, "stripeCount must be a power of two")
        precondition(databases > 0, "at least one database")
        self.databaseCount = databases
        self.stripeMask = stripeCount - 1
        self.isSlotStriped = slotStriped
        self.observer = observer
        self.samplingRandom = Mutex(SplitMix64(seed: seed ^ 0xA5A5_A5A5))
        let tracking = TrackingSignals(observer: observer)
        self.trackingSignals = tracking
        self.stripes = (0..<stripeCount).map {
            Stripe(databases: databases, seed: seed &+ UInt64($0) &* 0x9E37_79B9, tracking: tracking)
        }
    }

    // MARK: configuration

    /// The `maxmemory-policy`.
    public var evictionPolicy: EvictionPolicy {
        get { EvictionPolicy(rawValue: policyStorage.load(ordering: .relaxed)) ?? .noEviction }
        set { policyStorage.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// `maxmemory` in bytes (0 = no limit), compared with the keyspace's estimated size.
    public var maxMemory: Int {
        get { maxMemoryStorage.load(ordering: .relaxed) }
        set { maxMemoryStorage.store(newValue, ordering: .relaxed) }
    }

    /// Whether key creation is reported to the observer (keyspace notifications of class `n`); off, creating a key
    /// costs one relaxed load more.
    public var reportsAddedKeys: Bool {
        get { reportsAddedKeysStorage.load(ordering: .relaxed) }
        set { reportsAddedKeysStorage.store(newValue, ordering: .relaxed) }
    }

    /// Whether every key change is reported to the observer (``KeyspaceObserver/keyChangedForBroadcast(_:by:)``):
    /// while some client tracks in broadcast mode.
    public var broadcastsChanges: Bool {
        get { trackingSignals.broadcasting.load(ordering: .relaxed) }
        set { trackingSignals.broadcasting.store(newValue, ordering: .relaxed) }
    }

    /// Remembers that client `client` read `key` while tracking (CLIENT TRACKING): its next change is reported with
    /// ``KeyspaceObserver/trackedKeyChanged(_:readers:by:)``. Requires the key's stripe locked.
    public func trackRead(_ key: KeyRef, by client: Int) {
        let stripe = stripes[stripeIndex(for: key)]
        let bytes = key.bytes
        if let index = stripe.trackedKeys.index(forKey: bytes) {
            if stripe.trackedKeys.values[index].insert(client).inserted { trackingSignals.itemCount.wrappingAdd(1, ordering: .relaxed) }
        } else {
            stripe.trackedKeys[bytes] = [client]
            trackingSignals.keyCount.wrappingAdd(1, ordering: .relaxed)
            trackingSignals.itemCount.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// Forgets every tracked read (a flush invalidates everything at once). Requires every stripe locked.
    public func forgetTrackedReads() {
        for stripe in stripes where !stripe.trackedKeys.isEmpty {
            for readers in stripe.trackedKeys.values { trackingSignals.forgot(readers) }
            stripe.trackedKeys = [:]
        }
    }

    /// How many keys are tracked for some client (INFO `tracking_total_keys`).
    public var trackedKeyCount: Int { trackingSignals.keyCount.load(ordering: .relaxed) }

    /// How many (key, client) pairs are tracked (INFO `tracking_total_items`).
    public var trackedItemCount: Int { trackingSignals.itemCount.load(ordering: .relaxed) }

    /// Drops tracked keys, telling their readers as if the keys had changed, until at most `limit` are tracked or
    /// `effort` keys were dropped (redis trackingLimitUsedSlots, for `tracking-table-max-keys`). Locks one stripe at
    /// a time, so the caller must hold none. Returns how many were dropped.
    @discardableResult
    public func dropTrackedKeys(over limit: Int, effort: Int) -> Int {
        guard trackedKeyCount > limit else { return 0 }
        var dropped = 0
        let start = Int.random(in: 0..<stripes.count)
        for offset in 0..<stripes.count where dropped < effort && trackedKeyCount > limit {
            let index = (start + offset) % stripes.count
            let stripe = stripes[index]
            lock(stripe: index, capturing: false)
            while dropped < effort && trackedKeyCount > limit, let (key, readers) = stripe.trackedKeys.first {
                stripe.trackedKeys.removeValue(forKey: key)
                trackingSignals.forgot(readers)
                trackingSignals.observer?.trackedKeyChanged(key, readers: readers, by: 0)
                dropped += 1
            }
            unlock(stripe: index)
        }
        return dropped
    }

    /// `maxmemory-samples`.
    public var evictionSamples: Int {
        get { samplesStorage.load(ordering: .relaxed) }
        set { samplesStorage.store(max(1, min(newValue, 64)), ordering: .relaxed) }
    }

    /// `lfu-log-factor`.
    public var lfuLogFactor: Int {
        get { lfuLogFactorStorage.load(ordering: .relaxed) }
        set { lfuLogFactorStorage.store(newValue, ordering: .relaxed) }
    }

    /// `lfu-decay-time` in minutes.
    public var lfuDecayTime: Int {
        get { lfuDecayTimeStorage.load(ordering: .relaxed) }
        set { lfuDecayTimeStorage.store(newValue, ordering: .relaxed) }
    }

    /// On a replica keys are never expired by its own clock: expired keys read as missing but stay until the
    /// primary's DEL arrives.
    public var isReplica: Bool {
        get { replicaStorage.load(ordering: .relaxed) }
        set { replicaStorage.store(newValue, ordering: .relaxed) }
    }

    /// While clients are paused (CLIENT PAUSE) expired keys read as missing but stay, and nothing is evicted, so the
    /// data and the replication stream stand still until the pause ends.
    public var keyRemovalPaused: Bool {
        get { keyRemovalPausedStorage.load(ordering: .relaxed) }
        set { keyRemovalPausedStorage.store(newValue, ordering: .relaxed) }
    }

    /// Whether an expired key found now is left in place (on a replica, or during a pause).
    var keepsExpiredKeys: Bool { isReplica || keyRemovalPaused }

    // MARK: locking

    /// The stripe `key` lives in.

    @inline(__always)
    public func stripeIndex(for key: KeyRef) -> Int {
        if isSlotStriped { return stripeIndex(forSlot: key.bytes.withBytes { HashSlot.slot(of: $0) }) }
        return Int(truncatingIfNeeded: key.hash) & stripeMask
    }

    /// The stripe holding the keys of hash `slot` (cluster mode only).
    @inline(__always)
    public func stripeIndex(forSlot slot: Int) -> Int { slot & stripeMask }

    /// Locks one stripe. If a snapshot still waits for this stripe, its keys are serialized first (one load when
    /// no snapshot runs).
    /// - Parameter capturing: `false` only for read-only commands: they leave the stripe for the snapshot's writer
    ///   (or the next writing command) to capture. Right after a snapshot begins every stripe is pending, and an event
    ///   loop whose reads each captured a stripe would stall for the sum of them. What a read may still change is
    ///   harmless to the snapshot: access metadata, which snapshots do not hold, and a lazily expired key
    ///   removed (with its DEL propagated), which a loader would drop as expired in any case.
    public func lock(stripe index: Int, capturing: Bool = true) {
        let stripe = stripes[index]
        stripe.lock.lock()
        if capturing && stripe.pendingCapture != nil { captureStripe(index) }
    }

    /// Locks one stripe as ``lock(stripe:capturing:)`` does if it is free, without waiting; returns whether it did.
    public func tryLock(stripe index: Int, capturing: Bool = true) -> Bool {
        let stripe = stripes[index]
        guard stripe.lock.tryLock() else { return false }
        if capturing && stripe.pendingCapture != nil { captureStripe(index) }
        return true
    }

    /// Locks one stripe as ``lock(stripe:capturing:)`` does unless `abandon`, asked while the wait lasts (see
    /// ``StripeLock/lock(abandoningWhen:)``), says to give up. Returns whether the stripe is locked.
    public func lock(stripe index: Int, capturing: Bool = true, abandoningWhen abandon: () -> Bool) -> Bool {
        let stripe = stripes[index]
        guard stripe.lock.lock(abandoningWhen: abandon) else { return false }
        if capturing && stripe.pendingCapture != nil { captureStripe(index) }
        return true
    }

    /// ``lock(stripes:capturing:)`` unless `abandon` says to give up waiting: then none of them is locked.
    public func lock(stripes indices: inout [Int], capturing: Bool = true, abandoningWhen abandon: () -> Bool) -> Bool {
        lockInOrder(&indices, capturing: capturing, abandoningWhen: abandon)
    }

    /// ``lockInOrder(_:capturing:)``, giving up (with nothing locked) when `abandon` says so while it waits.
    private func lockInOrder<Indices: MutableCollection & RandomAccessCollection>(
        _ indices: inout Indices, capturing: Bool, abandoningWhen abandon: () -> Bool
    ) -> Bool where Indices.Element == Int {
        indices.sort()
        var previous = -1
        for position in indices.indices where indices[position] != previous {
            guard lock(stripe: indices[position], capturing: capturing, abandoningWhen: abandon) else {
                unlockInOrder(indices[..<position])
                return false
            }
            previous = indices[position]
        }
        return true
    }

    /// ``lockAll(capturing:)`` unless `abandon` says to give up waiting: then no stripe is locked.
    public func lockAll(capturing: Bool = true, abandoningWhen abandon: () -> Bool) -> Bool {
        for index in stripes.indices {
            guard lock(stripe: index, capturing: capturing, abandoningWhen: abandon) else {
                for taken in stripes.indices[..<index].reversed() { unlock(stripe: taken) }
                return false
            }
        }
        return true
    }

    /// Starts loading into the CPU cache what looking up `keys` in `database` will read, before the commands that
    /// use them run: a pipelined batch's lookups then miss the cache together instead of one command at a time.
    /// Three passes, each pass's loads hinted while the one before is on its way: every key's first hash-table slot,
    /// then the entry each probe leads to, then the value's heap object (a string over 14 bytes, a collection). The
    /// batch's stripes are locked once, in ascending order as every multi-stripe locker takes them, for all three
    /// passes. A key repeating the one before it is hinted once. Changes nothing; a key that is absent or whose
    /// table changes before its command runs costs a wasted hint, never a wrong answer.
    /// - Parameter abandon: asked while a lock wait lasts; `true` gives up the hints (a script holds the stripes).
    public func prefetch(_ keys: [KeyRef], database: Int, abandoningWhen abandon: () -> Bool = { false }) {
        let count = keys.count
        guard count > 0 else { return }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * count) { buffer in
            let stripeOfKey = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
            var lockOrder = UnsafeMutableBufferPointer(rebasing: buffer[count..<(2 * count)])
            for position in 0..<count {
                stripeOfKey[position] = stripeIndex(for: keys[position])
                lockOrder[position] = stripeOfKey[position]
            }
            guard lockInOrder(&lockOrder, capturing: false, abandoningWhen: abandon) else { return }
            defer { unlockInOrder(lockOrder) }
            hint(keys, stripeOfKey: stripeOfKey, database: database)
        }
    }

    /// ``prefetch(_:database:)``'s three passes, with the stripes of `keys` locked.
    private func hint(_ keys: [KeyRef], stripeOfKey: UnsafeMutableBufferPointer<Int>, database: Int) {
        let count = keys.count
        // Each key's table, unretained: the locks held keep every table of these stripes in place.
        withUnsafeTemporaryAllocation(of: Unmanaged<KeyTable>?.self, capacity: count) { tables in
            for position in 0..<count {
                let repeated = position > 0 && keys[position].hash == keys[position - 1].hash
                tables[position] = repeated ? nil : stripes[stripeOfKey[position]].tables[database].map(Unmanaged.passUnretained)
            }
            for position in 0..<count {
                guard let table = tables[position] else { continue }
                memory_prefetch(table._withUnsafeGuaranteedRef { $0.firstSlotAddress(forHash: keys[position].hash) })
            }
            // The entries the probes lead to, kept for the third pass (the locks keep them in place).
            withUnsafeTemporaryAllocation(of: UnsafeRawPointer?.self, capacity: count) { entries in
                for position in 0..<count {
                    entries[position] = tables[position].flatMap { table in
                        table._withUnsafeGuaranteedRef { $0.candidateEntryAddress(forHash: keys[position].hash) }
                    }
                    if let entry = entries[position] { memory_prefetch(entry) }
                }
                for position in 0..<count {
                    guard let entry = entries[position],
                        let object = entry.assumingMemoryBound(to: Entry.self).pointee.value.objectAddress
                    else { continue }
                    memory_prefetch(object)
                }
            }
        }
    }

    /// Publishes every stripe's size for the eviction check. Sizes are kept current only while `maxmemory` is set
    /// (each unlock publishes its stripe's), so setting it at run time must call this before sizes are relied on.
    /// Call with no stripe locked.
    public func publishSizes() {
        for index in stripes.indices {
            stripes[index].lock.lock()
            unlock(stripe: index)
        }
    }

    /// Unlocks one stripe, publishing its size for the eviction check.

    public func unlock(stripe index: Int) {
        let stripe = stripes[index]
        if maxMemoryStorage.load(ordering: .relaxed) > 0 {
            // Only the lock holder publishes a stripe's size, so the total moves by exactly what this one changed; a
            // read (nothing changed) writes nothing shared.
            let size = stripe.estimatedBytes
            let published = stripe.publishedBytes.load(ordering: .relaxed)
            if size != published {
                stripe.publishedBytes.store(size, ordering: .relaxed)
                publishedTotal.wrappingAdd(size &- published, ordering: .relaxed)
            }
        }
        stripe.lock.unlock()
    }

    /// Locks the stripes `indices` name, each once, in ascending order: the order every caller that holds more
    /// than one stripe takes them in, so that no two wait on each other. Sorts `indices`; pass them to
    /// ``unlock(stripes:)`` afterwards.
    /// - Parameter capturing: as for ``lock(stripe:capturing:)``.
    public func lock(stripes indices: inout [Int], capturing: Bool = true) {
        lockInOrder(&indices, capturing: capturing)
    }

    /// Unlocks the stripes ``lock(stripes:capturing:)`` locked, in the reverse order.
    public func unlock(stripes indices: [Int]) {
        unlockInOrder(indices)
    }

    /// ``lock(stripes:capturing:)`` over any buffer of indices (``prefetch(_:database:)``'s is on the stack).
    private func lockInOrder<Indices: MutableCollection & RandomAccessCollection>(
        _ indices: inout Indices, capturing: Bool
    ) where Indices.Element == Int {
        indices.sort()
        var previous = -1
        for index in indices where index != previous {
            lock(stripe: index, capturing: capturing)
            previous = index
        }
    }

    private func unlockInOrder(_ indices: some BidirectionalCollection<Int>) {
        var previous = -1
        for index in indices.reversed() where index != previous {
            unlock(stripe: index)
            previous = index
        }
    }

    /// Locks every stripe in order (transactions, whole-keyspace commands).
    /// - Parameter capturing: `false` only for callers that will not change any key (INFO, KEYS, SCAN, DBSIZE):
    ///   they need not wait for a running snapshot to serialize the stripes first.
    public func lockAll(capturing: Bool = true) {
        for index in stripes.indices {
            let stripe = stripes[index]
            stripe.lock.lock()
            if capturing && stripe.pendingCapture != nil { captureStripe(index) }
        }
    }

    /// Unlocks every stripe.
    public func unlockAll() {
        for index in stripes.indices.reversed() { unlock(stripe: index) }
    }

    /// Runs `body` with the stripes of `keys` locked (in index order, each once).
    public func withLocked<Result, Failure: Error>(
        _ keys: [KeyRef], _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var indices = keys.map { stripeIndex(for: $0) }
        lock(stripes: &indices)
        defer { unlock(stripes: indices) }
        return try body()
    }

    /// Runs `body` with every stripe locked.
    public func withAllLocked<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        lockAll()
        defer { unlockAll() }
        return try body()
    }

    /// A view of database `index` at time `now` (unix ms). Its key operations require the key's stripe locked.

    public func database(_ index: Int, now: Int64, client: Int = 0) -> Database {
        Database(keyspace: self, index: index, now: now, client: client)
    }

    // MARK: whole keyspace (callers hold every stripe)

    /// Estimated bytes held by all stripes. Exact only with every stripe locked; otherwise the last published sizes.
    public func estimatedBytes(locked: Bool) -> Int {
        if locked { return stripes.reduce(0) { $0 + $1.estimatedBytes } }
        return publishedTotal.load(ordering: .relaxed)
    }

    /// Per database: keys and keys with an expiry (INFO keyspace). Requires every stripe locked.
    public func keyCounts() -> [(keys: Int, volatile: Int)] {
        var counts = Array(repeating: (keys: 0, volatile: 0), count: databaseCount)
        for stripe in stripes {
            for (database, table) in stripe.tables.enumerated() {
                guard let table else { continue }
                counts[database].keys += table.count
                counts[database].volatile += table.volatileCount
            }
        }
        return counts
    }

    /// Removes every key of every database. Requires every stripe locked.
    /// - Parameter lazily: hand the tables to ``lazyFree`` instead of freeing their keys now (FLUSHALL ASYNC).
    public func flushAll(lazily: Bool = false) {
        for stripe in stripes {
            stripe.allKeysModified(database: nil)
            for database in stripe.tables.indices { stripe.empty(database, lazilyInto: lazily ? lazyFree : nil) }
        }
    }

    /// Swaps two databases (SWAPDB) at `now` (which tells watched keys that were already expired). Requires every
    /// stripe locked.
    public func swapDatabases(_ first: Int, _ second: Int, now: Int64) {
        for stripe in stripes {
            stripe.allKeysModified(database: first, replacement: second, now: now)
            stripe.allKeysModified(database: second, replacement: first, now: now)
            stripe.tables.swapAt(first, second)
        }
    }

    // MARK: hash slots (cluster mode)

    /// Up to `limit` keys of database 0 in hash `slot`, expired or not (CLUSTER GETKEYSINSLOT). Requires the slot's
    /// stripe locked. Reads the tables themselves, so it is right after any write, expiry, eviction or flush.
    public func keys(inSlot slot: Int, limit: Int) -> [CompactBytes] {
        precondition(isSlotStriped, "slot queries need a slot-striped keyspace")
        guard limit > 0, let table = stripes[stripeIndex(forSlot: slot)].existingTable(0) else { return [] }
        var result: [CompactBytes] = []
        for index in 0..<table.count {
            let key = table.entry(at: index).pointee.key
            if key.withBytes({ HashSlot.slot(of: $0) }) == slot {
                result.append(key)
                if result.count == limit { break }
            }
        }
        return result
    }

    /// The number of keys of database 0 in hash `slot` (CLUSTER COUNTKEYSINSLOT). Requires the slot's stripe locked.
    public func countKeys(inSlot slot: Int) -> Int {
        precondition(isSlotStriped, "slot queries need a slot-striped keyspace")
        guard let table = stripes[stripeIndex(forSlot: slot)].existingTable(0) else { return 0 }
        var count = 0
        for index in 0..<table.count where table.entry(at: index).pointee.key.withBytes({ HashSlot.slot(of: $0) }) == slot {
            count += 1
        }
        return count
    }

    /// The number of keys of database 0 in each of `slots`, which must all live in stripe `index` (one scan for a
    /// batch of slots: CLUSTER SETSLOTSRANGE … NODE). Slots without keys are absent. Requires the stripe locked.
    public func countKeys(inSlots slots: Set<Int>, stripe index: Int) -> [Int: Int] {
        precondition(isSlotStriped, "slot queries need a slot-striped keyspace")
        guard !slots.isEmpty, let table = stripes[index].existingTable(0) else { return [:] }
        var counts: [Int: Int] = [:]
        for entry in 0..<table.count {
            let slot = table.entry(at: entry).pointee.key.withBytes { HashSlot.slot(of: $0) }
            if slots.contains(slot) { counts[slot, default: 0] += 1 }
        }
        return counts
    }

    // MARK: WATCH

    /// Registers `token` as watching `key` in `database` at `now` (a key stored but already expired is a stale
    /// watch). Requires the key's stripe locked.
    public func watch(_ key: KeyRef, database: Int, token: WatchToken, now: Int64) {
        let stripe = stripes[stripeIndex(for: key)]
        var stale = false
        if let table = stripe.existingTable(database), let position = table.find(key),
           let expireAt = table.entry(at: position).pointee.meta.expireAt {
            stale = expireAt <= now
        }
        stripe.watchers[DatabaseKey(database: database, key: key.bytes), default: []].append(Stripe.Watch(token: token, stale: stale))
    }

    /// Removes `token` from the watchers of `key`. Requires the key's stripe locked.
    public func unwatch(_ key: KeyRef, database: Int, token: WatchToken) {
        let stripe = stripes[stripeIndex(for: key)]
        let databaseKey = DatabaseKey(database: database, key: key.bytes)
        guard var entries = stripe.watchers[databaseKey] else { return }
        entries.removeAll { $0.token === token }
        stripe.watchers[databaseKey] = entries.isEmpty ? nil : entries
    }

    /// Marks `token` dirty (a watched key was already expired or the transaction must abort).
    public func markDirty(_ token: WatchToken) {
        token.isDirty = true
    }
}
