// Tests of the sorted-set family through the real decoder, dispatcher and reply writer, ported from redis's
// tests/unit/type/zset.tcl (RESP2 and RESP3 reply shapes).
import CacheNode
import CacheNodeTestSupport
import CacheStore
import Testing

private func strings(_ values: String...) -> RESPValue { .array(values.map { .string($0) }) }

struct SortedSetCommandsTests {
    @Test func zaddBasicsAndOptions() throws {
        let client = try TestNode().connect()
        #expect(try client.send("ZADD", "ztmp", "10", "x") == .integer(1))
        #expect(try client.send("ZADD", "ztmp", "20", "y") == .integer(1))
        #expect(try client.send("ZADD", "ztmp", "30", "z") == .integer(1))
        #expect(try client.send("ZRANGE", "ztmp", "0", "-1", "WITHSCORES") == strings("x", "10", "y", "20", "z", "30"))
        #expect(try client.send("ZADD", "ztmp", "1", "x") == .integer(0))
        #expect(try client.send("ZSCORE", "ztmp", "x") == .string("1"))
        // XX / NX
        #expect(try client.send("ZADD", "ztmp", "XX", "5", "foo", "11", "x", "21", "y") == .integer(0))
        #expect(try client.send("ZCARD", "ztmp") == .integer(3))
        #expect(try client.send("ZSCORE", "ztmp", "x") == .string("11"))
        #expect(try client.send("ZADD", "ztmp", "NX", "5", "foo", "12", "x") == .integer(1))
        #expect(try client.send("ZSCORE", "ztmp", "x") == .string("11"))
        #expect(try client.send("ZADD", "nokey", "XX", "1", "a") == .integer(0))
        #expect(try client.send("EXISTS", "nokey") == .integer(0))
        // CH, GT, LT
        #expect(try client.send("ZADD", "ztmp", "CH", "100", "x", "21", "y", "1", "new") == .integer(2))
        #expect(try client.send("ZADD", "ztmp", "GT", "CH", "50", "x", "30", "y") == .integer(1))
        #expect(try client.send("ZSCORE", "ztmp", "x") == .string("100"))
        #expect(try client.send("ZADD", "ztmp", "LT", "CH", "50", "x", "30", "y") == .integer(1))
        #expect(try client.send("ZSCORE", "ztmp", "x") == .string("50"))
        #expect(try client.send("ZADD", "ztmp", "GT", "1", "gtnew") == .integer(1))
        // Errors, exact texts.
        #expect(try client.send("ZADD", "ztmp", "XX", "NX", "1", "a") == .error("ERR XX and NX options at the same time are not compatible"))
        #expect(try client.send("ZADD", "ztmp", "GT", "LT", "1", "a") == .error("ERR GT, LT, and/or NX options at the same time are not compatible"))
        #expect(try client.send("ZADD", "ztmp", "NX", "GT", "1", "a") == .error("ERR GT, LT, and/or NX options at the same time are not compatible"))
        #expect(try client.send("ZADD", "ztmp", "INCR", "1", "a", "2", "b") == .error("ERR INCR option supports a single increment-element pair"))
        #expect(try client.send("ZADD", "ztmp", "1", "a", "2") == .error("ERR syntax error"))
        #expect(try client.send("ZADD", "ztmp", "abc", "a") == .error("ERR value is not a valid float"))
        #expect(try client.send("ZADD", "ztmp", "nan", "a") == .error("ERR value is not a valid float"))
        #expect(try client.send("ZADD", "fresh", "1", "a", "x", "b") == .error("ERR value is not a valid float"))
        #expect(try client.send("EXISTS", "fresh") == .integer(0))
        try client.send("SET", "str", "v")
        #expect(try client.send("ZADD", "str", "1", "a") == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
    }

    @Test func zaddIncrAndZincrby() throws {
        let client = try TestNode().connect()
        #expect(try client.send("ZADD", "z", "INCR", "5", "a") == .string("5"))
        #expect(try client.send("ZADD", "z", "INCR", "1.5", "a") == .string("6.5"))
        #expect(try client.send("ZADD", "z", "NX", "INCR", "1", "a") == .null)
        #expect(try client.send("ZADD", "z", "XX", "INCR", "1", "missing") == .null)
        #expect(try client.send("ZADD", "z", "GT", "INCR", "-1", "a") == .null)
        #expect(try client.send("ZINCRBY", "z", "-2", "a") == .string("4.5"))
        #expect(try client.send("ZINCRBY", "z", "3", "b") == .string("3"))
        #expect(try client.send("ZINCRBY", "z", "x", "b") == .error("ERR value is not a valid float"))
        #expect(try client.send("ZADD", "z", "+inf", "i") == .integer(1))
        #expect(try client.send("ZINCRBY", "z", "-inf", "i") == .error("ERR resulting score is not a number (NaN)"))
        #expect(try client.send("ZADD", "z", "INCR", "-inf", "i") == .error("ERR resulting score is not a number (NaN)"))
        #expect(try client.send("ZSCORE", "z", "i") == .string("inf"))
        try client.send("HELLO", "3")
        #expect(try client.send("ZINCRBY", "z", "1", "b") == .double(4))
        #expect(try client.send("ZSCORE", "z", "b") == .double(4))
        #expect(try client.send("ZMSCORE", "z", "b", "nope", "a") == .array([.double(4), .null, .double(4.5)]))
    }

    @Test func zremDeletesEmptyKeysAndCounts() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "z", "1", "a", "2", "b", "3", "c")
        #expect(try client.send("ZREM", "z", "a", "x", "b") == .integer(2))
        #expect(try client.send("ZREM", "z", "c") == .integer(1))
        #expect(try client.send("EXISTS", "z") == .integer(0))
        #expect(try client.send("ZREM", "z", "c") == .integer(0))
        #expect(try client.send("ZCARD", "z") == .integer(0))
        #expect(try client.send("ZSCORE", "z", "c") == .null)
    }

    @Test func rankCommands() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "zranktmp", "10", "x", "20", "y", "30", "z")
        #expect(try client.send("ZRANK", "zranktmp", "x") == .integer(0))
        #expect(try client.send("ZRANK", "zranktmp", "z") == .integer(2))
        #expect(try client.send("ZREVRANK", "zranktmp", "x") == .integer(2))
        #expect(try client.send("ZRANK", "zranktmp", "foo") == .null)
        #expect(try client.send("ZRANK", "zranktmp", "y", "WITHSCORE") == .array([.integer(1), .string("20")]))
        #expect(try client.send("ZREVRANK", "zranktmp", "y", "WITHSCORE") == .array([.integer(1), .string("20")]))
        #expect(try client.send("ZRANK", "zranktmp", "foo", "WITHSCORE") == .nullArray)
        #expect(try client.send("ZRANK", "zranktmp", "x", "bad") == .error("ERR syntax error"))
        #expect(try client.send("ZRANK", "zranktmp", "x", "WITHSCORE", "x") == .error("ERR wrong number of arguments for 'zrank' command"))
        try client.send("HELLO", "3")
        #expect(try client.send("ZRANK", "zranktmp", "z", "WITHSCORE") == .array([.integer(2), .double(30)]))
        #expect(try client.send("ZRANK", "zranktmp", "foo", "WITHSCORE") == .null)
    }

    @Test func zrangeByRankAndZrevrange() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "ztmp", "1", "a", "2", "b", "3", "c", "4", "d")
        #expect(try client.send("ZRANGE", "ztmp", "0", "-1") == strings("a", "b", "c", "d"))
        #expect(try client.send("ZRANGE", "ztmp", "0", "-2") == strings("a", "b", "c"))
        #expect(try client.send("ZRANGE", "ztmp", "1", "-1") == strings("b", "c", "d"))
        #expect(try client.send("ZRANGE", "ztmp", "-1", "-1") == strings("d"))
        #expect(try client.send("ZRANGE", "ztmp", "5", "-1") == strings())
        #expect(try client.send("ZRANGE", "ztmp", "-5", "1") == strings("a", "b"))
        #expect(try client.send("ZRANGE", "ztmp", "0", "5") == strings("a", "b", "c", "d"))
        #expect(try client.send("ZRANGE", "ztmp", "2", "1") == strings())
        #expect(try client.send("ZREVRANGE", "ztmp", "0", "-1") == strings("d", "c", "b", "a"))
        #expect(try client.send("ZREVRANGE", "ztmp", "1", "2") == strings("c", "b"))
        #expect(try client.send("ZREVRANGE", "ztmp", "0", "1", "WITHSCORES") == strings("d", "4", "c", "3"))
        #expect(try client.send("ZRANGE", "ztmp", "0", "-1", "REV") == strings("d", "c", "b", "a"))
        #expect(try client.send("ZRANGE", "ztmp", "0", "1", "LIMIT", "0", "1") ==
                .error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"))
        #expect(try client.send("ZRANGE", "ztmp", "a", "1") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("ZRANGE", "ztmp", "0", "1", "FOO") == .error("ERR syntax error"))
        #expect(try client.send("ZRANGE", "missing", "0", "-1") == strings())
        try client.send("HELLO", "3")
        #expect(try client.send("ZRANGE", "ztmp", "0", "1", "WITHSCORES") ==
                .array([.array([.string("a"), .double(1)]), .array([.string("b"), .double(2)])]))
        #expect(try client.send("ZRANGE", "ztmp", "0", "1") == strings("a", "b"))
    }

    @Test func rangeByScoreWithBoundsAndLimit() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "zset", "-inf", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "+inf", "g")
        #expect(try client.send("ZRANGEBYSCORE", "zset", "-inf", "2") == strings("a", "b", "c"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "3") == strings("b", "c", "d"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "3", "6") == strings("d", "e", "f"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "4", "+inf") == strings("e", "f", "g"))
        #expect(try client.send("ZREVRANGEBYSCORE", "zset", "2", "-inf") == strings("c", "b", "a"))
        #expect(try client.send("ZREVRANGEBYSCORE", "zset", "+inf", "4") == strings("g", "f", "e"))
        #expect(try client.send("ZCOUNT", "zset", "0", "3") == .integer(3))
        // Exclusive bounds.
        #expect(try client.send("ZRANGEBYSCORE", "zset", "(-inf", "(2") == strings("b"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "(0", "(3") == strings("b", "c"))
        #expect(try client.send("ZREVRANGEBYSCORE", "zset", "(+inf", "(4") == strings("f"))
        #expect(try client.send("ZCOUNT", "zset", "(0", "(3") == .integer(2))
        // Empty ranges.
        #expect(try client.send("ZRANGEBYSCORE", "zset", "4", "2") == strings())
        #expect(try client.send("ZRANGEBYSCORE", "zset", "(2", "(2") == strings())
        #expect(try client.send("ZRANGEBYSCORE", "zset", "6", "+inf", "LIMIT", "0", "1") == strings("g"))
        // LIMIT.
        try client.send("DEL", "zset")
        try client.send("ZADD", "zset", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "10", "LIMIT", "0", "2") == strings("a", "b"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "10", "LIMIT", "2", "3") == strings("c", "d", "e"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "10", "LIMIT", "2", "10") == strings("c", "d", "e"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "10", "LIMIT", "20", "10") == strings())
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "10", "LIMIT", "1", "-1") == strings("b", "c", "d", "e"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "10", "LIMIT", "-1", "2") == strings())
        #expect(try client.send("ZREVRANGEBYSCORE", "zset", "10", "0", "LIMIT", "0", "2") == strings("e", "d"))
        #expect(try client.send("ZREVRANGEBYSCORE", "zset", "10", "0", "LIMIT", "2", "10") == strings("c", "b", "a"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "0", "10", "WITHSCORES", "LIMIT", "1", "1") == strings("b", "2"))
        #expect(try client.send("ZRANGE", "zset", "(1", "3", "BYSCORE", "WITHSCORES") == strings("b", "2", "c", "3"))
        #expect(try client.send("ZRANGE", "zset", "3", "(1", "BYSCORE", "REV", "LIMIT", "0", "1") == strings("c"))
        // Errors.
        #expect(try client.send("ZRANGEBYSCORE", "zset", "str", "1") == .error("ERR min or max is not a float"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "1", "NaN") == .error("ERR min or max is not a float"))
        #expect(try client.send("ZCOUNT", "zset", "(", "1") == .error("ERR min or max is not a float"))
        #expect(try client.send("ZRANGEBYSCORE", "zset", "1", "2", "LIMIT", "x", "1") == .error("ERR value is not an integer or out of range"))
    }

    @Test func lexRangesAndLexCount() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "zset", "0", "alpha", "0", "bar", "0", "cool", "0", "down", "0", "elephant", "0", "foo", "0", "great", "0", "hill", "0", "omega")
        #expect(try client.send("ZRANGEBYLEX", "zset", "-", "[cool") == strings("alpha", "bar", "cool"))
        #expect(try client.send("ZRANGEBYLEX", "zset", "[bar", "[down") == strings("bar", "cool", "down"))
        #expect(try client.send("ZRANGEBYLEX", "zset", "[g", "+") == strings("great", "hill", "omega"))
        #expect(try client.send("ZREVRANGEBYLEX", "zset", "[cool", "-") == strings("cool", "bar", "alpha"))
        #expect(try client.send("ZREVRANGEBYLEX", "zset", "+", "(great") == strings("omega", "hill"))
        #expect(try client.send("ZRANGEBYLEX", "zset", "(az", "(b") == strings())
        #expect(try client.send("ZLEXCOUNT", "zset", "[ele", "[h") == .integer(3))
        #expect(try client.send("ZLEXCOUNT", "zset", "-", "+") == .integer(9))
        #expect(try client.send("ZRANGEBYLEX", "zset", "-", "+", "LIMIT", "0", "2") == strings("alpha", "bar"))
        #expect(try client.send("ZRANGEBYLEX", "zset", "-", "+", "LIMIT", "7", "5") == strings("hill", "omega"))
        #expect(try client.send("ZREVRANGEBYLEX", "zset", "+", "-", "LIMIT", "1", "2") == strings("hill", "great"))
        #expect(try client.send("ZRANGE", "zset", "[f", "+", "BYLEX", "LIMIT", "0", "2") == strings("foo", "great"))
        #expect(try client.send("ZRANGE", "zset", "+", "[f", "BYLEX", "REV", "LIMIT", "0", "2") == strings("omega", "hill"))
        #expect(try client.send("ZRANGEBYLEX", "zset", "foo", "+") == .error("ERR min or max not valid string range item"))
        #expect(try client.send("ZLEXCOUNT", "zset", "[a", "x") == .error("ERR min or max not valid string range item"))
        #expect(try client.send("ZRANGE", "zset", "-", "+", "BYLEX", "WITHSCORES") ==
                .error("ERR syntax error, WITHSCORES not supported in combination with BYLEX"))
    }

    @Test func removeRanges() throws {
        let client = try TestNode().connect()
        func reset() throws {
            try client.send("DEL", "z")
            try client.send("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
        }
        try reset()
        #expect(try client.send("ZREMRANGEBYSCORE", "z", "2", "4") == .integer(3))
        #expect(try client.send("ZRANGE", "z", "0", "-1") == strings("a", "e"))
        try reset()
        #expect(try client.send("ZREMRANGEBYSCORE", "z", "(1", "(5") == .integer(3))
        #expect(try client.send("ZREMRANGEBYSCORE", "z", "-inf", "+inf") == .integer(2))
        #expect(try client.send("EXISTS", "z") == .integer(0))
        try reset()
        #expect(try client.send("ZREMRANGEBYSCORE", "z", "a", "1") == .error("ERR min or max is not a float"))
        #expect(try client.send("ZREMRANGEBYRANK", "z", "1", "3") == .integer(3))
        #expect(try client.send("ZRANGE", "z", "0", "-1") == strings("a", "e"))
        try reset()
        #expect(try client.send("ZREMRANGEBYRANK", "z", "-2", "-1") == .integer(2))
        #expect(try client.send("ZREMRANGEBYRANK", "z", "5", "10") == .integer(0))
        #expect(try client.send("ZREMRANGEBYRANK", "z", "0", "-1") == .integer(3))
        #expect(try client.send("EXISTS", "z") == .integer(0))
        try client.send("ZADD", "l", "0", "alpha", "0", "bar", "0", "cool", "0", "down")
        #expect(try client.send("ZREMRANGEBYLEX", "l", "[b", "(d") == .integer(2))
        #expect(try client.send("ZRANGE", "l", "0", "-1") == strings("alpha", "down"))
        #expect(try client.send("ZREMRANGEBYLEX", "l", "-", "+") == .integer(2))
        #expect(try client.send("EXISTS", "l") == .integer(0))
        #expect(try client.send("ZREMRANGEBYLEX", "l", "a", "+") == .error("ERR min or max not valid string range item"))
    }

    @Test func zrangestore() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "z1{t}", "1", "a", "2", "b", "3", "c", "4", "d")
        #expect(try client.send("ZRANGESTORE", "z2{t}", "z1{t}", "0", "-1") == .integer(4))
        #expect(try client.send("ZRANGE", "z2{t}", "0", "-1", "WITHSCORES") == strings("a", "1", "b", "2", "c", "3", "d", "4"))
        #expect(try client.send("ZRANGESTORE", "z2{t}", "z1{t}", "5", "6") == .integer(0))
        #expect(try client.send("EXISTS", "z2{t}") == .integer(0))
        #expect(try client.send("ZRANGESTORE", "z2{t}", "z1{t}", "(1", "4", "BYSCORE", "LIMIT", "1", "2") == .integer(2))
        #expect(try client.send("ZRANGE", "z2{t}", "0", "-1") == strings("c", "d"))
        #expect(try client.send("ZRANGESTORE", "z2{t}", "z1{t}", "[c", "-", "BYLEX", "REV") == .integer(3))
        #expect(try client.send("ZRANGE", "z2{t}", "0", "-1") == strings("a", "b", "c"))
        #expect(try client.send("ZRANGESTORE", "z2{t}", "z1{t}", "0", "-1", "WITHSCORES") == .error("ERR syntax error"))
        #expect(try client.send("ZRANGESTORE", "z2{t}", "missing{t}", "0", "-1") == .integer(0))
        #expect(try client.send("EXISTS", "z2{t}") == .integer(0))
        try client.send("SET", "s{t}", "x")
        #expect(try client.send("ZRANGESTORE", "s{t}", "z1{t}", "0", "0") == .integer(1))
        #expect(try client.send("TYPE", "s{t}") == .simple("zset"))
    }

    @Test func popsInBothProtocols() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "z", "1", "a", "2", "b", "3", "c", "-1", "neg")
        #expect(try client.send("ZPOPMIN", "z") == strings("neg", "-1"))
        #expect(try client.send("ZPOPMAX", "z") == strings("c", "3"))
        #expect(try client.send("ZPOPMIN", "z", "0") == strings())
        #expect(try client.send("ZPOPMIN", "z", "-1") == .error("ERR value is out of range, must be positive"))
        #expect(try client.send("ZPOPMIN", "z", "1", "2") == .error("ERR syntax error"))
        #expect(try client.send("ZPOPMIN", "z", "10") == strings("a", "1", "b", "2"))
        #expect(try client.send("EXISTS", "z") == .integer(0))
        #expect(try client.send("ZPOPMIN", "z") == strings())
        try client.send("SET", "s", "x")
        #expect(try client.send("ZPOPMIN", "s") == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        try client.send("HELLO", "3")
        try client.send("ZADD", "z", "1", "a", "2", "b", "3", "c")
        #expect(try client.send("ZPOPMIN", "z") == .array([.string("a"), .double(1)]))
        #expect(try client.send("ZPOPMAX", "z", "2") == .array([.array([.string("c"), .double(3)]), .array([.string("b"), .double(2)])]))
    }

    @Test func zmpop() throws {
        let client = try TestNode().connect()
        #expect(try client.send("ZMPOP", "2", "a{t}", "b{t}", "MIN") == .nullArray)
        try client.send("ZADD", "b{t}", "1", "x", "2", "y", "3", "z")
        #expect(try client.send("ZMPOP", "2", "a{t}", "b{t}", "MIN") == .array([.string("b{t}"), .array([strings("x", "1")])]))
        #expect(try client.send("ZMPOP", "2", "a{t}", "b{t}", "MAX", "COUNT", "10") ==
                .array([.string("b{t}"), .array([strings("z", "3"), strings("y", "2")])]))
        #expect(try client.send("EXISTS", "b{t}") == .integer(0))
        #expect(try client.send("ZMPOP", "0", "a{t}", "MIN") == .error("ERR numkeys should be greater than 0"))
        #expect(try client.send("ZMPOP", "1", "a{t}", "LEFT") == .error("ERR syntax error"))
        #expect(try client.send("ZMPOP", "1", "a{t}", "MIN", "COUNT", "0") == .error("ERR count should be greater than 0"))
        #expect(try client.send("ZMPOP", "1", "a{t}", "MIN", "COUNT", "1", "COUNT", "2") == .error("ERR syntax error"))
        #expect(try client.send("ZMPOP", "3", "a{t}", "MIN") == .error("ERR syntax error"))
        #expect(try client.send("ZMPOP", "1", "a{t}") == .error("ERR wrong number of arguments for 'zmpop' command"))
        #expect(try client.send("ZMPOP", "5", "a{t}", "MIN") == .error("ERR syntax error"))
        try client.send("HELLO", "3")
        #expect(try client.send("ZMPOP", "1", "a{t}", "MIN") == .null)
        try client.send("ZADD", "a{t}", "5", "m")
        #expect(try client.send("ZMPOP", "1", "a{t}", "MIN") == .array([.string("a{t}"), .array([.array([.string("m"), .double(5)])])]))
    }

    @Test func zrandmember() throws {
        let client = try TestNode().connect()
        #expect(try client.send("ZRANDMEMBER", "z") == .null)
        #expect(try client.send("ZRANDMEMBER", "z", "5") == strings())
        try client.send("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
        let members: Set = ["a", "b", "c", "d", "e"]
        #expect(members.contains(try client.send("ZRANDMEMBER", "z").text ?? ""))
        #expect(Set(try client.send("ZRANDMEMBER", "z", "10").strings ?? []) == members)
        let three = try client.send("ZRANDMEMBER", "z", "3").strings ?? []
        #expect(three.count == 3 && Set(three).count == 3 && Set(three).isSubset(of: members))
        let repeated = try client.send("ZRANDMEMBER", "z", "-20").strings ?? []
        #expect(repeated.count == 20 && Set(repeated).isSubset(of: members))
        let scored = try client.send("ZRANDMEMBER", "z", "-4", "WITHSCORES").strings ?? []
        #expect(scored.count == 8)
        for pair in stride(from: 0, to: scored.count, by: 2) {
            #expect(try client.send("ZSCORE", "z", scored[pair]).text == scored[pair + 1])
        }
        #expect(try client.send("ZRANDMEMBER", "z", "0") == strings())
        #expect(try client.send("ZRANDMEMBER", "z", "1", "FOO") == .error("ERR syntax error"))
        #expect(try client.send("ZRANDMEMBER", "z", "-9223372036854775808", "WITHSCORES") ==
                .error("ERR value is out of range, must be between -9223372036854775807 and 9223372036854775807"))
        #expect(try client.send("ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES") == .error("ERR value is out of range"))
        try client.send("HELLO", "3")
        let nested = try client.send("ZRANDMEMBER", "z", "2", "WITHSCORES").elements ?? []
        #expect(nested.count == 2)
        for pair in nested {
            guard case .array(let items) = pair, items.count == 2, case .double = items[1] else {
                Issue.record("expected a [member, score] pair, got \(pair)")
                continue
            }
        }
    }

    @Test func unionInterDiffWithWeightsAndAggregates() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("ZADD", "zseta{t}", "1", "a", "2", "b", "3", "c")
        try client.send("ZADD", "zsetb{t}", "1", "b", "2", "c", "3", "d")
        #expect(try client.send("ZUNIONSTORE", "zsetc{t}", "2", "zseta{t}", "zsetb{t}") == .integer(4))
        #expect(try client.send("ZRANGE", "zsetc{t}", "0", "-1", "WITHSCORES") == strings("a", "1", "b", "3", "d", "3", "c", "5"))
        #expect(try client.send("ZUNION", "2", "zseta{t}", "zsetb{t}", "WITHSCORES") == strings("a", "1", "b", "3", "d", "3", "c", "5"))
        #expect(try client.send("ZINTERSTORE", "zsetc{t}", "2", "zseta{t}", "zsetb{t}") == .integer(2))
        #expect(try client.send("ZRANGE", "zsetc{t}", "0", "-1", "WITHSCORES") == strings("b", "3", "c", "5"))
        #expect(try client.send("ZUNIONSTORE", "zsetc{t}", "2", "zseta{t}", "zsetb{t}", "WEIGHTS", "2", "3") == .integer(4))
        #expect(try client.send("ZRANGE", "zsetc{t}", "0", "-1", "WITHSCORES") == strings("a", "2", "b", "7", "d", "9", "c", "12"))
        #expect(try client.send("ZUNION", "2", "zseta{t}", "zsetb{t}", "AGGREGATE", "MIN", "WITHSCORES") == strings("a", "1", "b", "1", "c", "2", "d", "3"))
        #expect(try client.send("ZUNION", "2", "zseta{t}", "zsetb{t}", "AGGREGATE", "MAX", "WITHSCORES") == strings("a", "1", "b", "2", "c", "3", "d", "3"))
        #expect(try client.send("ZINTER", "2", "zseta{t}", "zsetb{t}", "WEIGHTS", "2", "3", "WITHSCORES") == strings("b", "7", "c", "12"))
        #expect(try client.send("ZINTER", "2", "zseta{t}", "zsetb{t}", "AGGREGATE", "MAX") == strings("b", "c"))
        #expect(try client.send("ZDIFF", "2", "zseta{t}", "zsetb{t}", "WITHSCORES") == strings("a", "1"))
        #expect(try client.send("ZDIFFSTORE", "zsetc{t}", "2", "zseta{t}", "zsetb{t}") == .integer(1))
        #expect(try client.send("ZDIFFSTORE", "zsetc{t}", "2", "zseta{t}", "zseta{t}") == .integer(0))
        #expect(try client.send("EXISTS", "zsetc{t}") == .integer(0))
        #expect(try client.send("ZINTERCARD", "2", "zseta{t}", "zsetb{t}") == .integer(2))
        #expect(try client.send("ZINTERCARD", "2", "zseta{t}", "zsetb{t}", "LIMIT", "1") == .integer(1))
        #expect(try client.send("ZINTERCARD", "2", "zseta{t}", "zsetb{t}", "LIMIT", "0") == .integer(2))
        // Plain sets are inputs with score 1; missing keys are empty.
        #expect(try client.send("SADD", "plain{t}", "a", "x") == .integer(2))
        #expect(try client.send("ZUNION", "2", "zseta{t}", "plain{t}", "WITHSCORES") == strings("x", "1", "a", "2", "b", "2", "c", "3"))
        #expect(try client.send("ZINTER", "3", "zseta{t}", "plain{t}", "missing{t}") == strings())
        // inf * 0 weights and inf + -inf sums are 0, as in redis.
        try client.send("ZADD", "inf1{t}", "+inf", "m")
        try client.send("ZADD", "inf2{t}", "-inf", "m")
        #expect(try client.send("ZUNION", "2", "inf1{t}", "inf2{t}", "WITHSCORES") == strings("m", "0"))
        #expect(try client.send("ZUNION", "1", "inf1{t}", "WEIGHTS", "0", "WITHSCORES") == strings("m", "0"))
        // Errors.
        #expect(try client.send("ZUNION", "0", "zseta{t}") == .error("ERR at least 1 input key is needed for 'zunion' command"))
        #expect(try client.send("ZUNIONSTORE", "d{t}", "0", "zseta{t}") == .error("ERR at least 1 input key is needed for 'zunionstore' command"))
        #expect(try client.send("ZUNION", "3", "zseta{t}", "zsetb{t}") == .error("ERR syntax error"))
        #expect(try client.send("ZUNION", "2", "zseta{t}", "zsetb{t}", "WEIGHTS", "1", "x") == .error("ERR weight value is not a float"))
        #expect(try client.send("ZUNION", "2", "zseta{t}", "zsetb{t}", "AGGREGATE", "AVG") == .error("ERR syntax error"))
        #expect(try client.send("ZDIFF", "2", "zseta{t}", "zsetb{t}", "WEIGHTS", "1", "2") == .error("ERR syntax error"))
        #expect(try client.send("ZUNIONSTORE", "d{t}", "1", "zseta{t}", "WITHSCORES") == .error("ERR syntax error"))
        #expect(try client.send("ZINTERCARD", "0", "zseta{t}") == .error("ERR at least 1 input key is needed for 'zintercard' command"))
        #expect(try client.send("ZINTERCARD", "1", "zseta{t}", "LIMIT", "a") == .error("ERR LIMIT can't be negative"))
        #expect(try client.send("ZINTERCARD", "1", "zseta{t}", "LIMIT", "-1") == .error("ERR LIMIT can't be negative"))
        #expect(try client.send("ZINTERCARD", "1", "zseta{t}", "zsetb{t}") == .error("ERR syntax error"))
        try client.send("SET", "str{t}", "x")
        #expect(try client.send("ZUNION", "2", "zseta{t}", "str{t}") == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        try client.send("HELLO", "3")
        #expect(try client.send("ZINTER", "2", "zseta{t}", "zsetb{t}", "WITHSCORES") ==
                .array([.array([.string("b"), .double(3)]), .array([.string("c"), .double(5)])]))
    }

    @Test func zscanReturnsEveryMemberWithScores() throws {
        let client = try TestNode().connect()
        for i in 0..<300 { try client.send("ZADD", "big", "\(i)", "m\(i)") }
        var cursor = "0"
        var seen: [String: String] = [:]
        repeat {
            let reply = try client.send("ZSCAN", "big", cursor, "COUNT", "50")
            guard let parts = reply.elements, parts.count == 2, let items = parts[1].strings else {
                Issue.record("bad ZSCAN reply \(reply)")
                return
            }
            cursor = parts[0].text ?? "0"
            for pair in stride(from: 0, to: items.count, by: 2) { seen[items[pair]] = items[pair + 1] }
        } while cursor != "0"
        #expect(seen.count == 300)
        #expect(seen["m42"] == "42")
        // Deleting already-returned members mid-scan skips nothing; runs of equal scores never split across pages.
        for i in 0..<300 { try client.send("ZADD", "ties", "\(i / 7 - 20)", "t\(i)") }
        cursor = "0"
        var tied: Set<String> = []
        var pages = 0
        repeat {
            let reply = try client.send("ZSCAN", "ties", cursor, "COUNT", "10")
            guard let parts = reply.elements, parts.count == 2, let items = parts[1].strings else {
                Issue.record("bad ZSCAN reply \(reply)")
                return
            }
            cursor = parts[0].text ?? "0"
            pages += 1
            for pair in stride(from: 0, to: items.count, by: 2) {
                tied.insert(items[pair])
                try client.send("ZREM", "ties", items[pair])
            }
        } while cursor != "0"
        #expect(tied.count == 300)
        #expect(pages > 10)
        try client.send("ZADD", "small", "1", "foo", "2", "bar", "3", "baz")
        #expect(try client.send("ZSCAN", "small", "0", "MATCH", "ba*") == .array([.string("0"), strings("bar", "2", "baz", "3")]))
        #expect(try client.send("ZSCAN", "missing", "0") == .array([.string("0"), strings()]))
    }

    @Test func memoryEstimateFollowsGrowthAndDeletion() throws {
        let client = try TestNode().connect()
        try client.send("ZADD", "z", "1", "a")
        let small = try client.send("MEMORY", "USAGE", "z")
        for i in 0..<200 { try client.send("ZADD", "z", "\(i)", "member-with-a-long-name-\(i)") }
        let large = try client.send("MEMORY", "USAGE", "z")
        if case .integer(let before) = small, case .integer(let after) = large {
            #expect(after > before + 200 * 40)
        } else {
            Issue.record("MEMORY USAGE replies: \(small) \(large)")
        }
        #expect(try client.send("ZREMRANGEBYRANK", "z", "0", "-1") == .integer(201))
        #expect(try client.send("MEMORY", "USAGE", "z") == .null)
    }
}
