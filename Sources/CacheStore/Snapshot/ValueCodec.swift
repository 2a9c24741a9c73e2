// The byte encoding of one value, shared by snapshot files, full-sync streams and DUMP/RESTORE payloads.
//
// Layout (version 1): a type tag, then
//   0 string   varint length, bytes
//   1 integer  zigzag varint (a string that is the canonical decimal form of a 64-bit integer, as redis's
//              RDB_ENC_INT: "12345" takes 3 bytes instead of 6; decoded back to the same text)
//   2 list     varint count, then count × (varint length, bytes), head first
//   3 hash     varint count, then count × (field, value)
//   4 set      varint count, then count × member
//   5 zset     varint count, then count × (member, 8-byte little-endian IEEE-754 score), ascending order
//   6 stream   last ID, max deleted ID (each varint ms, varint seq), varint entries added, varint entry count,
//              then per entry: ID, varint field count, fields and values; then varint group count, per group:
//              name, last delivered ID, zigzag varint entries read, varint consumer count, per consumer: name,
//              zigzag seen time, zigzag active time; varint pending count, per pending entry: ID, consumer
//              index (in the order written), zigzag delivery time, varint delivery count. A stream may be empty.
// Decoding checks every length against the bytes left and the limits before allocating, rejects empty
// collections, duplicate members/fields and NaN scores, and throws a ``SnapshotError``; it never traps.
import DequeModule

/// Encodes and decodes one ``StoredValue`` of any type.
public enum ValueCodec {
    /// The encoding version written by this build (DUMP payloads and snapshot headers carry it).
    public static let version: UInt16 = 1

    /// Bounds checked while decoding untrusted bytes.
    public struct Limits: Sendable, Hashable {
        /// The longest string, key, member or field (redis `proto-max-bulk-len` default: 512 MiB).
        public var maximumStringLength: Int
        /// The most elements in one collection.
        public var maximumElements: Int

        public init(maximumStringLength: Int = 512 << 20, maximumElements: Int = Int(UInt32.max)) {
            self.maximumStringLength = maximumStringLength
            self.maximumElements = maximumElements
        }

        /// The defaults.
        public static let standard = Limits()
    }

    enum Tag: UInt8 {
        case string = 0, integer, list, hash, set, sortedSet, stream
    }

    // MARK: encoding

    /// The encoding of `value`.
    public static func encode(_ value: StoredValue) -> [UInt8] {
        var buffer: [UInt8] = []
        encode(value, into: &buffer)
        return buffer
    }

    /// Appends the encoding of `value` to `buffer`.
    public static func encode(_ value: StoredValue, into buffer: inout [UInt8]) {
        switch value {
        case .shortString, .string:
            value.withStringBytes { bytes in
                if let integer = canonicalInteger(bytes) {
                    buffer.append(Tag.integer.rawValue)
                    buffer.appendVarint(zigzag(integer))
                } else {
                    buffer.append(Tag.string.rawValue)
                    buffer.appendBytes(bytes)
                }
            }
        case .list(let list):
            buffer.append(Tag.list.rawValue)
            buffer.appendVarint(UInt64(list.items.count))
            for item in list.items { buffer.appendBytes(item) }
        case .hash(let hash):
            buffer.append(Tag.hash.rawValue)
            let fields = hash.fields
            buffer.appendVarint(UInt64(fields.count))
            for (field, value) in fields {
                buffer.appendBytes(field)
                buffer.appendBytes(value)
            }
        case .set(let set):
            buffer.append(Tag.set.rawValue)
            let members = set.members
            buffer.appendVarint(UInt64(members.count))
            for member in members { buffer.appendBytes(member) }
        case .sortedSet(let zset):
            buffer.append(Tag.sortedSet.rawValue)
            buffer.appendVarint(UInt64(zset.count))
            var node = zset.order.first
            while let current = node {
                buffer.appendBytes(current.member)
                buffer.appendLittleEndian(current.score.bitPattern)
                node = current.next
            }
        case .stream(let stream):
            buffer.append(Tag.stream.rawValue)
            encodeStream(stream, into: &buffer)
        }
    }

    private static func appendID(_ id: StreamID, into buffer: inout [UInt8]) {
        buffer.appendVarint(id.milliseconds)
        buffer.appendVarint(id.sequence)
    }

    private static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
    private static func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }

    private static func encodeStream(_ stream: StreamValue, into buffer: inout [UInt8]) {
        appendID(stream.lastID, into: &buffer)
        appendID(stream.maximumDeletedID, into: &buffer)
        buffer.appendVarint(stream.entriesAdded)
        buffer.appendVarint(UInt64(stream.count))
        for entry in stream.entries {
            appendID(entry.id, into: &buffer)
            buffer.appendVarint(UInt64(entry.fieldsAndValues.count / 2))
            for item in entry.fieldsAndValues { buffer.appendBytes(item) }
        }
        let groups = stream.groupsByName
        buffer.appendVarint(UInt64(groups.count))
        for (name, group) in groups {
            buffer.appendBytes(name)
            appendID(group.lastDeliveredID, into: &buffer)
            buffer.appendVarint(zigzag(group.entriesRead))
            let consumers = group.consumersByName
            buffer.appendVarint(UInt64(consumers.count))
            var indexByName: [CompactBytes: Int] = [:]
            for (index, consumer) in consumers.enumerated() {
                indexByName[consumer.name] = index
                buffer.appendBytes(consumer.name)
                buffer.appendVarint(zigzag(consumer.seenTime))
                buffer.appendVarint(zigzag(consumer.activeTime))
            }
            buffer.appendVarint(UInt64(group.pendingIDs.count))
            for id in group.pendingIDs.ids {
                let pending = group.pending[id]!
                appendID(id, into: &buffer)
                buffer.appendVarint(UInt64(indexByName[pending.consumer.name] ?? 0))
                buffer.appendVarint(zigzag(pending.deliveryTime))
                buffer.appendVarint(UInt64(pending.deliveryCount))
            }
        }
    }

    private static func readID(_ reader: inout ByteReader, _ what: String) throws(SnapshotError) -> StreamID {
        StreamID(milliseconds: try reader.varint(what), sequence: try reader.varint(what))
    }

    private static func decodeStream(from reader: inout ByteReader, limits: Limits) throws(SnapshotError) -> StreamValue {
        let maxString = limits.maximumStringLength
        let stream = StreamValue()
        let lastID = try readID(&reader, "a stream's last ID")
        let maximumDeletedID = try readID(&reader, "a stream's max deleted ID")
        let entriesAdded = try reader.varint("a stream's entries-added counter")
        let entryCount = try reader.length("the stream's entry count", limit: limits.maximumElements, minimumSize: 3)
        for _ in 0..<entryCount {
            let id = try readID(&reader, "a stream entry ID")
            guard id <= lastID, stream.entries.last.map({ $0.id < id }) ?? true else {
                throw .malformed("stream entry IDs out of order")
            }
            let fieldCount = try reader.length("a stream entry's field count", limit: limits.maximumElements, minimumSize: 2)
            guard fieldCount > 0 else { throw .malformed("a stream entry without fields") }
            var items: [CompactBytes] = []
            items.reserveCapacity(fieldCount * 2)
            for _ in 0..<(fieldCount * 2) { items.append(CompactBytes(try reader.string("a stream field", limit: maxString))) }
            stream.restore(StreamEntry(id: id, fieldsAndValues: items))
        }
        stream.lastID = lastID
        stream.maximumDeletedID = maximumDeletedID
        stream.entriesAdded = entriesAdded
        let groupCount = try reader.length("the stream's group count", limit: limits.maximumElements, minimumSize: 4)
        for _ in 0..<groupCount {
            let name = CompactBytes(try reader.string("a consumer group name", limit: maxString))
            guard stream.groups[name] == nil else { throw .malformed("duplicate consumer group") }
            let group = StreamConsumerGroup(
                lastDeliveredID: try readID(&reader, "a group's last delivered ID"),
                entriesRead: unzigzag(try reader.varint("a group's entries-read counter")))
            let consumerCount = try reader.length("a group's consumer count", limit: limits.maximumElements, minimumSize: 3)
            var consumers: [StreamConsumer] = []
            for _ in 0..<consumerCount {
                let consumerName = CompactBytes(try reader.string("a consumer name", limit: maxString))
                guard group.consumers[consumerName] == nil else { throw .malformed("duplicate consumer") }
                let consumer = StreamConsumer(
                    name: consumerName, seenTime: unzigzag(try reader.varint("a consumer's seen time")),
                    activeTime: unzigzag(try reader.varint("a consumer's active time")))
                group.consumers[consumerName] = consumer
                consumers.append(consumer)
            }
            let pendingCount = try reader.length("a group's pending count", limit: limits.maximumElements, minimumSize: 5)
            for _ in 0..<pendingCount {
                let id = try readID(&reader, "a pending entry ID")
                let index = try reader.varint("a pending entry's consumer")
                guard index < UInt64(consumers.count) else { throw .malformed("a pending entry of no consumer") }
                let time = unzigzag(try reader.varint("a delivery time"))
                let count = try reader.varint("a delivery count")
                guard group.pending[id] == nil else { throw .malformed("duplicate pending entry") }
                group.addPending(id, consumer: consumers[Int(index)], deliveryTime: time,
                                 deliveryCount: Int(clamping: count))
            }
            stream.groups[name] = group
        }
        return stream
    }

    /// The value of `bytes` if they are the canonical decimal form of an `Int64` ("-12", not "012", "+1" or "-0").
    static func canonicalInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let count = bytes.count
        guard count > 0 && count <= 20 else { return nil }
        var index = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative {
            index = 1
            guard count > 1 else { return nil }
        }
        let first = bytes[index]
        guard first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else { return nil }
        if first == UInt8(ascii: "0") && (count - index > 1 || negative) { return nil }
        // Accumulate negatively so that Int64.min fits.
        var value: Int64 = 0
        while index < count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times.subtractingReportingOverflow(Int64(digit))
            if overflow1 || overflow2 { return nil }
            value = next
            index += 1
        }
        if negative { return value }
        guard value != .min else { return nil }
        return -value
    }

    // MARK: decoding

    /// Decodes a value that must span exactly `bytes`.
    public static func decode(_ bytes: some Collection<UInt8>, limits: Limits = .standard) throws(SnapshotError) -> StoredValue {
        try withContiguousBytes(bytes) { (raw) throws(SnapshotError) -> StoredValue in
            var reader = ByteReader(raw)
            let value = try decode(from: &reader, limits: limits)
            guard reader.isAtEnd else {
                throw SnapshotError(.trailingData, "\(reader.remaining) bytes follow the encoded value")
            }
            return value
        }
    }

    /// Decodes one value from `reader`.
    static func decode(from reader: inout ByteReader, limits: Limits) throws(SnapshotError) -> StoredValue {
        let tagByte = try reader.byte("a value's type")
        guard let tag = Tag(rawValue: tagByte) else { throw .malformed("unknown value type \(tagByte)") }
        let maxString = limits.maximumStringLength
        switch tag {
        case .string:
            let bytes = try reader.string("a string value", limit: maxString)
            return .string(copying: bytes)
        case .integer:
            return .integerString(Int(unzigzag(try reader.varint("an integer value"))))
        case .list:
            let count = try collectionCount(&reader, "list", limits)
            let list = ListValue()
            for _ in 0..<count {
                list.items.append(CompactBytes(try reader.string("a list element", limit: maxString)))
            }
            list.recomputeMemoryUsage()
            return .list(list)
        case .hash:
            let count = try collectionCount(&reader, "hash", limits, minimumSize: 2)
            let hash = HashValue()
            for _ in 0..<count {
                let field = CompactBytes(try reader.string("a hash field", limit: maxString))
                let value = CompactBytes(try reader.string("a hash value", limit: maxString))
                guard hash.set(field: field, value: value) else { throw .malformed("duplicate hash field") }
            }
            return .hash(hash)
        case .set:
            let count = try collectionCount(&reader, "set", limits)
            let set = SetValue()
            for _ in 0..<count {
                guard set.add(CompactBytes(try reader.string("a set member", limit: maxString))) else {
                    throw .malformed("duplicate set member")
                }
            }
            return .set(set)
        case .sortedSet:
            let count = try collectionCount(&reader, "sorted set", limits, minimumSize: 9)
            let zset = SortedSetValue()
            for _ in 0..<count {
                let member = CompactBytes(try reader.string("a sorted set member", limit: maxString))
                let score = Double(bitPattern: try reader.littleEndian(UInt64.self, "a sorted set score"))
                guard !score.isNaN else { throw .malformed("NaN score in a sorted set") }
                guard zset.add(member, score: score) == .added else { throw .malformed("duplicate sorted set member") }
            }
            return .sortedSet(zset)
        case .stream:
            return .stream(try decodeStream(from: &reader, limits: limits))
        }
    }

    private static func collectionCount(
        _ reader: inout ByteReader, _ type: String, _ limits: Limits, minimumSize: Int = 1
    ) throws(SnapshotError) -> Int {
        let count = try reader.length("the \(type)'s element count", limit: limits.maximumElements, minimumSize: minimumSize)
        guard count > 0 else { throw .malformed("empty \(type)") }
        return count
    }
}
