// The hash table of one database inside one stripe: open addressing over a dense, chunked entry array.
//
// Layout (per key, 8-byte values, keys ≤ 22 bytes): a 48-byte entry (24 B key inline, 16 B value inline, 8 B of
// expiry + access clock) in 256-entry chunks (no doubling slack), plus one 8-byte slot at a load factor between
// 3/8 and 3/4. A slot holds the top 32 bits of the key's hash and the entry's index + 1 (0 = empty), so probing
// compares hashes without touching entries. Deletion uses backward shifting (no tombstones) and moves the last
// entry into the hole, keeping entries dense so that random sampling (eviction, RANDOMKEY, active expiry) is O(1).

/// Packs an entry's expiry (low 48 bits, unix milliseconds, 0 = persistent) and access clock (high 16 bits).
public struct EntryMeta: Hashable, Sendable {
    public var rawValue: UInt64

    /// A persistent entry with the given access clock.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Expiry as unix milliseconds, or `nil` when the key is persistent.

    public var expireAt: Int64? {
        get {
            let value = rawValue & 0xFFFF_FFFF_FFFF
            return value == 0 ? nil : Int64(value)
        }
        set {
            let stored = newValue.map { UInt64(clamping: max(1, min($0, 0xFFFF_FFFF_FFFF))) } ?? 0
            rawValue = (rawValue & ~0xFFFF_FFFF_FFFF) | stored
        }
    }

    /// The 16-bit access clock (LRU seconds, or LFU counter and decay minutes).

    public var access: UInt16 {
        get { UInt16(truncatingIfNeeded: rawValue >> 48) }
        set { rawValue = (rawValue & 0xFFFF_FFFF_FFFF) | (UInt64(newValue) << 48) }
    }
}

/// One key and its value.
public struct Entry {
    public var key: CompactBytes
    public var value: StoredValue
    public var meta: EntryMeta
}

/// The keys of one database within one stripe. Not thread-safe: the stripe's lock guards it.
public final class KeyTable {
    static let chunkShift = 8
    static let chunkSize = 1 << chunkShift
    static let minimumSlots = 16

    /// The number of keys.
    public private(set) var count = 0
    /// The number of keys with an expiry.
    public internal(set) var volatileCount = 0
    /// Heap bytes held by keys and values beyond their inline entry.
    public internal(set) var heapBytes = 0
    /// Next position of the active-expiry sweep.
    var sweepPosition = 0

    var chunks: [UnsafeMutablePointer<Entry>] = []
    var slots: UnsafeMutablePointer<UInt64>
    var slotMask: Int

    public init() {
        slots = .allocate(capacity: Self.minimumSlots)
        slots.initialize(repeating: 0, count: Self.minimumSlots)
        slotMask = Self.minimumSlots - 1
    }

    deinit {
        for index in 0..<count { entry(at: index).deinitialize(count: 1) }
        for chunk in chunks { chunk.deallocate() }
        slots.deallocate()
    }

    /// Bytes this table's keys account for: per key its entry and its share of slots at the usual load, plus the
    /// heap blocks of keys and values. Freeing a key lowers it at once (allocation slack is not counted; INFO
    /// reports the allocator's real totals separately).
    public var estimatedBytes: Int {
        count == 0 ? heapBytes : count * (MemoryLayout<Entry>.stride + 11) + heapBytes + 64
    }

    /// Capacity of the first chunk, which grows 8, 16, … 256 so that the many small tables stay small.
    var firstChunkCapacity = 0

    /// The entry at `index` (valid until the table is next changed).

    public func entry(at index: Int) -> UnsafeMutablePointer<Entry> {
        chunks[index &>> Self.chunkShift] + (index & (Self.chunkSize - 1))
    }

    /// The index of `key`'s entry, or `nil`.

    public func find(_ key: KeyRef) -> Int? {
        let tag = key.hash &>> 32
        var position = Int(truncatingIfNeeded: tag) & slotMask
        while true {
            let slot = slots[position]
            if slot == 0 { return nil }
            if slot &>> 32 == tag {
                let index = Int(truncatingIfNeeded: slot & 0xFFFF_FFFF) &- 1
                if entry(at: index).pointee.key == key.bytes { return index }
            }
            position = (position &+ 1) & slotMask
        }
    }

    /// Where a probe for `hash` starts in the slot array (a prefetch target; not dereferenced).
    @inline(__always)
    func firstSlotAddress(forHash hash: UInt64) -> UnsafeRawPointer {
        UnsafeRawPointer(slots + (Int(truncatingIfNeeded: hash &>> 32) & slotMask))
    }

    /// The entry of the first slot whose tag matches `hash`, without comparing keys (a prefetch target; reads
    /// slots, not entries), or `nil` if the probe meets an empty slot first.
    func candidateEntryAddress(forHash hash: UInt64) -> UnsafeRawPointer? {
        let tag = hash &>> 32
        var position = Int(truncatingIfNeeded: tag) & slotMask
        while true {
            let slot = slots[position]
            if slot == 0 { return nil }
            if slot &>> 32 == tag { return UnsafeRawPointer(entry(at: Int(truncatingIfNeeded: slot & 0xFFFF_FFFF) &- 1)) }
            position = (position &+ 1) & slotMask
        }
    }

    /// Adds a key that is not present. Returns its index.
    @discardableResult
    public func insert(_ key: KeyRef, value: StoredValue, meta: EntryMeta) -> Int {
        if (count + 1) * 4 > (slotMask + 1) * 3 { resize(to: (slotMask + 1) * 2) }
        let index = count
        if index < Self.chunkSize {
            if index == firstChunkCapacity { growFirstChunk() }
        } else if index &>> Self.chunkShift == chunks.count {
            chunks.append(.allocate(capacity: Self.chunkSize))
        }
        entry(at: index).initialize(to: Entry(key: key.bytes, value: value, meta: meta))
        count += 1
        let tag = key.hash &>> 32
        var position = Int(truncatingIfNeeded: tag) & slotMask
        while slots[position] != 0 { position = (position &+ 1) & slotMask }
        slots[position] = tag << 32 | UInt64(index + 1)
        heapBytes += key.bytes.heapSize + value.heapSize
        if meta.expireAt != nil { volatileCount += 1 }
        return index
    }

    /// Replaces the value at `index`, keeping the memory estimate right.

    public func replaceValue(at index: Int, with value: StoredValue) {
        let pointer = entry(at: index)
        heapBytes += value.heapSize - pointer.pointee.value.heapSize
        pointer.pointee.value = value
    }

    /// Records that the value at `index` changed size by itself (a collection mutated in place).

    public func adjustHeapBytes(by delta: Int) {
        heapBytes += delta
    }

    /// Sets the expiry of the entry at `index`.

    public func setExpireAt(_ expireAt: Int64?, at index: Int) {
        let pointer = entry(at: index)
        let had = pointer.pointee.meta.expireAt != nil
        pointer.pointee.meta.expireAt = expireAt
        volatileCount += (expireAt != nil ? 1 : 0) - (had ? 1 : 0)
    }

    /// Removes the entry at `index` and returns it. The last entry moves into its place.
    @discardableResult
    public func remove(at index: Int) -> Entry {
        let removedPointer = entry(at: index)
        let hash = removedPointer.pointee.key.withBytes { KeyHashing.hash($0) }
        deleteSlot(at: slotPosition(of: index, hash: hash))
        let removed = removedPointer.move()
        let last = count - 1
        if index != last {
            let lastPointer = entry(at: last)
            let lastHash = lastPointer.pointee.key.withBytes { KeyHashing.hash($0) }
            let position = slotPosition(of: last, hash: lastHash)
            slots[position] = (slots[position] & 0xFFFF_FFFF_0000_0000) | UInt64(index + 1)
            removedPointer.moveInitialize(from: lastPointer, count: 1)
        }
        count -= 1
        // Free a trailing chunk once the one before it has room again (hysteresis of one chunk).
        if chunks.count > 1 && count <= (chunks.count - 2) * Self.chunkSize {
            chunks.removeLast().deallocate()
        }
        heapBytes -= removed.key.heapSize + removed.value.heapSize
        if removed.meta.expireAt != nil { volatileCount -= 1 }
        if sweepPosition > count { sweepPosition = 0 }
        if slotMask + 1 > Self.minimumSlots && count * 8 < slotMask + 1 { resize(to: (slotMask + 1) / 2) }
        return removed
    }

    /// Removes every entry.
    public func removeAll() {
        for index in 0..<count { entry(at: index).deinitialize(count: 1) }
        for chunk in chunks { chunk.deallocate() }
        chunks = []
        firstChunkCapacity = 0
        count = 0
        volatileCount = 0
        heapBytes = 0
        sweepPosition = 0
        slots.deallocate()
        slots = .allocate(capacity: Self.minimumSlots)
        slots.initialize(repeating: 0, count: Self.minimumSlots)
        slotMask = Self.minimumSlots - 1
    }

    /// Doubles the first chunk (moving its entries); entry pointers into it are invalid afterwards.
    private func growFirstChunk() {
        let capacity = max(8, firstChunkCapacity * 2)
        let grown = UnsafeMutablePointer<Entry>.allocate(capacity: capacity)
        if let old = chunks.first {
            grown.moveInitialize(from: old, count: min(count, firstChunkCapacity))
            old.deallocate()
            chunks[0] = grown
        } else {
            chunks.append(grown)
        }
        firstChunkCapacity = capacity
    }

    private func slotPosition(of index: Int, hash: UInt64) -> Int {
        let wanted = (hash &>> 32) << 32 | UInt64(index + 1)
        var position = Int(truncatingIfNeeded: hash &>> 32) & slotMask
        while slots[position] != wanted {
            precondition(slots[position] != 0, "key table corrupted: entry \(index) has no slot")
            position = (position &+ 1) & slotMask
        }
        return position
    }

    /// Backward-shift deletion for linear probing: later slots of the same run move up into the hole.
    private func deleteSlot(at start: Int) {
        var hole = start
        var probe = start
        while true {
            probe = (probe &+ 1) & slotMask
            let slot = slots[probe]
            if slot == 0 { break }
            let home = Int(truncatingIfNeeded: slot &>> 32) & slotMask
            let homeIsBetween = hole <= probe ? (home > hole && home <= probe) : (home > hole || home <= probe)
            if !homeIsBetween {
                slots[hole] = slot
                hole = probe
            }
        }
        slots[hole] = 0
    }

    private func resize(to capacity: Int) {
        let old = slots
        let oldCapacity = slotMask + 1
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        slotMask = capacity - 1
        for position in 0..<oldCapacity {
            let slot = old[position]
            if slot == 0 { continue }
            var target = Int(truncatingIfNeeded: slot &>> 32) & slotMask
            while slots[target] != 0 { target = (target &+ 1) & slotMask }
            slots[target] = slot
        }
        old.deallocate()
    }
}
