// The snapshot file format, written by KeyspaceSnapshot and read by SnapshotStreamDecoder. A file and a full-sync
// stream are the same bytes:
//
//   header   "CNSNAP" (6 bytes), format version (UInt16 LE), creation time (Int64 LE unix ms)
//   aux*     (version 2) 0xFA, body length (UInt32 LE), body = varint name length, name, varint value length, value:
//            named facts about the snapshot as a whole, such as the replication id and offset it matches
//            (redis RDB's AUX fields); not counted as records
//   library* (version 3) 0xF5, body length (UInt32 LE), body = one function library's source code, raw bytes
//            (what FUNCTION LOAD was given; redis RDB's RDB_OPCODE_FUNCTION2), in load order; not counted as records
//   record*  0x01, body length (UInt32 LE), body = varint database, varint expiry (0 = none, else unix ms + 1),
//            varint key length, key bytes, value (ValueCodec)
//   trailer  0xFF, record count (UInt64 LE), CRC-64/Jones (UInt64 LE) of every byte before the checksum
//
// Sections come in this order: aux fields, then libraries, then records; an aux field or library after a record
// (or an aux field after a library) is malformed. Version 1 and 2 snapshots are still read; a library entry in
// one is an unknown opcode, as it was before version 3.
// Records are length-framed so a stream decoder knows when a record is complete without re-parsing it, and
// their order is unspecified (one stripe after another). All integers little-endian.

/// One key as stored in a snapshot.
public struct SnapshotRecord {
    /// The database index (SELECT).
    public var database: Int
    /// The key.
    public var key: CompactBytes
    /// The value.
    public var value: StoredValue
    /// Absolute expiry in unix milliseconds, or `nil` for a persistent key.
    public var expireAt: Int64?

    public init(database: Int, key: CompactBytes, value: StoredValue, expireAt: Int64?) {
        self.database = database
        self.key = key
        self.value = value
        self.expireAt = expireAt
    }
}

/// Constants and encoders of the snapshot format.
public enum SnapshotFormat {
    /// The file magic.
    public static let magic: [UInt8] = Array("CNSNAP".utf8)
    /// The format version written by this build.
    public static let version: UInt16 = 3
    /// The first format version that may carry function libraries (0xF5).
    static let firstVersionWithFunctionLibraries: UInt16 = 3
    /// Bytes in the header.
    public static let headerSize = 16
    /// Bytes in the trailer.
    public static let trailerSize = 17

    static let recordOpcode: UInt8 = 0x01
    static let auxiliaryOpcode: UInt8 = 0xFA
    /// Opens a function library entry (redis RDB_OPCODE_FUNCTION2); FUNCTION DUMP payloads use it too.
    public static let functionLibraryOpcode: UInt8 = 0xF5
    static let trailerOpcode: UInt8 = 0xFF
    /// The largest auxiliary field body accepted when decoding.
    static let maximumAuxiliaryBytes = 64 * 1024

    /// Auxiliary field names written by cache-node.
    public enum AuxiliaryField {
        /// The replication id the snapshot's data belongs to (redis `repl-id`).
        public static let replicationID = "repl-id"
        /// The last replication stream byte the data includes (redis `repl-offset`).
        public static let replicationOffset = "repl-offset"
    }

    /// The header of a snapshot taken at `createdAt` (unix ms), followed by its auxiliary fields (sorted by name)
    /// and then its function libraries.
    /// - Parameters:
    ///   - createdAt: the creation time written in the header (unix ms).
    ///   - auxiliary: named facts about the snapshot (see ``AuxiliaryField``).
    ///   - functionLibraries: the source code of each Lua function library, written in the given order.
    /// - Returns: the bytes that precede the snapshot's records.
    public static func header(
        createdAt: Int64, auxiliary: [String: String] = [:], functionLibraries: [[UInt8]] = []
    ) -> [UInt8] {
        var bytes = magic
        bytes.appendLittleEndian(version)
        bytes.appendLittleEndian(createdAt)
        for (name, value) in auxiliary.sorted(by: { $0.key < $1.key }) {
            bytes.append(auxiliaryOpcode)
            let lengthOffset = bytes.count
            bytes.appendLittleEndian(UInt32(0))
            let bodyStart = bytes.count
            bytes.appendVarint(UInt64(name.utf8.count))
            bytes.append(contentsOf: name.utf8)
            bytes.appendVarint(UInt64(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
            bytes.patchUInt32(UInt32(bytes.count - bodyStart), at: lengthOffset)
        }
        for library in functionLibraries {
            precondition(library.count <= Int(UInt32.max), "a function library exceeds 4 GiB and cannot be snapshotted")
            bytes.append(functionLibraryOpcode)
            bytes.appendLittleEndian(UInt32(library.count))
            bytes.append(contentsOf: library)
        }
        return bytes
    }

    /// The trailer closing a snapshot of `recordCount` records whose preceding bytes have checksum `crc`.
    /// - Returns: the trailer bytes.
    public static func trailer(recordCount: UInt64, crc: CRC64) -> [UInt8] {
        var bytes: [UInt8] = [trailerOpcode]
        bytes.appendLittleEndian(recordCount)
        var crc = crc
        crc.update(bytes)
        bytes.appendLittleEndian(crc.value)
        return bytes
    }

    /// Appends one record.
    public static func appendRecord(
        database: Int, key: CompactBytes, value: StoredValue, expireAt: Int64?, into buffer: inout [UInt8]
    ) {
        if appendSmallStringRecord(database: database, key: key, value: value, expireAt: expireAt, into: &buffer) { return }
        buffer.append(recordOpcode)
        let lengthOffset = buffer.count
        buffer.append(0)
        buffer.append(0)
        buffer.append(0)
        buffer.append(0)
        let bodyStart = buffer.count
        buffer.appendVarint(UInt64(database))
        buffer.appendVarint(expireAt.map { UInt64(max(0, $0)) + 1 } ?? 0)
        buffer.appendBytes(key)
        ValueCodec.encode(value, into: &buffer)
        let length = buffer.count - bodyStart
        precondition(length <= Int(UInt32.max), "a single key's value exceeds 4 GiB and cannot be snapshotted")
        buffer.patchUInt32(UInt32(length), at: lengthOffset)
    }

    /// The common case (a string key and value of at most 200 bytes together) built in a stack buffer and
    /// appended with one copy: the same bytes as the general path, several times faster than byte-wise appends.
    @inline(__always)
    static func appendSmallStringRecord(
        database: Int, key: CompactBytes, value: StoredValue, expireAt: Int64?, into buffer: inout [UInt8]
    ) -> Bool {
        guard let valueLength = value.stringLength, key.count + valueLength <= 200 else { return false }
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { scratch -> Bool in
            guard let base = scratch.baseAddress else { return false }
            var offset = 5
            @inline(__always) func varint(_ value: UInt64) {
                var value = value
                while value >= 0x80 {
                    base.storeBytes(of: UInt8(truncatingIfNeeded: value) | 0x80, toByteOffset: offset, as: UInt8.self)
                    value >>= 7
                    offset += 1
                }
                base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: offset, as: UInt8.self)
                offset += 1
            }
            @inline(__always) func raw(_ bytes: UnsafeRawBufferPointer) {
                if let source = bytes.baseAddress { (base + offset).copyMemory(from: source, byteCount: bytes.count) }
                offset += bytes.count
            }
            varint(UInt64(database))
            varint(expireAt.map { UInt64(max(0, $0)) + 1 } ?? 0)
            key.withBytes { bytes in
                varint(UInt64(bytes.count))
                raw(bytes)
            }
            value.withStringBytes { bytes in
                if let integer = ValueCodec.canonicalInteger(bytes) {
                    base.storeBytes(of: ValueCodec.Tag.integer.rawValue, toByteOffset: offset, as: UInt8.self)
                    offset += 1
                    varint(UInt64(bitPattern: (integer << 1) ^ (integer >> 63)))
                } else {
                    base.storeBytes(of: ValueCodec.Tag.string.rawValue, toByteOffset: offset, as: UInt8.self)
                    offset += 1
                    varint(UInt64(bytes.count))
                    raw(bytes)
                }
            }
            base.storeBytes(of: recordOpcode, as: UInt8.self)
            base.storeBytes(of: UInt32(offset - 5).littleEndian, toByteOffset: 1, as: UInt32.self)
            buffer.append(contentsOf: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: offset))
            return true
        }
    }

    /// Appends one record.
    public static func appendRecord(_ record: SnapshotRecord, into buffer: inout [UInt8]) {
        appendRecord(database: record.database, key: record.key, value: record.value, expireAt: record.expireAt, into: &buffer)
    }

    /// A complete snapshot of `records` (tests, and small snapshots built without a keyspace).
    /// - Parameters:
    ///   - records: the keys, written in the given order.
    ///   - createdAt: the creation time written in the header (unix ms).
    ///   - auxiliary: named facts about the snapshot (see ``AuxiliaryField``).
    ///   - functionLibraries: the source code of each Lua function library, written in the given order.
    /// - Returns: the snapshot's bytes, trailer included.
    public static func encode(
        _ records: [SnapshotRecord], createdAt: Int64 = 0, auxiliary: [String: String] = [:],
        functionLibraries: [[UInt8]] = []
    ) -> [UInt8] {
        var bytes = header(createdAt: createdAt, auxiliary: auxiliary, functionLibraries: functionLibraries)
        for record in records { appendRecord(record, into: &bytes) }
        var crc = CRC64()
        crc.update(bytes)
        bytes += trailer(recordCount: UInt64(records.count), crc: crc)
        return bytes
    }
}
