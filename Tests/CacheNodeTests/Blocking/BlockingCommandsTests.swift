// Tests of BLPOP/BRPOP/BLMOVE/BRPOPLPUSH/BLMPOP and the BlockingRegistry behind them, ported from the blocking
// cases of redis tests/unit/type/list.tcl: clients block, are woken by other clients' writes in the order they
// blocked, time out on their event loop's clock, and keep their pipelined commands queued meanwhile.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import NIOCore
import Testing

extension TestClient {
    /// The `blocked_clients` figure INFO reports.
    func blockedClients() throws -> Int? {
        guard let text = try send("INFO", "clients").text else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("blocked_clients:") {
            return Int(line.dropFirst("blocked_clients:".count))
        }
        return nil
    }
}

/// `[key, element]` as BLPOP replies.
private func pair(_ key: String, _ element: String) -> RESPValue {
    .array([.string(key), .string(element)])
}

/// `[key, [elements…]]` as BLMPOP replies.
private func popped(_ key: String, _ elements: String...) -> RESPValue {
    .array([.string(key), .array(elements.map { .string($0) })])
}

struct BlockingCommandsTests {
    // MARK: serving at once

    @Test func popsAtOnceFromExistingLists() throws {
        let client = try TestNode().connect()
        try client.send("RPUSH", "blist", "a", "b", "large", "c", "d")
        #expect(try client.send("BLPOP", "blist", "1") == pair("blist", "a"))
        #expect(try client.send("BRPOP", "blist", "1") == pair("blist", "d"))
        #expect(try client.send("BLMPOP", "1", "1", "blist", "LEFT") == popped("blist", "b"))
        #expect(try client.send("BLMPOP", "1", "1", "blist", "RIGHT", "COUNT", "5") == popped("blist", "c", "large"))
        #expect(try client.send("EXISTS", "blist") == .integer(0))

        // Several keys: the first non-empty one in argument order.
        try client.send("RPUSH", "blist1", "a", "large", "c")
        try client.send("RPUSH", "blist2", "d", "large", "f")
        #expect(try client.send("BLPOP", "blist1", "blist2", "1") == pair("blist1", "a"))
        #expect(try client.send("BRPOP", "blist1", "blist2", "1") == pair("blist1", "c"))
        #expect(try client.send("BLPOP", "blist2", "blist1", "1") == pair("blist2", "d"))
        #expect(try client.send("BRPOP", "blist2", "blist1", "1") == pair("blist2", "f"))
        try client.send("DEL", "blist1")
        #expect(try client.send("BLPOP", "blist1", "blist2", "1") == pair("blist2", "large"))

        try client.send("RPUSH", "target", "bar")
        try client.send("RPUSH", "src", "a", "b", "c", "d")
        #expect(try client.send("BRPOPLPUSH", "src", "target", "1") == .string("d"))
        #expect(try client.send("BLMOVE", "src", "target", "LEFT", "RIGHT", "1") == .string("a"))
        #expect(try client.send("LRANGE", "target", "0", "-1").strings == ["d", "bar", "a"])
        #expect(try client.send("INFO", "clients").text?.contains("blocked_clients:0") == true)
    }

    // MARK: blocking and waking

    @Test(arguments: ["BLPOP", "BRPOP", "BLMPOP_LEFT", "BLMPOP_RIGHT"])
    func blocksUntilAnotherClientPushes(command: String) throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        switch command {
        case "BLMPOP_LEFT": try blocked.write("BLMPOP", "1", "1", "blist1", "LEFT", "COUNT", "1")
        case "BLMPOP_RIGHT": try blocked.write("BLMPOP", "1", "1", "blist1", "RIGHT", "COUNT", "1")
        default: try blocked.write(command, "blist1", "1")
        }
        #expect(try blocked.nextReply() == nil)
        #expect(try other.blockedClients() == 1)
        #expect(node.state.blocking.hasWaiters)
        #expect(try other.send("RPUSH", "blist1", "foo") == .integer(1))
        let expected = command.hasPrefix("BLMPOP") ? popped("blist1", "foo") : pair("blist1", "foo")
        #expect(try blocked.nextReply() == expected)
        #expect(try other.send("EXISTS", "blist1") == .integer(0))
        #expect(try other.blockedClients() == 0)
        #expect(!node.state.blocking.hasWaiters)
    }

    @Test func longestWaitingClientIsServedFirst() throws {
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let pusher = try node.connect()
        try first.write("BLPOP", "k", "0")
        try second.write("BLPOP", "k", "0")
        #expect(try pusher.blockedClients() == 2)
        #expect(try pusher.send("RPUSH", "k", "x") == .integer(1))
        #expect(try second.nextReply() == nil)
        #expect(try first.nextReply() == pair("k", "x"))
        #expect(try pusher.send("RPUSH", "k", "y", "z") == .integer(2))
        #expect(try second.nextReply() == pair("k", "y"))
        #expect(try pusher.send("LRANGE", "k", "0", "-1").strings == ["z"])
        #expect(try pusher.blockedClients() == 0)
    }

    @Test func fairnessIsKeptWhilePipelining() throws {
        // redis "Unblock fairness is kept while pipelining": the blocked client gets the pushed element, not the
        // pipelined BLPOP of the pushing client.
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        try first.write("BLPOP", "mylist", "0")
        try second.writeRaw("LPUSH mylist 1\r\nBLPOP mylist 0\r\n")
        #expect(try first.nextReply() == pair("mylist", "1"))
        #expect(try second.nextReply() == .integer(1))
        #expect(try second.nextReply() == nil)
        let third = try node.connect()
        #expect(try third.blockedClients() == 1)
        try third.send("LPUSH", "mylist", "2")
        #expect(try second.nextReply() == pair("mylist", "2"))
    }

    @Test func waitsOnSeveralKeysAndTheSameKeyTwice() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("BLPOP", "list1", "list2", "list2", "list1", "0")
        #expect(try blocked.nextReply() == nil)
        try other.send("LPUSH", "list1", "a")
        #expect(try blocked.nextReply() == pair("list1", "a"))
        try blocked.write("BLPOP", "list1", "list2", "list2", "list1", "0")
        #expect(try blocked.nextReply() == nil)
        try other.send("LPUSH", "list2", "b")
        #expect(try blocked.nextReply() == pair("list2", "b"))
        #expect(!node.state.blocking.hasWaiters)
        #expect(node.state.blocking.blockedKeyCount == 0)

        try blocked.write("BRPOP", "blist1", "blist2", "1")
        try other.send("RPUSH", "blist2", "foo")
        #expect(try blocked.nextReply() == pair("blist2", "foo"))
        #expect(try other.send("EXISTS", "blist1", "blist2") == .integer(0))
    }

    @Test func pushesToOtherDatabasesDoNotWake() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.send("SELECT", "1")
        try blocked.write("BLPOP", "k", "0")
        try other.send("RPUSH", "k", "db0")
        #expect(try blocked.nextReply() == nil)
        try other.send("SELECT", "1")
        try other.send("RPUSH", "k", "db1")
        #expect(try blocked.nextReply() == pair("k", "db1"))
        try other.send("SELECT", "0")
        #expect(try other.send("LRANGE", "k", "0", "-1").strings == ["db0"])
    }

    @Test func registryReportsTheKeysWaitedOnPerDatabase() throws {
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        try first.send("SELECT", "2")
        try first.write("BLPOP", "a", "b", "a", "0")
        try second.write("BRPOPLPUSH", "c", "d", "0")
        let registry = node.state.blocking
        #expect(registry.blockedClientCount == 2)
        #expect(registry.blockedKeyCount == 3)
        #expect(Set(registry.blockedKeys(inDatabases: [2]).map(\.key.string)) == ["a", "b"])
        #expect(registry.blockedKeys(inDatabases: [0]).map(\.key.string) == ["c"])
        #expect(registry.blockedKeys(inDatabases: [5]).isEmpty)
    }

    // A client blocked in one database is served by data that arrives there from another: SWAPDB (the wiring of
    // blockedKeys(inDatabases:) was missing: redis's own "SWAPDB awakes blocked client" test timed out), MOVE and
    // COPY ... DB.
    @Test func swapdbMoveAndCopyIntoTheBlockedClientsDatabaseServeIt() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.send("SELECT", "9")
        try other.send("SELECT", "1")
        try other.send("RPUSH", "k", "hello")
        try blocked.write("BRPOP", "k", "5")
        #expect(try blocked.nextReply() == nil)
        #expect(try other.send("SWAPDB", "1", "9") == .simple("OK"))
        #expect(try blocked.nextReply()?.strings == ["k", "hello"])

        try blocked.write("BLPOP", "m", "0")
        try other.send("RPUSH", "m", "moved")
        #expect(try other.send("MOVE", "m", "9") == .integer(1))
        #expect(try blocked.nextReply()?.strings == ["m", "moved"])

        try blocked.write("BZPOPMIN", "z", "0")
        try other.send("ZADD", "z", "1", "copied")
        #expect(try other.send("COPY", "z", "z", "DB", "9") == .integer(1))
        #expect(try blocked.nextReply()?.strings == ["z", "copied", "1"])
        #expect(try other.send("ZCARD", "z") == .integer(1))
    }

    // BZPOPMIN/BZPOPMAX/BZMPOP (missing until now: redis's zset test suite stopped at BZPOPMIN): the reply shapes in
    // both protocols, the first non-empty key in order, a wait served by ZADD, the timeout's null, null inside EXEC,
    // WRONGTYPE, and the argument errors before the timeout's.
    @Test func blockingSortedSetPops() throws {
        let node = TestNode()
        let client = try node.connect()
        let waiter = try node.connect()
        try client.send("ZADD", "z", "1", "a", "2", "b")
        #expect(try client.send("BZPOPMIN", "missing", "z", "0") == .array([.bulk(Array("z".utf8)), .bulk(Array("a".utf8)), .bulk(Array("1".utf8))]))
        _ = try client.send("HELLO", "3")
        #expect(try client.send("BZPOPMAX", "z", "0") == .array([.bulk(Array("z".utf8)), .bulk(Array("b".utf8)), .double(2)]))
        #expect(try client.send("EXISTS", "z") == .integer(0))
        _ = try client.send("HELLO", "2")

        try waiter.write("BZMPOP", "0", "2", "x", "y", "MAX", "COUNT", "2")
        #expect(try waiter.nextReply() == nil)
        try client.send("ZADD", "y", "5", "p", "6", "q", "7", "r")
        #expect(try waiter.nextReply() == .array([.bulk(Array("y".utf8)), .array([
            .array([.bulk(Array("r".utf8)), .bulk(Array("7".utf8))]), .array([.bulk(Array("q".utf8)), .bulk(Array("6".utf8))]),
        ])]))

        try waiter.write("BZPOPMIN", "empty", "0.05")
        #expect(try waiter.nextReply() == nil)
        node.advance(milliseconds: 60)
        waiter.advanceLoopTime(milliseconds: 60)
        #expect(try waiter.nextReply() == .nullArray)

        try client.send("MULTI")
        try client.send("BZPOPMIN", "empty", "0")
        #expect(try client.send("EXEC") == .array([.nullArray]))
        try client.send("SET", "s", "v")
        #expect(try client.send("BZPOPMIN", "s", "0") == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(try client.send("BZMPOP", "0", "0", "y", "MIN") == .error("ERR numkeys should be greater than 0"))
        #expect(try client.send("BZMPOP", "0", "1", "y", "SIDEWAYS") == .error("ERR syntax error"))
        #expect(try client.send("BZPOPMIN", "y", "-1") == .error("ERR timeout is negative"))
    }

    @Test func pipelinedCommandsWaitForTheBlockedOne() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.writeRaw("BLPOP k 0\r\nPING\r\nLLEN k\r\n")
        #expect(try blocked.nextReply() == nil)
        try other.send("RPUSH", "k", "a", "b")
        #expect(try blocked.allReplies() == [pair("k", "a"), .simple("PONG"), .integer(1)])

        // Commands that arrive while the client is blocked wait as well.
        try blocked.write("BRPOP", "k2", "0")
        try blocked.write("ECHO", "later")
        #expect(try blocked.nextReply() == nil)
        try other.send("RPUSH", "k2", "z")
        #expect(try blocked.allReplies() == [pair("k2", "z"), .string("later")])
    }

    @Test func variadicPushServesTheElementAtTheHead() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("BLPOP", "blist", "0")
        #expect(try other.send("LPUSH", "blist", "foo", "bar") == .integer(2))
        #expect(try blocked.nextReply() == pair("blist", "bar"))
        #expect(try other.send("LRANGE", "blist", "0", "-1").strings == ["foo"])
    }

    @Test func multiExecIsIsolatedFromBlockedClients() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("BLPOP", "list", "0")
        try other.send("MULTI")
        try other.send("LPUSH", "list", "a")
        try other.send("LPUSH", "list", "b")
        try other.send("LPUSH", "list", "c")
        #expect(try other.send("EXEC") == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(try blocked.nextReply() == pair("list", "c"))

        // A push undone in the same transaction wakes nobody; the client keeps waiting (redis "LPUSH + DEL").
        try blocked.write("BLMPOP", "0", "1", "list2", "LEFT")
        try other.send("MULTI")
        try other.send("LPUSH", "list2", "a")
        try other.send("DEL", "list2")
        try other.send("SET", "list2", "foo")
        try other.send("EXEC")
        #expect(try blocked.nextReply() == nil)
        try other.send("DEL", "list2")
        try other.send("LPUSH", "list2", "b")
        #expect(try blocked.nextReply() == popped("list2", "b"))
    }

    @Test func elementTakenBeforeTheRetryKeepsTheClientWaiting() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("BRPOP", "k", "0")
        try other.send("MULTI")
        try other.send("RPUSH", "k", "x")
        try other.send("LPOP", "k")
        #expect(try other.send("EXEC") == .array([.integer(1), .string("x")]))
        #expect(try blocked.nextReply() == nil)
        #expect(try other.blockedClients() == 1)
        try other.send("RPUSH", "k", "y")
        #expect(try blocked.nextReply() == pair("k", "y"))
    }

    @Test func keyMovedIntoPlaceWakesTheClient() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("BLPOP", "foo", "0")
        try other.send("LPUSH", "bob", "abc", "def", "hij")
        try other.send("RENAME", "bob", "foo")
        #expect(try blocked.nextReply() == pair("foo", "hij"))
    }

    @Test func blmpopWithSeveralBlockedClients() throws {
        // redis "BLMPOP with multiple blocked clients".
        let node = TestNode()
        let clients = try (0..<4).map { _ in try node.connect() }
        let other = try node.connect()
        try clients[0].write("BLMPOP", "0", "2", "blist", "blist2", "left", "count", "1")
        try clients[1].write("BLMPOP", "0", "2", "blist", "blist2", "right", "count", "10")
        try clients[2].write("BLMPOP", "0", "2", "blist", "blist2", "left", "count", "10")
        try clients[3].write("BLMPOP", "0", "2", "blist", "blist2", "right", "count", "1")
        try other.send("MULTI")
        try other.send("LPUSH", "blist", "a", "b", "c", "d", "e")
        try other.send("LPUSH", "blist2", "1", "2", "3", "4", "5")
        try other.send("EXEC")
        #expect(try clients[0].nextReply() == popped("blist", "e"))
        #expect(try clients[1].nextReply() == popped("blist", "a", "b", "c", "d"))
        #expect(try clients[2].nextReply() == popped("blist2", "5", "4", "3", "2", "1"))
        #expect(try clients[3].nextReply() == nil)
        try other.send("LPUSH", "blist2", "1", "2", "3")
        #expect(try clients[3].nextReply() == popped("blist2", "1"))
    }

    // MARK: moves

    @Test(arguments: ["left", "right"], ["left", "right"])
    func blmoveBlocksThenMovesAtomically(from: String, to: String) throws {
        let node = TestNode()
        let mover = try node.connect()
        let other = try node.connect()
        try other.send("RPUSH", "target", "bar")
        try mover.write("BLMOVE", "blist", "target", from, to, "0")
        #expect(try mover.nextReply() == nil)
        try other.send("RPUSH", "blist", "foo")
        #expect(try mover.nextReply() == .string("foo"))
        #expect(try other.send("LRANGE", "target", "0", "-1").strings == (to == "right" ? ["bar", "foo"] : ["foo", "bar"]))
        #expect(try other.send("EXISTS", "blist") == .integer(0))

        // The moved element wakes a client blocked on the destination, in the same pass.
        try other.send("DEL", "target")
        let popper = try node.connect()
        try popper.write("BLPOP", "target", "0")
        try mover.write("BLMOVE", "blist", "target", from, to, "0")
        #expect(try other.blockedClients() == 2)
        try other.send("RPUSH", "blist", "foo")
        #expect(try other.send("EXISTS", "target") == .integer(0))
        #expect(try mover.nextReply() == .string("foo"))
        #expect(try popper.nextReply() == pair("target", "foo"))
    }

    @Test func linkedCircularAndSelfReferentialMoves() throws {
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let other = try node.connect()

        try first.write("BLMOVE", "list1", "list2", "right", "left", "0")
        try second.write("BLMOVE", "list2", "list3", "left", "right", "0")
        try other.send("RPUSH", "list1", "foo")
        #expect(try other.send("LRANGE", "list1", "0", "-1") == .array([]))
        #expect(try other.send("LRANGE", "list2", "0", "-1") == .array([]))
        #expect(try other.send("LRANGE", "list3", "0", "-1").strings == ["foo"])
        #expect(try first.nextReply() == .string("foo"))
        #expect(try second.nextReply() == .string("foo"))

        try first.write("BRPOPLPUSH", "c1", "c2", "0")
        try second.write("BRPOPLPUSH", "c2", "c1", "0")
        try other.send("RPUSH", "c1", "foo")
        #expect(try other.send("LRANGE", "c1", "0", "-1").strings == ["foo"])
        #expect(try other.send("LRANGE", "c2", "0", "-1") == .array([]))

        try first.allReplies()
        try first.write("BRPOPLPUSH", "self", "self", "0")
        try other.send("RPUSH", "self", "foo")
        #expect(try first.nextReply() == .string("foo"))
        #expect(try other.send("LRANGE", "self", "0", "-1").strings == ["foo"])
        #expect(!node.state.blocking.hasWaiters)
    }

    @Test func fairnessIsKeptDuringNestedUnblock() throws {
        // redis "Unblock fairness is kept during nested unblock": keys made ready by a served BLMOVE are handled
        // after the keys already signalled, in the same pass.
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let third = try node.connect()
        let other = try node.connect()
        try first.write("BRPOPLPUSH", "l1", "l3", "0")
        try second.write("BLPOP", "l2", "0")
        try third.write("BLMPOP", "0", "2", "l2", "l3", "LEFT", "COUNT", "1")
        try other.send("MULTI")
        try other.send("LPUSH", "l1", "1")
        try other.send("LPUSH", "l2", "2")
        try other.send("EXEC")
        #expect(try other.blockedClients() == 0)
        #expect(try first.nextReply() == .string("1"))
        #expect(try second.nextReply() == pair("l2", "2"))
        #expect(try third.nextReply() == popped("l3", "1"))
    }

    @Test func chainedBlockingCommandsFromOnePipeline() throws {
        // redis "Regression for bug 593 - chaining BRPOPLPUSH with other blocking cmds".
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let other = try node.connect()
        try first.writeRaw("BRPOPLPUSH a b 0\r\nBRPOPLPUSH a b 0\r\n")
        try second.write("BRPOPLPUSH", "b", "c", "0")
        #expect(try other.blockedClients() == 2)
        try other.send("LPUSH", "a", "data")
        #expect(try second.nextReply() == .string("data"))
        #expect(try first.nextReply() == .string("data"))
        // The first client's second command now runs and blocks in its turn.
        #expect(try first.nextReply() == nil)
        #expect(try other.blockedClients() == 1)
        #expect(try other.send("LRANGE", "c", "0", "-1").strings == ["data"])
        try first.channel.close().wait()
        try second.channel.close().wait()
        #expect(try other.send("PING") == .simple("PONG"))
        #expect(try other.blockedClients() == 0)
    }

    @Test func wrongDestinationTypeUnblocksWithAnErrorAndKeepsTheSource() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try other.send("SET", "target", "nolist")
        try other.send("LPUSH", "blist", "foo")
        #expect(try blocked.send("BRPOPLPUSH", "blist", "target", "1") == .error(
            "WRONGTYPE Operation against a key holding the wrong kind of value"))
        try other.send("DEL", "blist")

        try blocked.write("BRPOPLPUSH", "blist", "target", "0")
        #expect(try blocked.nextReply() == nil)
        try other.send("RPUSH", "blist", "a", "b", "c")
        #expect(try blocked.nextReply() == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(try other.send("LRANGE", "blist", "0", "-1").strings == ["a", "b", "c"])

        // With two blocked clients, the one with the bad destination fails and the next one is served.
        try other.send("DEL", "blist")
        let second = try node.connect()
        try other.send("SET", "target1", "nolist")
        try blocked.write("BRPOPLPUSH", "blist", "target1", "0")
        try second.write("BRPOPLPUSH", "blist", "target2", "0")
        try other.send("LPUSH", "blist", "foo")
        #expect(try blocked.nextReply()?.isError == true)
        #expect(try second.nextReply() == .string("foo"))
        #expect(try other.send("LRANGE", "target2", "0", "-1").strings == ["foo"])
    }

    @Test func pushFromAServedMoveInvalidatesWatch() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let watcher = try node.connect()
        let other = try node.connect()
        try other.send("SET", "somekey", "somevalue")
        try blocked.write("BRPOPLPUSH", "srclist", "dstlist", "0")
        try watcher.send("WATCH", "dstlist")
        try watcher.send("MULTI")
        try watcher.send("GET", "somekey")
        try other.send("LPUSH", "srclist", "element")
        #expect(try watcher.send("EXEC") == .nullArray)
        #expect(try blocked.nextReply() == .string("element"))

        // While the move is still blocked, the watched key is untouched.
        try blocked.write("BRPOPLPUSH", "srclist", "dstlist2", "0")
        try watcher.send("WATCH", "dstlist2")
        try watcher.send("MULTI")
        try watcher.send("GET", "somekey")
        #expect(try watcher.send("EXEC") == .array([.string("somevalue")]))
        try other.send("LPUSH", "srclist", "element")
        #expect(try blocked.nextReply() == .string("element"))
    }

    // MARK: inside transactions

    @Test func blockingCommandsInsideMultiDoNotBlock() throws {
        let client = try TestNode().connect()
        try client.send("LPUSH", "xlist", "foo")
        try client.send("LPUSH", "xlist", "bar")
        try client.send("MULTI")
        try client.send("BLPOP", "xlist", "0")
        try client.send("BLMPOP", "0", "1", "xlist", "LEFT")
        try client.send("BLPOP", "xlist", "0")
        try client.send("BLMOVE", "xlist", "target", "LEFT", "LEFT", "0")
        #expect(try client.send("EXEC") == .array([pair("xlist", "bar"), popped("xlist", "foo"), .nullArray, .null]))

        try client.send("LPUSH", "xlist", "foo")
        try client.send("LPUSH", "xlist", "bar")
        try client.send("MULTI")
        for _ in 0..<3 { try client.send("BRPOPLPUSH", "xlist", "target", "0") }
        try client.send("LRANGE", "xlist", "0", "-1")
        try client.send("LRANGE", "target", "0", "-1")
        #expect(try client.send("EXEC") == .array([
            .string("foo"), .string("bar"), .null, .array([]), .array([.string("bar"), .string("foo")]),
        ]))
    }

    // MARK: timeouts

    @Test(arguments: ["BLPOP", "BRPOP", "BLMPOP", "BLMOVE", "BRPOPLPUSH"])
    func timeoutRepliesWithTheNullArray(command: String) throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        switch command {
        case "BLMPOP": try blocked.write("BLMPOP", "1", "2", "blist1", "blist2", "LEFT")
        case "BLMOVE": try blocked.write("BLMOVE", "blist1", "target", "LEFT", "RIGHT", "1")
        case "BRPOPLPUSH": try blocked.write("BRPOPLPUSH", "blist1", "target", "1")
        default: try blocked.write(command, "blist1", "blist2", "1")
        }
        blocked.advanceLoopTime(milliseconds: 999)
        #expect(try blocked.nextReply() == nil)
        blocked.advanceLoopTime(milliseconds: 1)
        #expect(try blocked.nextReply() == .nullArray)
        #expect(try other.blockedClients() == 0)
        #expect(!node.state.blocking.hasWaiters)
        // A later push stays in the list: nobody waits any more.
        try other.send("RPUSH", "blist1", "foo")
        #expect(try other.send("LLEN", "blist1") == .integer(1))
        #expect(try blocked.send("PING") == .simple("PONG"))
    }

    @Test func timeoutInResp3IsNull() throws {
        let node = TestNode()
        let blocked = try node.connect()
        try blocked.send("HELLO", "3")
        try blocked.write("BLPOP", "k", "0.5")
        blocked.advanceLoopTime(milliseconds: 500)
        #expect(try blocked.nextReply() == .null)
    }

    @Test func fractionalTimeoutsRoundUpAndZeroWaitsForever() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("BLPOP", "k", "0.001")
        #expect(try blocked.nextReply() == nil)
        blocked.advanceLoopTime(milliseconds: 1)
        #expect(try blocked.nextReply() == .nullArray)

        try blocked.write("BLPOP", "k", "0")
        blocked.advanceLoopTime(milliseconds: 1_000_000_000)
        #expect(try blocked.nextReply() == nil)
        try other.send("RPUSH", "k", "late")
        #expect(try blocked.nextReply() == pair("k", "late"))

        // A push before the deadline cancels the timer.
        try blocked.write("BLPOP", "k", "0.1")
        try other.send("RPUSH", "k", "soon")
        #expect(try blocked.nextReply() == pair("k", "soon"))
        blocked.advanceLoopTime(milliseconds: 1000)
        #expect(try blocked.nextReply() == nil)
    }

    @Test(arguments: ["BLPOP", "BRPOP", "BLMPOP", "BLMOVE", "BRPOPLPUSH"])
    func timeoutArgumentErrors(command: String) throws {
        let client = try TestNode().connect()
        func run(_ timeout: String) throws -> RESPValue {
            switch command {
            case "BLMPOP": return try client.send("BLMPOP", timeout, "1", "blist1", "LEFT")
            case "BLMOVE": return try client.send("BLMOVE", "blist1", "target", "LEFT", "RIGHT", timeout)
            case "BRPOPLPUSH": return try client.send("BRPOPLPUSH", "blist1", "target", timeout)
            default: return try client.send(command, "blist1", timeout)
            }
        }
        #expect(try run("-1") == .error("ERR timeout is negative"))
        #expect(try run("abc") == .error("ERR timeout is not a float or out of range"))
        #expect(try run("nan") == .error("ERR timeout is not a float or out of range"))
        #expect(try run(" 1") == .error("ERR timeout is not a float or out of range"))
        #expect(try run("0x7FFFFFFFFFFFFF") == .error("ERR timeout is out of range"))
        #expect(try run("inf") == .error("ERR timeout is out of range"))
        #expect(try client.send("BLMPOP", "0", "0", "blist1", "LEFT") == .error("ERR numkeys should be greater than 0"))
        #expect(try client.send("BLMPOP", "-1", "1", "blist1", "LEFT", "COUNT", "0") == .error("ERR count should be greater than 0"))
        #expect(try client.send("BLMOVE", "a", "b", "UP", "LEFT", "-1") == .error("ERR syntax error"))
    }

    // MARK: disconnection and unblocking

    @Test func disconnectWhileBlockedRemovesTheWait() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("BLPOP", "k", "k2", "10")
        #expect(try other.blockedClients() == 1)
        try blocked.channel.close().wait()
        #expect(!node.state.blocking.hasWaiters)
        #expect(node.state.blocking.blockedKeyCount == 0)
        #expect(try other.blockedClients() == 0)
        try other.send("RPUSH", "k", "kept")
        #expect(try other.send("LRANGE", "k", "0", "-1").strings == ["kept"])
        // Its timer is gone too.
        blocked.advanceLoopTime(milliseconds: 20_000)
        #expect(try other.send("LLEN", "k") == .integer(1))
    }

    @Test func unblockByClientID() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        let id = try blocked.clientID()
        try blocked.write("BLPOP", "l", "0")
        #expect(node.state.blocking.unblock(clientID: id, withError: false, node: node.state))
        #expect(try blocked.nextReply() == .nullArray)
        #expect(!node.state.blocking.unblock(clientID: id, withError: false, node: node.state))

        try blocked.write("BLMPOP", "0", "1", "l", "RIGHT")
        #expect(node.state.blocking.unblock(clientID: id, withError: true, node: node.state))
        #expect(try blocked.nextReply() == .error("UNBLOCKED client unblocked via CLIENT UNBLOCK"))
        #expect(try other.blockedClients() == 0)

        try blocked.write("BLPOP", "l", "0")
        try other.send("LPUSH", "l", "foo")
        #expect(try blocked.nextReply() == pair("l", "foo"))

        // The command (it was not wired to the registry: redis's list suite stopped at CLIENT UNBLOCK).
        try blocked.write("BZPOPMIN", "z", "0")
        #expect(try other.send("CLIENT", "UNBLOCK", String(id), "ERROR") == .integer(1))
        #expect(try blocked.nextReply() == .error("UNBLOCKED client unblocked via CLIENT UNBLOCK"))
        #expect(try other.send("CLIENT", "UNBLOCK", String(id)) == .integer(0))
        try blocked.write("BLPOP", "l", "0")
        #expect(try other.send("CLIENT", "UNBLOCK", String(id), "TIMEOUT") == .integer(1))
        #expect(try blocked.nextReply() == .nullArray)
        #expect(try other.send("CLIENT", "UNBLOCK", String(id), "LATER") == .error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"))
        #expect(try other.send("CLIENT", "UNBLOCK", "x") == .error("ERR value is not an integer or out of range"))
    }

    // MARK: RESP3

    @Test func resp3RepliesKeepTheArrayShapes() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.send("HELLO", "3")
        try blocked.write("BLPOP", "k", "0")
        try other.send("RPUSH", "k", "v")
        #expect(try blocked.nextReply() == pair("k", "v"))
        try blocked.write("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "2")
        try other.send("RPUSH", "k", "a", "b", "c")
        #expect(try blocked.nextReply() == popped("k", "a", "b"))
        try blocked.write("BLMOVE", "empty", "k", "LEFT", "LEFT", "0")
        try other.send("RPUSH", "empty", "m")
        #expect(try blocked.nextReply() == .string("m"))
        try blocked.send("MULTI")
        try blocked.send("BLPOP", "none", "0")
        try blocked.send("BLMOVE", "none", "k", "LEFT", "LEFT", "0")
        #expect(try blocked.send("EXEC") == .array([.null, .null]))
    }
}

/// How a blocked command is counted (redis updateStatsOnUnblock): once, when it ends (served, timed out, unblocked,
/// failed), not when it blocks; the slow log sees it then too.
struct BlockedCommandStatisticsTests {
    @Test func countedOnceWhenItEnds() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        let id = try blocked.clientID()
        func blpop() throws -> String? { try other.info("commandstats", prefix: "cmdstat_")["blpop"] }
        try other.send("CONFIG", "RESETSTAT")
        try blocked.write("BLPOP", "l", "0")
        #expect(try other.blockedClients() == 1)
        #expect(try blpop() == nil)
        // Served.
        try other.send("LPUSH", "l", "a")
        #expect(try blocked.nextReply() == pair("l", "a"))
        #expect(try blpop()?.hasPrefix("calls=1,") == true)
        #expect(try blpop()?.hasSuffix("rejected_calls=0,failed_calls=0") == true)
        // Unblocked as by a timeout, then with an error (a failed call, and an error reply in errorstats).
        try blocked.write("BLPOP", "l", "0")
        #expect(try other.send("CLIENT", "UNBLOCK", String(id)) == .integer(1))
        #expect(try blocked.nextReply() == .nullArray)
        #expect(try blpop()?.hasPrefix("calls=2,") == true)
        try blocked.write("BLPOP", "l", "0")
        #expect(try other.send("CLIENT", "UNBLOCK", String(id), "ERROR") == .integer(1))
        #expect(try blocked.nextReply() == .error("UNBLOCKED client unblocked via CLIENT UNBLOCK"))
        #expect(try blpop()?.hasPrefix("calls=3,") == true)
        #expect(try blpop()?.hasSuffix("rejected_calls=0,failed_calls=1") == true)
        #expect(try other.info("errorstats", prefix: "errorstat_")["UNBLOCKED"] == "count=1")
        // Timed out, and in the slow log then.
        try other.send("CONFIG", "SET", "slowlog-log-slower-than", "0")
        try other.send("SLOWLOG", "RESET")
        try blocked.write("BLPOP", "l", "1")
        #expect(try other.send("SLOWLOG", "LEN") == .integer(1))  // the SLOWLOG RESET
        blocked.advanceLoopTime(milliseconds: 1000)
        #expect(try blocked.nextReply() == .nullArray)
        #expect(try blpop()?.hasPrefix("calls=4,") == true)
        let logged = try other.send("SLOWLOG", "GET", "-1").elements?.compactMap { entry in
            (entry.elements?.count ?? 0) > 3 ? entry.elements?[3].strings : nil
        }
        #expect(logged?.contains(["BLPOP", "l", "1"]) == true)
    }

    /// redis's acl unit: a blocked command refused when it is served (its user lost the key meanwhile) is a rejected
    /// call, not a call.
    @Test func refusedWhenServedIsRejectedOnly() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try other.send("ACL", "SETUSER", "psuser", "reset", "on", "nopass", "+@all", "allkeys")
        #expect(try blocked.send("AUTH", "psuser", "pspass") == .simple("OK"))
        try other.send("CONFIG", "RESETSTAT")
        try blocked.write("BLPOP", "list1", "0")
        #expect(try other.blockedClients() == 1)
        try other.send("ACL", "SETUSER", "psuser", "resetkeys")
        try other.send("LPUSH", "list1", "foo")
        let refusal = try blocked.nextReply()
        #expect(refusal?.isError == true && refusal?.text?.hasPrefix("NOPERM No permissions to access a key") == true)
        let stats = try other.info("commandstats", prefix: "cmdstat_")["blpop"]
        #expect(stats == "calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0")
    }
}
