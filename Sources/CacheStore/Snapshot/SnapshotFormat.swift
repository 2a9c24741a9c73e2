// The snapshot file format, written by KeyspaceSnapshot and read by SnapshotStreamDecoder. A file and a full-sync
// stream are the same bytes:
//
//   header   "CNSNAP" (6 bytes), format version (UInt16 LE), creation time (Int64 LE unix ms)
//   record*  0x01, body length (UInt32 LE), body = varint database, varint expiry (0 = none, else unix ms + 1),
//            varint key length, key bytes, value (ValueCodec)
//   trailer  0xFF, record count (UInt64 LE), CRC-64/Jones (UInt64 LE) of every byte before the checksum
//
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
    public static let version: UInt16 = 1
    /// Bytes in the header.
    public static let headerSize = 16
    /// Bytes in the trailer.
    public static let trailerSize = 17

    static let recordOpcode: UInt8 = 0x01
    static let trailerOpcode: UInt8 = 0xFF

    /// The header of a snapshot taken at `createdAt` (unix ms).
    public static func header(createdAt: Int64) -> [UInt8] {
        var bytes = magic
        bytes.appendLittleEndian(version)
        bytes.appendLittleEndian(createdAt)
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
        buffer.append(recordOpcode)
        let lengthOffset = buffer.count
        buffer.append(contentsOf: [0, 0, 0, 0] as [UInt8])
        let bodyStart = buffer.count
        buffer.appendVarint(UInt64(database))
        buffer.appendVarint(expireAt.map { UInt64(max(0, $0)) + 1 } ?? 0)
        buffer.appendBytes(key)
        ValueCodec.encode(value, into: &buffer)
        let length = buffer.count - bodyStart
        precondition(length <= Int(UInt32.max), "a single key's value exceeds 4 GiB and cannot be snapshotted")
        buffer.patchUInt32(UInt32(length), at: lengthOffset)
    }

    /// Appends one record.
    public static func appendRecord(_ record: SnapshotRecord, into buffer: inout [UInt8]) {
        appendRecord(database: record.database, key: record.key, value: record.value, expireAt: record.expireAt, into: &buffer)
    }

    /// Appends every key of `stripe` as records. Requires the stripe locked. Returns the number of records.
    static func appendRecords(of stripe: Stripe, into buffer: inout [UInt8]) -> Int {
        var records = 0
        for (database, table) in stripe.tables.enumerated() {
            guard let table, table.count > 0 else { continue }
            buffer.reserveCapacity(buffer.count + table.estimatedBytes)
            for position in 0..<table.count {
                let entry = table.entry(at: position)
                appendRecord(
                    database: database, key: entry.pointee.key, value: entry.pointee.value,
                    expireAt: entry.pointee.meta.expireAt, into: &buffer)
            }
            records += table.count
        }
        return records
    }

    /// A complete snapshot of `records` (tests, and small snapshots built without a keyspace).
    public static func encode(_ records: [SnapshotRecord], createdAt: Int64 = 0) -> [UInt8] {
        var bytes = header(createdAt: createdAt)
        for record in records { appendRecord(record, into: &bytes) }
        var crc = CRC64()
        crc.update(bytes)
        bytes += trailer(recordCount: UInt64(records.count), crc: crc)
        return bytes
    }
}
