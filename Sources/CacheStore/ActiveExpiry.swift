// Active expiry: reclaims expired keys nobody reads (redis expire.c's activeExpireCycle, adapted).
//
// Lazy expiry (Database.find) removes an expired key when it is touched. Keys never touched again are found by
// this sweep: each cycle visits every stripe, locking one at a time, and walks each table's dense entry array from
// a per-table cursor, checking `keysPerTable` entries (20 by default, as redis samples 20). If more than 10% of
// the checked volatile entries had expired, the same table is swept again in this cycle (up to 16 times), so a
// table full of expired keys drains quickly while an ordinary one costs a few hundred nanoseconds per cycle.
// Tables without volatile keys are skipped. The caller runs a cycle every 100 ms (hz 10) with the current time;
// tests call it directly with an injected time. On a replica nothing is removed here: the primary's DEL does it.
// Stripes a running snapshot has not captured yet are skipped (see Snapshot/KeyspaceSnapshot.swift).
import Synchronization

extension Keyspace {
    /// Runs one active-expiry cycle at time `now` (unix ms). Call with no stripe locked.
    /// - Parameter keysPerTable: entries checked per table per pass.
    /// - Returns: the number of keys removed.
    @discardableResult
    public func activeExpireCycle(now: Int64, keysPerTable: Int = 20) -> Int {
        if keepsExpiredKeys { return 0 }
        var removedTotal = 0
        for stripeIndex in stripes.indices {
            let stripe = stripes[stripeIndex]
            // A stripe a snapshot still waits for is left alone: the snapshot's reader serializes it soon, and
            // locking it here would make this sweep copy the whole keyspace at once.
            if stripe.capturePending.load(ordering: .relaxed) { continue }
            lock(stripe: stripeIndex)
            for database in 0..<databaseCount {
                guard let table = stripe.existingTable(database), table.volatileCount > 0 else { continue }
                for _ in 0..<16 {
                    var checked = 0
                    var expired = 0
                    var steps = 0
                    while steps < keysPerTable && table.count > 0 {
                        if table.sweepPosition >= table.count { table.sweepPosition = 0 }
                        let position = table.sweepPosition
                        let entry = table.entry(at: position)
                        steps += 1
                        if let at = entry.pointee.meta.expireAt {
                            checked += 1
                            if at <= now {
                                let removed = table.remove(at: position)
                                if lazyFreeTriggers.contains(.expire) { lazyFree.release(removed.value) }
                                expired += 1
                                expiredKeys.add(1, ordering: .relaxed)
                                stripe.keyModified(database: database, key: removed.key)
                                observer?.keyExpired(database: database, key: removed.key)
                                // The last entry moved into `position`: check it next without advancing.
                                continue
                            }
                        }
                        table.sweepPosition = position + 1
                    }
                    removedTotal += expired
                    if checked == 0 || expired * 10 <= checked || table.volatileCount == 0 { break }
                }
            }
            unlock(stripe: stripeIndex)
        }
        return removedTotal
    }
}
