// CLIENT PAUSE / UNPAUSE, ported from redis 7.2's unit/pause.tcl: which commands a WRITE pause holds back (writes,
// may-replicate commands, EXEC of writes, scripts that may write) and which it lets through, the stricter mode and
// later deadline winning, held commands answered in order once unpaused or at the deadline (the pausing client's
// loop timer, with the node's manual clock moved alongside), expiry and eviction standing still meanwhile.
@testable import CacheNode
import CacheNodeTestSupport
import CacheStore
import NIOCore
import Testing

struct ClientPauseTests {
    private func blocked(_ client: TestClient) throws -> Int? { try client.blockedClients() }

    @Test func aWritePauseLetsReadsThroughAndHoldsWritesUntilUnpaused() throws {
        let node = TestNode()
        let admin = try node.connect()
        let client = try node.connect()
        #expect(try admin.send("CLIENT", "PAUSE", "100000", "WRITE") == .simple("OK"))
        #expect(try client.send("GET", "FOO") == .null)
        #expect(try client.send("PING") == .simple("PONG"))
        #expect(try client.send("INFO", "server").text != nil)
        #expect(try blocked(admin) == 0)
        try client.write("SET", "FOO", "BAR")
        #expect(try client.nextReply() == nil)
        #expect(try blocked(admin) == 1)
        #expect(try admin.send("GET", "FOO") == .null)
        // A command with the wrong number of arguments is answered at once.
        #expect(try admin.send("SET", "FOO") == .error("ERR wrong number of arguments for 'set' command"))
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        #expect(try client.nextReply() == .simple("OK"))
        #expect(try admin.send("GET", "FOO") == .string("BAR"))
        #expect(try blocked(admin) == 0)
    }

    @Test func commandsThatMayReplicateAreHeldToo() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("PFADD", "pause-hll", "test") == .integer(1))
        #expect(try admin.send("CLIENT", "PAUSE", "100000", "WRITE") == .simple("OK"))
        let counter = try node.connect()
        let publisher = try node.connect()
        try counter.write("PFCOUNT", "pause-hll")
        try publisher.write("PUBLISH", "foo", "bar")
        #expect(try counter.nextReply() == nil)
        #expect(try publisher.nextReply() == nil)
        #expect(try blocked(admin) == 2)
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        #expect(try counter.nextReply() == .integer(1))
        #expect(try publisher.nextReply() == .integer(0))
        // A read-only script may not call them.
        #expect(try admin.send("EVAL_RO", "return redis.call('publish','ch','msg')", "0").text?.hasPrefix(
            "ERR Write commands are not allowed from read-only scripts.") == true)
        #expect(try admin.send("EVAL", "#!lua flags=no-writes\nreturn redis.call('publish','ch','msg')", "0").text?.hasPrefix(
            "ERR Write commands are not allowed from read-only scripts.") == true)
        #expect(try admin.send("EVAL", "return redis.call('publish','ch','msg')", "0") == .integer(0))
    }

    @Test func transactionsAreHeldOnlyWhenTheyWrite() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("SET", "FOO", "BAR") == .simple("OK"))
        let writer = try node.connect()
        #expect(try writer.send("MULTI") == .simple("OK"))
        #expect(try writer.send("SET", "FOO", "BAZ") == .simple("QUEUED"))
        #expect(try admin.send("CLIENT", "PAUSE", "60000", "WRITE") == .simple("OK"))
        let reader = try node.connect()
        #expect(try reader.send("MULTI") == .simple("OK"))
        #expect(try reader.send("PING") == .simple("QUEUED"))
        #expect(try reader.send("GET", "FOO") == .simple("QUEUED"))
        #expect(try reader.send("EVAL", "#!lua flags=no-writes\nreturn 12", "0") == .simple("QUEUED"))
        #expect(try reader.send("EXEC") == .array([.simple("PONG"), .string("BAR"), .integer(12)]))
        try writer.write("EXEC")
        #expect(try writer.nextReply() == nil)
        #expect(try blocked(admin) == 1)
        // Queuing a write inside MULTI waits too.
        let queuer = try node.connect()
        #expect(try queuer.send("MULTI") == .simple("OK"))
        try queuer.write("INCR", "n")
        #expect(try queuer.nextReply() == nil)
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        #expect(try writer.nextReply() == .array([.simple("OK")]))
        #expect(try queuer.nextReply() == .simple("QUEUED"))
        #expect(try queuer.send("EXEC") == .array([.integer(1)]))
    }

    @Test func scriptsAreHeldUnlessTheyDeclareNoWrites() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("SET", "x", "y") == .simple("OK"))
        let sha = try #require(admin.send("SCRIPT", "LOAD", "#!lua flags=no-writes\nreturn 2").text)
        #expect(try admin.send("CLIENT", "PAUSE", "6000000", "WRITE") == .simple("OK"))
        let reader = try node.connect()
        #expect(try reader.send("EVAL", "#!lua flags=no-writes\nreturn 'unique script'", "0") == .string("unique script"))
        #expect(try reader.send("EVAL_RO", "return redis.call('GeT', 'x')..' unique script'", "1", "x") == .string("y unique script"))
        #expect(try reader.send("EVALSHA", sha, "0") == .integer(2))
        let plain = try node.connect()
        let shebang = try node.connect()
        try plain.write("EVAL", "return 1", "0")
        try shebang.write("EVAL", "#!lua\nreturn 1", "0")
        #expect(try plain.nextReply() == nil)
        #expect(try shebang.nextReply() == nil)
        #expect(try blocked(admin) == 2)
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        #expect(try plain.nextReply() == .integer(1))
        #expect(try shebang.nextReply() == .integer(1))
    }

    @Test func theStricterModeAndTheLaterDeadlineWinAndTheDeadlineEndsThePause() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("CLIENT", "PAUSE", "200", "WRITE") == .simple("OK"))
        #expect(try admin.send("CLIENT", "PAUSE", "20", "ALL") == .simple("OK"))
        let reader = try node.connect()
        node.advance(milliseconds: 50)
        admin.advanceLoopTime(milliseconds: 50)
        try reader.write("GET", "FOO")
        #expect(try reader.nextReply() == nil)
        // Under ALL even CLIENT commands wait (as in redis, only the deadline ends such a pause).
        let other = try node.connect()
        try other.write("CLIENT", "PAUSE", "20", "WRITE")
        #expect(try other.nextReply() == nil)
        // The deadline is the pausing client's loop timer; the node's clock moves with it.
        node.advance(milliseconds: 150)
        admin.advanceLoopTime(milliseconds: 150)
        #expect(try reader.nextReply() == .null)
        // The held CLIENT PAUSE then ran: a WRITE pause of its own.
        #expect(try other.nextReply() == .simple("OK"))
        #expect(try reader.send("GET", "FOO") == .null)
        try reader.write("SET", "FOO", "1")
        #expect(try reader.nextReply() == nil)
        node.advance(milliseconds: 20)
        other.advanceLoopTime(milliseconds: 20)
        #expect(try reader.nextReply() == .simple("OK"))
        #expect(try reader.send("DEL", "FOO") == .integer(1))

        // A shorter pause does not cut a longer one short.
        #expect(try admin.send("CLIENT", "PAUSE", "60000", "WRITE") == .simple("OK"))
        #expect(try admin.send("CLIENT", "PAUSE", "10", "WRITE") == .simple("OK"))
        node.advance(milliseconds: 100)
        admin.advanceLoopTime(milliseconds: 100)
        let writer = try node.connect()
        try writer.write("SET", "FOO", "BAR")
        #expect(try writer.nextReply() == nil)
        node.advance(milliseconds: 59_900)
        admin.advanceLoopTime(milliseconds: 59_900)
        #expect(try writer.nextReply() == .simple("OK"))

        // A deadline that passed while its timer had not fired ends the pause at the next command.
        #expect(try admin.send("CLIENT", "PAUSE", "100", "ALL") == .simple("OK"))
        node.advance(milliseconds: 100)
        #expect(try writer.send("GET", "FOO") == .string("BAR"))
    }

    @Test func heldClientsAreAnsweredInOrderAndOneThatLeftIsDropped() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("CLIENT", "PAUSE", "60000", "WRITE") == .simple("OK"))
        let clients = try (0..<3).map { _ in try node.connect() }
        for (index, client) in clients.enumerated() { try client.write("RPUSH", "order", "\(index)") }
        let leaver = try node.connect()
        try leaver.write("SET", "left", "1")
        #expect(try blocked(admin) == 4)
        _ = try leaver.channel.close().wait()
        #expect(try blocked(admin) == 3)
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        for (index, client) in clients.enumerated() { #expect(try client.nextReply() == .integer(index + 1)) }
        #expect(try admin.send("LRANGE", "order", "0", "-1") == .array([.string("0"), .string("1"), .string("2")]))
        #expect(try admin.send("EXISTS", "left") == .integer(0))
    }

    @Test func expiredKeysStayUntilThePauseEnds() throws {
        let node = TestNode()
        let admin = try node.connect()
        func expiredKeys() throws -> Int? {
            let text = try admin.send("INFO", "stats").text ?? ""
            return text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("expired_keys:") }.flatMap { Int($0.dropFirst(13)) }
        }
        let before = try expiredKeys()
        #expect(try admin.send("MULTI") == .simple("OK"))
        #expect(try admin.send("SET", "foo{t}", "bar", "PX", "10") == .simple("QUEUED"))
        #expect(try admin.send("SET", "bar{t}", "foo", "PX", "10") == .simple("QUEUED"))
        #expect(try admin.send("CLIENT", "PAUSE", "50000", "WRITE") == .simple("QUEUED"))
        #expect(try admin.send("EXEC") == .array([.simple("OK"), .simple("OK"), .simple("OK")]))
        node.advance(milliseconds: 100)
        _ = node.state.keyspace.activeExpireCycle(now: node.clock.nowMilliseconds())
        #expect(try admin.send("GET", "foo{t}") == .null)
        #expect(try admin.send("GET", "bar{t}") == .null)
        #expect(try expiredKeys() == before)
        #expect(try admin.send("DBSIZE") == .integer(2))
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        #expect(try admin.send("GET", "foo{t}") == .null)
        #expect(try admin.send("GET", "bar{t}") == .null)
        #expect(try expiredKeys() == before.map { $0 + 2 })
    }

    @Test func aPauseInsideATransactionStartsWhenItEnds() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("MULTI") == .simple("OK"))
        #expect(try admin.send("SET", "FOO1{t}", "BAR") == .simple("QUEUED"))
        #expect(try admin.send("CLIENT", "PAUSE", "60000", "WRITE") == .simple("QUEUED"))
        #expect(try admin.send("SET", "FOO2{t}", "BAR") == .simple("QUEUED"))
        #expect(try admin.send("EXEC") == .array([.simple("OK"), .simple("OK"), .simple("OK")]))
        let writer = try node.connect()
        try writer.write("SET", "FOO3{t}", "BAR")
        #expect(try writer.nextReply() == nil)
        #expect(try admin.send("GET", "FOO1{t}") == .string("BAR"))
        #expect(try admin.send("GET", "FOO2{t}") == .string("BAR"))
        #expect(try admin.send("GET", "FOO3{t}") == .null)
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        #expect(try writer.nextReply() == .simple("OK"))
    }

    @Test func badArgumentsAreRefused() throws {
        let admin = try TestNode().connect()
        #expect(try admin.send("CLIENT", "PAUSE", "x") == .error("ERR timeout is not an integer or out of range"))
        #expect(try admin.send("CLIENT", "PAUSE", "-1") == .error("ERR timeout is negative"))
        #expect(try admin.send("CLIENT", "PAUSE", "10", "READ") == .error("ERR CLIENT PAUSE mode must be WRITE or ALL"))
        #expect(try admin.send("CLIENT", "PAUSE", String(Int.max)) == .error("ERR timeout is out of range"))
        #expect(try admin.send("CLIENT", "UNPAUSE") == .simple("OK"))
        #expect(try admin.send("SET", "k", "v") == .simple("OK"))
    }
}
