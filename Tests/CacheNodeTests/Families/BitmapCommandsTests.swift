// Tests of the bitmap family through the real decoder, dispatcher and reply writer (redis tests/unit/bitops.tcl and
// bitfield.tcl): fixed cases with redis's replies, and random strings checked against a plain bit-by-bit model.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import Testing

/// Bits of `bytes`, most significant first.
private func bitsOf(_ bytes: [UInt8]) -> [UInt8] {
    bytes.flatMap { byte in (0..<8).map { (byte >> (7 - UInt8($0))) & 1 } }
}

/// How many bits are set.
private func ones(_ bits: [UInt8]) -> Int {
    bits.reduce(0) { $0 + Int($1) }
}

/// redis's range rule: negative indices from the end, clamped; `nil` when empty.
private func clampedRange(_ start: Int, _ end: Int, total: Int) -> ClosedRange<Int>? {
    var first = start < 0 ? start + total : start
    var last = end < 0 ? end + total : end
    first = max(first, 0)
    last = min(max(last, 0), total - 1)
    return first <= last ? first...last : nil
}

struct BitmapCommandsTests {
    @Test func setbitAndGetbitGrowTheStringWithZeros() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SETBIT", "b", "7", "1") == .integer(0))
        #expect(try client.send("GET", "b") == .bulk([0x01]))
        #expect(try client.send("SETBIT", "b", "7", "1") == .integer(1))
        #expect(try client.send("SETBIT", "b", "100", "1") == .integer(0))
        #expect(try client.send("STRLEN", "b") == .integer(13))
        #expect(try client.send("GETBIT", "b", "100") == .integer(1))
        #expect(try client.send("GETBIT", "b", "99") == .integer(0))
        #expect(try client.send("GETBIT", "b", "100000") == .integer(0))
        #expect(try client.send("GETBIT", "missing", "3") == .integer(0))
        #expect(try client.send("SETBIT", "b", "100", "0") == .integer(1))
        #expect(try client.send("GETBIT", "b", "100") == .integer(0))
        // A string's own bits: "a" is 0x61.
        _ = try client.send("SET", "s", "a")
        #expect(try (0..<8).map { try client.send("GETBIT", "s", String($0)) } == [0, 1, 1, 0, 0, 0, 0, 1].map { .integer($0) })
    }

    @Test func setbitChangesLongBitmapsInPlaceAcrossTheInlineLimit() throws {
        let client = try TestNode().connect()
        // Bits set one by one through the inline (14-byte) string and into heap blocks that grow and are then
        // changed in place; the value must match a model at every size.
        var model = [UInt8](repeating: 0, count: 0)
        var random = SplitMix64(seed: 7)
        for _ in 0..<600 {
            let offset = Int.random(in: 0..<4000, using: &random)
            let on = Bool.random(using: &random)
            let byte = offset >> 3
            if model.count <= byte { model += [UInt8](repeating: 0, count: byte + 1 - model.count) }
            let old = (model[byte] >> (7 - UInt8(offset & 7))) & 1
            if on { model[byte] |= 1 << (7 - UInt8(offset & 7)) } else { model[byte] &= ~(1 << (7 - UInt8(offset & 7))) }
            #expect(try client.send("SETBIT", "big", String(offset), on ? "1" : "0") == .integer(Int(old)))
        }
        #expect(try client.send("GET", "big") == .bulk(model))
        // A copy shares nothing with the original: changing one leaves the other.
        _ = try client.send("COPY", "big", "twin")
        _ = try client.send("SETBIT", "twin", "0", "1")
        _ = try client.send("SETBIT", "twin", "1", "0")
        #expect(try client.send("GET", "big") == .bulk(model))
    }

    @Test func bitArgumentsAreCheckedAsRedisChecksThem() throws {
        let client = try TestNode().connect()
        #expect(try client.send("SETBIT", "b", "-1", "1") == .error("ERR bit offset is not an integer or out of range"))
        #expect(try client.send("SETBIT", "b", "4294967296", "1") == .error("ERR bit offset is not an integer or out of range"))
        #expect(try client.send("SETBIT", "b", "0", "2") == .error("ERR bit is not an integer or out of range"))
        #expect(try client.send("SETBIT", "b", "0", "x") == .error("ERR bit is not an integer or out of range"))
        #expect(try client.send("GETBIT", "b", "x") == .error("ERR bit offset is not an integer or out of range"))
        _ = try client.send("LPUSH", "list", "a")
        #expect(try client.send("SETBIT", "list", "0", "1").text?.hasPrefix("WRONGTYPE") == true)
        #expect(try client.send("BITCOUNT", "list").text?.hasPrefix("WRONGTYPE") == true)
        #expect(try client.send("BITCOUNT", "b", "0") == .error("ERR syntax error"))
        #expect(try client.send("BITCOUNT", "b", "0", "1", "NIBBLE") == .error("ERR syntax error"))
        #expect(try client.send("BITPOS", "b", "2") == .error("ERR The bit argument must be 1 or 0."))
        #expect(try client.send("BITOP", "NAND", "d", "a") == .error("ERR syntax error"))
        #expect(try client.send("BITOP", "NOT", "d", "a", "b") == .error("ERR BITOP NOT must be called with a single source key."))
        #expect(try client.send("BITOP", "AND", "d", "list").text?.hasPrefix("WRONGTYPE") == true)
    }

    @Test func bitcountMatchesAModelOverRandomStringsAndRanges() throws {
        let client = try TestNode().connect()
        var random = SplitMix64(seed: 11)
        for round in 0..<60 {
            let bytes = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try client.send(arguments: [Array("SET".utf8), Array("s".utf8), bytes])
            let bits = bitsOf(bytes)
            #expect(try client.send("BITCOUNT", "s") == .integer(ones(bits)), "round \(round)")
            for _ in 0..<8 {
                let start = Int.random(in: -50...50, using: &random), end = Int.random(in: -50...50, using: &random)
                var byteCount = 0
                if !(start < 0 && end < 0 && start > end), let range = clampedRange(start, end, total: bytes.count) {
                    byteCount = ones(bitsOf(Array(bytes[range])))
                }
                #expect(try client.send("BITCOUNT", "s", String(start), String(end)) == .integer(byteCount), "round \(round) \(start) \(end)")
                let bitStart = Int.random(in: -400...400, using: &random), bitEnd = Int.random(in: -400...400, using: &random)
                var bitCount = 0
                if !(bitStart < 0 && bitEnd < 0 && bitStart > bitEnd), let range = clampedRange(bitStart, bitEnd, total: bits.count) {
                    bitCount = ones(Array(bits[range]))
                }
                #expect(try client.send("BITCOUNT", "s", String(bitStart), String(bitEnd), "BIT") == .integer(bitCount),
                        "round \(round) \(bitStart) \(bitEnd) BIT")
            }
        }
        #expect(try client.send("BITCOUNT", "missing") == .integer(0))
    }

    @Test func bitposMatchesAModelOverRandomStringsAndRanges() throws {
        let client = try TestNode().connect()
        var random = SplitMix64(seed: 13)
        for round in 0..<60 {
            // Runs of 0x00 and 0xFF make the whole-byte skips matter.
            let bytes = (0..<Int.random(in: 1...24, using: &random)).map { _ in
                [0x00, 0xFF, UInt8.random(in: 0...255, using: &random)].randomElement(using: &random)!
            }
            _ = try client.send(arguments: [Array("SET".utf8), Array("s".utf8), bytes])
            let bits = bitsOf(bytes)
            for wanted in [0, 1] {
                func model(_ range: ClosedRange<Int>?, endGiven: Bool) -> Int {
                    guard let range else { return -1 }
                    if let found = range.first(where: { Int(bits[$0]) == wanted }) { return found }
                    return wanted == 0 && !endGiven ? range.upperBound + 1 : -1
                }
                #expect(try client.send("BITPOS", "s", String(wanted)) == .integer(model(0...(bits.count - 1), endGiven: false)))
                for _ in 0..<6 {
                    let start = Int.random(in: -30...30, using: &random), end = Int.random(in: -30...30, using: &random)
                    let byteRange = clampedRange(start, end, total: bytes.count).map { ($0.lowerBound * 8)...($0.upperBound * 8 + 7) }
                    #expect(try client.send("BITPOS", "s", String(wanted), String(start), String(end))
                            == .integer(model(byteRange, endGiven: true)), "round \(round) \(wanted) \(start) \(end)")
                    let startOnly = clampedRange(start, -1, total: bytes.count).map { ($0.lowerBound * 8)...($0.upperBound * 8 + 7) }
                    #expect(try client.send("BITPOS", "s", String(wanted), String(start)) == .integer(model(startOnly, endGiven: false)),
                            "round \(round) \(wanted) \(start)")
                    let bitStart = Int.random(in: -250...250, using: &random), bitEnd = Int.random(in: -250...250, using: &random)
                    #expect(try client.send("BITPOS", "s", String(wanted), String(bitStart), String(bitEnd), "BIT")
                            == .integer(model(clampedRange(bitStart, bitEnd, total: bits.count), endGiven: true)),
                            "round \(round) \(wanted) \(bitStart) \(bitEnd) BIT")
                }
            }
        }
        #expect(try client.send("BITPOS", "missing", "1") == .integer(-1))
        #expect(try client.send("BITPOS", "missing", "0") == .integer(0))
        _ = try client.send(arguments: [Array("SET".utf8), Array("ones".utf8), [0xFF, 0xFF]])
        #expect(try client.send("BITPOS", "ones", "0") == .integer(16))
        #expect(try client.send("BITPOS", "ones", "0", "0", "-1") == .integer(-1))
    }

    @Test func bitopCombinesStringsOfDifferentLengths() throws {
        let client = try TestNode().connect()
        var random = SplitMix64(seed: 17)
        for round in 0..<30 {
            let sources = (0..<Int.random(in: 1...4, using: &random)).map { _ in
                (0..<Int.random(in: 0...12, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            for (index, bytes) in sources.enumerated() {
                _ = try client.send(arguments: [Array("SET".utf8), Array("src\(index)".utf8), bytes])
            }
            let names = sources.indices.map { "src\($0)" } + ["absent"]
            let length = sources.map(\.count).max()!
            let padded = sources.map { $0 + [UInt8](repeating: 0, count: length - $0.count) } + [[UInt8](repeating: 0, count: length)]
            let expected: [(String, [UInt8])] = [
                ("AND", (0..<length).map { position in padded.reduce(0xFF) { $0 & $1[position] } }),
                ("OR", (0..<length).map { position in padded.reduce(0) { $0 | $1[position] } }),
                ("XOR", (0..<length).map { position in padded.reduce(0) { $0 ^ $1[position] } }),
            ]
            for (name, result) in expected {
                #expect(try client.send(arguments: (["BITOP", name, "dest"] + names).map { Array($0.utf8) }) == .integer(length),
                        "round \(round) \(name)")
                #expect(try client.send("GET", "dest") == (length == 0 ? .null : .bulk(result)), "round \(round) \(name)")
            }
            #expect(try client.send("BITOP", "NOT", "dest", "src0") == .integer(sources[0].count))
            #expect(try client.send("GET", "dest") == (sources[0].isEmpty ? .null : .bulk(sources[0].map { ~$0 })))
        }
        // Only missing sources: the result is empty and the destination deleted.
        _ = try client.send("SET", "dest", "x")
        #expect(try client.send("BITOP", "OR", "dest", "nothing", "none") == .integer(0))
        #expect(try client.send("EXISTS", "dest") == .integer(0))
    }

    @Test func bitfieldGetSetIncrbyWithEachOverflowMode() throws {
        let client = try TestNode().connect()
        // redis's documented examples.
        #expect(try client.send("BITFIELD", "mykey", "INCRBY", "i5", "100", "1", "GET", "u4", "0") == .array([.integer(1), .integer(0)]))
        #expect(try client.send("BITFIELD", "bits", "SET", "i8", "0", "255", "GET", "u8", "0") == .array([.integer(0), .integer(255)]))
        #expect(try client.send("BITFIELD", "bits", "GET", "i8", "0") == .array([.integer(-1)]))
        #expect(try client.send("BITFIELD", "mystring", "SET", "i8", "#0", "100", "SET", "i8", "#1", "200")
                == .array([.integer(0), .integer(0)]))
        #expect(try client.send("BITFIELD", "mystring", "GET", "u8", "8") == .array([.integer(200)]))
        #expect(try client.send("BITFIELD", "mystring", "GET", "i8", "#1") == .array([.integer(-56)]))
        // u2 counts 0..3: WRAP goes round, SAT sticks, FAIL refuses and changes nothing.
        _ = try client.send("DEL", "c")
        let wrap = try (0..<5).map { _ in try client.send("BITFIELD", "c", "INCRBY", "u2", "0", "1") }
        #expect(wrap == [1, 2, 3, 0, 1].map { .array([.integer($0)]) })
        let saturate = try (0..<4).map { _ in try client.send("BITFIELD", "c", "OVERFLOW", "SAT", "INCRBY", "u2", "0", "1") }
        #expect(saturate == [2, 3, 3, 3].map { .array([.integer($0)]) })
        #expect(try client.send("BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "1") == .array([.null]))
        #expect(try client.send("BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "-3") == .array([.integer(0)]))
        #expect(try client.send("BITFIELD", "c", "OVERFLOW", "SAT", "INCRBY", "u2", "0", "-9") == .array([.integer(0)]))
        // Signed: i4 holds -8..7.
        #expect(try client.send("BITFIELD", "d", "SET", "i4", "0", "7", "INCRBY", "i4", "0", "1") == .array([.integer(0), .integer(-8)]))
        #expect(try client.send("BITFIELD", "d", "OVERFLOW", "SAT", "INCRBY", "i4", "0", "-100") == .array([.integer(-8)]))
        #expect(try client.send("BITFIELD", "d", "OVERFLOW", "SAT", "SET", "i4", "0", "100", "GET", "i4", "0")
                == .array([.integer(-8), .integer(7)]))
        #expect(try client.send("BITFIELD", "d", "OVERFLOW", "FAIL", "SET", "i4", "0", "8", "GET", "i4", "0")
                == .array([.null, .integer(7)]))
        // i64 and u63 at their limits.
        #expect(try client.send("BITFIELD", "e", "SET", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "1")
                == .array([.integer(0), .integer(Int.min)]))
        #expect(try client.send("BITFIELD", "e", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-1", "INCRBY", "i64", "0", "5")
                == .array([.integer(Int.min), .integer(Int.min + 5)]))
        #expect(try client.send("BITFIELD", "f", "SET", "u63", "1", "9223372036854775807", "GET", "u63", "1")
                == .array([.integer(0), .integer(Int.max)]))
    }

    @Test func bitfieldRefusesBadInputBeforeChangingAnything() throws {
        let client = try TestNode().connect()
        let typeError = RESPValue.error("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
        #expect(try client.send("BITFIELD", "k", "SET", "u64", "0", "1") == typeError)
        #expect(try client.send("BITFIELD", "k", "SET", "i65", "0", "1") == typeError)
        #expect(try client.send("BITFIELD", "k", "GET", "x8", "0") == typeError)
        #expect(try client.send("BITFIELD", "k", "SET", "u8", "0", "1", "GET", "u8", "-1") == .error("ERR bit offset is not an integer or out of range"))
        #expect(try client.send("BITFIELD", "k", "OVERFLOW", "BOUNCE") == .error("ERR Invalid OVERFLOW type specified"))
        #expect(try client.send("BITFIELD", "k", "SET", "u8", "0") == .error("ERR syntax error"))
        #expect(try client.send("BITFIELD", "k", "INCRBY", "u8", "0", "x") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("EXISTS", "k") == .integer(0))
        #expect(try client.send("BITFIELD_RO", "k", "SET", "u8", "0", "1") == .error("ERR BITFIELD_RO only supports the GET subcommand"))
        #expect(try client.send("BITFIELD_RO", "k", "GET", "u8", "0") == .array([.integer(0)]))
        #expect(try client.send("BITFIELD", "k") == .array([]))
        #expect(try client.send("EXISTS", "k") == .integer(0))
    }

    @Test func unchangedBitsAreNotChanges() throws {
        let node = TestNode()
        let client = try node.connect()
        func changes() throws -> Int {
            let info = try client.send("INFO", "persistence").text ?? ""
            let line = info.split(separator: "\r\n").first { $0.hasPrefix("rdb_changes_since_last_save:") } ?? ""
            return Int(line.split(separator: ":").last ?? "") ?? -1
        }
        let before = try changes()
        _ = try client.send("SETBIT", "k", "0", "0")  // creates the key: a change
        _ = try client.send("SETBIT", "k", "0", "0")  // no change
        _ = try client.send("BITFIELD", "k", "SET", "u1", "0", "0")  // no change
        _ = try client.send("SETBIT", "k", "20", "0")  // grows the string: a change
        _ = try client.send("BITFIELD", "k", "INCRBY", "u4", "0", "1")  // a change
        #expect(try changes() == before + 3)
    }
}
