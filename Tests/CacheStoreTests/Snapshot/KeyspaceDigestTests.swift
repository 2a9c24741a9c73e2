// The keyspace digest behind DEBUG DIGEST: SHA-1 known answers (FIPS 180 examples), redis's digest of a string
// value, and order independence across keyspaces built in different orders.
@testable import CacheStore
import Testing

struct KeyspaceDigestTests {
    @Test func sha1MatchesPublishedVectors() {
        #expect(KeyspaceDigest.hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(KeyspaceDigest.hex(SHA1.hash([UInt8]())) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        let twoBlocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        #expect(KeyspaceDigest.hex(SHA1.hash(Array(twoBlocks.utf8))) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        var pieces = SHA1()
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        million.withUnsafeBytes { raw in
            for start in stride(from: 0, to: raw.count, by: 777) {
                pieces.update(UnsafeRawBufferPointer(rebasing: raw[start..<min(raw.count, start + 777)]))
            }
        }
        #expect(KeyspaceDigest.hex(pieces.finish()) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func digestsMatchRedisServer() {
        // Values printed by redis-server 7.0 (DEBUG DIGEST-VALUE k after SET k hello; DEBUG DIGEST of {k: hello},
        // then of {k: hello, s: {a, b}}).
        #expect(KeyspaceDigest.hex(KeyspaceDigest.digest(of: .string("hello"), hasExpiry: false))
                == "36b23a1456b2dce2c3ed252c456761301dba8060")
        let keyspace = Keyspace(databases: 16)
        let db = keyspace.database(0, now: 0)
        keyspace.withAllLocked { db.set(KeyRef("k"), .string("hello")) }
        #expect(keyspace.withAllLocked { KeyspaceDigest.hex(KeyspaceDigest.digest(of: keyspace)) } == "d101db227d1e3b31616b18b0b8700f84c3ffa5e9")
        let set = SetValue()
        set.add(CompactBytes("a"))
        set.add(CompactBytes("b"))
        keyspace.withAllLocked { db.set(KeyRef("s"), .set(set)) }
        #expect(keyspace.withAllLocked { KeyspaceDigest.hex(KeyspaceDigest.digest(of: keyspace)) } == "6190e3ecc0e8936de72b263e8b038750b210f422")
        #expect(KeyspaceDigest.scoreText(2.5) == Array("2.5".utf8))
        #expect(KeyspaceDigest.scoreText(-.infinity) == Array("-inf".utf8))
        #expect(KeyspaceDigest.scoreText(0.1) == Array("0.10000000000000001".utf8))
    }

    @Test func digestIgnoresOrderButNotContent() {
        let now: Int64 = 1_700_000_000_000
        func build(_ order: [Int], extra: Bool = false) -> String {
            let keyspace = Keyspace(databases: 2, seed: UInt64(order.first ?? 0))
            let db = keyspace.database(1, now: now)
            keyspace.withAllLocked {
                for index in order { db.set(KeyRef("k\(index)"), .string("v\(index)")) }
                if extra { db.set(KeyRef("k0"), .string("changed")) }
            }
            return keyspace.withAllLocked { KeyspaceDigest.hex(KeyspaceDigest.digest(of: keyspace)) }
        }
        let forward = build(Array(0..<300))
        #expect(forward == build(Array((0..<300).reversed())))
        #expect(forward != build(Array(0..<300), extra: true))
        #expect(build([]) == String(repeating: "0", count: 40))
    }
}
