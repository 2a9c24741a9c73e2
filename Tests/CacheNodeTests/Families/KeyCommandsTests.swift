// Tests of the generic key family through the real decoder, dispatcher and reply writer (redis
// tests/unit/keyspace.tcl, and the encoding checks of the type units).
import CacheNode
import CacheNodeTestSupport
import CacheStore
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

/// Lazy freeing through the commands (redis's lazyfree unit): UNLINK and FLUSHALL/FLUSHDB ASYNC always, DEL, SET over
/// a key and FLUSHALL without an option when lazyfree-lazy-* say so; INFO memory's counts.
struct LazyFreeCommandsTests {
    private func lazyfreed(_ client: TestClient) throws -> (pending: Int?, freed: Int?) {
        let memory = try client.info("memory")
        return (memory["lazyfree_pending_objects"].flatMap { Int($0) }, memory["lazyfreed_objects"].flatMap { Int($0) })
    }

    @Test func largeValuesAreFreedInTheBackgroundWhenAsked() throws {
        let node = TestNode()
        let client = try node.connect()
        func fill(_ key: String, _ count: Int) throws {
            try client.send(arguments: (["SADD", key] + (0..<count).map { "m\($0)" }).map { Array($0.utf8) })
        }
        let drain = { node.state.keyspace.lazyFree.drain() }
        try fill("big", 100)
        try fill("small", 10)
        #expect(try client.send("UNLINK", "big", "small", "missing") == .integer(2))
        drain()
        #expect(try lazyfreed(client) == (0, 1))
        // DEL frees at once unless lazyfree-lazy-user-del.
        try fill("big", 100)
        #expect(try client.send("DEL", "big") == .integer(1))
        drain()
        #expect(try lazyfreed(client) == (0, 1))
        #expect(try client.send("CONFIG", "SET", "lazyfree-lazy-user-del", "yes") == .simple("OK"))
        #expect(try client.send("CONFIG", "GET", "lazyfree-lazy-user-del").strings == ["lazyfree-lazy-user-del", "yes"])
        try fill("big", 100)
        #expect(try client.send("DEL", "big") == .integer(1))
        drain()
        #expect(try lazyfreed(client) == (0, 2))
        // SET over a large value: lazyfree-lazy-server-del.
        try client.send("CONFIG", "SET", "lazyfree-lazy-server-del", "yes")
        try fill("big", 100)
        #expect(try client.send("SET", "big", "now a string") == .simple("OK"))
        drain()
        #expect(try lazyfreed(client) == (0, 3))
        // FLUSHALL ASYNC counts the keys it hands over; SYNC none; no option follows lazyfree-lazy-user-flush.
        try client.send("DEL", "big")
        try client.send("CONFIG", "RESETSTAT")
        #expect(try lazyfreed(client) == (0, 0))
        try client.send("MSET", "a", "1", "b", "2", "c", "3")
        #expect(try client.send("FLUSHALL", "ASYNC") == .simple("OK"))
        #expect(try client.send("DBSIZE") == .integer(0))
        drain()
        #expect(try lazyfreed(client) == (0, 3))
        try client.send("MSET", "a", "1", "b", "2")
        #expect(try client.send("FLUSHDB") == .simple("OK"))
        drain()
        #expect(try lazyfreed(client) == (0, 3))
        try client.send("CONFIG", "SET", "lazyfree-lazy-user-flush", "yes")
        try client.send("MSET", "a", "1", "b", "2")
        #expect(try client.send("FLUSHDB") == .simple("OK"))
        try client.send("MSET", "a", "1")
        #expect(try client.send("FLUSHALL", "SYNC") == .simple("OK"))
        drain()
        #expect(try lazyfreed(client) == (0, 5))
        #expect(try client.send("FLUSHALL", "LATER").isError)
    }

    /// redis's lazyfree unit: a stream with groups, consumers and pending entries is freed in the background; one
    /// with a single entry and its group destroyed is not.
    @Test func streamsCountTheirEntriesAndGroups() throws {
        let node = TestNode()
        let client = try node.connect()
        for index in 0..<100 { try client.send("XADD", "stream", "*", "foo", "\(index)") }
        try client.send("XGROUP", "CREATE", "stream", "mygroup", "0")
        try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "COUNT", "2", "STREAMS", "stream", ">")
        #expect(try client.send("UNLINK", "stream") == .integer(1))
        try client.send("XADD", "s", "*", "a", "b")
        try client.send("XGROUP", "CREATE", "s", "bla", "$")
        try client.send("XGROUP", "DESTROY", "s", "bla")
        #expect(try client.send("UNLINK", "s") == .integer(1))
        node.state.keyspace.lazyFree.drain()
        #expect(try lazyfreed(client) == (0, 1))
    }
}
