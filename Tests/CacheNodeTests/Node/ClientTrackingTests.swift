// Client-side caching (CLIENT TRACKING) through the real decoder, dispatcher and reply writer (redis
// tests/unit/tracking.tcl): invalidations for keys a client read, broadcast prefixes, OPTIN/OPTOUT, NOLOOP,
// redirection to a RESP2 pub/sub client, flushes, expiry, and the CLIENT subcommands that report the state.
import CacheNode
import CacheStore
import CacheNodeTestSupport
import Testing

private func invalidate(_ keys: [String]?) -> RESPValue {
    .push([.string("invalidate"), keys.map { .array($0.map { .string($0) }) } ?? .null])
}

private extension TestClient {
    /// A RESP3 client tracking with `options`.
    static func tracking(_ node: TestNode, _ options: String...) throws -> TestClient {
        let client = try node.connect()
        _ = try client.send("HELLO", "3")
        #expect(try client.send(arguments: (["CLIENT", "TRACKING", "ON"] + options).map { Array($0.utf8) }) == .simple("OK"))
        return client
    }
}

struct ClientTrackingTests {
    /// INFO's `field` (stats or clients), as an integer.
    private func info(_ client: TestClient, _ section: String, _ field: String) throws -> Int? {
        let text = try client.send("INFO", section).text ?? ""
        return text.split(whereSeparator: \.isNewline).first { $0.hasPrefix(field + ":") }.flatMap { Int($0.dropFirst(field.count + 1)) }
    }

    // redis's tracking unit: a blocked BLMOVE served by another client's push gets its reply before the
    // invalidation of the tracked list it moved into.
    @Test func anUnblockedBlmoveGetsItsReplyBeforeTheInvalidation() throws {
        let node = TestNode()
        let client = try TestClient.tracking(node)
        let pusher = try node.connect()
        #expect(try pusher.send("RPUSH", "list2{t}", "a") == .integer(1))
        #expect(try client.send("LRANGE", "list2{t}", "0", "-1") == .array([.string("a")]))
        try client.write("BLMOVE", "list1{t}", "list2{t}", "LEFT", "LEFT", "0")
        #expect(try client.nextReply() == nil)
        #expect(try pusher.send("RPUSH", "list1{t}", "foo") == .integer(1))
        #expect(try client.allReplies() == [.string("foo"), invalidate(["list2{t}"])])
    }

    // redis's tracking unit: lowering tracking-table-max-keys drops tracked keys at once, each reader told as if the
    // key had changed; INFO counts keys, items (key and reader pairs), prefixes and tracking clients.
    @Test func theTableIsKeptWithinTrackingTableMaxKeys() throws {
        let node = TestNode()
        let reader = try TestClient.tracking(node)
        let other = try TestClient.tracking(node, "BCAST", "PREFIX", "a", "PREFIX", "b")
        let writer = try node.connect()
        #expect(try writer.send("MSET", "key1", "1", "key2", "2", "key3", "3") == .simple("OK"))
        #expect(try reader.send("MGET", "key1", "key2", "key3") == .array([.string("1"), .string("2"), .string("3")]))
        let second = try TestClient.tracking(node)
        #expect(try second.send("GET", "key1") == .string("1"))
        #expect(try info(writer, "stats", "tracking_total_keys") == 3)
        #expect(try info(writer, "stats", "tracking_total_items") == 4)
        #expect(try info(writer, "stats", "tracking_total_prefixes") == 2)
        #expect(try info(writer, "clients", "tracking_clients") == 3)
        #expect(try writer.send("CONFIG", "SET", "tracking-table-max-keys", "1") == .simple("OK"))
        #expect(try info(writer, "stats", "tracking_total_keys") == 1)
        let told = try reader.allReplies() + second.allReplies()
        let dropped = told.compactMap { reply -> String? in
            guard case .push(let parts) = reply, parts.count == 2, let keys = parts[1].strings, keys.count == 1 else { return nil }
            return keys[0]
        }
        #expect(told.count == dropped.count, "\(told)")
        // Two of the three keys were dropped: each reader of them was told once.
        let kept = Set(["key1", "key2", "key3"]).subtracting(dropped)
        #expect(kept.count == 1, "\(dropped)")
        #expect(dropped.count == (kept == ["key1"] ? 2 : 3), "\(dropped)")
        // The key still tracked still invalidates on a change; a read beyond the limit drops another at once.
        _ = try writer.send("SET", kept.first!, "changed")
        #expect(try reader.allReplies() == [invalidate([kept.first!])])
        try reader.write("GET", "key1")
        try reader.write("GET", "key2")
        let afterReads = try reader.allReplies()
        let pushes = afterReads.filter { if case .push = $0 { return true } else { return false } }
        #expect(afterReads.count - pushes.count == 2, "\(afterReads)")
        #expect(!pushes.isEmpty, "\(afterReads)")
        #expect(try info(writer, "stats", "tracking_total_keys") == 1)
        #expect(try writer.send("CONFIG", "SET", "tracking-table-max-keys", "0") == .simple("OK"))
        let key3 = try reader.send("GET", "key3")
        #expect(key3 == .string(kept == ["key3"] ? "changed" : "3"), "\(key3)")
        #expect(try info(writer, "stats", "tracking_total_keys") == 2)
        _ = try writer.send("FLUSHALL")
        #expect(try info(writer, "stats", "tracking_total_keys") == 0)
        #expect(try info(writer, "stats", "tracking_total_items") == 0)
        _ = other
    }

    @Test func aKeyReadIsInvalidatedOnceWhenAnotherClientChangesIt() throws {
        let node = TestNode()
        let reader = try TestClient.tracking(node)
        let writer = try node.connect()
        _ = try writer.send("SET", "a", "1")
        _ = try writer.send("SET", "b", "1")
        #expect(try reader.send("GET", "a") == .string("1"))
        #expect(try reader.send("MGET", "b", "c") == .array([.string("1"), .null]))
        _ = try writer.send("SET", "a", "2")
        _ = try writer.send("SET", "a", "3")  // no second invalidation: the key was not read again
        _ = try writer.send("DEL", "b", "c")
        #expect(try reader.allReplies() == [invalidate(["a"]), invalidate(["b"])])
        // In any database: tracking is by key name.
        _ = try reader.send("GET", "a")
        _ = try writer.send("SELECT", "3")
        _ = try writer.send("SET", "a", "other")
        #expect(try reader.allReplies() == [invalidate(["a"])])
    }

    @Test func aClientsOwnChangeComesAfterItsReplyUnlessNoloop() throws {
        let node = TestNode()
        let client = try TestClient.tracking(node)
        _ = try client.send("GET", "k")
        try client.write("SET", "k", "v")
        #expect(try client.allReplies() == [.simple("OK"), invalidate(["k"])])
        let quiet = try TestClient.tracking(node, "NOLOOP")
        _ = try quiet.send("GET", "k")
        #expect(try quiet.send("SET", "k", "w") == .simple("OK"))
        #expect(try quiet.allReplies().isEmpty)
        _ = try client.allReplies()
    }

    @Test func expiryAndFlushInvalidate() throws {
        let node = TestNode()
        let reader = try TestClient.tracking(node)
        let writer = try node.connect()
        _ = try writer.send("SET", "session", "x", "PX", "100")
        _ = try reader.send("GET", "session")
        node.advance(milliseconds: 200)
        _ = node.state.keyspace.activeExpireCycle(now: node.clock.nowMilliseconds())
        #expect(try reader.allReplies() == [invalidate(["session"])])
        _ = try writer.send("FLUSHALL")
        #expect(try reader.allReplies() == [invalidate(nil)])
    }

    @Test func broadcastModeSendsChangesUnderItsPrefixes() throws {
        let node = TestNode()
        let watcher = try TestClient.tracking(node, "BCAST", "PREFIX", "user:", "PREFIX", "session:")
        let writer = try node.connect()
        _ = try writer.send("SET", "user:1", "a")
        _ = try writer.send("SET", "other", "b")
        _ = try writer.send("HSET", "session:9", "f", "v")
        _ = try writer.send("SET", "user:2", "c")
        // The keys pending for a client go out together, one message per prefix, in prefix order (as redis
        // broadcasts them once per event-loop iteration).
        #expect(try watcher.allReplies() == [invalidate(["session:9"]), invalidate(["user:1", "user:2"])])
        #expect(try watcher.send("CLIENT", "TRACKINGINFO") == .map([
            .string("flags"), .set([.string("on"), .string("bcast")]), .string("redirect"), .integer(0),
            .string("prefixes"), .array([.string("user:"), .string("session:")]),
        ]))
        let everything = try TestClient.tracking(node, "BCAST")
        _ = try writer.send("SET", "anything", "1")
        #expect(try everything.allReplies() == [invalidate(["anything"])])
    }

    @Test func optInAndOptOutFollowClientCaching() throws {
        let node = TestNode()
        let optIn = try TestClient.tracking(node, "OPTIN")
        let writer = try node.connect()
        _ = try optIn.send("GET", "skipped")
        #expect(try optIn.send("CLIENT", "CACHING", "YES") == .simple("OK"))
        _ = try optIn.send("GET", "cached")
        _ = try optIn.send("GET", "later")  // CACHING applies to one command
        _ = try writer.send("MSET", "skipped", "1", "cached", "1", "later", "1")
        #expect(try optIn.allReplies() == [invalidate(["cached"])])
        let optOut = try TestClient.tracking(node, "OPTOUT")
        #expect(try optOut.send("CLIENT", "CACHING", "NO") == .simple("OK"))
        _ = try optOut.send("GET", "excluded")
        _ = try optOut.send("GET", "included")
        _ = try writer.send("MSET", "excluded", "2", "included", "2")
        #expect(try optOut.allReplies() == [invalidate(["included"])])
    }

    @Test func redirectionToARESP2SubscriberUsesTheInvalidateChannel() throws {
        let node = TestNode()
        let listener = try node.connect()
        guard case .integer(let listenerID) = try listener.send("CLIENT", "ID") else {
            Issue.record("CLIENT ID")
            return
        }
        _ = try listener.send("SUBSCRIBE", "__redis__:invalidate")
        let reader = try node.connect()  // RESP2: invalidations can only reach it by redirection
        #expect(try reader.send("CLIENT", "TRACKING", "ON", "REDIRECT", String(listenerID)) == .simple("OK"))
        #expect(try reader.send("CLIENT", "GETREDIR") == .integer(listenerID))
        _ = try reader.send("GET", "k")
        _ = try reader.send("SET", "k", "v")
        #expect(try listener.allReplies() == [.array([.string("message"), .string("__redis__:invalidate"), .array([.string("k")])])])
        #expect(try reader.allReplies().isEmpty)
        #expect(try reader.send("CLIENT", "TRACKING", "OFF") == .simple("OK"))
        #expect(try reader.send("CLIENT", "GETREDIR") == .integer(-1))
        _ = try reader.send("SET", "k", "w")
        #expect(try listener.allReplies().isEmpty)
    }

    @Test func optionsAreCheckedAsRedisChecksThem() throws {
        let node = TestNode()
        let client = try node.connect()
        func tracking(_ options: String...) throws -> RESPValue {
            try client.send(arguments: (["CLIENT", "TRACKING"] + options).map { Array($0.utf8) })
        }
        #expect(try tracking("ON", "PREFIX", "a") == .error("ERR PREFIX option requires BCAST mode to be enabled"))
        #expect(try tracking("ON", "BCAST", "OPTIN") == .error("ERR OPTIN and OPTOUT are not compatible with BCAST"))
        #expect(try tracking("ON", "OPTIN", "OPTOUT") == .error("ERR You can't specify both OPTIN mode and OPTOUT mode"))
        #expect(try tracking("ON", "REDIRECT", "999999") == .error("ERR The client ID you want redirect to does not exist"))
        #expect(try tracking("ON", "BCAST", "PREFIX", "ab", "PREFIX", "a")
                == .error("ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap."))
        #expect(try tracking("MAYBE") == .error("ERR syntax error"))
        #expect(try client.send("CLIENT", "CACHING", "YES")
                == .error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"))
        #expect(try tracking("ON", "BCAST", "PREFIX", "a") == .simple("OK"))
        #expect(try tracking("ON") == .error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."))
        #expect(try tracking("ON", "BCAST", "PREFIX", "abc")
                == .error("ERR Prefix 'abc' overlaps with an existing prefix 'a'. Prefixes for a single client must not overlap."))
        #expect(try tracking("OFF") == .simple("OK"))
        #expect(try tracking("ON", "OPTIN") == .simple("OK"))
        #expect(try client.send("CLIENT", "CACHING", "NO") == .error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."))
        #expect(try client.send("CLIENT", "TRACKINGINFO") == .array([
            .string("flags"), .array([.string("on"), .string("optin")]), .string("redirect"), .integer(0),
            .string("prefixes"), .array([]),
        ]))
    }
}
