// Tests of the non-blocking list commands through the real decoder, dispatcher and reply writer, ported from
// redis tests/unit/type/list.tcl (the blocking forms are in Blocking/BlockingCommandsTests.swift).
import CacheNode
import CacheNodeTestSupport
import CacheStore
import RESPServer
import Testing

struct ListCommandsTests {
    /// A value longer than the inline capacity of CompactBytes, like list.tcl's "quicklist" large value.
    static let large = String(repeating: "x", count: 300)

    @Test(arguments: ["small", ListCommandsTests.large])
    func pushLengthIndexAndPop(value: String) throws {
        let client = try TestNode().connect()
        #expect(try client.send("LPUSH", "mylist1", value) == .integer(1))
        #expect(try client.send("RPUSH", "mylist1", "b") == .integer(2))
        #expect(try client.send("RPUSH", "mylist1", "c") == .integer(3))
        #expect(try client.send("LLEN", "mylist1") == .integer(3))
        #expect(try client.send("LINDEX", "mylist1", "0") == .string(value))
        #expect(try client.send("LINDEX", "mylist1", "1") == .string("b"))
        #expect(try client.send("LINDEX", "mylist1", "2") == .string("c"))
        #expect(try client.send("LINDEX", "mylist1", "3") == .null)
        #expect(try client.send("LINDEX", "mylist1", "-1") == .string("c"))
        #expect(try client.send("LINDEX", "mylist1", "-4") == .null)
        #expect(try client.send("RPOP", "mylist1") == .string("c"))
        #expect(try client.send("LPOP", "mylist1") == .string(value))

        #expect(try client.send("RPUSH", "mylist2", value) == .integer(1))
        #expect(try client.send("LPUSH", "mylist2", "b") == .integer(2))
        #expect(try client.send("LPUSH", "mylist2", "c") == .integer(3))
        #expect(try client.send("LRANGE", "mylist2", "0", "-1").strings == ["c", "b", value])
        #expect(try client.send("RPOP", "mylist2") == .string(value))
        #expect(try client.send("LPOP", "mylist2") == .string("c"))
    }

    @Test func variadicPushesAndEmptyListsAreDeleted() throws {
        let client = try TestNode().connect()
        #expect(try client.send("LPUSH", "mylist", "a", "b", "c", "d") == .integer(4))
        #expect(try client.send("RPUSH", "mylist", "0", "1", "2", "3") == .integer(8))
        #expect(try client.send("LRANGE", "mylist", "0", "-1").strings == ["d", "c", "b", "a", "0", "1", "2", "3"])
        #expect(try client.send("TYPE", "mylist") == .simple("list"))
        #expect(try client.send("DEL", "mylist") == .integer(1))
        #expect(try client.send("EXISTS", "mylist") == .integer(0))
        #expect(try client.send("LLEN", "mylist") == .integer(0))

        #expect(try client.send("RPUSH", "one", "x") == .integer(1))
        #expect(try client.send("LPOP", "one") == .string("x"))
        #expect(try client.send("EXISTS", "one") == .integer(0))
    }

    @Test func pushxOnlyPushesToExistingLists() throws {
        let client = try TestNode().connect()
        #expect(try client.send("LPUSHX", "xlist", "a") == .integer(0))
        #expect(try client.send("RPUSHX", "xlist", "a") == .integer(0))
        #expect(try client.send("EXISTS", "xlist") == .integer(0))
        try client.send("RPUSH", "xlist", Self.large, "c")
        #expect(try client.send("RPUSHX", "xlist", "d") == .integer(3))
        #expect(try client.send("LPUSHX", "xlist", "a") == .integer(4))
        #expect(try client.send("RPUSHX", "xlist", "42", "x") == .integer(6))
        #expect(try client.send("LPUSHX", "xlist", "y3", "y2", "y1") == .integer(9))
        #expect(try client.send("LRANGE", "xlist", "0", "-1").strings
                == ["y1", "y2", "y3", "a", Self.large, "c", "d", "42", "x"])
    }

    @Test func popWithCountAndItsArityAndRangeErrors() throws {
        let client = try TestNode().connect()
        #expect(try client.send("LPOP", "key", "1", "1") == .error("ERR wrong number of arguments for 'lpop' command"))
        #expect(try client.send("RPOP", "key", "2", "2") == .error("ERR wrong number of arguments for 'rpop' command"))
        #expect(try client.send("LPUSH", "listcount", "aa", Self.large, "cc", "dd", "ee", "ff", "gg") == .integer(7))
        #expect(try client.send("LPOP", "listcount", "1") == .array([.string("gg")]))
        #expect(try client.send("LPOP", "listcount", "2").strings == ["ff", "ee"])
        #expect(try client.send("RPOP", "listcount", "2").strings == ["aa", Self.large])
        #expect(try client.send("RPOP", "listcount", "1").strings == ["cc"])
        #expect(try client.send("RPOP", "listcount", "123").strings == ["dd"])
        #expect(try client.send("EXISTS", "listcount") == .integer(0))
        #expect(try client.send("LPOP", "forbarqaz", "-123") == .error("ERR value is out of range, must be positive"))
        #expect(try client.send("LPOP", "forbarqaz", "abc") == .error("ERR value is out of range, must be positive"))
    }

    @Test(arguments: [2, 3])
    func popNullShapesFollowTheProtocol(protocolVersion: Int) throws {
        let client = try TestNode().connect()
        if protocolVersion == 3 { try client.send("HELLO", "3") }
        try client.send("LPUSH", "listcount", "zero")
        #expect(try client.send("LPOP", "listcount", "0") == .array([]))
        #expect(try client.send("RPOP", "listcount", "0") == .array([]))
        #expect(try client.send("LLEN", "listcount") == .integer(1))
        // RESP2: a null bulk without count and a null array with it; RESP3: `_` for both.
        let nullBulk: RESPValue = .null
        let nullArray: RESPValue = protocolVersion == 3 ? .null : .nullArray
        #expect(try client.send("LPOP", "non_existing_key") == nullBulk)
        #expect(try client.send("RPOP", "non_existing_key") == nullBulk)
        #expect(try client.send("LPOP", "non_existing_key", "0") == nullArray)
        #expect(try client.send("LPOP", "non_existing_key", "1") == nullArray)
        #expect(try client.send("RPOP", "non_existing_key", "0") == nullArray)
        #expect(try client.send("RPOP", "non_existing_key", "1") == nullArray)
        #expect(try client.send("LMPOP", "1", "non_existing_key", "LEFT") == nullArray)
        #expect(try client.send("LINDEX", "non_existing_key", "0") == nullBulk)
        #expect(try client.send("LPOS", "non_existing_key", "a") == nullBulk)
        #expect(try client.send("RPOPLPUSH", "non_existing_key", "dst") == nullBulk)
    }

    @Test func rangesUseRedisIndexRules() throws {
        let client = try TestNode().connect()
        try client.send("RPUSH", "mylist", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
        #expect(try client.send("LRANGE", "mylist", "1", "-2").strings == ["2", "3", "4", "5", "6", "7", "8", "9"])
        #expect(try client.send("LRANGE", "mylist", "-3", "-1").strings == ["8", "9", "10"])
        #expect(try client.send("LRANGE", "mylist", "4", "4").strings == ["5"])
        #expect(try client.send("LRANGE", "mylist", "6", "2") == .array([]))
        #expect(try client.send("LRANGE", "mylist", "-1000", "1000").strings?.count == 10)
        #expect(try client.send("LRANGE", "mylist", "0", "-10").strings == ["1"])
        #expect(try client.send("LRANGE", "mylist", "0", "-11") == .array([]))
        #expect(try client.send("LRANGE", "nosuchkey", "0", "1") == .array([]))
        #expect(try client.send("LRANGE", "mylist", "a", "1") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("LRANGE", "mylist", "0", "-9223372036854775808").strings == [])
    }

    @Test func trimKeepsTheRangeAndDeletesEmptyLists() throws {
        let client = try TestNode().connect()
        func trimmed(_ start: String, _ stop: String) throws -> [String]? {
            try client.send("DEL", "mylist")
            try client.send("RPUSH", "mylist", "1", "2", "3", "4", Self.large)
            try client.send("LTRIM", "mylist", start, stop)
            return try client.send("LRANGE", "mylist", "0", "-1").strings
        }
        #expect(try trimmed("0", "0") == ["1"])
        #expect(try trimmed("0", "1") == ["1", "2"])
        #expect(try trimmed("0", "2") == ["1", "2", "3"])
        #expect(try trimmed("1", "2") == ["2", "3"])
        #expect(try trimmed("1", "-1") == ["2", "3", "4", Self.large])
        #expect(try trimmed("1", "-2") == ["2", "3", "4"])
        #expect(try trimmed("-2", "-1") == ["4", Self.large])
        #expect(try trimmed("-1", "-1") == [Self.large])
        #expect(try trimmed("-5", "-1") == ["1", "2", "3", "4", Self.large])
        #expect(try trimmed("-10", "10") == ["1", "2", "3", "4", Self.large])
        #expect(try trimmed("0", "5") == ["1", "2", "3", "4", Self.large])
        #expect(try trimmed("0", "10") == ["1", "2", "3", "4", Self.large])
        #expect(try trimmed("0", "-10") == [])
        #expect(try client.send("EXISTS", "mylist") == .integer(0))
        #expect(try trimmed("3", "1") == [])
        #expect(try client.send("LTRIM", "missing", "0", "1") == .simple("OK"))
        #expect(try client.send("LTRIM", "missing", "x", "1") == .error("ERR value is not an integer or out of range"))
    }

    @Test func setReplacesByIndex() throws {
        let client = try TestNode().connect()
        try client.send("RPUSH", "mylist", "99", "98", Self.large, "96", "95")
        #expect(try client.send("LSET", "mylist", "1", "foo") == .simple("OK"))
        #expect(try client.send("LSET", "mylist", "-1", "bar") == .simple("OK"))
        #expect(try client.send("LRANGE", "mylist", "0", "-1").strings == ["99", "foo", Self.large, "96", "bar"])
        #expect(try client.send("LSET", "mylist", "10", "foo") == .error("ERR index out of range"))
        #expect(try client.send("LSET", "mylist", "x", "foo") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("LSET", "nosuchkey", "10", "foo") == .error("ERR no such key"))
        try client.send("SET", "nolist", "foobar")
        #expect(try client.send("LSET", "nolist", "0", "foo")
                == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
    }

    @Test func insertBeforeAndAfterThePivot() throws {
        let client = try TestNode().connect()
        try client.send("RPUSH", "xlist", "a", Self.large, "c", "d")
        #expect(try client.send("LINSERT", "xlist", "before", "c", "zz") == .integer(5))
        #expect(try client.send("LRANGE", "xlist", "0", "10").strings == ["a", Self.large, "zz", "c", "d"])
        #expect(try client.send("LINSERT", "xlist", "AFTER", "c", "yy") == .integer(6))
        #expect(try client.send("LINSERT", "xlist", "after", "d", "dd") == .integer(7))
        #expect(try client.send("LINSERT", "xlist", "after", "bad", "ddd") == .integer(-1))
        #expect(try client.send("LINSERT", "xlist", "before", "a", "aa") == .integer(8))
        #expect(try client.send("LINSERT", "xlist", "before", "bad", "aaa") == .integer(-1))
        #expect(try client.send("LRANGE", "xlist", "0", "10").strings == ["aa", "a", Self.large, "zz", "c", "yy", "d", "dd"])
        #expect(try client.send("LINSERT", "xlist", "before", "aa", "42") == .integer(9))
        #expect(try client.send("LRANGE", "xlist", "0", "0").strings == ["42"])
        #expect(try client.send("LINSERT", "xlist", "aft3r", "aa", "42") == .error("ERR syntax error"))
        #expect(try client.send("LINSERT", "not-a-key", "before", "0", "0") == .integer(0))
        try client.send("SET", "k1", "v1")
        #expect(try client.send("LINSERT", "k1", "after", "0", "0")
                == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
    }

    @Test func removeByCountFromEitherEnd() throws {
        let client = try TestNode().connect()
        try client.send("RPUSH", "mylist", "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo")
        #expect(try client.send("LREM", "mylist", "0", "bar") == .integer(2))
        #expect(try client.send("LRANGE", "mylist", "0", "-1").strings == ["foo", "foobar", "foobared", "zap", "test", "foo"])
        #expect(try client.send("LREM", "mylist", "1", "foo") == .integer(1))
        #expect(try client.send("LRANGE", "mylist", "0", "-1").strings == ["foobar", "foobared", "zap", "test", "foo"])
        #expect(try client.send("LREM", "mylist", "1", "nosuchelement") == .integer(0))

        try client.send("DEL", "mylist")
        try client.send("RPUSH", "mylist", "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo", "foo")
        #expect(try client.send("LREM", "mylist", "-1", "bar") == .integer(1))
        #expect(try client.send("LRANGE", "mylist", "0", "-1").strings
                == ["foo", "bar", "foobar", "foobared", "zap", "test", "foo", "foo"])
        #expect(try client.send("LREM", "mylist", "-2", "foo") == .integer(2))
        #expect(try client.send("LRANGE", "mylist", "0", "-1").strings == ["foo", "bar", "foobar", "foobared", "zap", "test"])

        try client.send("DEL", "myotherlist")
        try client.send("LPUSH", "myotherlist", "1", "2", "3")
        #expect(try client.send("LREM", "myotherlist", "1", "2") == .integer(1))
        #expect(try client.send("LLEN", "myotherlist") == .integer(2))

        #expect(try client.send("LREM", "myotherlist", "0", "1") == .integer(1))
        #expect(try client.send("LREM", "myotherlist", "0", "3") == .integer(1))
        #expect(try client.send("EXISTS", "myotherlist") == .integer(0))
        #expect(try client.send("LREM", "myotherlist", "x", "3") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("LREM", "missing", "0", "3") == .integer(0))
    }

    @Test func positionWithRankCountAndMaxlen() throws {
        let client = try TestNode().connect()
        try client.send("RPUSH", "mylist", "a", "b", "c", Self.large, "2", "3", "c", "c")
        #expect(try client.send("LPOS", "mylist", "a") == .integer(0))
        #expect(try client.send("LPOS", "mylist", "c") == .integer(2))
        #expect(try client.send("LPOS", "mylist", "c", "RANK", "1") == .integer(2))
        #expect(try client.send("LPOS", "mylist", "c", "RANK", "2") == .integer(6))
        #expect(try client.send("LPOS", "mylist", "c", "RANK", "4") == .null)
        #expect(try client.send("LPOS", "mylist", "c", "RANK", "-1") == .integer(7))
        #expect(try client.send("LPOS", "mylist", "c", "RANK", "-2") == .integer(6))
        #expect(try client.send("LPOS", "mylist", "c", "RANK", "0") == .error(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"))
        #expect(try client.send("LPOS", "mylist", "c", "RANK", "-9223372036854775808") == .error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"))

        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "0") == .array([.integer(2), .integer(6), .integer(7)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "1") == .array([.integer(2)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "2") == .array([.integer(2), .integer(6)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "100") == .array([.integer(2), .integer(6), .integer(7)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "0", "RANK", "2") == .array([.integer(6), .integer(7)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "2", "RANK", "-1") == .array([.integer(7), .integer(6)]))
        #expect(try client.send("LPOS", "mylistxxx", "c", "COUNT", "0", "RANK", "2") == .array([]))
        #expect(try client.send("LPOS", "mylist", "x", "COUNT", "2", "RANK", "-1") == .array([]))
        #expect(try client.send("LPOS", "mylist", "x", "RANK", "-1") == .null)

        #expect(try client.send("LPOS", "mylist", "a", "COUNT", "0", "MAXLEN", "1") == .array([.integer(0)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "0", "MAXLEN", "1") == .array([]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "0", "MAXLEN", "3") == .array([.integer(2)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "0", "MAXLEN", "3", "RANK", "-1")
                == .array([.integer(7), .integer(6)]))
        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "0", "MAXLEN", "7", "RANK", "2") == .array([.integer(6)]))

        #expect(try client.send("LPOS", "mylist", "c", "COUNT", "-1") == .error("ERR COUNT can't be negative"))
        #expect(try client.send("LPOS", "mylist", "c", "MAXLEN", "-1") == .error("ERR MAXLEN can't be negative"))
        #expect(try client.send("LPOS", "mylist", "c", "RANK") == .error("ERR syntax error"))
        #expect(try client.send("LPOS", "mylist", "c", "FOO", "1") == .error("ERR syntax error"))

        try client.send("DEL", "mylist")
        try client.send("LPUSH", "mylist", "a")
        #expect(try client.send("LPOS", "mylist", "b", "COUNT", "10", "RANK", "5") == .array([]))
    }

    @Test(arguments: ["left", "right"], ["left", "right"])
    func moveBetweenListsInEveryDirection(from: String, to: String) throws {
        let client = try TestNode().connect()
        if from == "right" {
            try client.send("RPUSH", "mylist1", "c", "d", Self.large, "a")
        } else {
            try client.send("RPUSH", "mylist1", "a", Self.large, "c", "d")
        }
        #expect(try client.send("LMOVE", "mylist1", "mylist2", from, to) == .string("a"))
        #expect(try client.send("LMOVE", "mylist1", "mylist2", from, to) == .string(Self.large))
        #expect(try client.send("LRANGE", "mylist1", "0", "-1").strings == ["c", "d"])
        #expect(try client.send("LRANGE", "mylist2", "0", "-1").strings == (to == "right" ? ["a", Self.large] : [Self.large, "a"]))

        // The same list as source and destination rotates it.
        try client.send("DEL", "mylist")
        if from == "right" {
            try client.send("RPUSH", "mylist", "a", Self.large, "c")
        } else {
            try client.send("RPUSH", "mylist", "c", "a", Self.large)
        }
        #expect(try client.send("LMOVE", "mylist", "mylist", from, to) == .string("c"))
        #expect(try client.send("LRANGE", "mylist", "0", "-1").strings
                == (to == "right" ? ["a", Self.large, "c"] : ["c", "a", Self.large]))
    }

    @Test func rpoplpushCasesAndErrors() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("RPUSH", "mylist1", "a", Self.large, "c", "d")
        #expect(try client.send("RPOPLPUSH", "mylist1", "mylist2") == .string("d"))
        #expect(try client.send("RPOPLPUSH", "mylist1", "mylist2") == .string("c"))
        #expect(try client.send("RPOPLPUSH", "mylist1", "mylist2") == .string(Self.large))
        #expect(try client.send("LRANGE", "mylist1", "0", "-1").strings == ["a"])
        #expect(try client.send("LRANGE", "mylist2", "0", "-1").strings == [Self.large, "c", "d"])
        #expect(try client.send("RPOPLPUSH", "mylist1", "mylist2") == .string("a"))
        #expect(try client.send("EXISTS", "mylist1") == .integer(0))

        #expect(try client.send("RPOPLPUSH", "srclist", "dstlist") == .null)
        #expect(try client.send("EXISTS", "srclist", "dstlist") == .integer(0))

        try client.send("SET", "srclist", "x")
        #expect(try client.send("RPOPLPUSH", "srclist", "dstlist")
                == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(try client.send("TYPE", "srclist") == .simple("string"))
        #expect(try client.send("EXISTS", "dstlist") == .integer(0))

        try client.send("DEL", "srclist")
        try client.send("RPUSH", "srclist", "a", Self.large, "c", "d")
        try client.send("SET", "dstlist", "x")
        #expect(try client.send("RPOPLPUSH", "srclist", "dstlist").isError)
        #expect(try client.send("TYPE", "dstlist") == .simple("string"))
        #expect(try client.send("LRANGE", "srclist", "0", "-1").strings == ["a", Self.large, "c", "d"])

        #expect(try client.send("LMOVE", "srclist", "other", "up", "left") == .error("ERR syntax error"))

        // Rotating a one-element list keeps the key and its TTL.
        try client.send("RPUSH", "single", "x")
        try client.send("EXPIRE", "single", "100")
        #expect(try client.send("RPOPLPUSH", "single", "single") == .string("x"))
        #expect(try client.send("TTL", "single") == .integer(100))
    }

    @Test func multiPopArgumentErrors() throws {
        let client = try TestNode().connect()
        #expect(try client.send("LMPOP") == .error("ERR wrong number of arguments for 'lmpop' command"))
        #expect(try client.send("LMPOP", "1") == .error("ERR wrong number of arguments for 'lmpop' command"))
        #expect(try client.send("LMPOP", "1", "mylist") == .error("ERR wrong number of arguments for 'lmpop' command"))
        for numkeys in ["0", "a", "-1"] {
            #expect(try client.send("LMPOP", numkeys, "mylist", "LEFT") == .error("ERR numkeys should be greater than 0"))
        }
        for arguments in [["1", "mylist", "bad_where"], ["1", "mylist", "LEFT", "bar_arg"], ["1", "mylist", "RIGHT", "LEFT"],
                          ["1", "mylist", "COUNT"], ["1", "mylist", "LEFT", "COUNT", "1", "COUNT", "2"],
                          ["2", "mylist", "mylist2", "bad_arg"], ["9223372036854775807", "mylist", "LEFT"]] {
            #expect(try client.send(arguments: [Array("LMPOP".utf8)] + arguments.map { Array($0.utf8) }) == .error("ERR syntax error"))
        }
        for arguments in [["1", "mylist", "LEFT", "COUNT", "0"], ["1", "mylist", "RIGHT", "COUNT", "a"],
                          ["1", "mylist", "LEFT", "COUNT", "-1"], ["2", "mylist", "mylist2", "RIGHT", "COUNT", "-1"]] {
            #expect(try client.send(arguments: [Array("LMPOP".utf8)] + arguments.map { Array($0.utf8) })
                    == .error("ERR count should be greater than 0"))
        }
    }

    @Test(arguments: [2, 3])
    func multiPopFromTheFirstNonEmptyList(protocolVersion: Int) throws {
        let client = try TestNode().connect()
        if protocolVersion == 3 { try client.send("HELLO", "3") }
        try client.send("RPUSH", "mylist", "a", "b", Self.large, "d", "e", "f")
        #expect(try client.send("LMPOP", "2", "mylist", "mylist", "left", "count", "2")
                == .array([.string("mylist"), .array([.string("a"), .string("b")])]))
        #expect(try client.send("LMPOP", "2", "mylist", "mylist", "right", "count", "2")
                == .array([.string("mylist"), .array([.string("f"), .string("e")])]))
        #expect(try client.send("LLEN", "mylist") == .integer(2))

        try client.send("DEL", "mylist")
        try client.send("RPUSH", "mylist", "a", "b", Self.large, "d", "e")
        #expect(try client.send("LMPOP", "2", "mylist", "mylist2", "left", "count", "1")
                == .array([.string("mylist"), .array([.string("a")])]))
        #expect(try client.send("LMPOP", "2", "mylist2", "mylist", "right", "count", "10")
                == .array([.string("mylist"), .array([.string("e"), .string("d"), .string(Self.large), .string("b")])]))
        #expect(try client.send("EXISTS", "mylist") == .integer(0))

        try client.send("RPUSH", "mylist", "a", "b", "c")
        try client.send("RPUSH", "mylist2", "1", "2", "3")
        #expect(try client.send("LMPOP", "2", "mylist", "mylist2", "left") == .array([.string("mylist"), .array([.string("a")])]))
        #expect(try client.send("LMPOP", "2", "mylist2", "mylist", "right", "COUNT", "1")
                == .array([.string("mylist2"), .array([.string("3")])]))
    }

    @Test func wrongTypeIsReportedByEveryCommand() throws {
        let client = try TestNode().connect()
        try client.send("SET", "notalist", "foo")
        let commands: [[String]] = [
            ["LPUSH", "notalist", "a"], ["RPUSH", "notalist", "a"], ["LPUSHX", "notalist", "a"], ["RPUSHX", "notalist", "a"],
            ["LPOP", "notalist"], ["RPOP", "notalist", "2"], ["LLEN", "notalist"], ["LRANGE", "notalist", "0", "-1"],
            ["LINDEX", "notalist", "0"], ["LREM", "notalist", "0", "a"], ["LTRIM", "notalist", "0", "1"],
            ["LPOS", "notalist", "a"], ["LMOVE", "notalist", "x", "LEFT", "LEFT"], ["LMPOP", "2", "missing", "notalist", "LEFT"],
            ["BLPOP", "notalist", "0"], ["BRPOP", "missing", "notalist", "0"], ["BLMOVE", "notalist", "x", "LEFT", "LEFT", "0"],
            ["BLMPOP", "0", "2", "missing", "notalist", "LEFT", "COUNT", "1"], ["BRPOPLPUSH", "notalist", "x", "0"],
        ]
        for command in commands {
            #expect(try client.send(arguments: command.map { Array($0.utf8) })
                    == .error("WRONGTYPE Operation against a key holding the wrong kind of value"), "\(command)")
        }
        #expect(try client.send("GET", "notalist") == .string("foo"))
    }

    @Test func memoryEstimateStaysExactThroughEveryOperation() throws {
        let node = TestNode()
        let client = try node.connect()
        func check(_ key: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let keyRef = KeyRef(key)
            node.state.keyspace.withLocked([keyRef]) {
                guard case .list(let list)? = node.state.keyspace.database(0, now: node.clock.nowMilliseconds()).peek(keyRef) else {
                    Issue.record("\(key) is not a list", sourceLocation: sourceLocation)
                    return
                }
                let fresh = list.duplicate()
                fresh.recomputeMemoryUsage()
                #expect(list.memoryUsage == fresh.memoryUsage, sourceLocation: sourceLocation)
            }
        }
        let big = String(repeating: "b", count: 100)
        try client.send("RPUSH", "l", "a", big, "c", big, "e", big)
        check("l")
        try client.send("LPUSH", "l", big, "z")
        check("l")
        try client.send("LSET", "l", "0", String(repeating: "s", count: 64))
        check("l")
        try client.send("LINSERT", "l", "BEFORE", "c", big)
        check("l")
        try client.send("LREM", "l", "2", big)
        check("l")
        try client.send("LPOP", "l", "2")
        check("l")
        try client.send("RPOPLPUSH", "l", "m")
        check("l")
        check("m")
        try client.send("LMOVE", "l", "l", "LEFT", "RIGHT")
        check("l")
        try client.send("LTRIM", "l", "1", "-2")
        check("l")
        try client.send("LMPOP", "1", "l", "RIGHT", "COUNT", "1")
        check("l")

        // Emptying a list by pops gives back everything it held (the key's table exists already, so only the
        // list's own bytes come and go).
        try client.send("RPUSH", "k", "seed")
        try client.send("LPOP", "k")
        let before = node.state.keyspace.withAllLocked { node.state.keyspace.estimatedBytes(locked: true) }
        try client.send(arguments: [Array("RPUSH".utf8), Array("k".utf8)] + (0..<200).map { Array("\(big)\($0)".utf8) })
        let grown = node.state.keyspace.withAllLocked { node.state.keyspace.estimatedBytes(locked: true) }
        #expect(grown > before + 200 * 100)
        try client.send("LPOP", "k", "150")
        try client.send("RPOP", "k", "50")
        #expect(try client.send("EXISTS", "k") == .integer(0))
        let after = node.state.keyspace.withAllLocked { node.state.keyspace.estimatedBytes(locked: true) }
        #expect(after == before)
    }

    @Test func keySpecsDescribeTheKeyPositions() throws {
        let table = CommandTable.standard
        func keys(_ words: String...) -> [Int] {
            let arguments = CommandArguments(strings: words)
            return table.lookup(arguments)!.keys.positions(in: arguments)
        }
        #expect(keys("LPUSH", "k", "a", "b") == [1])
        #expect(keys("LMOVE", "a", "b", "LEFT", "RIGHT") == [1, 2])
        #expect(keys("BLPOP", "a", "b", "c", "0") == [1, 2, 3])
        #expect(keys("BRPOPLPUSH", "a", "b", "0") == [1, 2])
        #expect(keys("LMPOP", "2", "a", "b", "LEFT") == [2, 3])
        #expect(keys("BLMPOP", "0", "2", "a", "b", "LEFT") == [3, 4])
        #expect(keys("LMPOP", "9223372036854775807", "a", "LEFT") == [2, 3])
        #expect(keys("LMPOP", "x", "a", "LEFT") == [])
        #expect(table.command(named: "blpop")!.flags.contains(.blocking))
        #expect(table.command(named: "blmpop")!.flags.contains(.blocking))
        #expect(!table.command(named: "lpop")!.flags.contains(.blocking))
        #expect(table.command(named: "lrange")!.flags.contains(.readonly))
    }
}
