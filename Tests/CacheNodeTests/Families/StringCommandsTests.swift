// Tests of the string family through the real decoder, dispatcher and reply writer (redis tests/unit/type/string.tcl).
import CacheNode
import CacheNodeTestSupport
import Testing

struct StringCommandsTests {
    @Test func setAndGetRoundTripBinarySafeValues() throws {
        let node = TestNode()
        let client = try node.connect()
        let value: [UInt8] = [0, 1, 2, 255, 13, 10, 0]
        #expect(try client.send(arguments: [Array("SET".utf8), Array("k".utf8), value]) == .simple("OK"))
        #expect(try client.send("GET", "k") == .bulk(value))
        #expect(try client.send("get", "missing") == .null)
        #expect(try client.send("STRLEN", "k") == .integer(7))
    }

    @Test func setOptionsNXXXGetAndKeepTTL() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SET", "k", "v1", "NX") == .simple("OK"))
        #expect(try client.send("SET", "k", "v2", "NX") == .null)
        #expect(try client.send("SET", "other", "v", "XX") == .null)
        #expect(try client.send("SET", "k", "v3", "XX", "GET") == .string("v1"))
        #expect(try client.send("SET", "k", "v4", "EX", "100") == .simple("OK"))
        #expect(try client.send("SET", "k", "v5", "KEEPTTL") == .simple("OK"))
        #expect(try client.send("TTL", "k") == .integer(100))
        #expect(try client.send("SET", "k", "v6") == .simple("OK"))
        #expect(try client.send("TTL", "k") == .integer(-1))
        #expect(try client.send("SET", "k", "v", "NX", "XX").isError)
        #expect(try client.send("SET", "k", "v", "EX", "0") == .error("ERR invalid expire time in 'set' command"))
        #expect(try client.send("SET", "k", "v", "EX", "10", "PX", "10") == .error("ERR syntax error"))
    }

    @Test func expiryIsLazyAndFollowsTheInjectedClock() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("SET", "k", "v", "PX", "1500") == .simple("OK"))
        node.advance(milliseconds: 1499)
        #expect(try client.send("GET", "k") == .string("v"))
        node.advance(milliseconds: 1)
        #expect(try client.send("GET", "k") == .null)
        #expect(try client.send("EXISTS", "k") == .integer(0))
    }

    @Test func countersFollowRedisRules() throws {
        let client = try TestNode().connect()
        #expect(try client.send("INCR", "n") == .integer(1))
        #expect(try client.send("INCRBY", "n", "41") == .integer(42))
        #expect(try client.send("DECRBY", "n", "2") == .integer(40))
        #expect(try client.send("DECR", "n") == .integer(39))
        #expect(try client.send("SET", "n", "9223372036854775807") == .simple("OK"))
        #expect(try client.send("INCR", "n") == .error("ERR increment or decrement would overflow"))
        #expect(try client.send("SET", "s", "abc") == .simple("OK"))
        #expect(try client.send("INCR", "s") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("SET", "f", "10.50") == .simple("OK"))
        #expect(try client.send("INCRBYFLOAT", "f", "0.1") == .string("10.6"))
        // The example of redis's INCRBYFLOAT documentation.
        #expect(try client.send("INCRBYFLOAT", "f", "-5") == .string("5.6"))
        #expect(try client.send("SET", "f", "5.0e3") == .simple("OK"))
        #expect(try client.send("INCRBYFLOAT", "f", "2.0e2") == .string("5200"))
        // long double arithmetic as redis: 0.1 + 0.2 reads back as 0.3.
        #expect(try client.send("INCRBYFLOAT", "g", "0.1") == .string("0.1"))
        #expect(try client.send("INCRBYFLOAT", "g", "0.2") == .string("0.3"))
        #expect(try client.send("INCRBYFLOAT", "g", "abc") == .error("ERR value is not a valid float"))
    }

    @Test func appendGrowsInPlaceAndRangesUseRedisIndices() throws {
        let client = try TestNode().connect()
        #expect(try client.send("APPEND", "k", "Hello") == .integer(5))
        for _ in 0..<100 { try client.send("APPEND", "k", "0123456789") }
        #expect(try client.send("STRLEN", "k") == .integer(1005))
        #expect(try client.send("GETRANGE", "k", "0", "4") == .string("Hello"))
        #expect(try client.send("GETRANGE", "k", "-3", "-1") == .string("789"))
        #expect(try client.send("GETRANGE", "k", "10", "5") == .string(""))
        #expect(try client.send("SETRANGE", "r", "5", "x") == .integer(6))
        #expect(try client.send("GET", "r") == .bulk([0, 0, 0, 0, 0, UInt8(ascii: "x")]))
        // Offsets whose end would overflow are refused, not a crash (redis's "SETRANGE with huge offset").
        for offset in ["9223372036854775807", "2147483647", "536870912"] {
            #expect(try client.send("SETRANGE", "r", offset, "A") == .error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
        }
        #expect(try client.send("SETRANGE", "r", "536870911", "") == .integer(6))
    }

    // redis's documented example (the LCS command page).
    @Test func lcsReturnsTheSubsequenceItsLengthOrItsRanges() throws {
        let client = try TestNode().connect()
        _ = try client.send("MSET", "key1", "ohmytext", "key2", "mynewtext")
        #expect(try client.send("LCS", "key1", "key2") == .string("mytext"))
        #expect(try client.send("LCS", "key1", "key2", "LEN") == .integer(6))
        let range = { (a: Int, b: Int, c: Int, d: Int) -> RESPValue in
            .array([.array([.integer(a), .integer(b)]), .array([.integer(c), .integer(d)])])
        }
        #expect(try client.send("LCS", "key1", "key2", "IDX") == .array([
            .string("matches"), .array([range(4, 7, 5, 8), range(2, 3, 0, 1)]), .string("len"), .integer(6),
        ]))
        #expect(try client.send("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN") == .array([
            .string("matches"), .array([.array([.array([.integer(4), .integer(7)]), .array([.integer(5), .integer(8)]), .integer(4)])]),
            .string("len"), .integer(6),
        ]))
        #expect(try client.send("LCS", "key1", "missing") == .string(""))
        #expect(try client.send("LCS", "key1", "key2", "LEN", "IDX") == .error("ERR If you want both the length and indexes, please just use IDX."))
        _ = try client.send("LPUSH", "list", "a")
        #expect(try client.send("LCS", "key1", "list") == .error("ERR The specified keys must contain string values"))
        #expect(try client.send("LCS", "key1", "key2", "NOPE") == .error("ERR syntax error"))
    }

    @Test func multiKeyCommandsAndGetVariants() throws {
        let client = try TestNode().connect()
        #expect(try client.send("MSET", "a", "1", "b", "2") == .simple("OK"))
        #expect(try client.send("MGET", "a", "b", "c") == .array([.string("1"), .string("2"), .null]))
        #expect(try client.send("MSETNX", "c", "3", "a", "9") == .integer(0))
        #expect(try client.send("GET", "c") == .null)
        #expect(try client.send("GETSET", "a", "10") == .string("1"))
        #expect(try client.send("GETDEL", "a") == .string("10"))
        #expect(try client.send("EXISTS", "a") == .integer(0))
        #expect(try client.send("SETEX", "e", "10", "v") == .simple("OK"))
        #expect(try client.send("GETEX", "e", "PERSIST") == .string("v"))
        #expect(try client.send("TTL", "e") == .integer(-1))
        #expect(try client.send("MSET", "a") == .error("ERR wrong number of arguments for 'mset' command"))
    }

    @Test func wrongTypeIsReported() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("SET", "k", "v")
        #expect(try client.send("GET", "k") == .string("v"))
        #expect(try client.send("RENAME", "k", "k2") == .simple("OK"))
        #expect(try client.send("TYPE", "k2") == .simple("string"))
    }

    @Test func clientReplyOffAndSkipSuppressReplies() throws {
        let client = try TestNode().connect()
        // OFF: nothing comes back until ON, whose OK is the next reply.
        try client.writeRaw("CLIENT REPLY OFF\r\nSET a 1\r\nGET a\r\nCLIENT REPLY ON\r\nGET a\r\n")
        #expect(try client.allReplies() == [.simple("OK"), .string("1")])
        // SKIP: the next command's reply is dropped, then replies resume.
        try client.writeRaw("CLIENT REPLY SKIP\r\nINCR a\r\nINCR a\r\n")
        #expect(try client.allReplies() == [.integer(3)])
    }
}
