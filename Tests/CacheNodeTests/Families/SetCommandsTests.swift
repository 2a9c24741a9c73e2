// Tests of the set family through the real decoder, dispatcher and reply writer, ported from redis's
// tests/unit/type/set.tcl where the cases apply (encodings and DEBUG aside), plus RESP3 reply shapes, key specs
// and the memory estimate.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import RESPServer
import Testing

struct SetCommandsTests {
    private let wrongType = RESPValue.error("WRONGTYPE Operation against a key holding the wrong kind of value")

    /// Sends a command given as a list of words.
    private func send(_ client: TestClient, _ words: [String]) throws -> RESPValue {
        try client.send(arguments: words.map { Array($0.utf8) })
    }

    /// Creates `key` with `members` (after deleting it).
    private func create(_ client: TestClient, _ key: String, _ members: [String]) throws {
        _ = try client.send("DEL", key)
        if !members.isEmpty { #expect(try send(client, ["SADD", key] + members) == .integer(Set(members).count)) }
    }

    @Test func saddScardSismemberSmembers() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SADD", "myset", "foo") == .integer(1))
        #expect(try client.send("SADD", "myset", "bar") == .integer(1))
        #expect(try client.send("SADD", "myset", "bar") == .integer(0))
        #expect(try client.send("SCARD", "myset") == .integer(2))
        #expect(try client.send("SISMEMBER", "myset", "foo") == .integer(1))
        #expect(try client.send("SISMEMBER", "myset", "bar") == .integer(1))
        #expect(try client.send("SISMEMBER", "myset", "bla") == .integer(0))
        #expect(try client.send("SISMEMBER", "nokey", "bla") == .integer(0))
        #expect(try client.send("SCARD", "nokey") == .integer(0))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "myset")) == ["bar", "foo"])
        #expect(try client.send("SMEMBERS", "nokey") == .array([]))
        // Integers and strings mix freely (redis converts intset → listpack → hashtable here).
        #expect(try client.send("SADD", "mixed", "17", "-5", "17", "a") == .integer(3))
        #expect(try client.send("SISMEMBER", "mixed", "17") == .integer(1))
        #expect(try client.send("SISMEMBER", "mixed", "017") == .integer(0))
    }

    @Test func variadicSaddAndBigSets() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SADD", "myset", "a", "b", "c") == .integer(3))
        #expect(try client.send("SADD", "myset", "A", "a", "b", "c", "B") == .integer(2))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "myset")) == ["A", "B", "a", "b", "c"])
        let members = (0..<600).map { "m\($0)" }
        #expect(try send(client, ["SADD", "big"] + members) == .integer(600))
        #expect(try send(client, ["SADD", "big"] + members) == .integer(0))
        #expect(try client.send("SCARD", "big") == .integer(600))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "big")) == members.sorted())
    }

    @Test func smismember() throws {
        let client = try TestNode().connect()
        try create(client, "myset", ["a", "b", "c"])
        #expect(try client.send("SMISMEMBER", "myset", "a", "x", "c", "a") == .array([.integer(1), .integer(0), .integer(1), .integer(1)]))
        #expect(try client.send("SMISMEMBER", "nokey", "a", "b") == .array([.integer(0), .integer(0)]))
        #expect(try client.send("SMISMEMBER", "myset") == .error("ERR wrong number of arguments for 'smismember' command"))
        #expect(try client.send("SET", "str", "x") == .simple("OK"))
        #expect(try client.send("SMISMEMBER", "str", "a") == wrongType)
    }

    @Test func sremDeletesEmptySets() throws {
        let client = try TestNode().connect()
        try create(client, "myset", ["foo", "bar", "ciao"])
        #expect(try client.send("SREM", "myset", "qux") == .integer(0))
        #expect(try client.send("SREM", "myset", "foo") == .integer(1))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "myset")) == ["bar", "ciao"])
        try create(client, "myset", ["a", "b", "c", "d"])
        #expect(try client.send("SREM", "myset", "k", "k", "k") == .integer(0))
        #expect(try client.send("SREM", "myset", "b", "d", "x", "y") == .integer(2))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "myset")) == ["a", "c"])
        // More arguments than needed to destroy the key.
        try create(client, "myset", ["1", "2", "3"])
        #expect(try client.send("SREM", "myset", "1", "2", "3", "4", "5", "6", "7", "8") == .integer(3))
        #expect(try client.send("EXISTS", "myset") == .integer(0))
        #expect(try client.send("SREM", "nokey", "a") == .integer(0))
    }

    @Test func everySetCommandRejectsOtherTypes() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SET", "str", "x") == .simple("OK"))
        #expect(try client.send("HSET", "hash", "f", "v") == .integer(1))
        try create(client, "set", ["a"])
        for key in ["str", "hash"] {
            let commands: [[String]] = [
                ["SADD", key, "a"], ["SREM", key, "a"], ["SMEMBERS", key], ["SISMEMBER", key, "a"], ["SCARD", key],
                ["SPOP", key], ["SPOP", key, "2"], ["SRANDMEMBER", key], ["SRANDMEMBER", key, "2"], ["SSCAN", key, "0"],
                ["SINTER", "set", key], ["SINTER", "nokey", key], ["SINTERCARD", "2", "set", key], ["SUNION", "set", key],
                ["SDIFF", "set", key], ["SINTERSTORE", "dest", "set", key], ["SUNIONSTORE", "dest", "set", key],
                ["SDIFFSTORE", "dest", "set", key], ["SMOVE", key, "set", "a"], ["SMOVE", "set", key, "a"],
            ]
            for command in commands {
                #expect(try send(client, command) == wrongType, "\(command)")
            }
        }
        #expect(try client.send("EXISTS", "dest") == .integer(0))
        #expect(try client.send("SMEMBERS", "set") == .array([.string("a")]))
    }

    @Test func intersectionUnionAndDifference() throws {
        let client = try TestNode().connect()
        try create(client, "set1", (0..<200).map(String.init))
        try create(client, "set2", (195..<300).map(String.init))
        try create(client, "set3", ["199", "195", "1000", "2000"])
        #expect(CollectionTestSupport.sorted(try client.send("SINTER", "set1", "set2")) == (195..<200).map(String.init).sorted())
        #expect(CollectionTestSupport.sorted(try client.send("SINTER", "set1", "set2", "set3")) == ["195", "199"])
        #expect(CollectionTestSupport.sorted(try client.send("SUNION", "set1", "set2")) == (0..<300).map(String.init).sorted())
        #expect(CollectionTestSupport.sorted(try client.send("SDIFF", "set1", "set2", "set3")) == (0..<195).map(String.init).sorted())
        #expect(CollectionTestSupport.sorted(try client.send("SDIFF", "set3", "set1")) == ["1000", "2000"])
        #expect(try client.send("SINTERSTORE", "setres", "set1", "set2") == .integer(5))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "setres")) == (195..<200).map(String.init).sorted())
        #expect(try client.send("SINTERSTORE", "setres", "set1", "set2", "set3") == .integer(2))
        #expect(try client.send("SUNIONSTORE", "setres", "set1", "set2") == .integer(300))
        #expect(try client.send("SCARD", "setres") == .integer(300))
        #expect(try client.send("SDIFFSTORE", "setres", "set1", "set2", "set3") == .integer(195))
        #expect(try client.send("SCARD", "setres") == .integer(195))
        // A store may name one of its sources as destination.
        #expect(try client.send("SUNIONSTORE", "set3", "set3", "set2") == .integer(107))
        #expect(try client.send("SISMEMBER", "set3", "2000") == .integer(1))
        // Sources are left alone.
        #expect(try client.send("SCARD", "set1") == .integer(200))
        #expect(try client.send("SCARD", "set2") == .integer(105))
    }

    @Test func missingKeysAreEmptySets() throws {
        let client = try TestNode().connect()
        try create(client, "set1", ["a", "b", "c"])
        try create(client, "set2", ["b", "d"])
        #expect(try client.send("SINTER", "set1", "nokey") == .array([]))
        #expect(try client.send("SINTER", "nokey", "set1") == .array([]))
        #expect(CollectionTestSupport.sorted(try client.send("SUNION", "nokey", "set1", "nokey2", "set2")) == ["a", "b", "c", "d"])
        #expect(try client.send("SUNION", "nokey", "nokey2") == .array([]))
        #expect(CollectionTestSupport.sorted(try client.send("SDIFF", "set1", "nokey", "set2")) == ["a", "c"])
        #expect(try client.send("SDIFF", "nokey", "set1") == .array([]))
        // SDIFF with the same set twice is empty.
        #expect(try client.send("SDIFF", "set1", "set1") == .array([]))
        #expect(try client.send("SDIFF", "set1", "set2", "set1") == .array([]))
        // Stores of empty results delete the destination, whatever it held.
        for command in [["SINTERSTORE", "setres", "foo111", "bar222"], ["SINTERSTORE", "setres", "set1", "nokey"],
                        ["SUNIONSTORE", "setres", "foo111", "bar222"], ["SDIFFSTORE", "setres", "foo111", "set1"],
                        ["SDIFFSTORE", "setres", "set1", "set1"]] {
            #expect(try client.send("SET", "setres", "xxx") == .simple("OK"))
            #expect(try send(client, command) == .integer(0), "\(command)")
            #expect(try client.send("EXISTS", "setres") == .integer(0), "\(command)")
        }
        #expect(try client.send("SUNIONSTORE", "setres", "nokey", "set2") == .integer(2))
        #expect(try client.send("SDIFFSTORE", "setres2", "set1", "nokey") == .integer(3))
        // A store overwrites a destination of any type and drops its TTL.
        #expect(try client.send("SET", "dst", "string", "EX", "100") == .simple("OK"))
        #expect(try client.send("SINTERSTORE", "dst", "set1", "set2") == .integer(1))
        #expect(try client.send("TYPE", "dst") == .simple("set"))
        #expect(try client.send("TTL", "dst") == .integer(-1))
    }

    @Test func sintercardCountsWithLimit() throws {
        let client = try TestNode().connect()
        try create(client, "set1", ["a", "b", "c", "d", "e"])
        try create(client, "set2", ["b", "c", "d", "e", "f"])
        #expect(try client.send("SINTERCARD", "2", "set1", "set2") == .integer(4))
        #expect(try client.send("SINTERCARD", "1", "set1") == .integer(5))
        #expect(try client.send("SINTERCARD", "2", "set1", "set2", "LIMIT", "0") == .integer(4))
        #expect(try client.send("SINTERCARD", "2", "set1", "set2", "LIMIT", "1") == .integer(1))
        #expect(try client.send("SINTERCARD", "2", "set1", "set2", "limit", "3") == .integer(3))
        #expect(try client.send("SINTERCARD", "2", "set1", "set2", "LIMIT", "10") == .integer(4))
        #expect(try client.send("SINTERCARD", "2", "set1", "nokey") == .integer(0))
        #expect(try client.send("SINTERCARD", "1", "nokey") == .integer(0))
        #expect(try client.send("SINTERCARD", "2", "set1", "set2", "LIMIT", "2", "LIMIT", "3") == .integer(3))
    }

    @Test func sintercardArgumentErrors() throws {
        let client = try TestNode().connect()
        try create(client, "myset", ["a"])
        #expect(try client.send("SINTERCARD") == .error("ERR wrong number of arguments for 'sintercard' command"))
        #expect(try client.send("SINTERCARD", "1") == .error("ERR wrong number of arguments for 'sintercard' command"))
        #expect(try client.send("SINTERCARD", "0", "myset") == .error("ERR numkeys should be greater than 0"))
        #expect(try client.send("SINTERCARD", "a", "myset") == .error("ERR numkeys should be greater than 0"))
        #expect(try client.send("SINTERCARD", "2", "myset") == .error("ERR Number of keys can't be greater than number of args"))
        #expect(try client.send("SINTERCARD", "1", "myset", "myset2") == .error("ERR syntax error"))
        #expect(try client.send("SINTERCARD", "1", "myset", "bar_arg") == .error("ERR syntax error"))
        #expect(try client.send("SINTERCARD", "1", "myset", "LIMIT") == .error("ERR syntax error"))
        #expect(try client.send("SINTERCARD", "1", "myset", "LIMIT", "-1") == .error("ERR LIMIT can't be negative"))
        #expect(try client.send("SINTERCARD", "1", "myset", "LIMIT", "a") == .error("ERR LIMIT can't be negative"))
    }

    @Test func spopWithoutCount() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SPOP", "nokey") == .null)
        try create(client, "myset", ["a", "b", "c"])
        var popped: [String] = []
        for _ in 0..<3 { popped.append(try client.send("SPOP", "myset").text ?? "?") }
        #expect(popped.sorted() == ["a", "b", "c"])
        #expect(try client.send("SCARD", "myset") == .integer(0))
        #expect(try client.send("EXISTS", "myset") == .integer(0))
        #expect(try client.send("SPOP", "myset") == .null)
        #expect(try client.send("SPOP", "myset", "1", "2") == .error("ERR syntax error"))
    }

    @Test(arguments: [10, 100, 1000])
    func spopWithCountTakesDistinctMembers(size: Int) throws {
        let client = try TestNode().connect()
        let members = (0..<size).map(String.init)
        for count in [1, size / 10, size / 2, size - 1] where count > 0 {
            try create(client, "myset", members)
            let reply = try client.send("SPOP", "myset", String(count))
            let popped = reply.strings ?? []
            #expect(popped.count == count)
            #expect(Set(popped).count == count)
            let left = try client.send("SMEMBERS", "myset").strings ?? []
            #expect(left.count == size - count)
            #expect(Set(popped).union(left) == Set(members))
        }
        // Popping at least the whole set returns it all and deletes the key.
        try create(client, "myset", members)
        #expect(CollectionTestSupport.sorted(try client.send("SPOP", "myset", String(size + 5))) == members.sorted())
        #expect(try client.send("EXISTS", "myset") == .integer(0))
        #expect(try client.send("SPOP", "nonexisting_key", "100") == .array([]))
    }

    @Test func spopCountEdgeCases() throws {
        let client = try TestNode().connect()
        try create(client, "myset", ["a", "b"])
        #expect(try client.send("SPOP", "myset", "0") == .array([]))
        #expect(try client.send("SCARD", "myset") == .integer(2))
        #expect(try client.send("SPOP", "myset", "-1") == .error("ERR value is out of range, must be positive"))
        #expect(try client.send("SPOP", "myset", "x") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("SPOP", "myset", "2").strings?.sorted() == ["a", "b"])
        #expect(try client.send("EXISTS", "myset") == .integer(0))
    }

    @Test func srandmemberWithAndWithoutCount() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SRANDMEMBER", "nonexisting_key") == .null)
        #expect(try client.send("SRANDMEMBER", "nonexisting_key", "100") == .array([]))
        #expect(try client.send("SRANDMEMBER", "nonexisting_key", "-100") == .array([]))
        let members = (0..<50).map { "m\($0)" }
        try create(client, "myset", members)
        #expect(try client.send("SRANDMEMBER", "myset", "0") == .array([]))
        var seen = Set<String>()
        for _ in 0..<2000 {  // P(a member never drawn) = 50·(49/50)^2000 ≈ 1e-16
            let member = try client.send("SRANDMEMBER", "myset")
            guard case .bulk = member, let text = member.text else {
                Issue.record("SRANDMEMBER without count must reply a bulk string, got \(member)")
                return
            }
            seen.insert(text)
        }
        #expect(seen == Set(members))
        for count in [1, 5, 25, 49, 50, 51, 1000] {
            let picked = try client.send("SRANDMEMBER", "myset", String(count)).strings ?? []
            #expect(picked.count == min(count, 50))
            #expect(Set(picked).count == picked.count)
            #expect(Set(picked).isSubset(of: Set(members)))
        }
        let repeated = try client.send("SRANDMEMBER", "myset", "-2000").strings ?? []
        #expect(repeated.count == 2000)
        #expect(Set(repeated) == Set(members))
        #expect(try client.send("SCARD", "myset") == .integer(50))
        try create(client, "one", ["x"])
        #expect(try client.send("SRANDMEMBER", "one", "-3") == .array([.string("x"), .string("x"), .string("x")]))
        #expect(try client.send("SRANDMEMBER", "myset", "-9223372036854775808").text?.hasPrefix("ERR value is out of range") == true)
        #expect(try client.send("SRANDMEMBER", "myset", "1", "2") == .error("ERR syntax error"))
        #expect(try client.send("SRANDMEMBER", "myset", "a") == .error("ERR value is not an integer or out of range"))
    }

    @Test func srandmemberHistogramIsRoughlyUniform() throws {
        let client = try TestNode().connect()
        let members = (0..<10).map(String.init)
        try create(client, "myset", members)
        var histogram: [String: Int] = [:]
        // 5000 draws keep the reply under the connection's 64 KiB write threshold.
        for member in try client.send("SRANDMEMBER", "myset", "-5000").strings ?? [] { histogram[member, default: 0] += 1 }
        #expect(histogram.values.reduce(0, +) == 5000)
        #expect(histogram.count == 10)
        // Each member is expected 500 times (standard deviation ≈ 21); ±150 is over 7 deviations.
        #expect(histogram.values.allSatisfy { abs($0 - 500) < 150 })
    }

    @Test func smoveBetweenSets() throws {
        let client = try TestNode().connect()
        try create(client, "myset1", ["a", "b", "c"])
        try create(client, "myset2", ["x", "y", "z"])
        #expect(try client.send("SMOVE", "myset1", "myset2", "a") == .integer(1))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "myset1")) == ["b", "c"])
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "myset2")) == ["a", "x", "y", "z"])
        // A member absent from the source moves nothing.
        #expect(try client.send("SMOVE", "myset1", "myset2", "foo") == .integer(0))
        #expect(try client.send("SMOVE", "noset", "myset2", "foo") == .integer(0))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "myset2")) == ["a", "x", "y", "z"])
        // A member already at the destination still leaves the source.
        #expect(try client.send("SADD", "myset2", "b") == .integer(1))
        #expect(try client.send("SMOVE", "myset1", "myset2", "b") == .integer(1))
        #expect(try client.send("SMEMBERS", "myset1") == .array([.string("c")]))
        #expect(try client.send("SCARD", "myset2") == .integer(5))
        // Moving the last member deletes the source and creates a missing destination.
        #expect(try client.send("SMOVE", "myset1", "myset3", "c") == .integer(1))
        #expect(try client.send("EXISTS", "myset1") == .integer(0))
        #expect(try client.send("SMEMBERS", "myset3") == .array([.string("c")]))
        // Identical source and destination: a membership test.
        #expect(try client.send("SMOVE", "myset2", "myset2", "x") == .integer(1))
        #expect(try client.send("SMOVE", "myset2", "myset2", "nope") == .integer(0))
        #expect(try client.send("SCARD", "myset2") == .integer(5))
        // Wrong types on either side.
        #expect(try client.send("SET", "x", "10") == .simple("OK"))
        #expect(try client.send("SMOVE", "x", "myset2", "foo") == wrongType)
        #expect(try client.send("SMOVE", "myset2", "x", "a") == wrongType)
        #expect(try client.send("SISMEMBER", "myset2", "a") == .integer(1))
        #expect(try client.send("SMOVE", "noset", "x", "a") == .integer(0))
    }

    @Test func sscanVisitsEveryMember() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SSCAN", "nokey", "0") == .array([.string("0"), .array([])]))
        for size in [20, 1000] {
            let key = "set\(size)"
            let members = (0..<size).map { "m\($0)" }
            try create(client, key, members)
            var cursor = "0"
            var collected = Set<String>()
            var rounds = 0
            repeat {
                let reply = try client.send("SSCAN", key, cursor, "COUNT", "33")
                guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].text, let items = parts[1].strings else {
                    Issue.record("bad SSCAN reply \(reply)")
                    return
                }
                collected.formUnion(items)
                cursor = next
                rounds += 1
            } while cursor != "0" && rounds < 10_000
            #expect(collected == Set(members))
            if size <= 128 { #expect(rounds == 1) } else { #expect(rounds > 1) }
        }
        let matched = try client.send("SSCAN", "set20", "0", "MATCH", "m1*").elements?[1].strings ?? []
        #expect(matched.sorted() == ["m1", "m10", "m11", "m12", "m13", "m14", "m15", "m16", "m17", "m18", "m19"])
        #expect(try client.send("SSCAN", "set20", "0", "COUNT", "0") == .error("ERR syntax error"))
        #expect(try client.send("SSCAN", "set20", "-1") == .error("ERR invalid cursor"))
    }

    @Test func sscanReturnsEveryMemberPresentThroughoutWhileTheSetChanges() throws {
        let client = try TestNode().connect()
        let members = (0..<1000).map { "m\($0)" }
        try create(client, "big", members)
        var random = SplitMix64(seed: 99)
        var removed = Set<String>()
        var cursor = "0"
        var collected = Set<String>()
        var step = 0
        repeat {
            let reply = try client.send("SSCAN", "big", cursor, "COUNT", "10")
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].text else {
                Issue.record("bad SSCAN reply \(reply)")
                return
            }
            collected.formUnion(parts[1].strings ?? [])
            cursor = next
            // Between steps: remove a few members and add new ones (both may or may not be returned).
            for _ in 0..<3 {
                let victim = members[Int.random(in: 0..<members.count, using: &random)]
                if try client.send("SREM", "big", victim) == .integer(1) { removed.insert(victim) }
            }
            _ = try client.send("SADD", "big", "new\(step)", "new\(step)b")
            step += 1
        } while cursor != "0" && step < 10_000
        #expect(step > 10)
        let presentThroughout = Set(members).subtracting(removed)
        #expect(presentThroughout.isSubset(of: collected))
        #expect(collected.isSubset(of: Set(members).union((0..<step).flatMap { ["new\($0)", "new\($0)b"] })))
    }

    @Test func distinctPositionsAreDistinctAndInRange() {
        var random = SplitMix64(seed: 5)
        for (count, size) in [(0, 0), (1, 1), (3, 100), (33, 100), (34, 100), (99, 100), (100, 100), (5, 1_000_000)] {
            let positions = CollectionSampling.distinctPositions(count: count, size: size, using: &random)
            #expect(positions.count == count)
            #expect(Set(positions).count == count)
            #expect(positions.allSatisfy { $0 >= 0 && $0 < size })
        }
        // Every position is reachable by both strategies.
        var seenSmall = Set<Int>(), seenLarge = Set<Int>()
        for _ in 0..<500 {
            seenSmall.formUnion(CollectionSampling.distinctPositions(count: 2, size: 20, using: &random))
            seenLarge.formUnion(CollectionSampling.distinctPositions(count: 15, size: 20, using: &random))
        }
        #expect(seenSmall == Set(0..<20))
        #expect(seenLarge == Set(0..<20))
    }

    @Test func replyShapesUnderRESP3() throws {
        let client = try TestNode().connect()
        _ = try client.send("HELLO", "3")
        try create(client, "s1", ["a", "b"])
        try create(client, "s2", ["b", "c"])
        #expect(try client.send("SMEMBERS", "nokey") == .set([]))
        #expect(try client.send("SINTERCARD", "2", "s1", "s2") == .integer(1))
        #expect(try client.send("SINTER", "s1", "nokey") == .set([]))
        #expect(try client.send("SINTER", "s1", "s2") == .set([.string("b")]))
        #expect(CollectionTestSupport.sorted(try client.send("SUNION", "s1", "s2")) == ["a", "b", "c"])
        if case .set = try client.send("SUNION", "s1", "s2") {} else { Issue.record("SUNION must reply a set") }
        #expect(try client.send("SDIFF", "s1", "s2") == .set([.string("a")]))
        if case .set = try client.send("SMEMBERS", "s1") {} else { Issue.record("SMEMBERS must reply a set") }
        if case .array = try client.send("SRANDMEMBER", "s1", "-5") {} else { Issue.record("SRANDMEMBER count must reply an array") }
        #expect(try client.send("SRANDMEMBER", "nokey", "3") == .array([]))
        #expect(try client.send("SPOP", "nokey", "3") == .set([]))
        #expect(try client.send("SPOP", "nokey") == .null)
        if case .set = try client.send("SPOP", "s1", "1") {} else { Issue.record("SPOP count must reply a set") }
        #expect(try client.send("SMISMEMBER", "s2", "b", "x") == .array([.integer(1), .integer(0)]))
        #expect(try client.send("SISMEMBER", "s2", "b") == .integer(1))
    }

    @Test func multiKeyCommandsRunInsideTransactionsAndWakeWatchers() throws {
        let node = TestNode()
        let client = try node.connect()
        let other = try node.connect()
        try create(client, "a", ["1", "2", "3"])
        try create(client, "b", ["2", "3", "4"])
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SINTERSTORE", "dest", "a", "b") == .simple("QUEUED"))
        #expect(try client.send("SMOVE", "a", "b", "1") == .simple("QUEUED"))
        #expect(try client.send("HSET", "h", "f", "v") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .array([.integer(2), .integer(1), .integer(1)]))
        #expect(CollectionTestSupport.sorted(try client.send("SMEMBERS", "b")) == ["1", "2", "3", "4"])
        // A change by another client to a watched set or hash aborts the transaction.
        for change in [["SADD", "a", "new"], ["SREM", "a", "2"], ["SPOP", "a"], ["SMOVE", "b", "a", "4"], ["HDEL", "h", "f"]] {
            let watched = change[0] == "HDEL" ? "h" : "a"
            #expect(try client.send("WATCH", watched) == .simple("OK"))
            #expect(try send(other, change).isError == false)
            #expect(try client.send("MULTI") == .simple("OK"))
            #expect(try client.send("SCARD", "a") == .simple("QUEUED"))
            #expect(try client.send("EXEC") == .nullArray, "\(change)")
        }
        // Commands that change nothing leave watchers alone.
        _ = try client.send("SADD", "a", "3")
        #expect(try client.send("WATCH", "a") == .simple("OK"))
        #expect(try other.send("SADD", "a", "3") == .integer(0))
        #expect(try other.send("SREM", "a", "absent") == .integer(0))
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SISMEMBER", "a", "3") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .array([.integer(1)]))
    }

    /// Random SADD/SREM/SPOP/SMOVE against a model of two sets; membership, cardinality and contents must agree.
    @Test func fuzzingAgainstAModel() throws {
        let client = try TestNode().connect()
        var random = SplitMix64(seed: 11)
        var model: [String: Set<String>] = ["s1": [], "s2": []]
        for _ in 0..<3000 {
            let key = Bool.random(using: &random) ? "s1" : "s2"
            let otherKey = key == "s1" ? "s2" : "s1"
            let member = "m\(Int.random(in: 0..<150, using: &random))"
            switch Int.random(in: 0..<6, using: &random) {
            case 0, 1:
                #expect(try client.send("SADD", key, member) == .integer(model[key]!.insert(member).inserted ? 1 : 0))
            case 2:
                #expect(try client.send("SREM", key, member) == .integer(model[key]!.remove(member) == nil ? 0 : 1))
            case 3:
                let reply = try client.send("SPOP", key)
                if let popped = reply.text {
                    #expect(model[key]!.remove(popped) != nil)
                } else {
                    #expect(reply == .null)
                    #expect(model[key]!.isEmpty)
                }
            case 4:
                let count = Int.random(in: 0..<5, using: &random)
                let popped = try client.send("SPOP", key, String(count)).strings ?? []
                #expect(popped.count == min(count, model[key]!.count))
                for member in popped { #expect(model[key]!.remove(member) != nil) }
            default:
                let moved = model[key]!.remove(member) != nil
                if moved { model[otherKey]!.insert(member) }
                #expect(try client.send("SMOVE", key, otherKey, member) == .integer(moved ? 1 : 0))
            }
            #expect(try client.send("SISMEMBER", key, member) == .integer(model[key]!.contains(member) ? 1 : 0))
        }
        for (key, members) in model {
            #expect(try client.send("SCARD", key) == .integer(members.count))
            #expect(Set(try client.send("SMEMBERS", key).strings ?? []) == members)
            #expect(try client.send("EXISTS", key) == .integer(members.isEmpty ? 0 : 1))
        }
    }

    @Test func keySpecsCoverEveryKey() throws {
        let table = CommandTable.standard
        func positions(_ words: [String]) -> [Int] {
            let arguments = CommandArguments(strings: words)
            return table.lookup(arguments)!.keys.positions(in: arguments)
        }
        #expect(positions(["SMOVE", "a", "b", "m"]) == [1, 2])
        #expect(positions(["SINTERCARD", "2", "a", "b", "LIMIT", "5"]) == [2, 3])
        #expect(positions(["SINTERSTORE", "d", "a", "b"]) == [1, 2, 3])
        #expect(positions(["SUNION", "a", "b", "c"]) == [1, 2, 3])
        #expect(positions(["SDIFFSTORE", "d", "a"]) == [1, 2])
        #expect(positions(["HSET", "h", "f", "v"]) == [1])
        #expect(table.command(named: "smove")?.flags.contains(.write) == true)
        #expect(table.command(named: "sintercard")?.flags.contains(.readonly) == true)
        #expect(table.command(named: "sunionstore")?.flags.contains(.denyOOM) == true)
        #expect(table.command(named: "hget")?.flags.contains(.fast) == true)
        #expect(table.command(named: "hmset")?.arity == -4)
        #expect(table.command(named: "srandmember")?.arity == -2)
    }

    @Test func memoryEstimateFollowsEveryChange() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("SADD", "s", "seed") == .integer(1))
        #expect(try client.send("SADD", "other", "seed") == .integer(1))
        let bytesBefore = CollectionTestSupport.estimatedBytes(node)
        guard case .set(let setBefore)? = CollectionTestSupport.storedValue(node, "s"),
            case .set(let otherBefore)? = CollectionTestSupport.storedValue(node, "other")
        else {
            Issue.record("s and other must hold sets")
            return
        }
        let usageBefore = setBefore.memoryUsage + otherBefore.memoryUsage
        var random = SplitMix64(seed: 7)
        let long = String(repeating: "L", count: 40)
        for _ in 0..<2000 {
            let member = "m\(Int.random(in: 0..<300, using: &random))" + (Bool.random(using: &random) ? long : "")
            switch Int.random(in: 0..<5, using: &random) {
            case 0, 1: _ = try client.send("SADD", "s", member, "x\(member)")
            case 2: _ = try client.send("SREM", "s", member, "m1")
            case 3: _ = try client.send("SPOP", "s", "2")
            default: _ = try client.send("SMOVE", "s", "other", member)
            }
        }
        // SPOP may have emptied (deleted) and SADD recreated "s": read the objects the keyspace holds now.
        var usageAfter = 0
        for key in ["s", "other"] {
            guard case .set(let set)? = CollectionTestSupport.storedValue(node, key) else { continue }
            let usage = set.memoryUsage
            set.recomputeMemoryUsage()
            #expect(set.memoryUsage == usage)
            usageAfter += usage
        }
        #expect(CollectionTestSupport.estimatedBytes(node) - bytesBefore == usageAfter - usageBefore)
        // Stores compute the estimate of the set they create.
        _ = try client.send("SADD", "s", "seed")
        guard case .set(let set)? = CollectionTestSupport.storedValue(node, "s") else { return }
        #expect(try client.send("SUNIONSTORE", "copy", "s") == .integer(set.count))
        guard case .set(let copy)? = CollectionTestSupport.storedValue(node, "copy") else {
            Issue.record("copy must hold a set")
            return
        }
        #expect(copy.memoryUsage == set.memoryUsage)
    }
}
