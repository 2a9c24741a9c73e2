// Tests of the pub/sub family through the real decoder, dispatcher and reply writer, with publishers and subscribers
// as separate connections (ported from redis tests/unit/pubsub.tcl and pubsubshard.tcl).
import CacheNode
import CacheNodeTestSupport
import NIOCore
import NIOEmbedded
import Testing

/// A RESP2 pub/sub frame: `[word, args...]` as bulk strings and integers.
private func frame(_ word: String, _ name: String, _ count: Int) -> RESPValue {
    .array([.string(word), .string(name), .integer(count)])
}

private func message(_ channel: String, _ payload: String) -> RESPValue {
    .array([.string("message"), .string(channel), .string(payload)])
}

private func pmessage(_ pattern: String, _ channel: String, _ payload: String) -> RESPValue {
    .array([.string("pmessage"), .string(pattern), .string(channel), .string(payload)])
}

extension TestClient {
    /// Sends a (un)subscribe command and reads one confirmation per name (or `expected` confirmations); returns
    /// the confirmations.
    func subscription(_ command: String, _ names: [String], expected: Int? = nil) throws -> [RESPValue] {
        var replies = [try send(arguments: ([command] + names).map { Array($0.utf8) })]
        for _ in 1..<(expected ?? max(1, names.count)) {
            guard let reply = try nextReply() else { break }
            replies.append(reply)
        }
        return replies
    }

    /// The counts of the confirmations of a (un)subscribe command.
    func subscriptionCounts(_ command: String, _ names: [String], expected: Int? = nil) throws -> [Int] {
        try subscription(command, names, expected: expected).map { reply -> Int in
            guard let elements = reply.elements, elements.count == 3, case .integer(let count) = elements[2] else { return -1 }
            return count
        }
    }
}

struct PubSubCommandsTests {
    @Test func publishWithoutSubscribersReachesNobody() throws {
        let client = try TestNode().connect()
        #expect(try client.send("PUBLISH", "chan", "hello") == .integer(0))
        #expect(try client.send("SPUBLISH", "chan", "hello") == .integer(0))
    }

    @Test func subscribeConfirmsEachChannelAndReceivesMessages() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        #expect(try subscriber.subscription("SUBSCRIBE", ["chan1", "chan2"]) == [frame("subscribe", "chan1", 1), frame("subscribe", "chan2", 2)])
        #expect(try publisher.send("PUBLISH", "chan1", "hello") == .integer(1))
        #expect(try publisher.send("PUBLISH", "chan2", "world") == .integer(1))
        #expect(try subscriber.nextReply() == message("chan1", "hello"))
        #expect(try subscriber.nextReply() == message("chan2", "world"))
        #expect(try subscriber.nextReply() == nil)

        // Unsubscribe from one of the channels.
        #expect(try subscriber.subscription("UNSUBSCRIBE", ["chan1"]) == [frame("unsubscribe", "chan1", 1)])
        #expect(try publisher.send("PUBLISH", "chan1", "hello") == .integer(0))
        #expect(try publisher.send("PUBLISH", "chan2", "world") == .integer(1))
        #expect(try subscriber.nextReply() == message("chan2", "world"))

        // And from the remaining one.
        #expect(try subscriber.subscription("UNSUBSCRIBE", ["chan2"]) == [frame("unsubscribe", "chan2", 0)])
        #expect(try publisher.send("PUBLISH", "chan1", "hello") == .integer(0))
        #expect(try publisher.send("PUBLISH", "chan2", "world") == .integer(0))
        #expect(try subscriber.nextReply() == nil)
    }

    // A message published before a subscriber's RESET, UNSUBSCRIBE or HELLO ran, but not yet written to it (its
    // flush waits for the subscriber's event loop), goes out ahead of that command's reply, in the protocol it was
    // encoded in; nothing reaches it afterwards in the old protocol. (Before, the message followed the +RESET, as a
    // RESP3 push on a connection back in RESP2; found by the real-process random-pipeline test.)
    @Test func messagesQueuedBeforeResetUnsubscribeOrHelloArriveAheadOfTheirReply() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        _ = try subscriber.send("HELLO", "3")
        #expect(try subscriber.send("SUBSCRIBE", "news") == .push([.bulk(Array("subscribe".utf8)), .bulk(Array("news".utf8)), .integer(1)]))
        let push = RESPValue.push([.bulk(Array("message".utf8)), .bulk(Array("news".utf8)), .bulk(Array("first".utf8))])
        #expect(try publisher.send("PUBLISH", "news", "first") == .integer(1))
        try subscriber.writeRaw("RESET\r\n")
        #expect(try subscriber.allReplies() == [push, .simple("RESET")])
        #expect(try publisher.send("PUBLISH", "news", "late") == .integer(0))
        #expect(try subscriber.allReplies() == [])

        _ = try subscriber.send("HELLO", "3")
        _ = try subscriber.send("SUBSCRIBE", "news")
        #expect(try publisher.send("PUBLISH", "news", "first") == .integer(1))
        try subscriber.writeRaw("UNSUBSCRIBE news\r\n")
        #expect(try subscriber.allReplies() == [push, .push([.bulk(Array("unsubscribe".utf8)), .bulk(Array("news".utf8)), .integer(0)])])

        _ = try subscriber.send("SUBSCRIBE", "news")
        #expect(try publisher.send("PUBLISH", "news", "first") == .integer(1))
        try subscriber.writeRaw("HELLO 2\r\n")
        let replies = try subscriber.allReplies()
        #expect(replies.first == push && replies.count == 2, "\(replies)")
        #expect(try publisher.send("PUBLISH", "news", "second") == .integer(1))
        #expect(try subscriber.allReplies() == [.array([.bulk(Array("message".utf8)), .bulk(Array("news".utf8)), .bulk(Array("second".utf8))])])
    }

    // With CLIENT REPLY OFF a subscriber still gets its (un)subscribe confirmations and its messages, under RESP3
    // (pushes) and RESP2 alike, as redis 7.2 sends them (pubsub.tcl's "PubSub messages with CLIENT REPLY OFF" and
    // "Keyspace notifications: we receive keyspace notifications" wait for them).
    @Test func clientReplyOffKeepsSubscriptionConfirmationsAndMessages() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        _ = try subscriber.send("HELLO", "3")
        try subscriber.write("CLIENT", "REPLY", "OFF")
        try subscriber.write("SUBSCRIBE", "channel")
        try subscriber.write("PSUBSCRIBE", "ch*")
        #expect(try subscriber.allReplies() == [
            .push([.bulk(Array("subscribe".utf8)), .bulk(Array("channel".utf8)), .integer(1)]),
            .push([.bulk(Array("psubscribe".utf8)), .bulk(Array("ch*".utf8)), .integer(2)]),
        ])
        #expect(try publisher.send("PUBLISH", "channel", "hello") == .integer(2))
        #expect(try subscriber.allReplies().count == 2)
        try subscriber.write("UNSUBSCRIBE", "channel")
        try subscriber.write("PING")
        #expect(try subscriber.allReplies() == [.push([.bulk(Array("unsubscribe".utf8)), .bulk(Array("channel".utf8)), .integer(1)])])

        let resp2 = try node.connect()
        try resp2.write("CLIENT", "REPLY", "OFF")
        try resp2.write("SUBSCRIBE", "channel")
        #expect(try resp2.allReplies() == [.array([.bulk(Array("subscribe".utf8)), .bulk(Array("channel".utf8)), .integer(1)])])
        #expect(try publisher.send("PUBLISH", "channel", "again") == .integer(2))  // resp2, and the first subscriber's pattern
        #expect(try resp2.allReplies() == [.array([.bulk(Array("message".utf8)), .bulk(Array("channel".utf8)), .bulk(Array("again".utf8))])])
        let skipping = try node.connect()
        try skipping.write("CLIENT", "REPLY", "SKIP")
        try skipping.write("PSUBSCRIBE", "*")
        #expect(try skipping.allReplies() == [.array([.bulk(Array("psubscribe".utf8)), .bulk(Array("*".utf8)), .integer(1)])])
    }

    @Test func everySubscriberOfAChannelGetsTheMessage() throws {
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let publisher = try node.connect()
        #expect(try first.subscriptionCounts("SUBSCRIBE", ["chan1"]) == [1])
        #expect(try second.subscriptionCounts("SUBSCRIBE", ["chan1"]) == [1])
        #expect(try publisher.send("PUBLISH", "chan1", "hello") == .integer(2))
        #expect(try first.nextReply() == message("chan1", "hello"))
        #expect(try second.nextReply() == message("chan1", "hello"))
    }

    @Test func unsubscribeWithoutArgumentsDropsEverythingAndAlwaysReplies() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        #expect(try subscriber.subscriptionCounts("SUBSCRIBE", ["chan1", "chan2", "chan3"]) == [1, 2, 3])
        let dropped = try subscriber.subscription("UNSUBSCRIBE", [], expected: 3)
        // Channels come back in any order; the counts go down one by one.
        #expect(Set(dropped.compactMap { $0.elements?[1].text }) == ["chan1", "chan2", "chan3"])
        #expect(dropped.compactMap { $0.elements?[2] } == [.integer(2), .integer(1), .integer(0)])
        #expect(dropped.allSatisfy { $0.elements?[0] == .string("unsubscribe") })
        for channel in ["chan1", "chan2", "chan3"] {
            #expect(try publisher.send("PUBLISH", channel, "hello") == .integer(0))
        }
        // With nothing subscribed, both still answer: [kind, nil, 0].
        #expect(try subscriber.send("PUNSUBSCRIBE") == .array([.string("punsubscribe"), .null, .integer(0)]))
        #expect(try subscriber.send("UNSUBSCRIBE") == .array([.string("unsubscribe"), .null, .integer(0)]))
        #expect(try publisher.send("UNSUBSCRIBE") == .array([.string("unsubscribe"), .null, .integer(0)]))
        #expect(try subscriber.nextReply() == nil)
    }

    @Test func unsubscribeAllReportsTheRemainingPatternCount() throws {
        let client = try TestNode().connect()
        #expect(try client.subscriptionCounts("PSUBSCRIBE", ["a*"]) == [1])
        #expect(try client.send("UNSUBSCRIBE") == .array([.string("unsubscribe"), .null, .integer(1)]))
        #expect(try client.subscriptionCounts("SUBSCRIBE", ["x"]) == [2])
        #expect(try client.send("PUNSUBSCRIBE") == frame("punsubscribe", "a*", 1))
    }

    @Test func subscribingTwiceToAChannelCountsOnce() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        #expect(try subscriber.subscriptionCounts("SUBSCRIBE", ["chan1", "chan1", "chan1"]) == [1, 1, 1])
        #expect(try publisher.send("PUBLISH", "chan1", "hello") == .integer(1))
        #expect(try subscriber.nextReply() == message("chan1", "hello"))
        #expect(try subscriber.nextReply() == nil)
    }

    @Test func unsubscribingFromChannelsNeverSubscribedStillConfirms() throws {
        let client = try TestNode().connect()
        #expect(try client.subscriptionCounts("UNSUBSCRIBE", ["foo", "bar", "quux"]) == [0, 0, 0])
        #expect(try client.subscriptionCounts("PUNSUBSCRIBE", ["foo.*", "bar.*", "quux.*"]) == [0, 0, 0])
        // Not subscribed afterwards: ordinary commands work under RESP2.
        #expect(try client.send("GET", "k") == .null)
    }

    @Test func patternSubscriptionsMatchGlobs() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        #expect(try subscriber.subscription("PSUBSCRIBE", ["foo.*", "bar.*"]) == [frame("psubscribe", "foo.*", 1), frame("psubscribe", "bar.*", 2)])
        #expect(try publisher.send("PUBLISH", "foo.1", "hello") == .integer(1))
        #expect(try publisher.send("PUBLISH", "bar.1", "hello") == .integer(1))
        #expect(try publisher.send("PUBLISH", "foo1", "hello") == .integer(0))
        #expect(try publisher.send("PUBLISH", "barfoo.1", "hello") == .integer(0))
        #expect(try publisher.send("PUBLISH", "qux.1", "hello") == .integer(0))
        #expect(try subscriber.nextReply() == pmessage("foo.*", "foo.1", "hello"))
        #expect(try subscriber.nextReply() == pmessage("bar.*", "bar.1", "hello"))
        #expect(try subscriber.nextReply() == nil)

        #expect(try subscriber.subscription("PUNSUBSCRIBE", ["foo.*"]) == [frame("punsubscribe", "foo.*", 1)])
        #expect(try publisher.send("PUBLISH", "foo.1", "hello") == .integer(0))
        #expect(try publisher.send("PUBLISH", "bar.1", "hello") == .integer(1))
        #expect(try subscriber.nextReply() == pmessage("bar.*", "bar.1", "hello"))
        #expect(try subscriber.subscriptionCounts("PUNSUBSCRIBE", ["bar.*"]) == [0])
        #expect(try publisher.send("PUBLISH", "bar.1", "hello") == .integer(0))

        // Character classes, `?` and escapes, as redis's stringmatch.
        #expect(try subscriber.subscriptionCounts("PSUBSCRIBE", ["h?llo", "n[ae]ws", "lit\\*"]) == [1, 2, 3])
        #expect(try publisher.send("PUBLISH", "hallo", "1") == .integer(1))
        #expect(try publisher.send("PUBLISH", "news", "2") == .integer(1))
        #expect(try publisher.send("PUBLISH", "nows", "3") == .integer(0))
        #expect(try publisher.send("PUBLISH", "lit*", "4") == .integer(1))
        #expect(try publisher.send("PUBLISH", "litx", "5") == .integer(0))
        #expect(try subscriber.allReplies() == [
            pmessage("h?llo", "hallo", "1"), pmessage("n[ae]ws", "news", "2"), pmessage("lit\\*", "lit*", "4"),
        ])
    }

    @Test func patternsAndChannelsEachCountAsADelivery() throws {
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let publisher = try node.connect()
        #expect(try first.subscriptionCounts("PSUBSCRIBE", ["chan.*"]) == [1])
        #expect(try second.subscriptionCounts("PSUBSCRIBE", ["chan.*"]) == [1])
        #expect(try publisher.send("PUBLISH", "chan.foo", "hello") == .integer(2))
        #expect(try first.nextReply() == pmessage("chan.*", "chan.foo", "hello"))
        #expect(try second.nextReply() == pmessage("chan.*", "chan.foo", "hello"))

        // Mix SUBSCRIBE and PSUBSCRIBE: the channel message first, then one per matching pattern.
        #expect(try first.subscriptionCounts("SUBSCRIBE", ["chan.foo"]) == [2])
        #expect(try first.subscriptionCounts("PSUBSCRIBE", ["chan.f*"]) == [3])
        #expect(try publisher.send("PUBLISH", "chan.foo", "again") == .integer(4))
        let received = try first.allReplies()
        #expect(received.first == message("chan.foo", "again"))
        #expect(Set(received.dropFirst()) == [pmessage("chan.*", "chan.foo", "again"), pmessage("chan.f*", "chan.foo", "again")])
        #expect(try second.allReplies() == [pmessage("chan.*", "chan.foo", "again")])
    }

    @Test func punsubscribeWithoutArgumentsDropsEveryPattern() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        #expect(try subscriber.subscriptionCounts("PSUBSCRIBE", ["chan1.*", "chan2.*", "chan3.*"]) == [1, 2, 3])
        let dropped = try subscriber.subscription("PUNSUBSCRIBE", [], expected: 3)
        #expect(Set(dropped.compactMap { $0.elements?[1].text }) == ["chan1.*", "chan2.*", "chan3.*"])
        for channel in ["chan1.hi", "chan2.hi", "chan3.hi"] {
            #expect(try publisher.send("PUBLISH", channel, "hello") == .integer(0))
        }
        #expect(try publisher.send("PUBSUB", "NUMPAT") == .integer(0))
    }

    @Test func numpatCountsUniquePatterns() throws {
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let observer = try node.connect()
        _ = try first.subscription("PSUBSCRIBE", ["foo*"])
        _ = try second.subscription("PSUBSCRIBE", ["foo*"])
        _ = try first.subscription("PSUBSCRIBE", ["bar*"])
        _ = try second.subscription("PSUBSCRIBE", ["baz*"])
        #expect(try observer.send("PUBSUB", "NUMPAT") == .integer(3))
        _ = try first.subscription("PUNSUBSCRIBE", [], expected: 2)
        #expect(try observer.send("PUBSUB", "NUMPAT") == .integer(2))
        _ = try second.subscription("PUNSUBSCRIBE", [], expected: 2)
        #expect(try observer.send("PUBSUB", "NUMPAT") == .integer(0))
    }

    @Test func numsubAndChannelsIntrospectActiveChannels() throws {
        let node = TestNode()
        let first = try node.connect()
        let second = try node.connect()
        let observer = try node.connect()
        // NUMSUB returns numbers, not strings (redis #1561), as a flat array under both protocols.
        #expect(try observer.send("PUBSUB", "NUMSUB", "abc", "def") == .array([.string("abc"), .integer(0), .string("def"), .integer(0)]))
        #expect(try observer.send("PUBSUB", "NUMSUB") == .array([]))
        #expect(try observer.send("PUBSUB", "CHANNELS") == .array([]))

        _ = try first.subscription("SUBSCRIBE", ["news.tech", "news.art", "weather"])
        _ = try second.subscription("SUBSCRIBE", ["news.tech"])
        _ = try second.subscription("PSUBSCRIBE", ["news.*"])
        #expect(try observer.send("PUBSUB", "NUMSUB", "news.tech", "weather", "none")
            == .array([.string("news.tech"), .integer(2), .string("weather"), .integer(1), .string("none"), .integer(0)]))
        #expect(Set(try observer.send("PUBSUB", "CHANNELS").strings ?? []) == ["news.tech", "news.art", "weather"])
        #expect(Set(try observer.send("pubsub", "channels", "news.*").strings ?? []) == ["news.tech", "news.art"])
        #expect(try observer.send("PUBSUB", "CHANNELS", "nomatch*") == .array([]))

        _ = try first.subscription("UNSUBSCRIBE", ["news.tech", "news.art"])
        #expect(Set(try observer.send("PUBSUB", "CHANNELS").strings ?? []) == ["news.tech", "weather"])
        #expect(try observer.send("PUBSUB", "NUMSUB", "news.tech") == .array([.string("news.tech"), .integer(1)]))

        // RESP3 keeps NUMSUB a flat array, like redis.
        _ = try observer.send("HELLO", "3")
        #expect(try observer.send("PUBSUB", "NUMSUB", "weather") == .array([.string("weather"), .integer(1)]))
    }

    @Test func pubsubContainerRejectsUnknownSubcommandsAndBadArity() throws {
        let client = try TestNode().connect()
        #expect(try client.send("PUBSUB", "FOO") == .error("ERR unknown subcommand 'FOO'. Try PUBSUB HELP."))
        #expect(try client.send("PUBSUB", "NUMPAT", "x") == .error("ERR wrong number of arguments for 'pubsub|numpat' command"))
        #expect(try client.send("PUBSUB") == .error("ERR wrong number of arguments for 'pubsub' command"))
        #expect(try client.send("PUBLISH", "only-channel") == .error("ERR wrong number of arguments for 'publish' command"))
        #expect(try client.send("SUBSCRIBE") == .error("ERR wrong number of arguments for 'subscribe' command"))
        let help = try client.send("PUBSUB", "HELP")
        #expect(help.strings?.first == "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        #expect(help.strings?.contains("NUMSUB [<channel> ...]") == true)
    }

    @Test func shardChannelsAreANamespaceOfTheirOwn() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let classic = try node.connect()
        let publisher = try node.connect()
        #expect(try subscriber.subscription("SSUBSCRIBE", ["chan1", "chan2"]) == [frame("ssubscribe", "chan1", 1), frame("ssubscribe", "chan2", 2)])
        #expect(try classic.subscriptionCounts("SUBSCRIBE", ["chan1"]) == [1])
        #expect(try publisher.send("SPUBLISH", "chan1", "hello") == .integer(1))
        #expect(try publisher.send("PUBLISH", "chan1", "world") == .integer(1))
        #expect(try subscriber.allReplies() == [.array([.string("smessage"), .string("chan1"), .string("hello")])])
        #expect(try classic.allReplies() == [message("chan1", "world")])

        #expect(try publisher.send("PUBSUB", "SHARDNUMSUB", "chan1", "chan3") == .array([.string("chan1"), .integer(1), .string("chan3"), .integer(0)]))
        #expect(Set(try publisher.send("PUBSUB", "SHARDCHANNELS").strings ?? []) == ["chan1", "chan2"])
        #expect(try publisher.send("PUBSUB", "SHARDCHANNELS", "*2") == .array([.string("chan2")]))
        #expect(try publisher.send("PUBSUB", "CHANNELS") == .array([.string("chan1")]))

        // Shard counts are their own: a channel subscription does not add to them.
        #expect(try subscriber.subscriptionCounts("SUNSUBSCRIBE", ["chan1"]) == [1])
        let rest = try subscriber.subscription("SUNSUBSCRIBE", [])
        #expect(rest == [frame("sunsubscribe", "chan2", 0)])
        #expect(try subscriber.send("SUNSUBSCRIBE") == .array([.string("sunsubscribe"), .null, .integer(0)]))
        #expect(try publisher.send("SPUBLISH", "chan2", "gone") == .integer(0))
        #expect(try publisher.send("PUBSUB", "SHARDCHANNELS") == .array([]))
    }

    @Test func resp2SubscriberModeOnlyAllowsPubSubCommands() throws {
        let node = TestNode()
        let client = try node.connect()
        _ = try client.subscription("SUBSCRIBE", ["somechannel"])
        #expect(try client.send("GET", "k") == .error(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"))
        #expect(try client.send("PUBLISH", "somechannel", "x") == .error(
            "ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"))
        // PING answers as a pub/sub frame in RESP2 subscriber mode.
        #expect(try client.send("PING") == .array([.string("pong"), .string("")]))
        #expect(try client.send("PING", "foo") == .array([.string("pong"), .string("foo")]))
        #expect(try client.subscriptionCounts("PSUBSCRIBE", ["p*"]) == [2])
        #expect(try client.subscriptionCounts("SSUBSCRIBE", ["s"]) == [1])
        #expect(try client.subscriptionCounts("UNSUBSCRIBE", ["somechannel"]) == [1])
        // Still subscribed to a pattern: still restricted.
        #expect(try client.send("SET", "k", "v").isError)
        #expect(try client.subscriptionCounts("PUNSUBSCRIBE", ["p*"]) == [0])
        #expect(try client.send("PING") == .simple("PONG"))
        #expect(try client.send("SET", "k", "v") == .simple("OK"))
    }

    @Test func resp3SubscribersGetPushesAndMayRunAnyCommand() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        _ = try subscriber.send("HELLO", "3")
        #expect(try subscriber.subscription("SUBSCRIBE", ["chan1", "chan2"]) == [
            .push([.string("subscribe"), .string("chan1"), .integer(1)]),
            .push([.string("subscribe"), .string("chan2"), .integer(2)]),
        ])
        #expect(try subscriber.subscription("PSUBSCRIBE", ["c*"]) == [.push([.string("psubscribe"), .string("c*"), .integer(3)])])
        #expect(try subscriber.send("SET", "k", "v") == .simple("OK"))
        #expect(try subscriber.send("GET", "k") == .string("v"))
        #expect(try subscriber.send("PING") == .simple("PONG"))
        #expect(try subscriber.send("PING", "foo") == .string("foo"))

        #expect(try publisher.send("PUBLISH", "chan1", "hello") == .integer(2))
        #expect(try subscriber.nextReply() == .push([.string("message"), .string("chan1"), .string("hello")]))
        #expect(try subscriber.nextReply() == .push([.string("pmessage"), .string("c*"), .string("chan1"), .string("hello")]))

        #expect(try subscriber.subscription("UNSUBSCRIBE", ["chan1", "chan2"]) == [
            .push([.string("unsubscribe"), .string("chan1"), .integer(2)]),
            .push([.string("unsubscribe"), .string("chan2"), .integer(1)]),
        ])
        #expect(try subscriber.subscription("PUNSUBSCRIBE", []) == [.push([.string("punsubscribe"), .string("c*"), .integer(0)])])
        #expect(try subscriber.send("UNSUBSCRIBE") == .push([.string("unsubscribe"), .null, .integer(0)]))
    }

    @Test func eachSubscriberGetsItsOwnProtocol() throws {
        let node = TestNode()
        let resp2 = try node.connect()
        let resp3 = try node.connect()
        let publisher = try node.connect()
        _ = try resp3.send("HELLO", "3")
        _ = try resp2.subscription("SUBSCRIBE", ["c"])
        _ = try resp3.subscription("SUBSCRIBE", ["c"])
        _ = try resp2.subscription("PSUBSCRIBE", ["*"])
        _ = try resp3.subscription("PSUBSCRIBE", ["*"])
        #expect(try publisher.send("PUBLISH", "c", "m") == .integer(4))
        #expect(try resp2.allReplies() == [message("c", "m"), pmessage("*", "c", "m")])
        #expect(try resp3.allReplies() == [
            .push([.string("message"), .string("c"), .string("m")]),
            .push([.string("pmessage"), .string("*"), .string("c"), .string("m")]),
        ])
    }

    @Test func publishingToItselfDeliversAfterThePublishReply() throws {
        let node = TestNode()
        let client = try node.connect()
        _ = try client.send("HELLO", "3")
        _ = try client.subscription("SUBSCRIBE", ["foo"])
        _ = try client.subscription("PSUBSCRIBE", ["f*"])
        // The reply comes first, then the message and the pattern message, then the next command's reply.
        try client.writeRaw("PUBLISH foo bar\r\nPING\r\n")
        #expect(try client.allReplies() == [
            .integer(2),
            .push([.string("message"), .string("foo"), .string("bar")]),
            .push([.string("pmessage"), .string("f*"), .string("foo"), .string("bar")]),
            .simple("PONG"),
        ])
    }

    @Test func publishingToItselfInsideMultiDeliversAfterExec() throws {
        let node = TestNode()
        let client = try node.connect()
        let other = try node.connect()
        _ = try client.send("HELLO", "3")
        _ = try client.subscription("SUBSCRIBE", ["foo"])
        _ = try other.subscription("SUBSCRIBE", ["foo"])
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("PING", "abc") == .simple("QUEUED"))
        #expect(try client.send("PUBLISH", "foo", "bar") == .simple("QUEUED"))
        #expect(try client.send("PUBLISH", "foo", "vaz") == .simple("QUEUED"))
        #expect(try client.send("PING", "def") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .array([.string("abc"), .integer(2), .integer(2), .string("def")]))
        #expect(try client.nextReply() == .push([.string("message"), .string("foo"), .string("bar")]))
        #expect(try client.nextReply() == .push([.string("message"), .string("foo"), .string("vaz")]))
        #expect(try client.nextReply() == nil)
        #expect(try other.allReplies() == [message("foo", "bar"), message("foo", "vaz")])
    }

    @Test func unsubscribeInsideMultiThenPublishToItself() throws {
        let client = try TestNode().connect()
        _ = try client.send("HELLO", "3")
        #expect(try client.subscriptionCounts("SUBSCRIBE", ["foo", "bar", "baz"]) == [1, 2, 3])
        _ = try client.send("MULTI")
        _ = try client.send("PING", "abc")
        _ = try client.send("UNSUBSCRIBE", "bar")
        _ = try client.send("UNSUBSCRIBE", "baz")
        _ = try client.send("PING", "def")
        #expect(try client.send("EXEC") == .array([
            .string("abc"), .push([.string("unsubscribe"), .string("bar"), .integer(2)]),
            .push([.string("unsubscribe"), .string("baz"), .integer(1)]), .string("def"),
        ]))
        #expect(try client.send("PUBLISH", "foo", "vaz") == .integer(1))
        #expect(try client.nextReply() == .push([.string("message"), .string("foo"), .string("vaz")]))
    }

    @Test func closingAClientDropsItsSubscriptions() throws {
        let node = TestNode()
        let leaving = try node.connect()
        let quitting = try node.connect()
        let staying = try node.connect()
        let observer = try node.connect()
        _ = try leaving.subscription("SUBSCRIBE", ["chan", "only-leaving"])
        _ = try leaving.subscription("PSUBSCRIBE", ["ch*"])
        _ = try leaving.subscription("SSUBSCRIBE", ["shard"])
        _ = try quitting.subscription("PSUBSCRIBE", ["q*"])
        _ = try staying.subscription("SUBSCRIBE", ["chan"])
        #expect(try observer.send("PUBLISH", "chan", "1") == .integer(3))
        #expect(node.state.pubsub.channelCount == 2)
        #expect(node.state.pubsub.patternCount == 2)

        try leaving.channel.close().wait()
        #expect(try quitting.send("QUIT") == .simple("OK"))
        #expect(quitting.isClosed)
        #expect(try observer.send("PUBLISH", "chan", "2") == .integer(1))
        #expect(try observer.send("PUBLISH", "only-leaving", "3") == .integer(0))
        #expect(try observer.send("PUBLISH", "quit", "4") == .integer(0))
        #expect(try observer.send("SPUBLISH", "shard", "5") == .integer(0))
        #expect(try observer.send("PUBSUB", "NUMSUB", "chan", "only-leaving") == .array([.string("chan"), .integer(1), .string("only-leaving"), .integer(0)]))
        #expect(try observer.send("PUBSUB", "NUMPAT") == .integer(0))
        #expect(try observer.send("PUBSUB", "SHARDCHANNELS") == .array([]))
        #expect(node.state.pubsub.channelCount == 1)
        #expect(try staying.allReplies() == [message("chan", "1"), message("chan", "2")])
    }

    @Test func resetLeavesSubscriberMode() throws {
        let node = TestNode()
        let client = try node.connect()
        let publisher = try node.connect()
        _ = try client.subscription("SUBSCRIBE", ["a", "b"])
        _ = try client.subscription("PSUBSCRIBE", ["c*"])
        _ = try client.subscription("SSUBSCRIBE", ["s"])
        #expect(try client.send("RESET") == .simple("RESET"))
        #expect(try client.send("GET", "k") == .null)
        #expect(try publisher.send("PUBLISH", "a", "x") == .integer(0))
        #expect(try publisher.send("PUBLISH", "cc", "x") == .integer(0))
        #expect(try publisher.send("SPUBLISH", "s", "x") == .integer(0))
        #expect(try client.send("UNSUBSCRIBE") == .array([.string("unsubscribe"), .null, .integer(0)]))
        #expect(try client.nextReply() == nil)
    }

    @Test func clientListReportsSubscriptionCounts() throws {
        let node = TestNode()
        let client = try node.connect()
        // RESP3, so that CLIENT is allowed while subscribed (HELLO itself is refused in RESP2 subscriber mode).
        #expect(try client.send("HELLO", "3").isError == false)
        _ = try client.subscription("SUBSCRIBE", ["a", "b"])
        _ = try client.subscription("PSUBSCRIBE", ["c*"])
        let info = try client.send("CLIENT", "INFO").text ?? ""
        #expect(info.contains(" sub=2 psub=1 "))
        #expect(info.contains(" flags=P "))
        _ = try client.subscription("UNSUBSCRIBE", [], expected: 2)
        #expect(try client.send("CLIENT", "INFO").text?.contains(" sub=0 psub=1 ") == true)
        _ = try client.subscription("PUNSUBSCRIBE", [])
        let after = try client.send("CLIENT", "INFO").text ?? ""
        #expect(after.contains(" sub=0 psub=0 "))
        #expect(after.contains(" flags=N "))
    }

    @Test func channelsAndPayloadsAreBinarySafe() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        let channel: [UInt8] = Array("a-channel-name-longer-than-the-inline-capacity\r\n".utf8) + [0, 255]
        let payload: [UInt8] = [0, 13, 10, 255, 42]
        _ = try subscriber.send(arguments: [Array("SUBSCRIBE".utf8), channel])
        #expect(try publisher.send(arguments: [Array("PUBLISH".utf8), channel, payload]) == .integer(1))
        #expect(try subscriber.nextReply() == .array([.string("message"), .bulk(channel), .bulk(payload)]))
        #expect(try publisher.send(arguments: [Array("PUBSUB".utf8), Array("NUMSUB".utf8), channel]) == .array([.bulk(channel), .integer(1)]))
        #expect(try publisher.send(arguments: [Array("PUBLISH".utf8), Array(channel.dropLast()), payload]) == .integer(0))
    }

    @Test func messagesQueuedForASubscriberGoOutInOneWrite() throws {
        let node = TestNode()
        let subscriber = try node.connect()
        let publisher = try node.connect()
        _ = try subscriber.subscription("SUBSCRIBE", ["c"])
        _ = try subscriber.subscription("PSUBSCRIBE", ["*"])
        // Nothing reaches the subscriber until its own event loop runs the flush…
        for index in 0..<3 {
            #expect(try publisher.send("PUBLISH", "c", "m\(index)") == .integer(2))
        }
        #expect(try subscriber.channel.readOutbound(as: ByteBuffer.self) == nil)
        // …which then writes all six messages, in publish order, as one buffer.
        subscriber.channel.embeddedEventLoop.run()
        var written = try #require(try subscriber.channel.readOutbound(as: ByteBuffer.self))
        #expect(try subscriber.channel.readOutbound(as: ByteBuffer.self) == nil)
        var messages: [RESPValue] = []
        while let value = RESPValue.parse(&written) { messages.append(value) }
        #expect(messages == (0..<3).flatMap { [message("c", "m\($0)"), pmessage("*", "c", "m\($0)")] })
        #expect(written.readableBytes == 0)
    }

    @Test func commandMetadataFollowsRedis() throws {
        let table = CommandTable.standard
        for name in ["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"] {
            let spec = try #require(table.command(named: name))
            #expect(spec.flags.contains(.allowedWhileSubscribed))
            #expect(spec.flags.contains(.pubsub))
            #expect(spec.group == .pubsub)
        }
        for name in ["publish", "spublish", "pubsub"] {
            let spec = try #require(table.command(named: name))
            #expect(!spec.flags.contains(.allowedWhileSubscribed))
        }
        #expect(table.command(named: "publish")?.arity == 3)
        #expect(table.command(named: "unsubscribe")?.arity == -1)
        #expect(table.command(named: "pubsub")?.subcommands.map(\.name).sorted() == [
            "pubsub|channels", "pubsub|help", "pubsub|numpat", "pubsub|numsub", "pubsub|shardchannels", "pubsub|shardnumsub",
        ])
    }
}
