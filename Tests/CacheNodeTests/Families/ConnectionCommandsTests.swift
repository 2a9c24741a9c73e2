// Tests of the connection family's CLIENT KILL through the real decoder, dispatcher and reply writer (redis
// tests/unit/introspection.tcl), including a client that kills itself in the middle of a pipeline.
import CacheNode
import CacheNodeTestSupport
import Testing

struct ConnectionCommandsTests {
    // TYPE filters read other clients' subscriptions from their published info: reading a session's own
    // subscription sets from another event loop raced with its SUBSCRIBE and crashed the node
    // (RandomPipelineProcessTests, --threads 2).
    @Test func clientListAndKillFilterSubscribersByType() throws {
        let node = TestNode()
        let admin = try node.connect()
        let subscriber = try node.connect()
        let plain = try node.connect()
        _ = try subscriber.send("PSUBSCRIBE", "news.*")
        _ = try plain.send("PING")
        let pubsubList = try admin.send("CLIENT", "LIST", "TYPE", "pubsub").text ?? ""
        #expect(pubsubList.split(separator: "\n").count == 1 && pubsubList.contains("flags=P"), "\(pubsubList)")
        let normalList = try admin.send("CLIENT", "LIST", "TYPE", "normal").text ?? ""
        #expect(normalList.split(separator: "\n").count == 2 && !normalList.contains("flags=P"), "\(normalList)")
        #expect(try admin.send("CLIENT", "KILL", "TYPE", "pubsub") == .integer(1))
        try subscriber.allReplies()  // closed in a task of its own event loop
        try plain.allReplies()
        #expect(subscriber.isClosed)
        #expect(!plain.isClosed)
    }

    /// The client's id as CLIENT ID reports it.
    private func id(of client: TestClient) throws -> Int {
        guard case .integer(let id) = try client.send("CLIENT", "ID") else { throw TestClientError.noReply(["CLIENT", "ID"]) }
        return id
    }

    // Turning replies off or skipping one inside MULTI broke EXEC's reply (an array header counting replies that were
    // then not written), in redis too; refused there as valkey 9 refuses it, and the transaction is aborted.
    @Test func clientReplyIsRefusedInsideMultiAndAbortsTheTransaction() throws {
        let node = TestNode()
        let client = try node.connect()
        for mode in ["OFF", "SKIP", "ON"] {
            #expect(try client.send("MULTI") == .simple("OK"))
            #expect(try client.send("PING", "a") == .simple("QUEUED"))
            #expect(try client.send("CLIENT", "REPLY", mode) == .error("ERR Command not allowed inside a transaction"))
            #expect(try client.send("EXEC") == .error("EXECABORT Transaction discarded because of previous errors."))
        }
        // Outside a transaction it works as before, and the stream stays in step.
        try client.write("CLIENT", "REPLY", "SKIP")
        try client.write("PING", "skipped")
        #expect(try client.send("PING", "b") == .bulk(Array("b".utf8)))
        #expect(try client.allReplies().isEmpty)
    }

    // redis's introspection unit: CLIENT REPLY ON right after SKIP answers OK (it clears the skip first); a SKIP
    // while skipping skips the command after it.
    @Test func clientReplyOnAfterSkipIsAnsweredAndSkipAfterSkipSkipsTheNextCommand() throws {
        let client = try TestNode().connect()
        try client.write("CLIENT", "REPLY", "SKIP")
        #expect(try client.send("CLIENT", "REPLY", "ON") == .simple("OK"))
        #expect(try client.send("PING") == .simple("PONG"))
        try client.write("CLIENT", "REPLY", "SKIP")
        try client.write("CLIENT", "REPLY", "SKIP")
        try client.write("PING", "skipped")
        #expect(try client.send("PING", "c") == .bulk(Array("c".utf8)))
        #expect(try client.allReplies().isEmpty)
    }

    @Test func aKnownClientSubcommandWithTheWrongArgumentCountIsAnArityError() throws {
        let client = try TestNode().connect()
        #expect(try client.send("CLIENT", "SETINFO", "lib-name") == .error("ERR wrong number of arguments for 'client|setinfo' command"))
        #expect(try client.send("CLIENT", "ID", "x") == .error("ERR wrong number of arguments for 'client|id' command"))
        #expect(try client.send("CLIENT", "TRACKING") == .error("ERR wrong number of arguments for 'client|tracking' command"))
        #expect(try client.send("CLIENT", "NOPE").text?.hasPrefix("ERR unknown subcommand 'NOPE'") == true)
        // The dispatcher checks every container's subcommands against their own arity, as redis does.
        #expect(try client.send("SCRIPT", "LOAD") == .error("ERR wrong number of arguments for 'script|load' command"))
        #expect(try client.send("SCRIPT", "KILL", "x") == .error("ERR wrong number of arguments for 'script|kill' command"))
        #expect(try client.send("XGROUP", "HELP", "x") == .error("ERR wrong number of arguments for 'xgroup|help' command"))
        // Inside MULTI it is refused when queued, and the transaction is aborted.
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "RESET", "x") == .error("ERR wrong number of arguments for 'slowlog|reset' command"))
        #expect(try client.send("EXEC") == .error("EXECABORT Transaction discarded because of previous errors."))
        // From a script, with redis's script error.
        #expect(try client.send("EVAL", "return redis.pcall('pubsub', 'numpat', 'x')", "0").text?.contains(
            "Wrong number of args calling Redis command from script") == true)
    }

    @Test func clientKillWithoutArgumentsIsAnArityErrorAsInRedis() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("CLIENT", "KILL") == .error("ERR wrong number of arguments for 'client|kill' command"))
        #expect(try client.send("CLIENT", "KILL", "USER", "nobody") == .error("ERR No such user 'nobody'"))
        #expect(try client.send("CLIENT", "KILL", "USER", "default") == .integer(0))
    }

    // CLIENT LIST's cmd= names a container's subcommand as redis 7 does (client|list, config|get).
    @Test func clientListShowsTheSubcommandOfTheLastCommand() throws {
        let node = TestNode()
        let client = try node.connect()
        let other = try node.connect()
        _ = try other.send("CONFIG", "GET", "port")
        guard case .bulk(let list) = try client.send("CLIENT", "LIST") else {
            Issue.record("no CLIENT LIST")
            return
        }
        let lines = String(decoding: list, as: UTF8.self).split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("id=1 ") && $0.contains(" cmd=client|list ") })
        #expect(lines.contains { $0.hasPrefix("id=2 ") && $0.contains(" cmd=config|get ") })
        _ = try other.send("GET", "k")
        guard case .bulk(let info) = try other.send("CLIENT", "INFO") else { return }
        #expect(String(decoding: info, as: UTF8.self).contains(" cmd=client|info "))
    }

    @Test func killByIDClosesThatClientAndSkipsTheCallerUnlessAsked() throws {
        let node = TestNode()
        let killer = try node.connect()
        let victim = try node.connect()
        #expect(try killer.send("CLIENT", "KILL", "ID", String(try id(of: victim))) == .integer(1))
        try victim.allReplies()  // the victim is closed in a task of its own event loop
        #expect(victim.isClosed)
        #expect(!killer.isClosed)
        // SKIPME defaults to yes: a filter that matches only the caller kills nobody.
        #expect(try killer.send("CLIENT", "KILL", "ID", String(try id(of: killer))) == .integer(0))
        #expect(try killer.send("PING") == .simple("PONG"))
        #expect(try killer.send("CLIENT", "KILL", "ID", "0") == .error("ERR client-id should be greater than 0"))
        // Three arguments are the old form, CLIENT KILL addr:port, as in redis.
        #expect(try killer.send("CLIENT", "KILL", "ID") == .error("ERR No such client"))
        #expect(try killer.send("CLIENT", "KILL", "ID", "1", "SKIPME") == .error("ERR syntax error"))
        #expect(try killer.send("CLIENT", "KILL", "BOGUS", "1") == .error("ERR syntax error"))
        #expect(try killer.send("CLIENT", "KILL", "127.0.0.1:1") == .error("ERR No such client"))
    }

    @Test func aClientKillingItselfMidPipelineIsClosedAndRunsNothingAfter() throws {
        let node = TestNode()
        let client = try node.connect()
        let observer = try node.connect()
        let ownID = try id(of: client)
        // The kill closes the connection while its command runs; the commands behind it in the same read must not
        // run on the closed session.
        try client.writeRaw("CLIENT KILL ID \(ownID) SKIPME no\r\nSET after-kill 1\r\nPING\r\n")
        #expect(client.isClosed)
        // It was told its kill succeeded, and nothing more.
        #expect(try client.allReplies() == [.integer(1)])
        #expect(try observer.send("EXISTS", "after-kill") == .integer(0))
        #expect(try observer.send("PING") == .simple("PONG"))
    }

    // CLIENT KILL inside EXEC runs with the transaction's stripe locks held, and ending a session takes them (to drop
    // its watched keys). Closing the killed client right there deadlocked the event loop: the node stopped serving.
    @Test func aClientKillingItselfInsideExecIsClosedAfterTheTransaction() throws {
        let node = TestNode()
        let client = try node.connect()
        let observer = try node.connect()
        let ownID = try id(of: client)
        try client.send("WATCH", "watched")
        try client.send("MULTI")
        try client.send("CLIENT", "KILL", "ID", String(ownID), "SKIPME", "no")
        try client.send("SET", "in-transaction", "1")
        try client.writeRaw("EXEC\r\nSET after-exec 1\r\n")
        // As redis: the transaction runs to its end and its reply is sent; the client is closed after it.
        #expect(try client.allReplies() == [.array([.integer(1), .simple("OK")])])
        #expect(client.isClosed)
        #expect(try observer.send("EXISTS", "in-transaction", "after-exec") == .integer(1))
        #expect(try observer.send("SET", "watched", "free") == .simple("OK"))
    }

    @Test func aClientKilledFromAnotherClientsTransactionIsClosedAfterIt() throws {
        let node = TestNode()
        let killer = try node.connect()
        let victim = try node.connect()
        try victim.send("WATCH", "watched")
        try killer.send("MULTI")
        try killer.send("CLIENT", "KILL", "ID", String(try id(of: victim)))
        try killer.send("SET", "k", "v")
        #expect(try killer.send("EXEC") == .array([.integer(1), .simple("OK")]))
        try victim.allReplies()
        #expect(victim.isClosed)
        #expect(try killer.send("GET", "k") == .bulk(Array("v".utf8)))
        #expect(try killer.send("SET", "watched", "free") == .simple("OK"))
    }
}

/// CLIENT NO-TOUCH and NO-EVICT (redis 7.2): a no-touch client's commands leave the access clocks of keys alone,
/// except TOUCH; both show in CLIENT LIST and RESET clears them.
struct ClientNoTouchTests {
    @Test func noTouchClientsLeaveAccessClocksAloneExceptTouch() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("SET", "foo", "bar")
        try client.send("RPUSH", "list", "a")
        node.advance(milliseconds: 10_000)
        #expect(try client.send("CLIENT", "NO-TOUCH", "ON") == .simple("OK"))
        #expect(try client.send("GET", "foo") == .string("bar"))
        #expect(try client.send("RPUSH", "list", "b") == .integer(2))
        #expect(try client.send("OBJECT", "IDLETIME", "foo") == .integer(10))
        #expect(try client.send("OBJECT", "IDLETIME", "list") == .integer(10))
        #expect(try client.send("TOUCH", "foo") == .integer(1))
        #expect(try client.send("OBJECT", "IDLETIME", "foo") == .integer(0))
        #expect(try client.send("CLIENT", "NO-TOUCH", "maybe").isError)
        #expect(try client.send("CLIENT", "NO-EVICT", "ON") == .simple("OK"))
        #expect(try client.send("CLIENT", "INFO").text?.contains(" flags=eT ") == true)
        #expect(try client.send("CLIENT", "NO-TOUCH", "OFF") == .simple("OK"))
        #expect(try client.send("LLEN", "list") == .integer(2))
        #expect(try client.send("OBJECT", "IDLETIME", "list") == .integer(0))
        // RESET clears both.
        try client.send("CLIENT", "NO-TOUCH", "ON")
        #expect(try client.send("RESET") == .simple("RESET"))
        #expect(try client.send("CLIENT", "INFO").text?.contains(" flags=N ") == true)
        node.advance(milliseconds: 3_000)
        #expect(try client.send("GET", "foo") == .string("bar"))
        #expect(try client.send("OBJECT", "IDLETIME", "foo") == .integer(0))
    }
}
