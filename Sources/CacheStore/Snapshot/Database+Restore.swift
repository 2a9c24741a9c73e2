// RESTORE's IDLETIME and FREQ options: set a key's access clock as if it had been idle that long or accessed that
// often, in whichever encoding the eviction policy uses (Eviction.swift: LRU seconds, or LFU counter << 8 | minutes).

extension Database {
    /// Sets the access clock of `key` (which must exist) from RESTORE's `IDLETIME seconds` or `FREQ counter`.
    /// Requires the key's stripe locked. Returns `false` if the key is missing.
    @discardableResult
    public func restoreAccess(_ key: KeyRef, idleSeconds: Int?, frequency: Int?) -> Bool {
        guard let (table, position) = find(key) else { return false }
        let entry = table.entry(at: position)
        if keyspace.evictionPolicy.usesLFU {
            if let frequency {
                let minutes = UInt16(truncatingIfNeeded: now / 60_000) & 0xFF
                entry.pointee.meta.access = UInt16(clamping: frequency) << 8 | minutes
            }
        } else if let idleSeconds {
            entry.pointee.meta.access = UInt16(truncatingIfNeeded: now / 1000 - Int64(idleSeconds))
        }
        return true
    }
}
