// Keyspace notifications (`notify-keyspace-events`) through the real decoder, dispatcher and pub/sub delivery: a
// subscriber on `__key*` sees each command's events in redis's order and names (ported from redis
// tests/unit/pubsub.tcl, "Keyspace notifications", and extended to every family's events in redis 7.2's sources).
import CacheNode
import CacheStore
import CacheNodeTestSupport
import Synchronization
import Testing

/// A subscriber to every keyspace channel of a node whose `notify-keyspace-events` is `classes`.
private struct EventWatch {
    let node: TestNode
    let client: TestClient
    let subscriber: TestClient

    init(_ classes: String, protocolVersion: Int = 2) throws {
        node = TestNode()
        client = try node.connect()
        subscriber = try node.connect()
        #expect(try client.send("CONFIG", "SET", "notify-keyspace-events", classes) == .simple("OK"))
        if protocolVersion == 3 { _ = try subscriber.send("HELLO", "3") }
        _ = try subscriber.send("PSUBSCRIBE", "__key*__:*")
    }

    /// The events received since the last call, as `channel message` strings.
    func events() throws -> [String] {
        try subscriber.allReplies().compactMap { reply -> String? in
            guard let parts = reply.strings, parts.count == 4, parts[0] == "pmessage" else { return nil }
            return "\(parts[2]) \(parts[3])"
        }
    }

    /// The keyevent channel's events only (`event key`), for watches with `E`.
    func keyevents() throws -> [String] {
        try events().compactMap { line -> String? in
            guard line.hasPrefix("__keyevent@") else { return nil }
            let afterPrefix = line.split(separator: ":", maxSplits: 1)[1]
            return String(afterPrefix)
        }
    }
}

struct KeyspaceNotificationsTests {
    // MARK: configuration

    @Test func classesParseAndPrintAsRedisDoes() throws {
        for (input, canonical) in [("", ""), ("gKE", "gKE"), ("$lshzxeKE", "$lshzxeKE"), ("KA", "AK"), ("EA", "AE"),
                                   ("AKEm", "AKEm"), ("En", "nE"), ("AnK", "AnK"), ("g$lshzxetdK", "AK"), ("Kt", "tK")] {
            let classes = try #require(KeyspaceEventClasses(configuration: input), "\(input)")
            #expect(classes.configurationString == canonical, "\(input)")
            #expect(KeyspaceEventClasses(configuration: canonical) == classes, "\(canonical) does not read back")
        }
        #expect(KeyspaceEventClasses(configuration: "KEq") == nil)
        #expect(KeyspaceEventClasses(configuration: "a") == nil)
    }

    @Test func configSetRefusesUnknownClassesAndKeepsTheOldValue() throws {
        let client = try TestNode().connect()
        #expect(try client.send("CONFIG", "SET", "notify-keyspace-events", "KEA") == .simple("OK"))
        let refused = try client.send("CONFIG", "SET", "notify-keyspace-events", "KE?")
        #expect(refused.text?.contains("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.") == true, "\(refused)")
        #expect(try client.send("CONFIG", "GET", "notify-keyspace-events") == .array([.string("notify-keyspace-events"), .string("AKE")]))
    }

    @Test func nothingIsPublishedByDefaultOrWithoutAChannelKind() throws {
        let node = TestNode()
        let client = try node.connect()
        let subscriber = try node.connect()
        _ = try subscriber.send("PSUBSCRIBE", "*")
        _ = try client.send("SET", "foo", "bar")
        // Classes without K or E publish nothing either.
        _ = try client.send("CONFIG", "SET", "notify-keyspace-events", "A")
        _ = try client.send("SET", "foo", "baz")
        #expect(try subscriber.allReplies().isEmpty)
    }

    // MARK: ported from redis's pubsub.tcl

    @Test func keyspaceAndKeyeventChannelsCarryTheEventAndTheKey() throws {
        let watch = try EventWatch("KEA")
        _ = try watch.client.send("SET", "foo", "bar")
        #expect(try watch.events() == ["__keyspace@0__:foo set", "__keyevent@0__:set foo"])
        let keyspaceOnly = try EventWatch("KA")
        _ = try keyspaceOnly.client.send("SET", "foo", "bar")
        #expect(try keyspaceOnly.events() == ["__keyspace@0__:foo set"])
    }

    @Test func classesMaskEvents() throws {
        let watch = try EventWatch("KEl")
        _ = try watch.client.send("SET", "foo", "bar")
        _ = try watch.client.send("LPUSH", "mylist", "a")
        #expect(try watch.events() == ["__keyspace@0__:mylist lpush", "__keyevent@0__:lpush mylist"])
    }

    @Test func theDatabaseNumberIsInTheChannel() throws {
        let watch = try EventWatch("E$g")
        _ = try watch.client.send("SELECT", "3")
        _ = try watch.client.send("SET", "foo", "bar")
        _ = try watch.client.send("MOVE", "foo", "5")
        _ = try watch.client.send("SELECT", "5")
        _ = try watch.client.send("COPY", "foo", "foo2", "DB", "0")
        #expect(try watch.events() == [
            "__keyevent@3__:set foo", "__keyevent@3__:move_from foo", "__keyevent@5__:move_to foo",
            "__keyevent@0__:copy_to foo2",
        ])
    }

    // MARK: each family

    @Test func genericEvents() throws {
        let watch = try EventWatch("Eg")
        let client = watch.client
        _ = try client.send("SET", "foo", "bar")
        _ = try client.send("EXPIRE", "foo", "100")
        _ = try client.send("EXPIRE", "missing", "100")
        _ = try client.send("PERSIST", "foo")
        _ = try client.send("PERSIST", "foo")
        _ = try client.send("RENAME", "foo", "bar")
        _ = try client.send("RENAMENX", "bar", "baz")
        _ = try client.send("PEXPIREAT", "baz", "1")
        _ = try client.send("MSET", "a", "1", "b", "2")
        _ = try client.send("DEL", "a", "b", "c")
        _ = try client.send("SET", "d", "1")
        _ = try client.send("UNLINK", "d")
        #expect(try watch.keyevents() == [
            "expire foo", "persist foo", "rename_from foo", "rename_to bar", "rename_from bar", "rename_to baz",
            "del baz", "del a", "del b", "del d",
        ])
    }

    @Test func stringEvents() throws {
        let watch = try EventWatch("E$g")
        let client = watch.client
        _ = try client.send("SET", "s", "v", "EX", "100")
        _ = try client.send("SET", "s", "v", "NX")
        _ = try client.send("SETNX", "s2", "v")
        _ = try client.send("SETEX", "s3", "10", "v")
        _ = try client.send("GETSET", "s", "w")
        _ = try client.send("APPEND", "s", "x")
        _ = try client.send("SETRANGE", "s", "0", "")
        _ = try client.send("SETRANGE", "s", "1", "y")
        _ = try client.send("INCR", "n")
        _ = try client.send("DECRBY", "n", "3")
        _ = try client.send("INCRBYFLOAT", "f", "1.5")
        _ = try client.send("INCR", "s")  // not an integer: no event
        _ = try client.send("GETEX", "s2", "PX", "500")
        _ = try client.send("GETEX", "s2", "PERSIST")
        _ = try client.send("GETEX", "s2", "PERSIST")
        _ = try client.send("GETDEL", "s2")
        _ = try client.send("MSETNX", "m1", "1", "m2", "2")
        #expect(try watch.keyevents() == [
            "set s", "expire s", "set s2", "set s3", "expire s3", "set s", "append s", "setrange s", "incrby n",
            "incrby n", "incrbyfloat f", "expire s2", "persist s2", "del s2", "set m1", "set m2",
        ])
    }

    @Test func bitmapEvents() throws {
        let watch = try EventWatch("E$g")
        let client = watch.client
        _ = try client.send("SETBIT", "b", "3", "1")
        _ = try client.send("SETBIT", "b", "3", "1")  // unchanged: no event
        _ = try client.send("BITFIELD", "b", "GET", "u4", "0")
        _ = try client.send("BITFIELD", "b", "INCRBY", "u4", "0", "1")
        _ = try client.send("BITOP", "NOT", "n", "b")
        _ = try client.send("BITOP", "AND", "n", "missing")
        #expect(try watch.keyevents() == ["setbit b", "setbit b", "set n", "del n"])
    }

    @Test func sortStoreEvents() throws {
        let watch = try EventWatch("Elg")
        _ = try watch.client.send("RPUSH", "src", "2", "1")
        _ = try watch.client.send("SORT", "src", "STORE", "dst")
        _ = try watch.client.send("SORT", "nothing", "STORE", "dst")
        _ = try watch.client.send("SORT", "nothing", "STORE", "dst")
        #expect(try watch.keyevents() == ["rpush src", "sortstore dst", "del dst"])
    }

    @Test func listEvents() throws {
        let watch = try EventWatch("Elg")
        let client = watch.client
        _ = try client.send("LPUSH", "l", "a", "b")
        _ = try client.send("RPUSH", "l", "c")
        _ = try client.send("LPUSHX", "missing", "a")
        _ = try client.send("LINSERT", "l", "BEFORE", "a", "z")
        _ = try client.send("LINSERT", "l", "BEFORE", "nope", "z")
        _ = try client.send("LSET", "l", "0", "q")
        _ = try client.send("LREM", "l", "0", "z")
        _ = try client.send("LMOVE", "l", "l2", "LEFT", "RIGHT")
        _ = try client.send("RPOPLPUSH", "l", "l")
        _ = try client.send("LTRIM", "l", "0", "0")
        _ = try client.send("RPOP", "l")
        _ = try client.send("LMPOP", "2", "nothing", "l2", "LEFT", "COUNT", "5")
        #expect(try watch.keyevents() == [
            "lpush l", "rpush l", "linsert l", "lset l", "lrem l", "rpush l2", "lpop l", "lpush l", "rpop l",
            "ltrim l", "rpop l", "del l", "lpop l2", "del l2",
        ])
    }

    @Test func blockedPopsPublishWhenServed() throws {
        let watch = try EventWatch("Elg")
        let blocked = try watch.node.connect()
        try blocked.write("BLPOP", "q", "0")
        #expect(try blocked.nextReply() == nil)
        _ = try watch.client.send("RPUSH", "q", "job")
        #expect(try blocked.nextReply() == .array([.string("q"), .string("job")]))
        #expect(try watch.keyevents() == ["rpush q", "lpop q", "del q"])
    }

    @Test func setEvents() throws {
        let watch = try EventWatch("Esg")
        let client = watch.client
        _ = try client.send("SADD", "s", "a", "b", "c")
        _ = try client.send("SADD", "s", "a")
        _ = try client.send("SREM", "s", "x")
        _ = try client.send("SREM", "s", "c")
        _ = try client.send("SMOVE", "s", "t", "a")
        _ = try client.send("SMOVE", "s", "t", "b")
        _ = try client.send("SADD", "u", "a", "z")
        _ = try client.send("SINTERSTORE", "i", "t", "u")
        _ = try client.send("SUNIONSTORE", "un", "t", "u")
        _ = try client.send("SDIFFSTORE", "i", "t", "t")
        _ = try client.send("SPOP", "u")
        _ = try client.send("SPOP", "un", "10")
        #expect(try watch.keyevents() == [
            "sadd s", "srem s", "srem s", "sadd t", "srem s", "del s", "sadd t", "sadd u", "sinterstore i",
            "sunionstore un", "del i", "spop u", "spop un", "del un",
        ])
    }

    @Test func hashEvents() throws {
        let watch = try EventWatch("Ehg")
        let client = watch.client
        _ = try client.send("HMSET", "h", "yes", "1", "no", "0")
        _ = try client.send("HINCRBY", "h", "yes", "10")
        _ = try client.send("HINCRBYFLOAT", "h", "f", "0.5")
        _ = try client.send("HSETNX", "h", "yes", "2")
        _ = try client.send("HSETNX", "h", "new", "2")
        _ = try client.send("HDEL", "h", "nothing")
        _ = try client.send("HDEL", "h", "yes", "no", "f")
        _ = try client.send("HDEL", "h", "new")
        #expect(try watch.keyevents() == [
            "hset h", "hincrby h", "hincrbyfloat h", "hset h", "hdel h", "hdel h", "del h",
        ])
    }

    @Test func sortedSetEvents() throws {
        let watch = try EventWatch("Ezg")
        let client = watch.client
        _ = try client.send("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
        _ = try client.send("ZADD", "z", "1", "a")
        _ = try client.send("ZADD", "z", "INCR", "0", "a")
        _ = try client.send("ZINCRBY", "z", "1", "a")
        _ = try client.send("ZREM", "z", "nothing")
        _ = try client.send("ZREM", "z", "d")
        _ = try client.send("ZREMRANGEBYSCORE", "z", "3", "3")
        _ = try client.send("ZPOPMIN", "z")
        _ = try client.send("ZADD", "y", "5", "e")
        _ = try client.send("ZUNIONSTORE", "u", "2", "z", "y")
        _ = try client.send("ZINTERSTORE", "i", "2", "z", "y")
        _ = try client.send("ZRANGESTORE", "r", "u", "0", "0")
        _ = try client.send("ZDIFFSTORE", "r", "1", "nothing")
        _ = try client.send("ZREMRANGEBYRANK", "z", "0", "-1")
        _ = try client.send("ZMPOP", "1", "u", "MAX", "COUNT", "9")
        #expect(try watch.keyevents() == [
            "zadd z", "zincr z", "zrem z", "zremrangebyscore z", "zpopmin z", "zadd y", "zunionstore u",
            "zrangestore r", "del r", "zremrangebyrank z", "del z", "zpopmax u", "del u",
        ])
    }

    // MARK: events from the store

    @Test func expiredKeysAreReportedWhenTouchedAndByTheActiveCycle() throws {
        let watch = try EventWatch("Ex")
        _ = try watch.client.send("PSETEX", "lazy", "100", "1")
        _ = try watch.client.send("PSETEX", "active", "100", "1")
        watch.node.advance(milliseconds: 200)
        #expect(try watch.client.send("GET", "lazy") == .null)
        #expect(try watch.keyevents() == ["expired lazy"])
        _ = watch.node.state.keyspace.activeExpireCycle(now: watch.node.clock.nowMilliseconds())
        #expect(try watch.keyevents() == ["expired active"])
    }

    @Test func evictionIsReportedAndConfigSetMaxmemoryEvictsAtOnce() throws {
        let watch = try EventWatch("Ee")
        _ = try watch.client.send("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        _ = try watch.client.send("SET", "foo", "bar")
        // Sizes were not being kept while no limit was set: setting one publishes them and evicts at once.
        #expect(try watch.client.send("CONFIG", "SET", "maxmemory", "1") == .simple("OK"))
        #expect(try watch.keyevents() == ["evicted foo"])
        #expect(try watch.client.send("DBSIZE") == .integer(0))
    }

    /// redis evicts before every command, reads too: what a write overshot the limit by comes down at the next command.
    @Test func aReadEvictsWhatAWriteOvershot() throws {
        let watch = try EventWatch("Ee")
        _ = try watch.client.send("CONFIG", "SET", "maxmemory-policy", "volatile-random")
        _ = try watch.client.send("CONFIG", "SET", "maxmemory", "1gb")
        _ = try watch.client.send("SETEX", "volatile-key", "10000", "x")
        let used = watch.node.state.keyspace.estimatedBytes(locked: false) + watch.node.state.baselineMemory.load(ordering: .relaxed)
        _ = try watch.client.send("CONFIG", "SET", "maxmemory", String(used + 100 * 1024))
        // 200 KB: within the limit when it starts, over it once done.
        _ = try watch.client.send("SETBIT", "big-key", "1600000", "0")
        #expect(try watch.keyevents().isEmpty)
        #expect(try watch.client.send("GETBIT", "big-key", "0") == .integer(0))
        #expect(try watch.keyevents() == ["evicted volatile-key"])
        // Nothing volatile is left: reads are still served, writes that may grow memory refused.
        #expect(try watch.client.send("GET", "volatile-key") == .null)
        #expect(try watch.client.send("SET", "k", "v").isError)
    }

    @Test func newKeysAreReportedOnceWhenCreated() throws {
        let watch = try EventWatch("En")
        _ = try watch.client.send("SET", "foo", "bar")
        _ = try watch.client.send("SET", "foo", "baz")
        _ = try watch.client.send("SET", "bar", "bar")
        _ = try watch.client.send("LPUSH", "list", "a")
        _ = try watch.client.send("LPUSH", "list", "b")
        #expect(try watch.keyevents() == ["new foo", "new bar", "new list"])
        // n alone: turning it off stops the reports from the store.
        _ = try watch.client.send("CONFIG", "SET", "notify-keyspace-events", "E$")
        #expect(!watch.node.state.keyspace.reportsAddedKeys)
        _ = try watch.client.send("SET", "other", "1")
        #expect(try watch.keyevents() == ["set other"])
    }

    @Test func missesAreReportedOnlyWithTheirOwnClass() throws {
        let watch = try EventWatch("EA")
        _ = try watch.client.send("GET", "nothing")
        #expect(try watch.keyevents().isEmpty)
        _ = try watch.client.send("CONFIG", "SET", "notify-keyspace-events", "Em")
        _ = try watch.client.send("GET", "nothing")
        _ = try watch.client.send("MGET", "a", "b")
        _ = try watch.client.send("LRANGE", "l", "0", "-1")
        _ = try watch.client.send("SMEMBERS", "s")
        _ = try watch.client.send("HGETALL", "h")
        _ = try watch.client.send("SET", "present", "1")
        _ = try watch.client.send("GET", "present")
        #expect(try watch.keyevents() == ["keymiss nothing", "keymiss a", "keymiss b", "keymiss l", "keymiss s", "keymiss h"])
    }

    // MARK: delivery

    @Test func aClientsOwnEventsFollowItsReply() throws {
        let node = TestNode()
        let client = try node.connect()
        _ = try client.send("CONFIG", "SET", "notify-keyspace-events", "KE$")
        _ = try client.send("HELLO", "3")
        _ = try client.send("SUBSCRIBE", "__keyspace@0__:foo")
        // RESP3 lets a subscribed client write; the push comes after SET's +OK.
        try client.write("SET", "foo", "bar")
        #expect(try client.nextReply() == .simple("OK"))
        #expect(try client.nextReply() == .push([.string("message"), .string("__keyspace@0__:foo"), .string("set")]))
        #expect(try client.nextReply() == nil)
    }

    @Test func eventsInsideExecArriveInCommandOrder() throws {
        let watch = try EventWatch("Eg$l")
        let client = watch.client
        _ = try client.send("MULTI")
        _ = try client.send("SET", "a", "1")
        _ = try client.send("RPUSH", "l", "x")
        _ = try client.send("DEL", "a", "l")
        #expect(try client.send("EXEC").elements?.count == 3)
        #expect(try watch.keyevents() == ["set a", "rpush l", "del a", "del l"])
    }
}
