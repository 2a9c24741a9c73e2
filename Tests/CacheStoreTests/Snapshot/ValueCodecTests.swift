// The value codec, DUMP payloads and CRC-64: known answers, round trips of every type, and hostile inputs
// (truncation at every length, flipped bytes, garbage) rejected with the right typed error.
@testable import CacheStore
import Testing

/// Values of every type and encoding, shared by the snapshot tests.
enum SampleValues {
    static func all() -> [(name: String, value: StoredValue)] {
        let list = ListValue()
        for item in ["a", "", "a-member-longer-than-twenty-two-bytes", "42"] { list.push(CompactBytes(item), at: .tail) }
        let hash = HashValue()
        hash.set(field: CompactBytes("field"), value: CompactBytes("value"))
        hash.set(field: CompactBytes("long-field-name-over-22-bytes"), value: CompactBytes(String(repeating: "v", count: 300)))
        let set = SetValue()
        for member in ["x", "y", "-17", String(repeating: "z", count: 40)] { set.add(CompactBytes(member)) }
        let zset = SortedSetValue()
        zset.add(CompactBytes("low"), score: -.infinity)
        zset.add(CompactBytes("mid"), score: 1.5)
        zset.add(CompactBytes("tie-a"), score: 2)
        zset.add(CompactBytes("tie-b"), score: 2)
        zset.add(CompactBytes("high"), score: .infinity)
        // A stream with a deleted entry, counters moved by XSETID, and a group with two consumers and pending entries.
        let stream = StreamValue()
        for sequence in 1...4 {
            let id = StreamID(milliseconds: 1_700_000_000_000, sequence: UInt64(sequence))
            stream.append(StreamEntry(id: id, fieldsAndValues: [CompactBytes("f\(sequence)"), CompactBytes(String(repeating: "v", count: sequence * 10))]),
                          nodeMaxEntries: 2, nodeMaxBytes: 4096)
        }
        _ = stream.delete(StreamID(milliseconds: 1_700_000_000_000, sequence: 2))
        stream.lastID = StreamID(milliseconds: 1_700_000_000_009, sequence: 0)
        let group = StreamConsumerGroup(lastDeliveredID: StreamID(milliseconds: 1_700_000_000_000, sequence: 3), entriesRead: 3)
        let alice = StreamConsumer(name: CompactBytes("alice"), seenTime: 1_700_000_000_100, activeTime: 1_700_000_000_050)
        let bob = StreamConsumer(name: CompactBytes("bob"), seenTime: 1_700_000_000_200)
        group.consumers[alice.name] = alice
        group.consumers[bob.name] = bob
        group.addPending(StreamID(milliseconds: 1_700_000_000_000, sequence: 1), consumer: alice, deliveryTime: 1_700_000_000_050, deliveryCount: 3)
        group.addPending(StreamID(milliseconds: 1_700_000_000_000, sequence: 3), consumer: alice, deliveryTime: 1_700_000_000_060, deliveryCount: 1)
        stream.groups[CompactBytes("workers")] = group
        stream.groups[CompactBytes("idle")] = StreamConsumerGroup(lastDeliveredID: .zero, entriesRead: -1)
        let emptyStream = StreamValue()
        emptyStream.lastID = StreamID(milliseconds: 5, sequence: 5)
        emptyStream.entriesAdded = 7
        return [
            ("stream", .stream(stream)),
            ("empty stream", .stream(emptyStream)),
            ("empty string", .string("")),
            ("short string", .string("hello")),
            ("long string", .string(String(repeating: "0123456789", count: 100))),
            ("binary string", [0, 255, 13, 10, 0].withUnsafeBytes { StoredValue.string(copying: $0) }),
            ("integer", .string("12345")),
            ("negative integer", .string("-9223372036854775808")),
            ("max integer", .string("9223372036854775807")),
            ("leading zero stays text", .string("007")),
            ("minus zero stays text", .string("-0")),
            ("too large for Int64", .string("9223372036854775808")),
            ("list", .list(list)),
            ("hash", .hash(hash)),
            ("set", .set(set)),
            ("sorted set", .sortedSet(zset)),
        ]
    }

    /// A comparable rendering of a value (type, then its contents in a canonical order).
    static func describe(_ value: StoredValue) -> String {
        switch value {
        case .shortString, .string:
            return "string:" + (value.withStringBytes { Array($0) }!.map { String($0) }.joined(separator: ","))
        case .list(let list):
            return "list:" + list.items.map(\.string).joined(separator: "|")
        case .hash(let hash):
            return "hash:" + hash.fields.map { "\($0.key.string)=\($0.value.string)" }.sorted().joined(separator: "|")
        case .set(let set):
            return "set:" + set.members.map(\.string).sorted().joined(separator: "|")
        case .sortedSet(let zset):
            var parts: [String] = []
            var node = zset.order.first
            while let current = node {
                parts.append("\(current.member.string)@\(current.score)")
                node = current.next
            }
            return "zset:" + parts.joined(separator: "|")
        case .stream(let stream):
            let entries = stream.entries.map { "\($0.id)=" + $0.fieldsAndValues.map(\.string).joined(separator: ",") }
            let groups = stream.groupsByName.map { name, group in
                let consumers = group.consumersByName.map { "\($0.name.string)/\($0.seenTime)/\($0.activeTime)/\($0.pending.ids.map(\.description))" }
                let pending = group.pendingIDs.ids.map { id -> String in
                    let entry = group.pending[id]!
                    return "\(id)@\(entry.consumer.name.string)/\(entry.deliveryTime)/\(entry.deliveryCount)"
                }
                return "\(name.string):\(group.lastDeliveredID):\(group.entriesRead):\(consumers):\(pending)"
            }
            return "stream:\(stream.lastID):\(stream.maximumDeletedID):\(stream.entriesAdded):" + entries.joined(separator: "|")
                + ":" + groups.joined(separator: "|")
        }
    }
}

struct ValueCodecTests {
    @Test func crc64MatchesRedisKnownAnswer() {
        #expect(CRC64.checksum(Array("123456789".utf8)) == 0xe9c6_d914_c4b8_d9ca)
        #expect(CRC64.checksum([UInt8]()) == 0)
    }

    @Test func crc64SlicingMatchesBytewiseAndIncremental() {
        var random = SplitMix64(seed: 7)
        let data = (0..<1037).map { _ in UInt8.random(in: 0...255, using: &random) }
        // Reference: the plain reflected bit-at-a-time definition.
        var reference: UInt64 = 0
        for byte in data {
            reference ^= UInt64(byte)
            for _ in 0..<8 { reference = reference & 1 == 1 ? (reference >> 1) ^ CRC64.reflectedPolynomial : reference >> 1 }
        }
        #expect(CRC64.checksum(data) == reference)
        var pieces = CRC64()
        pieces.update(data[0..<3])
        pieces.update(data[3..<500])
        pieces.update(data[500...])
        #expect(pieces.value == reference)
    }

    @Test(arguments: SampleValues.all().map(\.name))
    func everyTypeRoundTrips(name: String) throws {
        let value = SampleValues.all().first { $0.name == name }!.value
        let decoded = try ValueCodec.decode(ValueCodec.encode(value))
        #expect(SampleValues.describe(decoded) == SampleValues.describe(value))
        #expect(decoded.type == value.type)
        let restored = try DumpPayload.decode(DumpPayload.encode(value))
        #expect(SampleValues.describe(restored) == SampleValues.describe(value))
    }

    @Test func integersUseTheCompactEncoding() {
        #expect(ValueCodec.encode(.string("12345")) == [1, 0xF2, 0xC0, 0x01])
        #expect(ValueCodec.encode(.string("007")).first == 0)
        #expect(ValueCodec.encode(.string("1e3")).first == 0)
        #expect(ValueCodec.encode(.string("")).first == 0)
    }

    @Test func everyTruncationIsRejectedAsTruncated() {
        for (name, value) in SampleValues.all() {
            let bytes = ValueCodec.encode(value)
            for length in 0..<bytes.count {
                do {
                    _ = try ValueCodec.decode(bytes[0..<length])
                    Issue.record("\(name): a \(length)-byte prefix decoded")
                } catch {
                    #expect(error.kind == .truncated, "\(name) at \(length): \(error)")
                }
            }
        }
    }

    @Test func dumpPayloadRejectsFlippedBytesAndBadVersions() {
        for (name, value) in SampleValues.all() {
            let payload = DumpPayload.encode(value)
            for position in payload.indices {
                var damaged = payload
                damaged[position] ^= 0x20
                do {
                    _ = try DumpPayload.decode(damaged)
                    Issue.record("\(name): flipping byte \(position) went unnoticed")
                } catch {
                    #expect(error.kind == .checksumMismatch || error.kind == .unsupportedVersion, "\(name) at \(position): \(error)")
                }
            }
        }
        var newer = ValueCodec.encode(.string("x"))
        newer.appendLittleEndian(UInt16(99))
        newer.appendLittleEndian(CRC64.checksum(newer))
        #expect(throws: SnapshotError.self) { try DumpPayload.decode(newer) }
        do { _ = try DumpPayload.decode(newer) } catch { #expect(error.kind == .unsupportedVersion) }
        do { _ = try DumpPayload.decode([1, 2, 3]) } catch { #expect(error.kind == .truncated) }
    }

    @Test func hostileEncodingsFailCleanly() {
        func kind(_ bytes: [UInt8], limits: ValueCodec.Limits = .standard) -> SnapshotError.Kind? {
            do {
                _ = try ValueCodec.decode(bytes, limits: limits)
                return nil
            } catch {
                return error.kind
            }
        }
        #expect(kind([9]) == .malformed)  // unknown type
        #expect(kind([0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) == .limitExceeded)  // 4 GiB string: over the 512 MiB limit
        #expect(kind([0, 0xFF, 0xFF, 0xFF, 0x0F]) == .truncated)  // 256 MiB string, 0 bytes present
        #expect(kind([0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) == .malformed)  // varint overflow
        #expect(kind([2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 65]) == .limitExceeded || kind([2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 65]) == .truncated)
        #expect(kind([2, 0]) == .malformed)  // empty list
        #expect(kind([4, 2, 1, 65, 1, 65]) == .malformed)  // duplicate set member
        #expect(kind([3, 2, 1, 65, 0, 1, 65, 0]) == .malformed)  // duplicate hash field
        let nan = Double.nan.bitPattern
        var zset: [UInt8] = [5, 1, 1, 65]
        zset.appendLittleEndian(nan)
        #expect(kind(zset) == .malformed)
        #expect(kind([0, 5, 65, 65, 65, 65, 65], limits: ValueCodec.Limits(maximumStringLength: 4)) == .limitExceeded)
        #expect(kind([0, 1, 65, 0]) == .trailingData)
        var random = SplitMix64(seed: 99)
        for _ in 0..<5000 {
            let garbage = (0..<Int.random(in: 0..<40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = kind(garbage)  // must return or throw, never trap
            _ = try? DumpPayload.decode(garbage)
        }
    }
}
