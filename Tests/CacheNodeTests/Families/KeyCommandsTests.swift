// Tests of the generic key family through the real decoder, dispatcher and reply writer (redis
// tests/unit/keyspace.tcl, and the encoding checks of the type units).
import CacheNode
import CacheNodeTestSupport
import Testing

struct KeyCommandsTests {
    @Test func objectEncodingFollowsTheConfiguredThresholds() throws {
        let client = try TestNode().connect()
        func encoding(_ key: String) throws -> RESPValue { try client.send("OBJECT", "ENCODING", key) }
        _ = try client.send("SET", "n", "12345")
        _ = try client.send("SET", "short", "hello")
        _ = try client.send("SET", "long", String(repeating: "x", count: 45))
        let strings = try [encoding("n"), encoding("short"), encoding("long")]
        #expect(strings == [.string("int"), .string("embstr"), .string("raw")], "\(strings)")

        _ = try client.send("HSET", "h", "f", "v")
        _ = try client.send("SADD", "ints", "1", "2")
        _ = try client.send("SADD", "words", "a", "b")
        _ = try client.send("ZADD", "z", "1", "a")
        _ = try client.send("RPUSH", "l", "a", "b", "c", "d")
        #expect(try ["h", "ints", "words", "z", "l"].map(encoding) == ["listpack", "intset", "listpack", "listpack", "listpack"].map { .string($0) })
        for (name, value) in [("hash-max-listpack-entries", "0"), ("set-max-intset-entries", "1"), ("set-max-listpack-entries", "1"),
                              ("zset-max-listpack-entries", "0"), ("list-max-listpack-size", "3")] {
            #expect(try client.send("CONFIG", "SET", name, value) == .simple("OK"))
        }
        #expect(try ["h", "ints", "words", "z", "l"].map(encoding) == ["hashtable", "hashtable", "hashtable", "skiplist", "quicklist"].map { .string($0) })
        // Values over the length limits; lists by size in bytes (-1 is 4 KB).
        for (name, value) in [("hash-max-listpack-entries", "128"), ("hash-max-listpack-value", "3"), ("list-max-listpack-size", "-1")] {
            _ = try client.send("CONFIG", "SET", name, value)
        }
        _ = try client.send("HSET", "h2", "field", "v")
        #expect(try encoding("h2") == .string("hashtable"))
        #expect(try encoding("l") == .string("listpack"))
        _ = try client.send("RPUSH", "l", String(repeating: "x", count: 5000))
        #expect(try encoding("l") == .string("quicklist"))
        _ = try client.send("RPOP", "l")
        #expect(try encoding("l") == .string("listpack"))
    }
}
