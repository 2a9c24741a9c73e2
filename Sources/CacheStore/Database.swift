// Key operations on one database, for commands that already hold the stripes of the keys they touch.
// Expiry is lazy here (a read of an expired key deletes it, as redis's expireIfNeeded does) and active in
// ActiveExpiry.swift; every write marks WATCHers dirty; every read updates the access clock for eviction.
import Synchronization

/// What to do with a key's expiry when its value is replaced.
public enum ExpiryUpdate: Sendable, Hashable {
    /// Make the key persistent (plain SET).
    case remove
    /// Keep whatever expiry it had (SET … KEEPTTL).
    case keep
    /// Expire at the given unix time in milliseconds.
    case at(Int64)
}

/// A key's time to live.
public enum KeyExpiry: Sendable, Hashable {
    case missing
    case persistent
    case expiresAt(Int64)
}

/// Database `index` of a keyspace at time `now`. Each key operation requires that key's stripe locked.
public struct Database {
    public let keyspace: Keyspace
    /// The database number (SELECT).
    public let index: Int
    /// The time the current command runs at, unix milliseconds (one reading per command, as redis caches mstime).
    public let now: Int64
    /// The client whose command this is (0: none), told to client tracking with each change.
    public let client: Int
    /// Whether reads and in-place changes update a key's access clock (LRU/LFU); `false` for a client in CLIENT
    /// NO-TOUCH mode. A new value stored under a key always starts a new access clock.
    public var touchesKeys = true

    init(keyspace: Keyspace, index: Int, now: Int64, client: Int = 0) {
        self.keyspace = keyspace
        self.index = index
        self.now = now
        self.client = client
    }

    func stripe(for key: KeyRef) -> Stripe {
        keyspace.stripes[keyspace.stripeIndex(for: key)]
    }

    /// Finds a live entry; an expired one is deleted (never on a replica, nor during a client pause) and reported
    /// missing.

    public func find(_ key: KeyRef) -> (table: KeyTable, index: Int)? {
        let stripe = stripe(for: key)
        guard let table = stripe.existingTable(index), let position = table.find(key) else { return nil }
        if let expireAt = table.entry(at: position).pointee.meta.expireAt, expireAt <= now {
            if !keyspace.keepsExpiredKeys { expire(table: table, position: position, stripe: stripe) }
            return nil
        }
        return (table, position)
    }

    func expire(table: KeyTable, position: Int, stripe: Stripe) {
        let removed = table.remove(at: position)
        if keyspace.lazyFreeTriggers.contains(.expire) { keyspace.lazyFree.release(removed.value) }
        keyspace.expiredKeys.add(1, ordering: .relaxed)
        stripe.keyModified(database: index, key: removed.key, by: client)
        keyspace.observer?.keyExpired(database: index, key: removed.key)
    }

    // MARK: reads

    /// The value of `key`, updating its access clock; `nil` if missing or expired.

    public func value(_ key: KeyRef) -> StoredValue? {
        guard let (table, position) = find(key) else { return nil }
        let entry = table.entry(at: position)
        if touchesKeys { keyspace.recordAccess(&entry.pointee.meta, now: now) }
        return entry.pointee.value
    }

    /// The value of `key` without touching its access clock (TYPE, EXISTS, OBJECT).

    public func peek(_ key: KeyRef) -> StoredValue? {
        guard let (table, position) = find(key) else { return nil }
        return table.entry(at: position).pointee.value
    }

    /// The value and access clock of `key` as stored, even if its time to live has passed and it was not reclaimed yet
    /// (DEBUG OBJECT, which looks in the table as redis's dbFind does). Changes nothing.
    public func stored(_ key: KeyRef) -> (value: StoredValue, access: UInt16)? {
        guard let table = stripe(for: key).existingTable(index), let position = table.find(key) else { return nil }
        let entry = table.entry(at: position).pointee
        return (entry.value, entry.meta.access)
    }

    /// Whether `key` exists (no access-clock update, as EXISTS does).

    public func exists(_ key: KeyRef) -> Bool { find(key) != nil }

    /// The expiry of `key`.
    public func expiry(_ key: KeyRef) -> KeyExpiry {
        guard let (table, position) = find(key) else { return .missing }
        if let at = table.entry(at: position).pointee.meta.expireAt { return .expiresAt(at) }
        return .persistent
    }

    /// The raw access clock of `key` (OBJECT IDLETIME / FREQ).
    public func accessClock(_ key: KeyRef) -> UInt16? {
        guard let (table, position) = find(key) else { return nil }
        return table.entry(at: position).pointee.meta.access
    }

    // MARK: writes

    /// Stores `value` under `key`, replacing any value, and applies `expiry`.
    public func set(_ key: KeyRef, _ value: StoredValue, expiry: ExpiryUpdate = .remove) {
        let stripe = stripe(for: key)
        let table = stripe.table(index)
        if let position = findLive(key, in: table, stripe: stripe) {
            if keyspace.lazyFreeTriggers.contains(.serverDelete) {
                let replaced = table.entry(at: position).pointee.value
                table.replaceValue(at: position, with: value)
                keyspace.lazyFree.release(replaced)
            } else {
                table.replaceValue(at: position, with: value)
            }
            switch expiry {
            case .remove: table.setExpireAt(nil, at: position)
            case .keep: break
            case .at(let at): table.setExpireAt(at, at: position)
            }
            keyspace.recordAccess(&table.entry(at: position).pointee.meta, now: now)
        } else {
            var meta = EntryMeta(rawValue: 0)
            if case .at(let at) = expiry { meta.expireAt = at }
            keyspace.initializeAccess(&meta, now: now)
            table.insert(key, value: value, meta: meta)
            if keyspace.reportsAddedKeys { keyspace.observer?.keyAdded(database: index, key: key.bytes) }
        }
        stripe.keyModified(database: index, key: key.bytes, by: client)
    }

    /// Deletes `key`. Returns whether it existed.
    /// - Parameter lazily: a large value is freed in the background (UNLINK; DEL with lazyfree-lazy-user-del).
    @discardableResult
    public func delete(_ key: KeyRef, lazily: Bool = false) -> Bool {
        let stripe = stripe(for: key)
        guard let table = stripe.existingTable(index), let position = findLive(key, in: table, stripe: stripe) else {
            return false
        }
        let removed = table.remove(at: position)
        if lazily { keyspace.lazyFree.release(removed.value) }
        stripe.keyModified(database: index, key: key.bytes, by: client)
        return true
    }

    /// Removes `key` and returns its value and expiry (RENAME, MOVE, GETDEL).
    public func take(_ key: KeyRef) -> (value: StoredValue, expireAt: Int64?)? {
        let stripe = stripe(for: key)
        guard let table = stripe.existingTable(index), let position = findLive(key, in: table, stripe: stripe) else {
            return nil
        }
        let entry = table.remove(at: position)
        stripe.keyModified(database: index, key: key.bytes, by: client)
        return (entry.value, entry.meta.expireAt)
    }

    /// Sets or removes the expiry of `key`. Returns `false` if the key does not exist.
    /// An expiry in the past deletes the key (as EXPIRE with a negative TTL does).
    @discardableResult
    public func setExpiry(_ key: KeyRef, at expireAt: Int64?) -> Bool {
        let stripe = stripe(for: key)
        guard let table = stripe.existingTable(index), let position = findLive(key, in: table, stripe: stripe) else {
            return false
        }
        if let expireAt, expireAt <= now, !keyspace.isReplica {
            let removed = table.remove(at: position)
            if keyspace.lazyFreeTriggers.contains(.expire) { keyspace.lazyFree.release(removed.value) }
        } else {
            table.setExpireAt(expireAt, at: position)
        }
        stripe.keyModified(database: index, key: key.bytes, by: client)
        return true
    }

    /// Reads and possibly changes the value of `key` in place.
    ///
    /// `body` gets the current value (`nil` if missing) and may replace it, set it to `nil` (delete), or mutate a
    /// collection or string block it holds; while `body` runs, `value` is the only reference to the stored object,
    /// so `isKnownUniquelyReferenced` holds and in-place growth (APPEND) needs no copy. `body` must set `modified`
    /// when it changed anything (watchers are marked dirty then) and must not touch other keys of the database.
    /// The memory estimate is brought up to date afterwards.
    public func modify<Result, Failure: Error>(
        _ key: KeyRef,
        _ body: (inout StoredValue?, inout Bool) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let stripe = stripe(for: key)
        let table = stripe.table(index)
        var modified = false
        if let position = findLive(key, in: table, stripe: stripe) {
            let entry = table.entry(at: position)
            if touchesKeys { keyspace.recordAccess(&entry.pointee.meta, now: now) }
            let sizeBefore = entry.pointee.value.heapSize
            var value: StoredValue? = entry.pointee.value
            entry.pointee.value = Self.placeholder
            let outcome: Swift.Result<Result, Failure>
            do {
                outcome = .success(try body(&value, &modified))
            } catch {
                outcome = .failure(error)
            }
            if let value {
                entry.pointee.value = value
                table.adjustHeapBytes(by: value.heapSize - sizeBefore)
            } else {
                // The entry holds the placeholder (no heap): take the old size out, then remove it.
                table.adjustHeapBytes(by: -sizeBefore)
                table.remove(at: position)
                modified = true
            }
            if modified { stripe.keyModified(database: index, key: key.bytes, by: client) }
            return try outcome.get()
        }
        var value: StoredValue? = nil
        let result = try body(&value, &modified)
        if let value {
            var meta = EntryMeta(rawValue: 0)
            keyspace.initializeAccess(&meta, now: now)
            table.insert(key, value: value, meta: meta)
            if keyspace.reportsAddedKeys { keyspace.observer?.keyAdded(database: index, key: key.bytes) }
            stripe.keyModified(database: index, key: key.bytes, by: client)
        }
        return result
    }

    private static var placeholder: StoredValue { .shortString(0, 0, 0, 0) }

    /// Like ``find(_:)``, for writers.

    func findLive(_ key: KeyRef, in table: KeyTable, stripe: Stripe) -> Int? {
        guard let position = table.find(key) else { return nil }
        if let expireAt = table.entry(at: position).pointee.meta.expireAt, expireAt <= now, !keyspace.isReplica {
            expire(table: table, position: position, stripe: stripe)
            return nil
        }
        return position
    }

    // MARK: whole database (callers hold every stripe)

    /// The number of keys (DBSIZE), counting keys whose expiry passed but were not reclaimed yet, like redis.
    public var count: Int {
        keyspace.stripes.reduce(0) { $0 + ($1.existingTable(index)?.count ?? 0) }
    }

    /// Removes every key of this database (FLUSHDB).
    /// - Parameter lazily: hand the tables to the keyspace's lazy-free queue instead (FLUSHDB ASYNC).
    public func removeAll(lazily: Bool = false) {
        for stripe in keyspace.stripes {
            stripe.allKeysModified(database: index)
            stripe.empty(index, lazilyInto: lazily ? keyspace.lazyFree : nil)
        }
    }

    /// Calls `body` with each live key (KEYS). Expired keys are skipped.
    public func forEachKey(_ body: (CompactBytes, StoredValue) -> Void) {
        for stripe in keyspace.stripes {
            guard let table = stripe.existingTable(index) else { continue }
            for position in 0..<table.count {
                let entry = table.entry(at: position)
                if let at = entry.pointee.meta.expireAt, at <= now { continue }
                body(entry.pointee.key, entry.pointee.value)
            }
        }
    }

    /// One SCAN step: visits at least `count` entry positions from `cursor`, returning the next cursor (0 when done).
    ///
    /// The cursor is `stripe << 32 | position + 1`, walking each stripe's dense entry array from its end down.
    /// Deletions move the last entry into the hole, i.e. from the already-visited end into a lower position, so
    /// an element present during the whole scan is returned at least once (possibly twice), as SCAN guarantees.
    public func scan(cursor: UInt64, count: Int, _ body: (CompactBytes, StoredValue) -> Void) -> UInt64 {
        var stripeNumber = Int(cursor >> 32)
        var position = Int(cursor & 0xFFFF_FFFF)  // next position + 1; 0 = start from the top
        var visited = 0
        while stripeNumber < keyspace.stripes.count {
            let table = keyspace.stripes[stripeNumber].existingTable(index)
            let size = table?.count ?? 0
            var next = position == 0 ? size - 1 : min(position - 1, size - 1)
            while next >= 0 {
                let entry = table!.entry(at: next)
                if entry.pointee.meta.expireAt.map({ $0 > now }) ?? true {
                    body(entry.pointee.key, entry.pointee.value)
                }
                visited += 1
                next -= 1
                if visited >= count && next >= 0 {
                    return UInt64(stripeNumber) << 32 | UInt64(next + 1)
                }
            }
            stripeNumber += 1
            position = 0
            if visited >= count && stripeNumber < keyspace.stripes.count {
                return UInt64(stripeNumber) << 32
            }
        }
        return 0
    }

    /// A random live key (RANDOMKEY), or `nil` when the database is empty.
    public func randomKey() -> CompactBytes? {
        let total = count
        if total == 0 { return nil }
        // Try random positions; expired ones are skipped (and a fully expired database ends up empty).
        for _ in 0..<100 {
            let stripe = keyspace.stripes[Int.random(in: 0..<keyspace.stripes.count, using: &keyspace.stripes[0].random)]
            guard let table = stripe.existingTable(index), table.count > 0 else { continue }
            let entry = table.entry(at: Int.random(in: 0..<table.count, using: &stripe.random))
            if let at = entry.pointee.meta.expireAt, at <= now { continue }
            return entry.pointee.key
        }
        var found: CompactBytes?
        forEachKey { key, _ in if found == nil { found = key } }
        return found
    }
}
