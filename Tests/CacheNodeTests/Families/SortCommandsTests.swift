// Tests of SORT and SORT_RO through the real decoder, dispatcher and reply writer (redis tests/unit/sort.tcl).
import CacheNode
import CacheNodeTestSupport
import Testing

private func strings(_ values: [String]) -> RESPValue { .array(values.map { .string($0) }) }

struct SortCommandsTests {
    @Test func numericAlphaDescendingAndLimit() throws {
        let client = try TestNode().connect()
        _ = try client.send("RPUSH", "l", "3", "10", "-1.5", "2e1", "0")
        #expect(try client.send("SORT", "l") == strings(["-1.5", "0", "3", "10", "2e1"]))
        #expect(try client.send("SORT", "l", "DESC") == strings(["2e1", "10", "3", "0", "-1.5"]))
        #expect(try client.send("SORT", "l", "ALPHA") == strings(["-1.5", "0", "10", "2e1", "3"]))
        #expect(try client.send("SORT", "l", "LIMIT", "1", "2") == strings(["0", "3"]))
        #expect(try client.send("SORT", "l", "LIMIT", "-5", "2") == strings(["-1.5", "0"]))
        #expect(try client.send("SORT", "l", "LIMIT", "4", "10") == strings(["2e1"]))
        #expect(try client.send("SORT", "l", "LIMIT", "9", "1") == strings([]))
        #expect(try client.send("SORT", "l", "LIMIT", "0", "-1") == strings(["-1.5", "0", "3", "10", "2e1"]))
        _ = try client.send("RPUSH", "words", "b", "a")
        #expect(try client.send("SORT", "words") == .error("ERR One or more scores can't be converted into double"))
        #expect(try client.send("SORT_RO", "words", "ALPHA") == strings(["a", "b"]))
        #expect(try client.send("SORT", "missing") == strings([]))
    }

    @Test func setsAndSortedSetsAreSortedByTheirMembers() throws {
        let client = try TestNode().connect()
        _ = try client.send("SADD", "s", "5", "1", "3")
        #expect(try client.send("SORT", "s") == strings(["1", "3", "5"]))
        _ = try client.send("ZADD", "z", "1", "c", "2", "a", "3", "b")
        #expect(try client.send("SORT", "z", "ALPHA") == strings(["a", "b", "c"]))
        // BY without `*` keeps a sorted set's own order (by score), reversed with DESC, cut by LIMIT.
        #expect(try client.send("SORT", "z", "BY", "nosort") == strings(["c", "a", "b"]))
        #expect(try client.send("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "0", "2") == strings(["b", "a"]))
        _ = try client.send("SET", "str", "x")
        #expect(try client.send("SORT", "str").text?.hasPrefix("WRONGTYPE") == true)
    }

    @Test func byWeightKeysAndHashFieldsWithGetPatterns() throws {
        let client = try TestNode().connect()
        _ = try client.send("RPUSH", "ids", "1", "2", "3", "4")
        _ = try client.send("MSET", "weight_1", "30", "weight_2", "10", "weight_3", "20")
        _ = try client.send("HSET", "user:1", "name", "ann", "age", "40")
        _ = try client.send("HSET", "user:2", "name", "bob", "age", "25")
        _ = try client.send("HSET", "user:3", "name", "cyd", "age", "33")
        // A missing weight counts as 0; equal weights fall back to the elements.
        #expect(try client.send("SORT", "ids", "BY", "weight_*") == strings(["4", "2", "3", "1"]))
        #expect(try client.send("SORT", "ids", "BY", "user:*->age", "GET", "#", "GET", "user:*->name") == .array([
            .string("4"), .null, .string("2"), .string("bob"), .string("3"), .string("cyd"), .string("1"), .string("ann"),
        ]))
        #expect(try client.send("SORT", "ids", "BY", "user:*->name", "ALPHA", "DESC", "GET", "user:*->name")
                == .array([.string("cyd"), .string("bob"), .string("ann"), .null]))
        // A pattern ending in "->" names a key, not a field; one without `*` names nothing.
        _ = try client.send("SET", "k1->", "direct")
        #expect(try client.send("SORT", "ids", "LIMIT", "0", "1", "GET", "k*->", "GET", "nostar") == .array([.string("direct"), .null]))
        // BY without `*` keeps a list's order.
        #expect(try client.send("SORT", "ids", "BY", "nosort", "DESC", "LIMIT", "1", "2") == strings(["3", "2"]))
    }

    @Test func storeWritesAListOrDeletesTheDestination() throws {
        let client = try TestNode().connect()
        _ = try client.send("RPUSH", "l", "3", "1", "2")
        _ = try client.send("SET", "w_1", "x")
        #expect(try client.send("SORT", "l", "STORE", "out") == .integer(3))
        #expect(try client.send("LRANGE", "out", "0", "-1") == strings(["1", "2", "3"]))
        // GET values go into the list; a missing one is stored as "".
        #expect(try client.send("SORT", "l", "GET", "w_*", "STORE", "out") == .integer(3))
        #expect(try client.send("LRANGE", "out", "0", "-1") == strings(["x", "", ""]))
        #expect(try client.send("SORT", "empty", "STORE", "out") == .integer(0))
        #expect(try client.send("EXISTS", "out") == .integer(0))
        // A set's elements are sorted even BY nosort when stored, so replicas store the same list.
        _ = try client.send("SADD", "s", "b", "c", "a")
        #expect(try client.send("SORT", "s", "BY", "nosort", "STORE", "fromset") == .integer(3))
        #expect(try client.send("LRANGE", "fromset", "0", "-1") == strings(["a", "b", "c"]))
        #expect(try client.send("SORT_RO", "l", "STORE", "out") == .error("ERR syntax error"))
        #expect(try client.send("COMMAND", "GETKEYS", "SORT", "abc", "STORE", "x", "STORE", "def") == strings(["abc", "def"]))
    }

    @Test func aStoredSortWakesAClientBlockedOnTheDestination() throws {
        let node = TestNode()
        let client = try node.connect()
        let waiter = try node.connect()
        try waiter.write("BLPOP", "dest", "0")
        #expect(try waiter.nextReply() == nil)
        _ = try client.send("RPUSH", "l", "2", "1")
        #expect(try client.send("SORT", "l", "STORE", "dest") == .integer(2))
        #expect(try waiter.nextReply() == strings(["dest", "1"]))
    }
}
