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
        case string = 0, integer, list, hash, set, sortedSet
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
                    buffer.appendVarint(UInt64(bitPattern: (integer << 1) ^ (integer >> 63)))
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
        }
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
            let zigzag = try reader.varint("an integer value")
            let value = Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
            return .integerString(Int(value))
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
