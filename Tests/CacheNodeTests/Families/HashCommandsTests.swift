// Tests of the hash family through the real decoder, dispatcher and reply writer, ported from redis's
// tests/unit/type/hash.tcl where the cases apply (encodings and DEBUG aside), plus RESP3 reply shapes and the
// memory estimate.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import Testing

/// Helpers shared by the collection family tests.
enum CollectionTestSupport {
    /// Sorted texts of an aggregate reply.
    static func sorted(_ value: RESPValue) -> [String] {
        (value.strings ?? []).sorted()
    }

    /// A counter from `INFO stats` (e.g. `keyspace_hits`).
    static func stat(_ client: TestClient, _ name: String) throws -> Int {
        let info = try client.send("INFO", "stats").text ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1)) ?? -1
        }
        return -1
    }

    /// The value stored under `key` in database 0, read with its stripe locked.
    static func storedValue(_ node: TestNode, _ key: String) -> StoredValue? {
        let keyspace = node.state.keyspace
        let ref = KeyRef(key)
        return keyspace.withLocked([ref]) { keyspace.database(0, now: node.state.clock.nowMilliseconds()).peek(ref) }
    }

    /// The keyspace's memory estimate with every stripe locked.
    static func estimatedBytes(_ node: TestNode) -> Int {
        let keyspace = node.state.keyspace
        return keyspace.withAllLocked { keyspace.estimatedBytes(locked: true) }
    }
}

struct HashCommandsTests {
    /// Fills `key` with `count` distinct fields `f<i>` → `v<i>` through HSET and returns the expected contents.
    private func fill(_ client: TestClient, _ key: String, count: Int) throws -> [String: String] {
        var expected: [String: String] = [:]
        for index in 0..<count {
            #expect(try client.send("HSET", key, "f\(index)", "v\(index)") == .integer(1))
            expected["f\(index)"] = "v\(index)"
        }
        return expected
    }

    @Test(arguments: [8, 1024])
    func hsetHlenHgetAndBulkReadersAgree(size: Int) throws {
        let client = try TestNode().connect()
        let expected = try fill(client, "h", count: size)
        #expect(try client.send("HLEN", "h") == .integer(size))
        for (field, value) in expected {
            #expect(try client.send("HGET", "h", field) == .string(value))
        }
        #expect(try client.send("HGET", "h", "__123123123__") == .null)
        #expect(try client.send("HGET", "nokey", "f0") == .null)
        #expect(CollectionTestSupport.sorted(try client.send("HKEYS", "h")) == expected.keys.sorted())
        #expect(CollectionTestSupport.sorted(try client.send("HVALS", "h")) == expected.values.sorted())
        let all = try client.send("HGETALL", "h")
        guard case .array(let flat) = all else {
            Issue.record("HGETALL under RESP2 must be a flat array, got \(all)")
            return
        }
        var pairs: [String: String] = [:]
        for index in stride(from: 0, to: flat.count, by: 2) { pairs[flat[index].text!] = flat[index + 1].text! }
        #expect(pairs == expected)
        let fields = expected.keys.sorted()
        #expect(try client.send(arguments: [Array("HMGET".utf8), Array("h".utf8)] + fields.map { Array($0.utf8) })
            == .array(fields.map { .string(expected[$0]!) }))
    }

    @Test func hsetInUpdateAndInsertModeAndMultiplePairs() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HSET", "h", "a", "1", "b", "2", "a", "3") == .integer(2))
        #expect(try client.send("HGET", "h", "a") == .string("3"))
        #expect(try client.send("HSET", "h", "a", "newval1") == .integer(0))
        #expect(try client.send("HGET", "h", "a") == .string("newval1"))
        #expect(try client.send("HSET", "h", "c", "x", "a", "y") == .integer(1))
        #expect(try client.send("HMSET", "h", "d", "4", "a", "5") == .simple("OK"))
        #expect(try client.send("HGET", "h", "a") == .string("5"))
        #expect(try client.send("HLEN", "h") == .integer(4))
        let empty: [UInt8] = []
        #expect(try client.send(arguments: [Array("HSET".utf8), Array("h".utf8), empty, empty]) == .integer(1))
        #expect(try client.send(arguments: [Array("HGET".utf8), Array("h".utf8), empty]) == .bulk([]))
    }

    @Test func wrongNumberOfArguments() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HSET", "h", "a") == .error("ERR wrong number of arguments for 'hset' command"))
        #expect(try client.send("HSET", "h", "a", "1", "b") == .error("ERR wrong number of arguments for 'hset' command"))
        #expect(try client.send("HMSET", "h", "key1", "val1", "key2") == .error("ERR wrong number of arguments for 'hmset' command"))
        #expect(try client.send("HGET", "h") == .error("ERR wrong number of arguments for 'hget' command"))
        #expect(try client.send("HDEL", "h") == .error("ERR wrong number of arguments for 'hdel' command"))
        #expect(try client.send("HSETNX", "h", "a", "1", "2") == .error("ERR wrong number of arguments for 'hsetnx' command"))
        #expect(try client.send("EXISTS", "h") == .integer(0))
    }

    @Test func hsetnxOnlySetsMissingFields() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HSETNX", "h", "__123123123__", "foo") == .integer(1))
        #expect(try client.send("HSETNX", "h", "__123123123__", "bar") == .integer(0))
        #expect(try client.send("HGET", "h", "__123123123__") == .string("foo"))
        #expect(try client.send("HSETNX", "h", "other", "bar") == .integer(1))
        #expect(try client.send("HLEN", "h") == .integer(2))
    }

    @Test func hmgetAgainstMissingKeyFieldsAndWrongType() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HMGET", "doesntexist", "__123123123__", "__456456456__") == .array([.null, .null]))
        #expect(try client.send("HSET", "h", "a", "1") == .integer(1))
        #expect(try client.send("HMGET", "h", "__123123123__", "a") == .array([.null, .string("1")]))
        #expect(try client.send("SET", "wrongtype", "somevalue") == .simple("OK"))
        #expect(try client.send("HMGET", "wrongtype", "field1", "field2")
            == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
    }

    @Test func hdelReturnsCountAndDeletesEmptyHashes() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HDEL", "nokey", "a") == .integer(0))
        #expect(try client.send("HMSET", "myhash", "a", "1", "b", "2", "c", "3") == .simple("OK"))
        #expect(try client.send("HDEL", "myhash", "x", "y") == .integer(0))
        #expect(try client.send("HDEL", "myhash", "a", "c", "f") == .integer(2))
        #expect(try client.send("HGETALL", "myhash") == .array([.string("b"), .string("2")]))
        #expect(try client.send("HDEL", "myhash", "b", "b") == .integer(1))
        #expect(try client.send("EXISTS", "myhash") == .integer(0))
        // The hash becomes empty before every listed field was deleted.
        #expect(try client.send("HMSET", "myhash", "a", "1", "b", "2", "c", "3") == .simple("OK"))
        #expect(try client.send("HDEL", "myhash", "a", "b", "c", "d", "e") == .integer(3))
        #expect(try client.send("EXISTS", "myhash") == .integer(0))
        #expect(try client.send("TYPE", "myhash") == .simple("none"))
    }

    @Test func hexistsHlenAndHstrlen() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HEXISTS", "h", "a") == .integer(0))
        #expect(try client.send("HLEN", "h") == .integer(0))
        #expect(try client.send("HSTRLEN", "h", "a") == .integer(0))
        #expect(try client.send("HSET", "h", "a", "hello", "n", "-1234567", "big", String(repeating: "x", count: 1024)) == .integer(3))
        #expect(try client.send("HEXISTS", "h", "a") == .integer(1))
        #expect(try client.send("HEXISTS", "h", "nokey") == .integer(0))
        #expect(try client.send("HSTRLEN", "h", "a") == .integer(5))
        #expect(try client.send("HSTRLEN", "h", "n") == .integer(8))
        #expect(try client.send("HSTRLEN", "h", "big") == .integer(1024))
        #expect(try client.send("HSTRLEN", "h", "missing") == .integer(0))
        #expect(try client.send("HLEN", "h") == .integer(3))
    }

    @Test func hincrbyFollowsRedisRules() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HINCRBY", "htest", "foo", "2") == .integer(2))
        #expect(try client.send("HINCRBY", "htest", "foo", "3") == .integer(5))
        #expect(try client.send("HGET", "htest", "foo") == .string("5"))
        #expect(try client.send("HSET", "htest", "tmp", "100") == .integer(1))
        #expect(try client.send("HINCRBY", "htest", "tmp", "2") == .integer(102))
        #expect(try client.send("HSET", "htest", "tmp", "17179869184") == .integer(0))
        #expect(try client.send("HINCRBY", "htest", "tmp", "1") == .integer(17179869185))
        #expect(try client.send("HSET", "htest", "tmp", "17179869184") == .integer(0))
        #expect(try client.send("HINCRBY", "htest", "tmp", "17179869184") == .integer(34359738368))
        #expect(try client.send("HINCRBY", "htest", "tmp", "-34359738368") == .integer(0))
        #expect(try client.send("HGET", "htest", "tmp") == .string("0"))
        for bad in [" 11", "11 ", "abc", "1.5", ""] {
            #expect(try client.send("HSET", "htest", "str", bad) == .integer(bad == " 11" ? 1 : 0))
            #expect(try client.send("HINCRBY", "htest", "str", "1") == .error("ERR hash value is not an integer"))
        }
        #expect(try client.send("HSET", "hash", "n", "-9223372036854775484") == .integer(1))
        #expect(try client.send("HINCRBY", "hash", "n", "-1") == .integer(-9223372036854775485))
        #expect(try client.send("HINCRBY", "hash", "n", "-10000") == .error("ERR increment or decrement would overflow"))
        #expect(try client.send("HSET", "hash", "m", "9223372036854775807") == .integer(1))
        #expect(try client.send("HINCRBY", "hash", "m", "1") == .error("ERR increment or decrement would overflow"))
        #expect(try client.send("HINCRBY", "hash", "m", "x") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("HGET", "hash", "m") == .string("9223372036854775807"))
        // A failed increment on a missing key creates nothing.
        #expect(try client.send("HINCRBY", "fresh", "f", "nope") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("EXISTS", "fresh") == .integer(0))
    }

    @Test func hincrbyfloatFollowsRedisRules() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HINCRBYFLOAT", "htest", "foo", "2.5") == .string("2.5"))
        #expect(try client.send("HGET", "htest", "foo") == .string("2.5"))
        #expect(try client.send("HINCRBY", "htest", "tmp", "2") == .integer(2))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "3.5") == .string("5.5"))
        #expect(try client.send("HSET", "htest", "tmp", "100") == .integer(0))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "2.5") == .string("102.5"))
        #expect(try client.send("HSET", "htest", "tmp", "17179869184") == .integer(0))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "1") == .string("17179869185"))
        #expect(try client.send("HSET", "htest", "tmp", "17179869184") == .integer(0))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "17179869184") == .string("34359738368"))
        #expect(try client.send("HSET", "htest", "tmp", "10.50") == .integer(0))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "0.1") == .string("10.6"))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "-5") == .string("5.6"))
        #expect(try client.send("HSET", "htest", "tmp", "5.0e3") == .integer(0))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "2.0e2") == .string("5200"))
        // long double arithmetic, printed with %.17Lf and trailing zeros trimmed, as redis does.
        for expected in ["0.1", "0.2", "0.3"] {
            #expect(try client.send("HINCRBYFLOAT", "htest", "tenths", "0.1") == .string(expected))
        }
        #expect(try client.send("HINCRBYFLOAT", "htest", "tenths", "-0.3") == .string("0"))
        #expect(try client.send("HINCRBYFLOAT", "htest", "hex", "0x10") == .string("16"))
        #if arch(x86_64)
        #expect(try client.send("HSET", "htest", "tmp", "10.6") == .integer(0))
        #expect(try client.send("HINCRBYFLOAT", "htest", "tmp", "5.0e3") == .string("5010.60000000000000009"))
        #endif
        for bad in [" 11", "11 ", "abc"] {
            #expect(try client.send("HSET", "htest", "str", bad) == .integer(bad == " 11" ? 1 : 0))
            #expect(try client.send("HINCRBYFLOAT", "htest", "str", "1") == .error("ERR hash value is not a float"))
        }
        #expect(try client.send("HINCRBYFLOAT", "htest", "foo", "abc") == .error("ERR value is not a valid float"))
        #expect(try client.send("HINCRBYFLOAT", "htest", "foo", "inf") == .error("ERR value is NaN or Infinity"))
        #expect(try client.send("HINCRBYFLOAT", "htest", "foo", "+inf") == .error("ERR value is NaN or Infinity"))
        #expect(try client.send("HINCRBYFLOAT", "htest", "foo", "nan") == .error("ERR value is not a valid float"))
        #expect(try client.send("HINCRBYFLOAT", "htest", "foo", " 1") == .error("ERR value is not a valid float"))
        #if arch(x86_64)
        let huge = "1e4932"  // near the top of the 80-bit long double range
        #else
        let huge = "1.7976931348623157e308"
        #endif
        #expect(try client.send("HSET", "htest", "huge", huge) == .integer(1))
        #expect(try client.send("HINCRBYFLOAT", "htest", "huge", huge) == .error("ERR increment would produce NaN or Infinity"))
        #expect(try client.send("HGET", "htest", "huge") == .string(huge))
    }

    @Test func everyHashCommandRejectsOtherTypes() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SET", "s", "x") == .simple("OK"))
        #expect(try client.send("SADD", "set", "x") == .integer(1))
        let wrongType = RESPValue.error("WRONGTYPE Operation against a key holding the wrong kind of value")
        for key in ["s", "set"] {
            let commands: [[String]] = [
                ["HSET", key, "f", "v"], ["HMSET", key, "f", "v"], ["HSETNX", key, "f", "v"], ["HGET", key, "f"],
                ["HMGET", key, "f"], ["HDEL", key, "f"], ["HLEN", key], ["HSTRLEN", key, "f"], ["HEXISTS", key, "f"],
                ["HINCRBY", key, "f", "1"], ["HINCRBYFLOAT", key, "f", "1"], ["HKEYS", key], ["HVALS", key],
                ["HGETALL", key], ["HRANDFIELD", key], ["HRANDFIELD", key, "2"], ["HSCAN", key, "0"],
            ]
            for command in commands {
                #expect(try client.send(arguments: command.map { Array($0.utf8) }) == wrongType, "\(command)")
            }
        }
        #expect(try client.send("GET", "s") == .string("x"))
    }

    @Test func replyShapesUnderRESP3() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HGETALL", "missing") == .array([]))
        _ = try client.send("HELLO", "3")
        #expect(try client.send("HGETALL", "missing") == .map([]))
        #expect(try client.send("HKEYS", "missing") == .array([]))
        #expect(try client.send("HGET", "missing", "f") == .null)
        #expect(try client.send("HSET", "h", "a", "1") == .integer(1))
        #expect(try client.send("HGETALL", "h") == .map([.string("a"), .string("1")]))
        #expect(try client.send("HKEYS", "h") == .array([.string("a")]))
        #expect(try client.send("HVALS", "h") == .array([.string("1")]))
        #expect(try client.send("HEXISTS", "h", "a") == .integer(1))
        #expect(try client.send("HINCRBYFLOAT", "h", "a", "0.5") == .string("1.5"))
        #expect(try client.send("HMGET", "h", "a", "b") == .array([.string("1.5"), .null]))
        #expect(try client.send("HSCAN", "h", "0") == .array([.string("0"), .array([.string("a"), .string("1.5")])]))
    }

    @Test func hrandfieldWithoutCount() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HRANDFIELD", "nokey") == .null)
        let expected = try fill(client, "h", count: 5)
        var seen = Set<String>()
        for _ in 0..<200 {
            let field = try client.send("HRANDFIELD", "h")
            guard let text = field.text, case .bulk = field else {
                Issue.record("HRANDFIELD without count must reply a bulk string, got \(field)")
                return
            }
            #expect(expected[text] != nil)
            seen.insert(text)
        }
        #expect(seen.count == 5)
    }

    @Test func hrandfieldWithCountRESP2() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HRANDFIELD", "nokey", "5") == .array([]))
        #expect(try client.send("HRANDFIELD", "nokey", "-5", "WITHVALUES") == .array([]))
        let expected = try fill(client, "h", count: 10)
        #expect(try client.send("HRANDFIELD", "h", "0") == .array([]))
        #expect(try client.send("HRANDFIELD", "h", "0", "WITHVALUES") == .array([]))
        // Positive counts: distinct fields, at most the hash's size.
        for count in [1, 3, 9, 10, 11, 100] {
            let reply = try client.send("HRANDFIELD", "h", String(count))
            let fields = reply.strings ?? []
            #expect(fields.count == min(count, 10))
            #expect(Set(fields).count == fields.count)
            #expect(fields.allSatisfy { expected[$0] != nil })
            let withValues = try client.send("HRANDFIELD", "h", String(count), "withvalues").strings ?? []
            #expect(withValues.count == 2 * min(count, 10))
            for index in stride(from: 0, to: withValues.count, by: 2) {
                #expect(expected[withValues[index]] == withValues[index + 1])
            }
        }
        // Negative counts: exactly |count| fields, repetitions allowed, every field eventually seen.
        let repeated = try client.send("HRANDFIELD", "h", "-1000").strings ?? []
        #expect(repeated.count == 1000)
        #expect(Set(repeated) == Set(expected.keys))
        let repeatedPairs = try client.send("HRANDFIELD", "h", "-20", "WITHVALUES").strings ?? []
        #expect(repeatedPairs.count == 40)
        for index in stride(from: 0, to: repeatedPairs.count, by: 2) {
            #expect(expected[repeatedPairs[index]] == repeatedPairs[index + 1])
        }
        #expect(try client.send("HSET", "one", "a", "1") == .integer(1))
        #expect(try client.send("HRANDFIELD", "one", "-3") == .array([.string("a"), .string("a"), .string("a")]))
    }

    @Test func hrandfieldWithCountRESP3NestsPairs() throws {
        let client = try TestNode().connect()
        _ = try client.send("HELLO", "3")
        let expected = try fill(client, "h", count: 10)
        for count in ["3", "20", "-7"] {
            let reply = try client.send("HRANDFIELD", "h", count, "WITHVALUES")
            guard case .array(let pairs) = reply else {
                Issue.record("expected an array, got \(reply)")
                continue
            }
            #expect(pairs.count == min(abs(Int(count)!), count.hasPrefix("-") ? Int.max : 10))
            for pair in pairs {
                guard case .array(let items) = pair, items.count == 2 else {
                    Issue.record("each RESP3 element is a [field, value] pair, got \(pair)")
                    continue
                }
                #expect(expected[items[0].text!] == items[1].text)
            }
        }
        #expect(try client.send("HRANDFIELD", "h", "2").elements?.allSatisfy { if case .bulk = $0 { true } else { false } } == true)
    }

    @Test func hrandfieldArgumentErrors() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HSET", "myhash", "a", "1") == .integer(1))
        #expect(try client.send("HRANDFIELD", "myhash", "1", "foo") == .error("ERR syntax error"))
        #expect(try client.send("HRANDFIELD", "myhash", "1", "withvalues", "x") == .error("ERR syntax error"))
        #expect(try client.send("HRANDFIELD", "myhash", "one") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("HRANDFIELD", "myhash", "-9223372036854770000", "withvalues") == .error("ERR value is out of range"))
        #expect(try client.send("HRANDFIELD", "myhash", "-9223372036854775808", "withvalues").text?.hasPrefix("ERR value is out of range") == true)
        #expect(try client.send("HRANDFIELD", "myhash", "-9223372036854775808").text?.hasPrefix("ERR value is out of range") == true)
    }

    @Test func hscanVisitsEveryFieldOfSmallAndBigHashes() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HSCAN", "nokey", "0") == .array([.string("0"), .array([])]))
        for size in [30, 1000] {
            let key = "h\(size)"
            let expected = try fill(client, key, count: size)
            var cursor = "0"
            var collected: [String: String] = [:]
            var rounds = 0
            repeat {
                let reply = try client.send("HSCAN", key, cursor, "COUNT", "17")
                guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].text, let items = parts[1].strings else {
                    Issue.record("bad HSCAN reply \(reply)")
                    return
                }
                for index in stride(from: 0, to: items.count, by: 2) { collected[items[index]] = items[index + 1] }
                cursor = next
                rounds += 1
            } while cursor != "0" && rounds < 10_000
            #expect(collected == expected)
            if size <= 128 { #expect(rounds == 1) } else { #expect(rounds > 1) }
        }
        let matched = try client.send("HSCAN", "h30", "0", "MATCH", "f1*").elements?[1].strings ?? []
        #expect(matched.count == 22)  // f1, f10…f19 as fields and their values
        #expect(stride(from: 0, to: matched.count, by: 2).allSatisfy { matched[$0].hasPrefix("f1") })
        #expect(try client.send("HSCAN", "h30", "0", "COUNT", "0") == .error("ERR syntax error"))
        #expect(try client.send("HSCAN", "h30", "abc") == .error("ERR invalid cursor"))
        #expect(try client.send("HSCAN", "h30", "0", "TYPE", "hash") == .error("ERR syntax error"))
    }

    @Test func hscanReturnsEveryFieldPresentThroughoutWhileTheHashChanges() throws {
        let client = try TestNode().connect()
        let expected = try fill(client, "big", count: 500)
        var random = SplitMix64(seed: 3)
        var removed = Set<String>()
        var cursor = "0"
        var collected: [String: String] = [:]
        var step = 0
        repeat {
            let reply = try client.send("HSCAN", "big", cursor, "COUNT", "7")
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].text, let items = parts[1].strings else {
                Issue.record("bad HSCAN reply \(reply)")
                return
            }
            for index in stride(from: 0, to: items.count, by: 2) { collected[items[index]] = items[index + 1] }
            cursor = next
            let victim = "f\(Int.random(in: 0..<500, using: &random))"
            if try client.send("HDEL", "big", victim) == .integer(1) { removed.insert(victim) }
            _ = try client.send("HSET", "big", "new\(step)", "x")
            step += 1
        } while cursor != "0" && step < 10_000
        for (field, value) in expected where !removed.contains(field) {
            #expect(collected[field] == value, "\(field) present throughout must be returned")
        }
    }

    /// redis hash.tcl "Hash fuzzing #2": random HSET/HDEL against a model, then every field checked.
    @Test(arguments: [10, 512])
    func fuzzingAgainstAModel(size: Int) throws {
        let client = try TestNode().connect()
        var random = SplitMix64(seed: UInt64(size))
        for _ in 0..<5 {
            _ = try client.send("DEL", "hash")
            var model: [String: String] = [:]
            for _ in 0..<size {
                let field = Bool.random(using: &random)
                    ? String(Int.random(in: -512...512, using: &random))
                    : String(repeating: "x", count: Int.random(in: 0..<40, using: &random)) + "\(Int.random(in: 0..<50, using: &random))"
                if Int.random(in: 0..<3, using: &random) < 2 {
                    let value = String(Int.random(in: -512...512, using: &random))
                    #expect(try client.send("HSET", "hash", field, value) == .integer(model[field] == nil ? 1 : 0))
                    model[field] = value
                } else {
                    #expect(try client.send("HDEL", "hash", field) == .integer(model.removeValue(forKey: field) == nil ? 0 : 1))
                }
            }
            for (field, value) in model { #expect(try client.send("HGET", "hash", field) == .string(value)) }
            #expect(try client.send("HLEN", "hash") == .integer(model.count))
            #expect(CollectionTestSupport.sorted(try client.send("HKEYS", "hash")) == model.keys.sorted())
        }
    }

    @Test func readsCountKeyspaceHitsAndMisses() throws {
        let client = try TestNode().connect()
        #expect(try client.send("HSET", "h", "a", "1") == .integer(1))
        let hits = try CollectionTestSupport.stat(client, "keyspace_hits")
        let misses = try CollectionTestSupport.stat(client, "keyspace_misses")
        _ = try client.send("HGET", "h", "a")
        _ = try client.send("HGET", "h", "zzz")
        _ = try client.send("HGETALL", "nokey")
        _ = try client.send("HLEN", "nokey")
        #expect(try CollectionTestSupport.stat(client, "keyspace_hits") == hits + 2)
        #expect(try CollectionTestSupport.stat(client, "keyspace_misses") == misses + 2)
    }

    @Test func memoryEstimateFollowsEveryChange() throws {
        let node = TestNode()
        let client = try node.connect()
        let emptyBytes = CollectionTestSupport.estimatedBytes(node)
        #expect(try client.send("HSET", "h", "seed", "0") == .integer(1))
        let bytesBefore = CollectionTestSupport.estimatedBytes(node)
        guard case .hash(let hash)? = CollectionTestSupport.storedValue(node, "h") else {
            Issue.record("h must hold a hash")
            return
        }
        let usageBefore = hash.memoryUsage
        var random = SplitMix64(seed: 42)
        let long = String(repeating: "L", count: 40)
        for _ in 0..<2000 {
            let field = "f\(Int.random(in: 0..<200, using: &random))" + (Bool.random(using: &random) ? long : "")
            switch Int.random(in: 0..<5, using: &random) {
            case 0: _ = try client.send("HSET", "h", field, Bool.random(using: &random) ? "short" : long)
            case 1: _ = try client.send("HDEL", "h", field, "f1")
            case 2: _ = try client.send("HINCRBY", "h", "counter\(Int.random(in: 0..<5, using: &random))", "123456789")
            case 3: _ = try client.send("HINCRBYFLOAT", "h", "float", "1.25")
            default: _ = try client.send("HSETNX", "h", field, long)
            }
        }
        let usageAfter = hash.memoryUsage
        hash.recomputeMemoryUsage()
        #expect(hash.memoryUsage == usageAfter)
        #expect(CollectionTestSupport.estimatedBytes(node) - bytesBefore == usageAfter - usageBefore)
        // Deleting every field deletes the key and gives its bytes back.
        let fields = try client.send("HKEYS", "h").strings ?? []
        _ = try client.send(arguments: [Array("HDEL".utf8), Array("h".utf8)] + fields.map { Array($0.utf8) })
        #expect(try client.send("EXISTS", "h") == .integer(0))
        #expect(CollectionTestSupport.estimatedBytes(node) == emptyBytes)
    }
}
