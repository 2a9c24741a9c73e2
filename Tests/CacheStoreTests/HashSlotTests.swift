// Hash slots: CRC16-XMODEM known answers and the hash-tag rules, checked against values redis-server 7.0
// (CLUSTER KEYSLOT) returned for the same keys; and slot-striped keyspaces keep each slot's keys in one stripe.
import CacheStore
import Testing

struct HashSlotTests {
    @Test func crc16MatchesTheXmodemCheckValue() {
        let check = Array("123456789".utf8).withUnsafeBytes { HashSlot.crc16($0) }
        #expect(check == 0x31C3)
    }

    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("hello", 866), ("123456789", 12739),
        ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
        ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061), ("{}", 15257), ("", 0),
        ("a", 15495), ("{a", 10276), ("a}", 5921), ("{a}b", 15495), ("key:000000001", 13459),
    ])
    func slotsMatchRedis(key: String, slot: Int) {
        #expect(HashSlot.slot(of: key) == slot)
    }

    @Test func slotStripedKeyspaceListsAndCountsKeysPerSlot() {
        let keyspace = Keyspace(databases: 1, slotStriped: true)
        let db = keyspace.database(0, now: 1_000)
        let keys = (0..<300).map { "k\($0)" } + ["{tag}a", "{tag}b", "{tag}c"]
        keyspace.withAllLocked {
            for key in keys { db.set(KeyRef(key), .string("v")) }
        }
        let tagSlot = HashSlot.slot(of: "tag")
        #expect(keyspace.stripeIndex(for: KeyRef("{tag}a")) == keyspace.stripeIndex(forSlot: tagSlot))
        keyspace.withAllLocked {
            #expect(keyspace.countKeys(inSlot: tagSlot) >= 3)
            let listed = Set(keyspace.keys(inSlot: tagSlot, limit: 100).map { $0.withBytes { String(decoding: $0, as: UTF8.self) } })
            #expect(listed.isSuperset(of: ["{tag}a", "{tag}b", "{tag}c"]))
            #expect(keyspace.keys(inSlot: tagSlot, limit: 2).count == 2)
            _ = db.delete(KeyRef("{tag}b"))
            #expect(!keyspace.keys(inSlot: tagSlot, limit: 100).contains(CompactBytes("{tag}b")))
            let total = (0..<HashSlot.count).reduce(0) { $0 + keyspace.countKeys(inSlot: $1) }
            #expect(total == keys.count - 1)
            keyspace.flushAll()
            #expect(keyspace.countKeys(inSlot: tagSlot) == 0)
        }
    }
}
