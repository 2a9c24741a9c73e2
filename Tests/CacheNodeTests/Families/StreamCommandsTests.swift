// Tests of the stream family (XADD … XSETID) through the real decoder, dispatcher and reply writer, ported from
// redis 7.2.4's tests/unit/type/stream.tcl and stream-cgroups.tcl, plus RESP3 reply shapes, blocking reads on the
// embedded loop's clock, idle times on the node's manual clock, persistence, key specs and the memory estimate.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import Foundation
import RESPServer
import Testing

/// One stream entry as XRANGE, XREAD and XCLAIM reply it: `[id, [field, value, …]]`.
private func entry(_ id: String, _ fields: String...) -> RESPValue {
    .array([.string(id), .array(fields.map { .string($0) })])
}

/// An array of bulk strings.
private func bulks(_ texts: String...) -> RESPValue {
    .array(texts.map { .string($0) })
}

/// An XREAD/XREADGROUP reply: `[[key, entries]…]` under RESP2, `{key: entries…}` under RESP3.
private func streams(_ streams: (String, [RESPValue])..., resp3: Bool = false) -> RESPValue {
    if resp3 { return .map(streams.flatMap { [RESPValue.string($0.0), .array($0.1)] }) }
    return .array(streams.map { .array([.string($0.0), .array($0.1)]) })
}

/// The fields of a map reply (RESP3) or of a flat name/value array (RESP2), by name.
private func fields(_ reply: RESPValue) -> [String: RESPValue] {
    let values = reply.elements ?? []
    var result: [String: RESPValue] = [:]
    for index in stride(from: 0, to: values.count - 1, by: 2) {
        if let name = values[index].text { result[name] = values[index + 1] }
    }
    return result
}

/// The names of a map reply or flat name/value array, in order.
private func fieldNames(_ reply: RESPValue) -> [String] {
    let values = reply.elements ?? []
    return stride(from: 0, to: values.count, by: 2).compactMap { values[$0].text }
}

/// An XINFO STREAM reply without its radix-tree figures, which describe the encoding rather than the contents.
private func withoutRadixFigures(_ reply: RESPValue) -> RESPValue {
    let values = reply.elements ?? []
    var kept: [RESPValue] = []
    for index in stride(from: 0, to: values.count - 1, by: 2) where !(values[index].text ?? "").hasPrefix("radix-tree-") {
        kept += [values[index], values[index + 1]]
    }
    return .array(kept)
}

/// The integer of a reply, if it is one.
private func integer(_ reply: RESPValue?) -> Int? {
    if case .integer(let value)? = reply { return value }
    return nil
}

/// XPENDING's extended rows as `[id, consumer, deliveries]` (the idle time left out).
private func pendingRows(_ reply: RESPValue) -> [[String]] {
    (reply.elements ?? []).map { row in
        let values = row.elements ?? []
        guard values.count == 4 else { return ["malformed \(row)"] }
        return [values[0].text ?? "?", values[1].text ?? "?", integer(values[3]).map { "\($0)" } ?? "?"]
    }
}

/// The idle times (third column) of XPENDING's extended rows.
private func pendingIdles(_ reply: RESPValue) -> [Int] {
    (reply.elements ?? []).compactMap { integer($0.elements?.dropFirst(2).first) }
}

private let wrongType = RESPValue.error("WRONGTYPE Operation against a key holding the wrong kind of value")
private let invalidID = RESPValue.error("ERR Invalid stream ID specified as stream command argument")
private let topItemError = RESPValue.error("ERR The ID specified in XADD is equal or smaller than the target stream top item")

extension TestClient {
    /// Sends a command given as an array of words.
    @discardableResult
    fileprivate func send(words: [String]) throws -> RESPValue {
        try send(arguments: words.map { Array($0.utf8) })
    }
}

struct StreamCommandsTests {
    // MARK: XADD

    @Test func xaddArityAndEveryIDForm() throws {
        let node = TestNode()
        let client = try node.connect()
        for words in [["XADD", "mystream"], ["XADD", "mystream", "*"], ["XADD", "mystream", "*", "field"],
                      ["XADD", "mystream", "*", "a", "b", "c"]] {
            #expect(try client.send(words: words) == .error("ERR wrong number of arguments for 'xadd' command"), "\(words)")
        }
        #expect(try client.send("EXISTS", "mystream") == .integer(0))

        // `*` takes the node's clock in milliseconds, and the sequence counts up within one millisecond.
        let now = node.clock.nowMilliseconds()
        #expect(try client.send("XADD", "mystream", "*", "item", "1", "value", "a") == .string("\(now)-0"))
        #expect(try client.send("XADD", "mystream", "*", "item", "2", "value", "b") == .string("\(now)-1"))
        node.advance(milliseconds: 5)
        #expect(try client.send("XADD", "mystream", "*", "item", "3", "value", "c") == .string("\(now + 5)-0"))
        #expect(try client.send("XLEN", "mystream") == .integer(3))
        #expect(try client.send("XRANGE", "mystream", "-", "+") == .array([
            entry("\(now)-0", "item", "1", "value", "a"), entry("\(now)-1", "item", "2", "value", "b"),
            entry("\(now + 5)-0", "item", "3", "value", "c"),
        ]))

        // <ms>-*: the next sequence in the same millisecond, 0 in a later one, an error in an earlier one.
        #expect(try client.send("XADD", "s", "123-456", "item", "1") == .string("123-456"))
        #expect(try client.send("XADD", "s", "123-*", "item", "2") == .string("123-457"))
        #expect(try client.send("XADD", "s", "789-*", "item", "3") == .string("789-0"))
        #expect(try client.send("XADD", "s", "42-*", "item", "4") == topItemError)
        #expect(try client.send("XADD", "s", "789-0", "item", "4") == topItemError)
        #expect(try client.send("XADD", "s", "789", "item", "4") == topItemError)
        #expect(try client.send("XADD", "s", "790", "item", "5") == .string("790-0"))
        #expect(try client.send("XLEN", "s") == .integer(4))

        // 0-0 is refused before the key is created; 0-* is 0-1.
        #expect(try client.send("XADD", "zero", "0-0", "k", "v") == .error("ERR The ID specified in XADD must be greater than 0-0"))
        #expect(try client.send("EXISTS", "zero") == .integer(0))
        #expect(try client.send("XADD", "zero", "0-*", "k", "v") == .string("0-1"))

        // The largest sequence cannot be followed in the same millisecond; the largest ID cannot be followed at all.
        #expect(try client.send("XADD", "maxseq", "1-18446744073709551615", "f1", "v1") == .string("1-18446744073709551615"))
        #expect(try client.send("XADD", "maxseq", "1-*", "f2", "v2") == topItemError)
        #expect(try client.send("XADD", "maxid", "18446744073709551615-18446744073709551615", "a", "b")
                == .string("18446744073709551615-18446744073709551615"))
        #expect(try client.send("XADD", "maxid", "*", "c", "d")
                == .error("ERR The stream has exhausted the last possible ID, unable to add more items"))

        // A top ID in the future: `*` continues from it rather than from the clock.
        #expect(try client.send("XADD", "future", "2577343934890-18446744073709551615", "f", "v")
                == .string("2577343934890-18446744073709551615"))
        #expect(try client.send("XADD", "future", "*", "f2", "v2") == .string("2577343934891-0"))

        #expect(try client.send("XADD", "bad", "abc", "f", "v") == invalidID)
        #expect(try client.send("XADD", "bad", "1-2-3", "f", "v") == invalidID)
        #expect(try client.send("XADD", "bad", "-", "f", "v") == invalidID)
        #expect(try client.send("EXISTS", "bad") == .integer(0))

        // Field names may repeat and values may be empty.
        #expect(try client.send("XADD", "dup", "1-0", "f", "a", "f", "") == .string("1-0"))
        #expect(try client.send("XRANGE", "dup", "-", "+") == .array([entry("1-0", "f", "a", "f", "")]))
    }

    @Test func xaddWithNomkstream() throws {
        let client = try TestNode().connect()
        #expect(try client.send("XADD", "mystream", "NOMKSTREAM", "*", "item", "1", "value", "a") == .null)
        #expect(try client.send("EXISTS", "mystream") == .integer(0))
        #expect(try client.send("XADD", "mystream", "1-0", "item", "1", "value", "a") == .string("1-0"))
        #expect(try client.send("XADD", "mystream", "NOMKSTREAM", "2-0", "item", "2", "value", "b") == .string("2-0"))
        #expect(try client.send("XLEN", "mystream") == .integer(2))
        #expect(try client.send("XRANGE", "mystream", "-", "+")
                == .array([entry("1-0", "item", "1", "value", "a"), entry("2-0", "item", "2", "value", "b")]))
    }

    @Test func xaddTrimsExactlyWithMaxlenAndMinid() throws {
        let client = try TestNode().connect()
        for index in 0..<100 {
            try client.send("XADD", "mystream", "MAXLEN", "5", "*", index % 7 == 0 ? "yitem" : "xitem", "\(index)")
        }
        #expect(try client.send("XLEN", "mystream") == .integer(5))
        let values = (try client.send("XRANGE", "mystream", "-", "+").elements ?? []).compactMap { $0.elements?[1].elements?[1].text }
        #expect(values == ["95", "96", "97", "98", "99"])

        for index in 0..<100 {
            try client.send("XADD", "equals", "MAXLEN", "=", "5", "*", "xitem", "\(index)")
        }
        #expect(try client.send("XLEN", "equals") == .integer(5))

        // MINID keeps the entries whose ID is at least the given one (before 5 the minimum removes everything).
        for index in 1...100 {
            let minid = index >= 5 ? index - 5 : 1000
            try client.send("XADD", "minid", "MINID", "\(minid)", "\(index)", "xitem", "\(index)")
        }
        #expect(try client.send("XLEN", "minid") == .integer(6))
        let kept = (try client.send("XRANGE", "minid", "-", "+").elements ?? []).compactMap { $0.elements?[0].text }
        #expect(kept == ["95-0", "96-0", "97-0", "98-0", "99-0", "100-0"])

        // MAXLEN 0 still creates the (empty) stream and replies with the new ID.
        #expect(try client.send("XADD", "empty", "MAXLEN", "0", "5-0", "a", "b") == .string("5-0"))
        #expect(try client.send("EXISTS", "empty") == .integer(1))
        #expect(try client.send("XLEN", "empty") == .integer(0))
        #expect(try client.send("XADD", "empty", "5-0", "a", "b") == topItemError)

        // An approximate trim never leaves fewer entries than asked for.
        for index in 0..<300 { try client.send("XADD", "approx", "*", "xitem", "\(index)") }
        try client.send("XADD", "approx", "MAXLEN", "~", "155", "*", "xitem", "last")
        let approximate = integer(try client.send("XLEN", "approx")) ?? 0
        #expect((155...301).contains(approximate))

        #expect(try client.send("XADD", "mystream", "MAXLEN", "1", "MINID", "1", "*", "a", "b")
                == .error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"))
        #expect(try client.send("XADD", "mystream", "MAXLEN", "-1", "*", "a", "b") == .error("ERR The MAXLEN argument must be >= 0."))
        #expect(try client.send("XADD", "mystream", "MAXLEN", "1", "LIMIT", "10", "*", "a", "b")
                == .error("ERR syntax error, LIMIT cannot be used without the special ~ option"))
        #expect(try client.send("XADD", "mystream", "LIMIT", "10", "*", "a", "b")
                == .error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"))
        #expect(try client.send("XADD", "mystream", "MAXLEN", "~", "1", "LIMIT", "-1", "*", "a", "b")
                == .error("ERR The LIMIT argument must be >= 0."))
        #expect(try client.send("XADD", "mystream", "MAXLEN", "x", "*", "a", "b") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("XLEN", "mystream") == .integer(5))
    }

    // MARK: XTRIM / XDEL / XLEN

    @Test func xtrimWithMaxlenAndMinid() throws {
        let client = try TestNode().connect()
        for index in 1...5 { try client.send("XADD", "mystream", "\(index)-0", "f", "v") }
        #expect(try client.send("XTRIM", "mystream", "MINID", "=", "3-0") == .integer(2))
        #expect(try client.send("XRANGE", "mystream", "-", "+") == .array([entry("3-0", "f", "v"), entry("4-0", "f", "v"), entry("5-0", "f", "v")]))
        #expect(try client.send("XTRIM", "mystream", "MINID", "3-0") == .integer(0))

        try client.send("XADD", "delta", "1-0", "f", "v")
        try client.send("XADD", "delta", "1641544570597-0", "f", "v")
        try client.send("XADD", "delta", "1641544570597-1", "f", "v")
        #expect(try client.send("XTRIM", "delta", "MINID", "1641544570597-0") == .integer(1))
        #expect(try client.send("XRANGE", "delta", "-", "+") == .array([entry("1641544570597-0", "f", "v"), entry("1641544570597-1", "f", "v")]))

        for index in 0..<100 { try client.send("XADD", "long", "*", "xitem", "\(index)") }
        #expect(try client.send("XTRIM", "long", "MAXLEN", "66") == .integer(34))
        #expect(try client.send("XLEN", "long") == .integer(66))
        #expect(try client.send("XTRIM", "long", "MAXLEN", "=", "55") == .integer(11))
        #expect(try client.send("XLEN", "long") == .integer(55))
        #expect(try client.send("XTRIM", "long", "MAXLEN", "100") == .integer(0))
        #expect(try client.send("XRANGE", "long", "-", "+", "COUNT", "1").elements?.first?.elements?[1] == bulks("xitem", "45"))
        // Trimming to nothing keeps the empty stream.
        #expect(try client.send("XTRIM", "long", "MAXLEN", "0") == .integer(55))
        #expect(try client.send("EXISTS", "long") == .integer(1))
        #expect(try client.send("TYPE", "long") == .simple("stream"))

        #expect(try client.send("XTRIM", "missing", "MAXLEN", "1") == .integer(0))
        #expect(try client.send("EXISTS", "missing") == .integer(0))
        #expect(try client.send("XTRIM", "mystream", "LIMIT", "10")
                == .error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"))
        #expect(try client.send("XTRIM", "mystream", "FOO", "1") == .error("ERR syntax error"))
        #expect(try client.send("XTRIM", "mystream", "MAXLEN", "1", "LIMIT", "30")
                == .error("ERR syntax error, LIMIT cannot be used without the special ~ option"))
        #expect(try client.send("XTRIM", "mystream", "MINID", "+") == invalidID)
        #expect(try client.send("XTRIM", "mystream") == .error("ERR wrong number of arguments for 'xtrim' command"))
        #expect(try client.send("XLEN", "mystream") == .integer(3))
    }

    @Test func xdelRemovesEntriesAndKeepsTheKey() throws {
        let client = try TestNode().connect()
        try client.send("XADD", "somestream", "1-0", "foo", "value0")
        try client.send("XADD", "somestream", "2-0", "foo", "value1")
        try client.send("XADD", "somestream", "3-0", "foo", "value2")
        #expect(try client.send("XDEL", "somestream", "2-0") == .integer(1))
        #expect(try client.send("XLEN", "somestream") == .integer(2))
        #expect(try client.send("XRANGE", "somestream", "-", "+") == .array([entry("1-0", "foo", "value0"), entry("3-0", "foo", "value2")]))
        #expect(try client.send("XDEL", "somestream", "2-0") == .integer(0))

        for index in 1...5 { try client.send("XADD", "multi", "1-\(index)", "f\(index)", "\(index)") }
        #expect(try client.send("XDEL", "multi", "1-1", "1-4", "1-5", "2-1") == .integer(3))
        #expect(try client.send("XLEN", "multi") == .integer(2))
        #expect(try client.send("XDEL", "multi", "1-2", "bad") == invalidID)
        #expect(try client.send("XLEN", "multi") == .integer(2))

        // Deleting every entry leaves an empty stream, and the top ID still bounds new IDs.
        #expect(try client.send("XDEL", "multi", "1-2", "1-3") == .integer(2))
        #expect(try client.send("EXISTS", "multi") == .integer(1))
        #expect(try client.send("XLEN", "multi") == .integer(0))
        #expect(try client.send("XADD", "multi", "1-5", "f", "v") == topItemError)

        #expect(try client.send("XDEL", "missing", "1-0") == .integer(0))
        #expect(try client.send("XLEN", "missing") == .integer(0))
        #expect(try client.send("XDEL", "somestream") == .error("ERR wrong number of arguments for 'xdel' command"))
    }

    // MARK: XRANGE / XREVRANGE

    @Test func xrangeAndXrevrangeWithCountAndIteration() throws {
        let client = try TestNode().connect()
        for index in 0..<250 { try client.send("XADD", "mystream", "\(index / 3 + 1)-\(index % 3)", "item", "\(index)") }
        #expect(try client.send("XRANGE", "mystream", "-", "+", "COUNT", "10").elements?.count == 10)
        #expect(try client.send("XREVRANGE", "mystream", "+", "-", "COUNT", "10").elements?.count == 10)
        #expect(try client.send("XRANGE", "mystream", "-", "+", "COUNT", "2") == .array([entry("1-0", "item", "0"), entry("1-1", "item", "1")]))
        #expect(try client.send("XREVRANGE", "mystream", "+", "-", "COUNT", "1") == .array([entry("84-0", "item", "249")]))
        let forward = try client.send("XRANGE", "mystream", "-", "+").elements ?? []
        let backward = try client.send("XREVRANGE", "mystream", "+", "-").elements ?? []
        #expect(forward.count == 250)
        #expect(forward == Array(backward.reversed()))

        // Iterating with an exclusive start visits every entry once.
        var cursor = "-"
        var seen: [String] = []
        while true {
            let page = try client.send("XRANGE", "mystream", cursor, "+", "COUNT", "17").elements ?? []
            if page.isEmpty { break }
            seen += page.compactMap { $0.elements?[1].elements?[1].text }
            cursor = "(" + (page.last?.elements?[0].text ?? "")
        }
        #expect(seen == (0..<250).map { "\($0)" })

        // An incomplete start takes sequence 0 and an incomplete end the largest sequence.
        #expect(try client.send("XRANGE", "mystream", "2", "3").elements?.compactMap { $0.elements?[0].text }
                == ["2-0", "2-1", "2-2", "3-0", "3-1", "3-2"])
        #expect(try client.send("XREVRANGE", "mystream", "3", "2", "COUNT", "2").elements?.compactMap { $0.elements?[0].text }
                == ["3-2", "3-1"])
        #expect(try client.send("XRANGE", "mystream", "5", "4") == .array([]))

        #expect(try client.send("XRANGE", "mystream", "-", "+", "COUNT", "0") == .nullArray)
        #expect(try client.send("XRANGE", "mystream", "-", "+", "COUNT", "-1") == .nullArray)
        #expect(try client.send("XRANGE", "missing", "-", "+") == .array([]))
        #expect(try client.send("XRANGE", "mystream", "-", "+", "FOO") == .error("ERR syntax error"))
        #expect(try client.send("XRANGE", "mystream", "-", "+", "COUNT", "x") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("XRANGE", "mystream", "x", "+") == invalidID)
    }

    @Test func xrangeExclusiveBounds() throws {
        let client = try TestNode().connect()
        let ids = ["0-1", "0-18446744073709551615", "1-0", "42-0", "42-42", "18446744073709551615-18446744073709551614",
                   "18446744073709551615-18446744073709551615"]
        for id in ids { try client.send("XADD", "vipstream", id, "foo", "bar") }
        #expect(try client.send("XRANGE", "vipstream", "-", "+").elements?.count == 7)
        #expect(try client.send("XRANGE", "vipstream", "(0-1", "+").elements?.count == 6)
        #expect(try client.send("XRANGE", "vipstream", "-", "(18446744073709551615-18446744073709551615").elements?.count == 6)
        #expect(try client.send("XRANGE", "vipstream", "(0-1", "(1-0") == .array([entry("0-18446744073709551615", "foo", "bar")]))
        #expect(try client.send("XRANGE", "vipstream", "(1-0", "(42-42") == .array([entry("42-0", "foo", "bar")]))
        #expect(try client.send("XREVRANGE", "vipstream", "(42-42", "(1-0") == .array([entry("42-0", "foo", "bar")]))
        #expect(try client.send("XRANGE", "vipstream", "(-", "+") == invalidID)
        #expect(try client.send("XRANGE", "vipstream", "-", "(+") == invalidID)
        #expect(try client.send("XRANGE", "vipstream", "(18446744073709551615-18446744073709551615", "+")
                == .error("ERR invalid start ID for the interval"))
        #expect(try client.send("XRANGE", "vipstream", "-", "(0-0") == .error("ERR invalid end ID for the interval"))

        // redis issue #5006: XREVRANGE with an incomplete end ID.
        try client.send("XADD", "teststream", "1234567891230", "key1", "value1")
        try client.send("XADD", "teststream", "1234567891240", "key2", "value2")
        try client.send("XADD", "teststream", "1234567891250", "key3", "value3")
        #expect(try client.send("XREVRANGE", "teststream", "1234567891245", "-")
                == .array([entry("1234567891240-0", "key2", "value2"), entry("1234567891230-0", "key1", "value1")]))
    }

    // MARK: XREAD

    @Test(arguments: [2, 3])
    func xreadSeveralStreamsWithCount(protocolVersion: Int) throws {
        let client = try TestNode().connect()
        let resp3 = protocolVersion == 3
        if resp3 { try client.send("HELLO", "3") }
        try client.send("XADD", "a", "1-0", "f", "v")
        try client.send("XADD", "a", "2-0", "f2", "v2")
        try client.send("XADD", "b", "5-0", "x", "y")
        #expect(try client.send("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0-0", "0-0")
                == streams(("a", [entry("1-0", "f", "v")]), ("b", [entry("5-0", "x", "y")]), resp3: resp3))
        #expect(try client.send("XREAD", "STREAMS", "a", "b", "0", "0")
                == streams(("a", [entry("1-0", "f", "v"), entry("2-0", "f2", "v2")]), ("b", [entry("5-0", "x", "y")]), resp3: resp3))
        // Only the streams with entries after the given ID are in the reply, in argument order.
        #expect(try client.send("XREAD", "COUNT", "1", "STREAMS", "nostream", "b", "a", "0-0", "0-0", "1-0")
                == streams(("b", [entry("5-0", "x", "y")]), ("a", [entry("2-0", "f2", "v2")]), resp3: resp3))
        let null: RESPValue = resp3 ? .null : .nullArray
        #expect(try client.send("XREAD", "STREAMS", "s1", "s2", "0-0", "0-0") == null)
        #expect(try client.send("XREAD", "STREAMS", "a", "b", "$", "$") == null)
        #expect(try client.send("XREAD", "STREAMS", "a", "2-0") == null)

        // The largest sequence of a millisecond is followed by the next millisecond.
        try client.send("XADD", "x", "1-1", "f", "v")
        try client.send("XADD", "x", "1-18446744073709551615", "f", "v")
        try client.send("XADD", "x", "2-1", "f", "v")
        #expect(try client.send("XREAD", "BLOCK", "0", "STREAMS", "x", "1-18446744073709551615")
                == streams(("x", [entry("2-1", "f", "v")]), resp3: resp3))
        #expect(try client.send("XREAD", "STREAMS", "x", "1").elements?.count == (resp3 ? 2 : 1))
    }

    @Test func xreadArgumentErrors() throws {
        let client = try TestNode().connect()
        try client.send("XADD", "mystream", "666", "f", "v")
        #expect(try client.send("XREAD", "COUNT", "1", "STREAMS", "mystream")
                == .error("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."))
        #expect(try client.send("XREAD", "STREAMS", "mystream", ">")
                == .error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."))
        #expect(try client.send("XREAD", "GROUP", "g", "c", "STREAMS", "mystream", "0")
                == .error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."))
        #expect(try client.send("XREAD", "NOACK", "STREAMS", "mystream", "0")
                == .error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."))
        #expect(try client.send("XREAD", "COUNT", "1", "mystream", "0") == .error("ERR syntax error"))
        #expect(try client.send("XREAD", "STREAMS", "mystream", "bad") == invalidID)
        #expect(try client.send("XREAD", "STREAMS", "mystream", "+") == invalidID)
        #expect(try client.send("XREAD", "BLOCK", "-1", "STREAMS", "mystream", "$") == .error("ERR timeout is negative"))
        #expect(try client.send("XREAD", "BLOCK", "x", "STREAMS", "mystream", "$") == .error("ERR timeout is not an integer or out of range"))
        #expect(try client.send("XREAD", "STREAMS") == .error("ERR wrong number of arguments for 'xread' command"))
    }

    @Test(arguments: [2, 3])
    func blockingXreadIsServedByALaterXadd(protocolVersion: Int) throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        let resp3 = protocolVersion == 3
        if resp3 { try blocked.send("HELLO", "3") }
        try other.send("XADD", "s2", "1-0", "old", "abcd1234")

        // `$` means entries added after the call: the old entry is not returned.
        try blocked.write("XREAD", "BLOCK", "20000", "STREAMS", "s1", "s2", "s3", "$", "$", "$")
        #expect(try blocked.nextReply() == nil)
        #expect(try other.blockedClients() == 1)
        #expect(try other.send("XADD", "s2", "2-0", "new", "abcd1234") == .string("2-0"))
        #expect(try blocked.nextReply() == streams(("s2", [entry("2-0", "new", "abcd1234")]), resp3: resp3))
        #expect(try other.blockedClients() == 0)

        // Old data is served at once even with BLOCK.
        try blocked.write("XREAD", "BLOCK", "20000", "STREAMS", "s1", "s2", "s3", "$", "0-0", "$")
        #expect(try blocked.nextReply() == streams(("s2", [entry("1-0", "old", "abcd1234"), entry("2-0", "new", "abcd1234")]), resp3: resp3))

        // The same stream named several times (redis 7.2 re-runs the command once woken, so it answers for each
        // occurrence; redis's own test checks only the first).
        try blocked.write("XREAD", "BLOCK", "0", "STREAMS", "s2", "s2", "s2", "$", "$", "$")
        #expect(try blocked.nextReply() == nil)
        try other.send("XADD", "s2", "3-0", "x", "y")
        let repeated = try blocked.nextReply()
        if resp3 {
            #expect(Array(repeated?.elements?.prefix(2) ?? []) == [.string("s2"), .array([entry("3-0", "x", "y")])])
        } else {
            #expect(repeated?.elements?.first == .array([.string("s2"), .array([entry("3-0", "x", "y")])]))
        }

        // An entry not after the given ID does not wake the client; the next one that is does.
        try blocked.write("XREAD", "BLOCK", "0", "STREAMS", "x", "1-18446744073709551615")
        #expect(try blocked.nextReply() == nil)
        try other.send("XADD", "x", "1-1", "f", "v")
        try other.send("XADD", "x", "1-18446744073709551615", "f", "v")
        #expect(try blocked.nextReply() == nil)
        try other.send("XADD", "x", "2-1", "f", "v")
        #expect(try blocked.nextReply() == streams(("x", [entry("2-1", "f", "v")]), resp3: resp3))

        // Entries added inside MULTI are all delivered together.
        try blocked.write("XREAD", "BLOCK", "0", "STREAMS", "m", "$")
        try other.send("MULTI")
        try other.send("XADD", "m", "1-0", "field", "one")
        try other.send("XADD", "m", "2-0", "field", "two")
        try other.send("EXEC")
        #expect(try blocked.nextReply() == streams(("m", [entry("1-0", "field", "one"), entry("2-0", "field", "two")]), resp3: resp3))
        #expect(!node.state.blocking.hasWaiters)
    }

    @Test func blockingXreadIsNotWokenByAStreamDeletedInTheSameTransaction() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        try blocked.write("XREAD", "BLOCK", "20000", "STREAMS", "s1", "$")
        #expect(try blocked.nextReply() == nil)
        try other.send("MULTI")
        try other.send("XADD", "s1", "1-0", "old", "abcd1234")
        try other.send("DEL", "s1")
        try other.send("LPUSH", "s1", "foo", "bar")
        try other.send("EXEC")
        #expect(try blocked.nextReply() == nil)
        try other.send("DEL", "s1")
        try other.send("XADD", "s1", "2-0", "new", "abcd1234")
        #expect(try blocked.nextReply() == streams(("s1", [entry("2-0", "new", "abcd1234")])))

        // A stream deleted while a client waits on `$` and added again serves the client.
        try other.send("XADD", "mystream", "666", "f", "v")
        try blocked.write("XREAD", "BLOCK", "0", "STREAMS", "mystream", "$")
        try other.send("DEL", "mystream")
        try other.send("XADD", "mystream", "667", "f", "v")
        #expect(try blocked.nextReply() == streams(("mystream", [entry("667-0", "f", "v")])))
    }

    @Test(arguments: [2, 3])
    func blockingXreadTimesOutWithNull(protocolVersion: Int) throws {
        let node = TestNode()
        let waiter = try node.connect()
        let other = try node.connect()
        if protocolVersion == 3 { try waiter.send("HELLO", "3") }
        let null: RESPValue = protocolVersion == 3 ? .null : .nullArray
        try waiter.write("XREAD", "BLOCK", "50", "STREAMS", "s", "$")
        #expect(try waiter.nextReply() == nil)
        node.advance(milliseconds: 60)
        waiter.advanceLoopTime(milliseconds: 60)
        #expect(try waiter.nextReply() == null)
        #expect(try other.blockedClients() == 0)

        // A stream that ran dry (issue #5299): an ID below the top ID but no entry after it blocks rather than
        // answering with an empty list, then an XADD serves it.
        try other.send("XADD", "mystream", "666", "key", "value")
        try other.send("XDEL", "mystream", "666")
        try waiter.write("XREAD", "BLOCK", "10", "STREAMS", "mystream", "665")
        #expect(try waiter.nextReply() == nil)
        node.advance(milliseconds: 20)
        waiter.advanceLoopTime(milliseconds: 20)
        #expect(try waiter.nextReply() == null)
        #expect(try other.send("XADD", "mystream", "665", "key", "value") == topItemError)
        #expect(try other.send("XADD", "mystream", "666", "key", "value") == topItemError)
        try waiter.write("XREAD", "BLOCK", "0", "STREAMS", "mystream", "665")
        #expect(try other.blockedClients() == 1)
        try other.send("XADD", "mystream", "667", "key", "value")
        #expect(try waiter.nextReply() == streams(("mystream", [entry("667-0", "key", "value")]), resp3: protocolVersion == 3))

        // Inside MULTI a blocking read cannot block: it answers as a timeout.
        try other.send("MULTI")
        try other.send("XREAD", "BLOCK", "0", "STREAMS", "nothing", "$")
        #expect(try other.send("EXEC") == .array([.nullArray]))
    }

    // MARK: consumer groups

    @Test func xgroupCreateSetidDestroyAndConsumers() throws {
        let client = try TestNode().connect()
        try client.send("XADD", "mystream", "1-0", "foo", "bar")
        #expect(try client.send("XGROUP", "CREATE", "mystream", "mygroup", "$") == .simple("OK"))
        #expect(try client.send("XGROUP", "CREATE", "mystream", "mygroup", "$") == .error("BUSYGROUP Consumer Group name already exists"))
        #expect(try client.send("XGROUP", "CREATE", "missing", "mygroup", "$") == .error(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."))
        #expect(try client.send("EXISTS", "missing") == .integer(0))
        #expect(try client.send("XGROUP", "CREATE", "created", "mygroup", "$", "MKSTREAM") == .simple("OK"))
        #expect(try client.send("TYPE", "created") == .simple("stream"))
        #expect(try client.send("XLEN", "created") == .integer(0))
        #expect(try client.send("XGROUP", "CREATE", "mystream", "g2", "bad") == invalidID)
        #expect(try client.send("XGROUP", "CREATE", "mystream", "g2", "$", "ENTRIESREAD", "-3")
                == .error("ERR value for ENTRIESREAD must be positive or -1"))
        #expect(try client.send("XGROUP", "CREATE", "mystream", "g2", "$", "BOGUS").isError)

        // The group's last delivered ID: `$` is the stream's top ID, an explicit ID is taken as given.
        #expect(try client.send("XGROUP", "CREATE", "mystream", "fromzero", "0") == .simple("OK"))
        let groups = try client.send("XINFO", "GROUPS", "mystream").elements ?? []
        #expect(groups.map { fields($0)["name"]?.text } == ["fromzero", "mygroup"])
        #expect(groups.map { fields($0)["last-delivered-id"]?.text } == ["0-0", "1-0"])

        #expect(try client.send("XGROUP", "SETID", "mystream", "fromzero", "$") == .simple("OK"))
        #expect(fields(try client.send("XINFO", "GROUPS", "mystream").elements?.first ?? .null)["last-delivered-id"] == .string("1-0"))
        #expect(try client.send("XGROUP", "SETID", "mystream", "fromzero", "0-5", "ENTRIESREAD", "0") == .simple("OK"))
        let reset = fields(try client.send("XINFO", "GROUPS", "mystream").elements?.first ?? .null)
        #expect(reset["last-delivered-id"] == .string("0-5"))
        #expect(reset["entries-read"] == .integer(0))
        #expect(try client.send("XGROUP", "SETID", "mystream", "nogroup", "$")
                == .error("NOGROUP No such consumer group 'nogroup' for key name 'mystream'"))

        #expect(try client.send("XGROUP", "CREATECONSUMER", "mystream", "mygroup", "Alice") == .integer(1))
        #expect(try client.send("XGROUP", "CREATECONSUMER", "mystream", "mygroup", "Alice") == .integer(0))
        #expect(try client.send("XGROUP", "CREATECONSUMER", "mystream", "nogroup", "Alice")
                == .error("NOGROUP No such consumer group 'nogroup' for key name 'mystream'"))
        try client.send("XADD", "mystream", "2-0", "a", "1")
        try client.send("XADD", "mystream", "3-0", "b", "2")
        try client.send("XREADGROUP", "GROUP", "mygroup", "Bob", "STREAMS", "mystream", ">")
        #expect(try client.send("XINFO", "CONSUMERS", "mystream", "mygroup").elements?.map { fields($0)["name"]?.text } == ["Alice", "Bob"])
        // DELCONSUMER answers how many pending entries the consumer had, and they leave the group's PEL.
        #expect(try client.send("XGROUP", "DELCONSUMER", "mystream", "mygroup", "Bob") == .integer(2))
        #expect(try client.send("XGROUP", "DELCONSUMER", "mystream", "mygroup", "Bob") == .integer(0))
        #expect(try client.send("XPENDING", "mystream", "mygroup") == .array([.integer(0), .null, .null, .nullArray]))

        #expect(try client.send("XGROUP", "DESTROY", "mystream", "mygroup") == .integer(1))
        #expect(try client.send("XGROUP", "DESTROY", "mystream", "mygroup") == .integer(0))
        #expect(try client.send("XINFO", "GROUPS", "mystream").elements?.count == 1)

        try client.send("SET", "astring", "x")
        #expect(try client.send("XGROUP", "CREATE", "astring", "g", "$", "MKSTREAM") == wrongType)
    }

    @Test func xreadgroupDeliversNewEntriesAndTheConsumersHistory() throws {
        let client = try TestNode().connect()
        try client.send("XADD", "mystream", "1-0", "foo", "bar")
        try client.send("XGROUP", "CREATE", "mystream", "mygroup", "$")
        try client.send("XADD", "mystream", "2-0", "a", "1")
        try client.send("XADD", "mystream", "3-0", "b", "2")
        // Only entries after the group's last delivered ID: not the one that was there when it was created.
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-1", "STREAMS", "mystream", ">")
                == streams(("mystream", [entry("2-0", "a", "1"), entry("3-0", "b", "2")])))
        try client.send("XADD", "mystream", "4-0", "c", "3")
        try client.send("XADD", "mystream", "5-0", "d", "4")
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-2", "STREAMS", "mystream", ">")
                == streams(("mystream", [entry("4-0", "c", "3"), entry("5-0", "d", "4")])))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-1", "STREAMS", "mystream", ">") == .nullArray)

        // An explicit ID reads the consumer's own pending entries after it.
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-1", "COUNT", "10", "STREAMS", "mystream", "0")
                == streams(("mystream", [entry("2-0", "a", "1"), entry("3-0", "b", "2")])))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-2", "COUNT", "1", "STREAMS", "mystream", "0")
                == streams(("mystream", [entry("4-0", "c", "3")])))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-1", "STREAMS", "mystream", "2-0")
                == streams(("mystream", [entry("3-0", "b", "2")])))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-1", "STREAMS", "mystream", "3-0")
                == streams(("mystream", [])))

        // Every delivery, from the history too, is counted in the PEL.
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10")) == [
            ["2-0", "consumer-1", "2"], ["3-0", "consumer-1", "3"], ["4-0", "consumer-2", "2"], ["5-0", "consumer-2", "1"],
        ])
        let group = fields(try client.send("XINFO", "GROUPS", "mystream").elements?.first ?? .null)
        #expect(group["pending"] == .integer(4))
        #expect(group["consumers"] == .integer(2))
        #expect(group["last-delivered-id"] == .string("5-0"))

        // XGROUP SETID back to the start redelivers everything, reassigning pending entries to the reader.
        try client.send("XGROUP", "SETID", "mystream", "mygroup", "-")
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-3", "STREAMS", "mystream", ">").elements?.first?.elements?.last?.elements?.count == 5)
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer-3")).map { $0[2] }
                == ["1", "1", "1", "1", "1"])
        #expect(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer-1") == .array([]))

        #expect(try client.send("XREADGROUP", "GROUP", "nogroup", "c", "STREAMS", "mystream", ">")
                == .error("NOGROUP No such key 'mystream' or consumer group 'nogroup' in XREADGROUP with GROUP option"))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "c", "STREAMS", "missing", ">")
                == .error("NOGROUP No such key 'missing' or consumer group 'mygroup' in XREADGROUP with GROUP option"))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "c", "STREAMS", "mystream", "$") == .error(
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "COUNT", "1", "STREAMS", "mystream")
                == .error("ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified."))
        #expect(try client.send("XREADGROUP", "COUNT", "1", "COUNT", "1", "STREAMS", "mystream", ">")
                == .error("ERR Missing GROUP option for XREADGROUP"))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "c", "STREAMS", "mystream") == .error("ERR wrong number of arguments for 'xreadgroup' command"))
    }

    @Test func xreadgroupHistoryEdgeCases() throws {
        let client = try TestNode().connect()
        // Bug #5577: an empty history is an empty list, not a null.
        try client.send("XADD", "events", "1-0", "a", "1")
        try client.send("XADD", "events", "2-0", "b", "2")
        try client.send("XADD", "events", "3-0", "c", "3")
        try client.send("XGROUP", "CREATE", "events", "mygroup", "0")
        #expect(try client.send("XPENDING", "events", "mygroup", "-", "+", "10") == .array([]))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "myconsumer", "COUNT", "3", "STREAMS", "events", "0")
                == streams(("events", [])))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "myconsumer", "COUNT", "3", "STREAMS", "events", ">").elements?.first?.elements?[1].elements?.count == 3)
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "myconsumer", "COUNT", "3", "STREAMS", "events", "0").elements?.first?.elements?[1].elements?.count == 3)

        // Bug #5570: a pending entry deleted from the stream is reported with a null body.
        try client.send("XGROUP", "CREATE", "mystream", "mygroup", "$", "MKSTREAM")
        try client.send("XADD", "mystream", "1", "field1", "A")
        try client.send("XREADGROUP", "GROUP", "mygroup", "myconsumer", "STREAMS", "mystream", ">")
        try client.send("XADD", "mystream", "MAXLEN", "1", "2", "field1", "B")
        try client.send("XREADGROUP", "GROUP", "mygroup", "myconsumer", "STREAMS", "mystream", ">")
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "myconsumer", "STREAMS", "mystream", "0-1")
                == streams(("mystream", [.array([.string("1-0"), .nullArray]), entry("2-0", "field1", "B")])))
        try client.send("HELLO", "3")
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "myconsumer", "STREAMS", "mystream", "0-1")
                == streams(("mystream", [.array([.string("1-0"), .null]), entry("2-0", "field1", "B")]), resp3: true))
    }

    @Test func xreadgroupWithNoackLeavesThePELEmpty() throws {
        let client = try TestNode().connect()
        try client.send("XGROUP", "CREATE", "mystream", "mygroup", "$", "MKSTREAM")
        try client.send("XADD", "mystream", "1-0", "f1", "v1")
        try client.send("XADD", "mystream", "2-0", "f2", "v2")
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "NOACK", "COUNT", "1", "STREAMS", "mystream", ">")
                == streams(("mystream", [entry("1-0", "f1", "v1")])))
        #expect(try client.send("XPENDING", "mystream", "mygroup") == .array([.integer(0), .null, .null, .nullArray]))
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "STREAMS", "mystream", "0") == streams(("mystream", [])))
        let group = fields(try client.send("XINFO", "GROUPS", "mystream").elements?.first ?? .null)
        #expect(group["consumers"] == .integer(1))
        #expect(group["pending"] == .integer(0))
        #expect(group["last-delivered-id"] == .string("1-0"))
        #expect(group["entries-read"] == .integer(1))
        #expect(group["lag"] == .integer(1))
        let alice = fields(try client.send("XINFO", "CONSUMERS", "mystream", "mygroup").elements?.first ?? .null)
        #expect(alice["name"] == .string("Alice"))
        #expect(alice["pending"] == .integer(0))
        // A NOACK read does not make the consumer active.
        #expect(alice["inactive"] == .integer(-1))

        // The same read without NOACK adds to the PEL.
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "STREAMS", "mystream", ">")
                == streams(("mystream", [entry("2-0", "f2", "v2")])))
        #expect(try client.send("XPENDING", "mystream", "mygroup")
                == .array([.integer(1), .string("2-0"), .string("2-0"), .array([bulks("Alice", "1")])]))
    }

    @Test func blockingXreadgroupIsServedAndUnblockedWithErrors() throws {
        let node = TestNode()
        let blocked = try node.connect()
        let other = try node.connect()
        let nogroup = RESPValue.error("NOGROUP No such key 'mystream' or consumer group 'mygroup' in XREADGROUP with GROUP option")
        try other.send("XGROUP", "CREATE", "mystream", "mygroup", "$", "MKSTREAM")
        try blocked.write("XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", ">")
        #expect(try blocked.nextReply() == nil)
        #expect(try other.blockedClients() == 1)
        try other.send("XADD", "mystream", "1-0", "f", "v")
        #expect(try blocked.nextReply() == streams(("mystream", [entry("1-0", "f", "v")])))
        #expect(try other.send("XPENDING", "mystream", "mygroup")
                == .array([.integer(1), .string("1-0"), .string("1-0"), .array([bulks("Alice", "1")])]))

        // An ID other than `>` ignores BLOCK and answers from the history at once.
        #expect(try blocked.send("XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", "1-0")
                == streams(("mystream", [])))
        #expect(try blocked.send("XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", "0")
                == streams(("mystream", [entry("1-0", "f", "v")])))

        // A stream that ran dry blocks `>` until its timeout.
        try other.send("XADD", "mystream", "2-0", "f2", "v2")
        try other.send("XDEL", "mystream", "2-0")
        try blocked.write("XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "10", "STREAMS", "mystream", ">")
        #expect(try blocked.nextReply() == nil)
        node.advance(milliseconds: 20)
        blocked.advanceLoopTime(milliseconds: 20)
        #expect(try blocked.nextReply() == .nullArray)

        // XGROUP DESTROY, DEL and a type change release the waiter with an error.
        try blocked.write("XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", ">")
        #expect(try blocked.nextReply() == nil)
        #expect(try other.send("XGROUP", "DESTROY", "mystream", "mygroup") == .integer(1))
        #expect(try blocked.nextReply() == nogroup)

        try other.send("XGROUP", "CREATE", "mystream", "mygroup", "$")
        try blocked.write("XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", ">")
        #expect(try blocked.nextReply() == nil)
        try other.send("DEL", "mystream")
        #expect(try blocked.nextReply() == nogroup)

        try other.send("XADD", "mystream", "666", "f", "v")
        try other.send("XGROUP", "CREATE", "mystream", "mygroup", "$")
        try blocked.write("XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", ">")
        #expect(try blocked.nextReply() == nil)
        try other.send("SET", "mystream", "val1")
        #expect(try blocked.nextReply() == wrongType)
        #expect(try other.blockedClients() == 0)
        #expect(!node.state.blocking.hasWaiters)
    }

    // MARK: XACK / XPENDING

    @Test func xackRemovesEntriesFromThePEL() throws {
        let client = try TestNode().connect()
        for index in 1...4 { try client.send("XADD", "s", "\(index)-0", "f", "\(index)") }
        try client.send("XGROUP", "CREATE", "s", "g", "0")
        try client.send("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">")
        try client.send("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">")
        #expect(try client.send("XACK", "s", "g", "1-0") == .integer(1))
        #expect(pendingRows(try client.send("XPENDING", "s", "g", "-", "+", "10", "c1")) == [["2-0", "c1", "1"]])
        #expect(try client.send("XPENDING", "s", "g", "-", "+", "10").elements?.count == 3)
        #expect(try client.send("XACK", "s", "g", "1-0") == .integer(0))
        #expect(try client.send("XACK", "s", "g", "1-0", "2-0") == .integer(1))
        // One bad ID fails the whole call before anything is acknowledged.
        #expect(try client.send("XACK", "s", "g", "3-0", "invalid-id") == invalidID)
        #expect(try client.send("XACK", "s", "g", "3-0") == .integer(1))
        #expect(try client.send("XACK", "s", "nogroup", "4-0") == .integer(0))
        #expect(try client.send("XACK", "missing", "g", "4-0") == .integer(0))
        #expect(try client.send("XPENDING", "s", "g") == .array([.integer(1), .string("4-0"), .string("4-0"), .array([bulks("c2", "1")])]))
        #expect(try client.send("XACK", "s", "g") == .error("ERR wrong number of arguments for 'xack' command"))
        // Acknowledging does not remove the entry from the stream.
        #expect(try client.send("XLEN", "s") == .integer(4))
    }

    @Test func xpendingSummaryAndExtendedFormsWithIdleAndConsumer() throws {
        let node = TestNode()
        let client = try node.connect()
        for index in 1...4 { try client.send("XADD", "mystream", "\(index)-0", "f", "\(index)") }
        try client.send("XGROUP", "CREATE", "mystream", "mygroup", "0")
        try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-1", "COUNT", "2", "STREAMS", "mystream", ">")
        node.advance(milliseconds: 1000)
        try client.send("XREADGROUP", "GROUP", "mygroup", "consumer-2", "COUNT", "2", "STREAMS", "mystream", ">")

        #expect(try client.send("XPENDING", "mystream", "mygroup") == .array([
            .integer(4), .string("1-0"), .string("4-0"), .array([bulks("consumer-1", "2"), bulks("consumer-2", "2")]),
        ]))
        let all = try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10")
        #expect(pendingRows(all) == [["1-0", "consumer-1", "1"], ["2-0", "consumer-1", "1"], ["3-0", "consumer-2", "1"], ["4-0", "consumer-2", "1"]])
        let idles = pendingIdles(all)
        #expect(idles.count == 4)
        #expect(idles.prefix(2).allSatisfy { (1000..<3000).contains($0) })
        #expect(idles.suffix(2).allSatisfy { (0..<1000).contains($0) })

        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer-1")).map { $0[0] } == ["1-0", "2-0"])
        #expect(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "nobody") == .array([]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "1")).map { $0[0] } == ["1-0"])
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "(1-0", "(4-0", "10")).map { $0[0] } == ["2-0", "3-0"])
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "2", "3", "10")).map { $0[0] } == ["2-0", "3-0"])

        // IDLE keeps the entries delivered at least that long ago.
        #expect(try client.send("XPENDING", "mystream", "mygroup", "IDLE", "99999999", "-", "+", "10", "consumer-1") == .array([]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "IDLE", "500", "-", "+", "10", "consumer-1")).count == 2)
        #expect(try client.send("XPENDING", "mystream", "mygroup", "IDLE", "99999999", "-", "+", "10") == .array([]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "IDLE", "500", "-", "+", "10")).map { $0[0] } == ["1-0", "2-0"])
        #expect(try client.send("XPENDING", "mystream", "mygroup", "IDLE", "500", "-", "+", "10", "consumer-2") == .array([]))
        node.advance(milliseconds: 1000)
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "IDLE", "500", "-", "+", "10")).count == 4)

        #expect(try client.send("XPENDING", "mystream", "nogroup") == .error("NOGROUP No such key 'mystream' or consumer group 'nogroup'"))
        #expect(try client.send("XPENDING", "missing", "mygroup") == .error("NOGROUP No such key 'missing' or consumer group 'mygroup'"))
        #expect(try client.send("XPENDING", "mystream", "mygroup", "-", "+") == .error("ERR syntax error"))
        // redis 7.2 accepts up to 9 arguments and ignores one after the consumer (checked against redis-server).
        #expect(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "c", "extra") == .array([]))
        #expect(try client.send("XPENDING", "mystream", "mygroup", "IDLE", "1", "-", "+", "10", "c", "x", "y") == .error("ERR syntax error"))
        #expect(try client.send("XPENDING", "mystream", "mygroup", "x", "+", "10") == invalidID)
    }

    // MARK: XCLAIM / XAUTOCLAIM

    @Test func xclaimTransfersEntriesAndCountsDeliveries() throws {
        let node = TestNode()
        let client = try node.connect()
        for (index, field) in ["a", "b", "c"].enumerated() { try client.send("XADD", "mystream", "\(index + 1)-0", field, "\(index + 1)") }
        try client.send("XGROUP", "CREATE", "mystream", "mygroup", "0")
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "consumer1", "COUNT", "1", "STREAMS", "mystream", ">")
                == streams(("mystream", [entry("1-0", "a", "1")])))
        #expect(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer2") == .array([]))

        // Not idle long enough: nothing is claimed.
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer2", "10", "1-0") == .array([]))
        node.advance(milliseconds: 200)
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer2", "10", "1-0") == .array([entry("1-0", "a", "1")]))
        let claimed = try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10")
        #expect(pendingRows(claimed) == [["1-0", "consumer2", "2"]])
        #expect(pendingIdles(claimed).allSatisfy { (0..<200).contains($0) })
        #expect(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer1") == .array([]))

        // A claimed entry deleted from the stream leaves the PEL and is not returned.
        try client.send("XREADGROUP", "GROUP", "mygroup", "consumer1", "COUNT", "2", "STREAMS", "mystream", ">")
        node.advance(milliseconds: 200)
        #expect(try client.send("XDEL", "mystream", "2-0") == .integer(1))
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer2", "10", "2-0") == .array([]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10"))
                == [["1-0", "consumer2", "2"], ["3-0", "consumer1", "1"]])

        // JUSTID returns IDs and does not count a delivery.
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer3", "10", "1-0", "JUSTID") == bulks("1-0"))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer3")) == [["1-0", "consumer3", "2"]])
        // The same consumer can claim again.
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer3", "0", "1-0") == .array([entry("1-0", "a", "1")]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer3")) == [["1-0", "consumer3", "3"]])

        // IDLE and RETRYCOUNT set the delivery time and count.
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer4", "0", "3-0", "IDLE", "5000", "RETRYCOUNT", "7", "JUSTID") == bulks("3-0"))
        let set = try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer4")
        #expect(pendingRows(set) == [["3-0", "consumer4", "7"]])
        #expect(pendingIdles(set).allSatisfy { (5000..<6000).contains($0) })

        // FORCE creates a PEL entry for an entry nobody was delivered.
        try client.send("XADD", "mystream", "4-0", "d", "4")
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer4", "0", "4-0") == .array([]))
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "consumer4", "0", "4-0", "FORCE") == .array([entry("4-0", "d", "4")]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer4"))
                == [["3-0", "consumer4", "7"], ["4-0", "consumer4", "2"]])

        #expect(try client.send("XCLAIM", "mystream", "nogroup", "c", "0", "1-0") == .error("NOGROUP No such key 'mystream' or consumer group 'nogroup'"))
        #expect(try client.send("XCLAIM", "missing", "mygroup", "c", "0", "1-0") == .error("NOGROUP No such key 'missing' or consumer group 'mygroup'"))
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "c", "abc", "1-0") == .error("ERR Invalid min-idle-time argument for XCLAIM"))
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "c", "0", "1-0", "FOO") == .error("ERR Unrecognized XCLAIM option 'FOO'"))
        #expect(try client.send("XCLAIM", "mystream", "mygroup", "c", "0", "1-0", "IDLE", "x") == .error("ERR Invalid IDLE option argument for XCLAIM"))
    }

    @Test func xclaimAndXautoclaimDropDeletedAndTrimmedEntries() throws {
        let client = try TestNode().connect()
        func setUp() throws {
            try client.send("DEL", "x")
            for index in 1...3 { try client.send("XADD", "x", "\(index)-0", "f", "v") }
            try client.send("XGROUP", "CREATE", "x", "grp", "0")
            #expect(try client.send("XREADGROUP", "GROUP", "grp", "Alice", "STREAMS", "x", ">")
                    == streams(("x", [entry("1-0", "f", "v"), entry("2-0", "f", "v"), entry("3-0", "f", "v")])))
        }
        try setUp()
        try client.send("XDEL", "x", "2-0")
        #expect(try client.send("XCLAIM", "x", "grp", "Bob", "0", "1-0", "2-0", "3-0") == .array([entry("1-0", "f", "v"), entry("3-0", "f", "v")]))
        #expect(try client.send("XPENDING", "x", "grp", "-", "+", "10", "Alice") == .array([]))

        try setUp()
        try client.send("XTRIM", "x", "MAXLEN", "1")
        #expect(try client.send("XCLAIM", "x", "grp", "Bob", "0", "1-0", "2-0", "3-0") == .array([entry("3-0", "f", "v")]))
        #expect(try client.send("XPENDING", "x", "grp", "-", "+", "10", "Alice") == .array([]))

        try setUp()
        try client.send("XDEL", "x", "2-0")
        #expect(try client.send("XAUTOCLAIM", "x", "grp", "Bob", "0", "0-0")
                == .array([.string("0-0"), .array([entry("1-0", "f", "v"), entry("3-0", "f", "v")]), bulks("2-0")]))
        #expect(try client.send("XPENDING", "x", "grp", "-", "+", "10", "Alice") == .array([]))

        try setUp()
        try client.send("XDEL", "x", "1-0")
        try client.send("XDEL", "x", "2-0")
        #expect(try client.send("XAUTOCLAIM", "x", "grp", "Bob", "0", "0-0", "COUNT", "1") == .array([.string("2-0"), .array([]), bulks("1-0")]))
        #expect(try client.send("XAUTOCLAIM", "x", "grp", "Bob", "0", "2-0", "COUNT", "1") == .array([.string("3-0"), .array([]), bulks("2-0")]))
        #expect(try client.send("XAUTOCLAIM", "x", "grp", "Bob", "0", "3-0", "COUNT", "1")
                == .array([.string("0-0"), .array([entry("3-0", "f", "v")]), .array([])]))
        #expect(try client.send("XPENDING", "x", "grp", "-", "+", "10", "Alice") == .array([]))

        try setUp()
        try client.send("XTRIM", "x", "MAXLEN", "1")
        #expect(try client.send("XAUTOCLAIM", "x", "grp", "Bob", "0", "0-0")
                == .array([.string("0-0"), .array([entry("3-0", "f", "v")]), bulks("1-0", "2-0")]))
    }

    @Test func xautoclaimIteratesWithACursor() throws {
        let node = TestNode()
        let client = try node.connect()
        for (index, field) in ["a", "b", "c", "d", "e"].enumerated() { try client.send("XADD", "mystream", "\(index + 1)-0", field, "\(index + 1)") }
        try client.send("XGROUP", "CREATE", "mystream", "mygroup", "0")
        try client.send("XREADGROUP", "GROUP", "mygroup", "consumer1", "COUNT", "90", "STREAMS", "mystream", ">")

        // Nothing idle long enough: nothing claimed, and the scan ends.
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "consumer2", "10", "-", "COUNT", "2")
                == .array([.string("0-0"), .array([]), .array([])]))
        node.advance(milliseconds: 200)
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "consumer2", "10", "-", "COUNT", "2")
                == .array([.string("3-0"), .array([entry("1-0", "a", "1"), entry("2-0", "b", "2")]), .array([])]))
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "consumer2", "10", "3-0", "COUNT", "2")
                == .array([.string("5-0"), .array([entry("3-0", "c", "3"), entry("4-0", "d", "4")]), .array([])]))
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "consumer2", "10", "5-0", "COUNT", "1")
                == .array([.string("0-0"), .array([entry("5-0", "e", "5")]), .array([])]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10")).map { $0[1] + ":" + $0[2] }
                == Array(repeating: "consumer2:2", count: 5))

        // JUSTID returns IDs and leaves the delivery counts; an exclusive start skips the cursor itself.
        node.advance(milliseconds: 200)
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "consumer3", "10", "(2-0", "COUNT", "2", "JUSTID")
                == .array([.string("5-0"), bulks("3-0", "4-0"), .array([])]))
        #expect(pendingRows(try client.send("XPENDING", "mystream", "mygroup", "-", "+", "10", "consumer3")) == [["3-0", "consumer3", "2"], ["4-0", "consumer3", "2"]])

        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "c", "1", "1", "COUNT", "0") == .error("ERR COUNT must be > 0"))
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "c", "0", "3-0", "COUNT", "8070450532247928833") == .error("ERR COUNT must be > 0"))
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "c", "x", "0") == .error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))
        #expect(try client.send("XAUTOCLAIM", "mystream", "mygroup", "c", "0", "0", "BOGUS") == .error("ERR syntax error"))
        #expect(try client.send("XAUTOCLAIM", "mystream", "nogroup", "c", "0", "0") == .error("NOGROUP No such key 'mystream' or consumer group 'nogroup'"))
    }

    // MARK: XINFO

    @Test(arguments: [2, 3])
    func xinfoStreamFieldsAndValues(protocolVersion: Int) throws {
        let client = try TestNode().connect()
        if protocolVersion == 3 { try client.send("HELLO", "3") }
        for index in 1...5 { try client.send("XADD", "x", "\(index)-0", "data", "\(index)") }
        try client.send("XGROUP", "CREATE", "x", "g", "0")
        let reply = try client.send("XINFO", "STREAM", "x")
        if protocolVersion == 3 {
            guard case .map = reply else {
                Issue.record("XINFO STREAM under RESP3 must be a map, got \(reply)")
                return
            }
        }
        #expect(fieldNames(reply) == ["length", "radix-tree-keys", "radix-tree-nodes", "last-generated-id", "max-deleted-entry-id",
                                      "entries-added", "recorded-first-entry-id", "groups", "first-entry", "last-entry"])
        var info = fields(reply)
        #expect(info["length"] == .integer(5))
        #expect(info["last-generated-id"] == .string("5-0"))
        #expect(info["max-deleted-entry-id"] == .string("0-0"))
        #expect(info["entries-added"] == .integer(5))
        #expect(info["recorded-first-entry-id"] == .string("1-0"))
        #expect(info["groups"] == .integer(1))
        #expect(info["first-entry"] == entry("1-0", "data", "1"))
        #expect(info["last-entry"] == entry("5-0", "data", "5"))

        // XDEL and XTRIM move the recorded first entry; XDEL records the largest deleted ID.
        try client.send("XDEL", "x", "2-0")
        info = fields(try client.send("XINFO", "STREAM", "x"))
        #expect(info["recorded-first-entry-id"] == .string("1-0"))
        #expect(info["max-deleted-entry-id"] == .string("2-0"))
        try client.send("XDEL", "x", "1-0")
        info = fields(try client.send("XINFO", "STREAM", "x"))
        #expect(info["recorded-first-entry-id"] == .string("3-0"))
        #expect(info["max-deleted-entry-id"] == .string("2-0"))
        try client.send("XTRIM", "x", "MAXLEN", "=", "2")
        info = fields(try client.send("XINFO", "STREAM", "x"))
        #expect(info["recorded-first-entry-id"] == .string("4-0"))
        #expect(info["max-deleted-entry-id"] == .string("2-0"))
        #expect(info["length"] == .integer(2))
        #expect(info["entries-added"] == .integer(5))
        try client.send("XDEL", "x", "5-0")
        info = fields(try client.send("XINFO", "STREAM", "x"))
        #expect(info["last-generated-id"] == .string("5-0"))
        #expect(info["max-deleted-entry-id"] == .string("5-0"))
        #expect(info["last-entry"] == entry("4-0", "data", "4"))

        // An empty stream has no first or last entry.
        try client.send("XADD", "empty", "MAXLEN", "0", "7-0", "a", "b")
        info = fields(try client.send("XINFO", "STREAM", "empty"))
        #expect(info["length"] == .integer(0))
        #expect(info["last-generated-id"] == .string("7-0"))
        #expect(info["entries-added"] == .integer(1))
        #expect(info["recorded-first-entry-id"] == .string("0-0"))
        #expect(info["groups"] == .integer(0))
        #expect(info["first-entry"] == .null)
        #expect(info["last-entry"] == .null)

        #expect(try client.send("XINFO", "STREAM", "missing") == .error("ERR no such key"))
        #expect(try client.send("XINFO", "GROUPS", "missing") == .error("ERR no such key"))
        try client.send("SET", "astring", "x")
        #expect(try client.send("XINFO", "STREAM", "astring") == wrongType)
        #expect(try client.send("XINFO", "CONSUMERS", "x", "nogroup") == .error("NOGROUP No such consumer group 'nogroup' for key name 'x'"))
    }

    @Test func xinfoGroupsReportsEntriesReadAndLag() throws {
        let client = try TestNode().connect()
        func group(_ key: String, _ index: Int = 0) throws -> [String: RESPValue] {
            let groups = try client.send("XINFO", "GROUPS", key).elements ?? []
            return index < groups.count ? fields(groups[index]) : [:]
        }
        for index in 1...5 { try client.send("XADD", "x", "\(index)-0", "data", "\(index)") }
        try client.send("XGROUP", "CREATE", "x", "g1", "0")
        let created = try client.send("XINFO", "GROUPS", "x").elements?.first ?? .null
        #expect(fieldNames(created) == ["name", "consumers", "pending", "last-delivered-id", "entries-read", "lag"])
        #expect(try group("x") == ["name": .string("g1"), "consumers": .integer(0), "pending": .integer(0),
                                   "last-delivered-id": .string("0-0"), "entries-read": .null, "lag": .integer(5)])
        try client.send("XREADGROUP", "GROUP", "g1", "c11", "COUNT", "1", "STREAMS", "x", ">")
        #expect(try group("x")["entries-read"] == .integer(1))
        #expect(try group("x")["lag"] == .integer(4))
        try client.send("XREADGROUP", "GROUP", "g1", "c12", "COUNT", "10", "STREAMS", "x", ">")
        #expect(try group("x")["entries-read"] == .integer(5))
        #expect(try group("x")["lag"] == .integer(0))
        #expect(try group("x")["consumers"] == .integer(2))
        #expect(try group("x")["pending"] == .integer(5))
        try client.send("XADD", "x", "6-0", "data", "f")
        #expect(try group("x")["entries-read"] == .integer(5))
        #expect(try group("x")["lag"] == .integer(1))

        // A group created at `$` has read nothing it can count, but has no lag.
        try client.send("XGROUP", "CREATE", "x", "g0", "$")
        #expect(try group("x")["name"] == .string("g0"))
        #expect(try group("x")["entries-read"] == .null)
        #expect(try group("x")["lag"] == .integer(0))
        try client.send("XGROUP", "CREATE", "x", "g3", "$", "ENTRIESREAD", "3")
        #expect(try group("x", 2)["name"] == .string("g3"))
        #expect(try group("x", 2)["entries-read"] == .integer(3))

        // Empty streams: lag 0.
        try client.send("XGROUP", "CREATE", "e", "g1", "0", "MKSTREAM")
        #expect(try group("e")["entries-read"] == .null)
        #expect(try group("e")["lag"] == .integer(0))
        try client.send("XADD", "e", "1-0", "data", "a")
        try client.send("XDEL", "e", "1-0")
        #expect(try group("e")["entries-read"] == .null)
        #expect(try group("e")["lag"] == .integer(0))

        // A deletion ahead of the group makes the counter unknown until the group reaches the top.
        for index in 1...5 { try client.send("XADD", "d", "\(index)-0", "data", "\(index)") }
        try client.send("XDEL", "d", "3-0")
        try client.send("XGROUP", "CREATE", "d", "g1", "0")
        try client.send("XGROUP", "CREATE", "d", "g2", "0")
        #expect(try group("d")["entries-read"] == .null)
        #expect(try group("d")["lag"] == .null)
        for _ in 0..<3 {
            try client.send("XREADGROUP", "GROUP", "g1", "c11", "COUNT", "1", "STREAMS", "d", ">")
            #expect(try group("d")["entries-read"] == .null)
            #expect(try group("d")["lag"] == .null)
        }
        try client.send("XREADGROUP", "GROUP", "g1", "c11", "COUNT", "1", "STREAMS", "d", ">")
        #expect(try group("d")["entries-read"] == .integer(5))
        #expect(try group("d")["lag"] == .integer(0))
        try client.send("XADD", "d", "6-0", "data", "f")
        #expect(try group("d")["lag"] == .integer(1))
        try client.send("XTRIM", "d", "MINID", "=", "3-0")
        #expect(try group("d")["entries-read"] == .integer(5))
        #expect(try group("d")["lag"] == .integer(1))
        #expect(try group("d", 1)["entries-read"] == .null)
        #expect(try group("d", 1)["lag"] == .integer(3))
        try client.send("XTRIM", "d", "MINID", "=", "5-0")
        #expect(try group("d")["lag"] == .integer(1))
        #expect(try group("d", 1)["lag"] == .integer(2))
        #expect(try client.send("XINFO", "GROUPS", "astream-less").isError)
    }

    @Test func xinfoConsumersReportsPendingIdleAndInactive() throws {
        let node = TestNode()
        let client = try node.connect()
        func alice() throws -> [String: RESPValue] {
            fields(try client.send("XINFO", "CONSUMERS", "mystream", "mygroup").elements?.first ?? .null)
        }
        try client.send("XGROUP", "CREATE", "mystream", "mygroup", "$", "MKSTREAM")
        #expect(try client.send("XINFO", "CONSUMERS", "mystream", "mygroup") == .array([]))
        // A read that finds nothing still creates the consumer, seen but never active.
        #expect(try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "COUNT", "1", "STREAMS", "mystream", ">") == .nullArray)
        node.advance(milliseconds: 100)
        let consumers = try client.send("XINFO", "CONSUMERS", "mystream", "mygroup")
        #expect(consumers.elements?.count == 1)
        #expect(fieldNames(consumers.elements?.first ?? .null) == ["name", "pending", "idle", "inactive"])
        var info = try alice()
        #expect(info["name"] == .string("Alice"))
        #expect(info["pending"] == .integer(0))
        #expect((100..<1000).contains(integer(info["idle"]) ?? -1))
        #expect(info["inactive"] == .integer(-1))

        try client.send("XADD", "mystream", "*", "f", "v")
        try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "COUNT", "1", "STREAMS", "mystream", ">")
        info = try alice()
        #expect(info["pending"] == .integer(1))
        #expect((0..<80).contains(integer(info["idle"]) ?? -1))
        #expect((0..<80).contains(integer(info["inactive"]) ?? -1))

        // Seen again without reading anything: idle resets, inactive keeps growing.
        node.advance(milliseconds: 100)
        try client.send("XREADGROUP", "GROUP", "mygroup", "Alice", "COUNT", "1", "STREAMS", "mystream", ">")
        info = try alice()
        #expect((0..<80).contains(integer(info["idle"]) ?? -1))
        #expect((100..<1000).contains(integer(info["inactive"]) ?? -1))

        // Consumers are listed by name.
        try client.send("XGROUP", "CREATECONSUMER", "mystream", "mygroup", "Bob")
        try client.send("XGROUP", "CREATECONSUMER", "mystream", "mygroup", "Aaron")
        #expect(try client.send("XINFO", "CONSUMERS", "mystream", "mygroup").elements?.map { fields($0)["name"]?.text }
                == ["Aaron", "Alice", "Bob"])
        #expect(fields(try client.send("XINFO", "GROUPS", "mystream").elements?.first ?? .null)["consumers"] == .integer(3))
    }

    // MARK: XSETID

    @Test func xsetidSetsTheTopIDAndCounters() throws {
        let client = try TestNode().connect()
        #expect(try client.send("XADD", "mystream", "MAXLEN", "0", "*", "a", "b").isError == false)
        #expect(fields(try client.send("XINFO", "STREAM", "mystream"))["length"] == .integer(0))
        #expect(try client.send("XSETID", "mystream", "200-0") == .simple("OK"))
        var info = fields(try client.send("XINFO", "STREAM", "mystream"))
        #expect(info["last-generated-id"] == .string("200-0"))
        #expect(info["entries-added"] == .integer(1))

        try client.send("XADD", "mystream", "*", "a", "b")
        #expect(try client.send("XSETID", "mystream", "1-1") == .error("ERR The ID specified in XSETID is smaller than the target stream top item"))
        #expect(try client.send("XSETID", "stream", "1-1") == .error("ERR no such key"))
        #expect(try client.send("XSETID", "stream", "1-1", "0") == .error("ERR syntax error"))
        #expect(try client.send("XSETID", "stream", "1-1", "0-0") == .error("ERR syntax error"))
        #expect(try client.send("XSETID", "stream", "1-1", "ENTRIESADDED", "-1", "MAXDELETEDID", "0-0") == .error("ERR entries_added must be positive"))

        try client.send("XADD", "x", "1-0", "a", "b")
        #expect(try client.send("XSETID", "x", "1-0", "ENTRIESADDED", "1", "MAXDELETEDID", "2-0")
                == .error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"))
        #expect(try client.send("XSETID", "x", "1-0", "ENTRIESADDED", "0", "MAXDELETEDID", "0-0")
                == .error("ERR The entries_added specified in XSETID is smaller than the target stream length"))

        try client.send("DEL", "x")
        try client.send("XADD", "x", "1-1", "a", "1")
        try client.send("XADD", "x", "1-2", "b", "2")
        try client.send("XADD", "x", "1-3", "c", "3")
        try client.send("XDEL", "x", "1-2")
        try client.send("XDEL", "x", "1-3")
        #expect(fields(try client.send("XINFO", "STREAM", "x"))["max-deleted-entry-id"] == .string("1-3"))
        #expect(try client.send("XSETID", "x", "1-2") == .error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"))

        #expect(try client.send("XSETID", "x", "5-0", "ENTRIESADDED", "10", "MAXDELETEDID", "4-0") == .simple("OK"))
        info = fields(try client.send("XINFO", "STREAM", "x"))
        #expect(info["last-generated-id"] == .string("5-0"))
        #expect(info["entries-added"] == .integer(10))
        #expect(info["max-deleted-entry-id"] == .string("4-0"))
        #expect(try client.send("XADD", "x", "5-0", "f", "v") == topItemError)
        #expect(try client.send("XADD", "x", "5-*", "f", "v") == .string("5-1"))
        #expect(try client.send("XSETID", "x", "bad") == invalidID)
        try client.send("SET", "astring", "x")
        #expect(try client.send("XSETID", "astring", "1-0") == wrongType)
    }

    // MARK: types, persistence, key specs, memory

    @Test func typeIsStreamAndOtherTypesAreRefused() throws {
        let client = try TestNode().connect()
        try client.send("XADD", "s", "1-0", "f", "v")
        #expect(try client.send("TYPE", "s") == .simple("stream"))
        #expect(try client.send("GET", "s") == wrongType)
        #expect(try client.send("LPUSH", "s", "x") == wrongType)
        try client.send("SET", "notastream", "foo")
        try client.send("RPUSH", "alist", "foo")
        let commands: [[String]] = [
            ["XADD", "notastream", "*", "f", "v"], ["XADD", "alist", "*", "f", "v"], ["XLEN", "notastream"],
            ["XRANGE", "notastream", "-", "+"], ["XREVRANGE", "notastream", "+", "-"], ["XDEL", "notastream", "1-0"],
            ["XTRIM", "notastream", "MAXLEN", "1"], ["XREAD", "STREAMS", "notastream", "0"],
            ["XREAD", "STREAMS", "s", "notastream", "0", "0"],
            ["XGROUP", "CREATE", "notastream", "g", "$"], ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "notastream", ">"],
            ["XACK", "notastream", "g", "1-0"], ["XPENDING", "notastream", "g"], ["XCLAIM", "notastream", "g", "c", "0", "1-0"],
            ["XAUTOCLAIM", "notastream", "g", "c", "0", "0"], ["XINFO", "STREAM", "notastream"], ["XINFO", "GROUPS", "notastream"],
            ["XSETID", "notastream", "1-0"],
        ]
        for command in commands {
            #expect(try client.send(words: command) == wrongType, "\(command)")
        }
        #expect(try client.send("GET", "notastream") == .string("foo"))
        #expect(try client.send("XLEN", "s") == .integer(1))
    }

    /// A node persisting to `directory`, with no automatic saves.
    private func persistentNode(_ directory: String) -> TestNode {
        var configuration = NodeConfiguration()
        configuration.directory = directory
        configuration.save = ""
        return TestNode(configuration: configuration)
    }

    /// Everything observable about the streams `populate` wrote (idle times included: the clock does not move).
    private func observe(_ client: TestClient) throws -> [RESPValue] {
        try [
            client.send("XRANGE", "events", "-", "+"), withoutRadixFigures(client.send("XINFO", "STREAM", "events")),
            client.send("XINFO", "GROUPS", "events"), client.send("XINFO", "CONSUMERS", "events", "workers"),
            client.send("XPENDING", "events", "workers", "-", "+", "10"), withoutRadixFigures(client.send("XINFO", "STREAM", "empty")),
            client.send("XINFO", "GROUPS", "empty"), client.send("TYPE", "events"),
        ]
    }

    private func populate(_ client: TestClient) throws {
        for index in 1...6 { try client.send("XADD", "events", "\(index)-\(index)", "kind", "k\(index)", "n", "\(index)") }
        try client.send("XDEL", "events", "3-3")
        try client.send("XGROUP", "CREATE", "events", "workers", "0")
        try client.send("XGROUP", "CREATE", "events", "late", "$")
        try client.send("XREADGROUP", "GROUP", "workers", "alice", "COUNT", "2", "STREAMS", "events", ">")
        try client.send("XREADGROUP", "GROUP", "workers", "bob", "COUNT", "1", "STREAMS", "events", ">")
        try client.send("XACK", "events", "workers", "1-1")
        try client.send("XGROUP", "CREATECONSUMER", "events", "workers", "carol")
        try client.send("XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM")
        try client.send("XSETID", "empty", "9-9", "ENTRIESADDED", "4", "MAXDELETEDID", "8-0")
    }

    @Test func streamsSurviveDebugReloadSaveAndDumpRestore() throws {
        let directory = NSTemporaryDirectory() + "stream-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = persistentNode(directory)
        let client = try first.connect()
        try populate(client)
        let before = try observe(client)
        #expect(before[0].elements?.count == 5)
        #expect(pendingRows(before[4]) == [["2-2", "alice", "1"], ["4-4", "bob", "1"]])
        let digest = try client.send("DEBUG", "DIGEST")
        #expect(digest.text != String(repeating: "0", count: 40))

        #expect(try client.send("DEBUG", "RELOAD") == .simple("OK"))
        #expect(try observe(client) == before)
        #expect(try client.send("DEBUG", "DIGEST") == digest)

        #expect(try client.send("SAVE") == .simple("OK"))
        let second = persistentNode(directory)
        #expect(try second.state.persistence.loadAtStartup(node: second.state)?.records == 2)
        let other = try second.connect()
        #expect(try observe(other) == before)
        #expect(try other.send("DEBUG", "DIGEST") == digest)
        // The loaded stream keeps working: its groups deliver where they left off.
        #expect(try other.send("XREADGROUP", "GROUP", "workers", "bob", "STREAMS", "events", ">")
                == streams(("events", [entry("5-5", "kind", "k5", "n", "5"), entry("6-6", "kind", "k6", "n", "6")])))
        #expect(try other.send("XADD", "empty", "9-9", "f", "v") == topItemError)

        for key in ["events", "empty"] {
            guard case .bulk(let payload) = try client.send("DUMP", key) else {
                Issue.record("DUMP \(key) did not return a bulk string")
                continue
            }
            #expect(try client.send(arguments: [Array("RESTORE".utf8), Array("copy-\(key)".utf8), Array("0".utf8), payload]) == .simple("OK"))
            #expect(try client.send("DEBUG", "DIGEST-VALUE", "copy-\(key)") == client.send("DEBUG", "DIGEST-VALUE", key))
            #expect(try client.send("XINFO", "GROUPS", "copy-\(key)") == client.send("XINFO", "GROUPS", key))
            #expect(try withoutRadixFigures(client.send("XINFO", "STREAM", "copy-\(key)"))
                    == withoutRadixFigures(client.send("XINFO", "STREAM", key)))
        }
        #expect(try client.send("XRANGE", "copy-events", "-", "+") == before[0])
    }

    @Test func keySpecsAndFlags() throws {
        let table = CommandTable.standard
        func keys(_ words: String...) -> [Int] {
            let arguments = CommandArguments(strings: words)
            return table.lookup(arguments)?.keys.positions(in: arguments) ?? [-1]
        }
        #expect(keys("XADD", "s", "*", "f", "v") == [1])
        #expect(keys("XRANGE", "s", "-", "+") == [1])
        #expect(keys("XLEN", "s") == [1])
        #expect(keys("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0") == [4, 5])
        #expect(keys("XREAD", "BLOCK", "0", "STREAMS", "a", "$") == [4])
        #expect(keys("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">") == [5, 6])
        #expect(keys("XACK", "s", "g", "1-0") == [1])
        #expect(keys("XCLAIM", "s", "g", "c", "0", "1-0") == [1])
        #expect(table.command(named: "xread")!.flags.contains(.blocking))
        #expect(table.command(named: "xreadgroup")!.flags.contains(.blocking))
        #expect(table.command(named: "xreadgroup")!.flags.contains(.write))
        #expect(table.command(named: "xadd")!.flags.contains(.write))
        #expect(table.command(named: "xrange")!.flags.contains(.readonly))
        #expect(table.command(named: "xlen")!.flags.contains(.readonly))
        #expect(!table.command(named: "xadd")!.flags.contains(.blocking))
    }

    @Test func memoryEstimateGrowsAndIsGivenBackOnDelete() throws {
        let node = TestNode()
        let client = try node.connect()
        let emptyBytes = CollectionTestSupport.estimatedBytes(node)
        let value = String(repeating: "v", count: 100)
        for index in 0..<200 { try client.send("XADD", "s", "*", "field\(index % 7)", value) }
        try client.send("XGROUP", "CREATE", "s", "g", "0")
        try client.send("XREADGROUP", "GROUP", "g", "c", "COUNT", "50", "STREAMS", "s", ">")
        let grown = CollectionTestSupport.estimatedBytes(node)
        #expect(grown > emptyBytes + 200 * 100)
        try client.send("XTRIM", "s", "MAXLEN", "10")
        let trimmed = CollectionTestSupport.estimatedBytes(node)
        #expect(trimmed < grown - 150 * 100)
        #expect(trimmed > emptyBytes)
        #expect(try client.send("DEL", "s") == .integer(1))
        #expect(CollectionTestSupport.estimatedBytes(node) == emptyBytes)
    }
}
