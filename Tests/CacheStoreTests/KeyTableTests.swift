// The key table against a Dictionary model under random inserts, replacements and deletions (including the
// swap-with-last deletion and backward-shift slot deletion), plus memory-estimate consistency and the prefetch
// targets (the entry a probe leads to).
@testable import CacheStore
import Testing

struct KeyTableTests {
    @Test func randomOperationsMatchADictionaryModel() {
        let table = KeyTable()
        var model: [String: String] = [:]
        var random = SplitMix64(seed: 42)
        for step in 0..<60_000 {
            let key = "key:\(Int.random(in: 0..<5000, using: &random))" + (step % 7 == 0 ? String(repeating: "x", count: 30) : "")
            let ref = KeyRef(key)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<5:
                let value = "v\(step)" + (step % 3 == 0 ? String(repeating: "y", count: 40) : "")
                if let index = table.find(ref) {
                    table.replaceValue(at: index, with: .string(value))
                } else {
                    table.insert(ref, value: .string(value), meta: EntryMeta(rawValue: 0))
                }
                model[key] = value
            case 5..<8:
                if let index = table.find(ref) {
                    let removed = table.remove(at: index)
                    #expect(removed.key == ref.bytes)
                }
                #expect((model.removeValue(forKey: key) != nil) == true || table.find(ref) == nil)
            default:
                let found = table.find(ref).map { table.entry(at: $0).pointee.value.withStringBytes { String(decoding: $0, as: UTF8.self) } ?? "" }
                #expect(found == model[key])
            }
        }
        #expect(table.count == model.count)
        for (key, value) in model {
            let index = table.find(KeyRef(key))
            #expect(index != nil)
            if let index {
                #expect(table.entry(at: index).pointee.value.withStringBytes { String(decoding: $0, as: UTF8.self) } == value)
            }
        }
    }

    @Test func prefetchTargetsAreTheEntriesProbesLeadTo() throws {
        let table = KeyTable()
        let present = (0..<3000).map { KeyRef("present:\($0)") }
        for key in present { table.insert(key, value: .string("v"), meta: EntryMeta(rawValue: 0)) }
        // Delete a third (backward shifting moves slots and the last entry), so probes cross changed slots.
        for key in present.enumerated().filter({ $0.offset % 3 == 0 }).map(\.element) {
            table.remove(at: table.find(key)!)
        }
        let tag = { (hash: UInt64) in hash >> 32 }
        for (offset, key) in present.enumerated() {
            let candidate = table.candidateEntryAddress(forHash: key.hash)
            if offset % 3 == 0 {
                // Absent: no entry, or one whose key shares the 32-bit tag (a wasted hint, never a wrong answer).
                if let candidate {
                    let entry = candidate.assumingMemoryBound(to: Entry.self).pointee
                    #expect(tag(entry.key.withBytes { KeyHashing.hash($0) }) == tag(key.hash))
                }
            } else {
                // Present: the entry find() returns, unless an earlier slot on the probe holds an equal tag.
                let found = UnsafeRawPointer(table.entry(at: try #require(table.find(key))))
                let candidateEntry = try #require(candidate).assumingMemoryBound(to: Entry.self).pointee
                #expect(candidate == found || tag(candidateEntry.key.withBytes { KeyHashing.hash($0) }) == tag(key.hash))
            }
            let slot = table.firstSlotAddress(forHash: key.hash)
            #expect(slot >= UnsafeRawPointer(table.slots) && slot < UnsafeRawPointer(table.slots + table.slotMask + 1))
        }
    }

    @Test func heapBytesReturnToZeroWhenEmptied() {
        let table = KeyTable()
        for index in 0..<2000 {
            table.insert(KeyRef("a-long-key-name-that-does-not-fit-inline-\(index)"), value: .string(String(repeating: "v", count: 100)),
                         meta: EntryMeta(rawValue: 0))
        }
        #expect(table.heapBytes > 2000 * 100)
        while table.count > 0 { table.remove(at: table.count / 2) }
        #expect(table.heapBytes == 0)
        #expect(table.estimatedBytes < 64 * 1024)
    }

    @Test func shortKeysAndValuesNeedNoHeap() {
        let table = KeyTable()
        table.insert(KeyRef("key:000000123456"), value: .string("12345678"), meta: EntryMeta(rawValue: 0))
        #expect(table.heapBytes == 0)
        #expect(MemoryLayout<Entry>.stride == 48)
    }

    @Test func entryMetaPacksExpiryAndAccessClock() {
        var meta = EntryMeta(rawValue: 0)
        #expect(meta.expireAt == nil)
        meta.expireAt = 1_700_000_000_123
        meta.access = 0xBEEF
        #expect(meta.expireAt == 1_700_000_000_123)
        #expect(meta.access == 0xBEEF)
        meta.expireAt = nil
        #expect(meta.expireAt == nil)
        #expect(meta.access == 0xBEEF)
    }
}
