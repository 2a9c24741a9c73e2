// Incremental reader of the snapshot format (SnapshotFormat.swift) for bytes that arrive in pieces: a file read
// in blocks or a full-sync stream from a primary. Records are returned as soon as they are complete; the checksum
// and record count are only known at the trailer, so callers must treat what they applied as provisional until
// `finish()` returns (start-up loading fails the process; a replica discards the half-loaded keyspace).

/// Decodes a snapshot fed in arbitrary pieces.
public struct SnapshotStreamDecoder {
    /// Limits applied while decoding.
    public struct Limits: Sendable, Hashable {
        /// Limits on each value.
        public var value: ValueCodec.Limits
        /// The largest record body (key, value and header) accepted; bounds what is buffered.
        public var maximumRecordBytes: Int
        /// The largest database index accepted.
        public var maximumDatabase: Int
        /// The largest function library (its source code) accepted; bounds what is buffered.
        public var maximumFunctionLibraryBytes: Int

        /// - Parameters:
        ///   - value: limits on each value.
        ///   - maximumRecordBytes: the largest record body accepted.
        ///   - maximumDatabase: the largest database index accepted.
        ///   - maximumFunctionLibraryBytes: the largest function library accepted (512 MiB by default, redis's
        ///     `proto-max-bulk-len`, since a library arrives as one FUNCTION LOAD argument).
        public init(
            value: ValueCodec.Limits = .standard, maximumRecordBytes: Int = Int(UInt32.max), maximumDatabase: Int = 1 << 20,
            maximumFunctionLibraryBytes: Int = 512 << 20
        ) {
            self.value = value
            self.maximumRecordBytes = maximumRecordBytes
            self.maximumDatabase = maximumDatabase
            self.maximumFunctionLibraryBytes = maximumFunctionLibraryBytes
        }
    }

    private enum State {
        case header
        case records
        case done
        case failed(SnapshotError)
    }

    /// The limits in force.
    public let limits: Limits
    /// The header's creation time (unix ms), once the header was read.
    public private(set) var createdAt: Int64?
    /// The auxiliary fields read so far (they precede the records).
    public private(set) var auxiliary: [String: String] = [:]
    /// The source code of each function library read so far, in the order they appeared (they follow the
    /// auxiliary fields and precede the records; version 3 and later).
    public private(set) var functionLibraries: [[UInt8]] = []
    /// Records decoded so far.
    public private(set) var recordCount: UInt64 = 0
    /// Bytes consumed so far.
    public private(set) var bytesConsumed = 0
    /// Whether the trailer was read and verified.
    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    private var state = State.header
    /// The header's format version, once the header was read.
    private var version: UInt16 = 0
    private var buffer: [UInt8] = []
    private var crc = CRC64()

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Adds bytes and returns every record they completed.
    /// - Throws: the first decoding error; the decoder then stays failed.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(SnapshotError) -> [SnapshotRecord] {
        switch state {
        case .failed(let error): throw error
        case .done:
            if bytes.isEmpty { return [] }
            let error = SnapshotError(.trailingData, "\(bytes.count) bytes follow the snapshot's trailer")
            state = .failed(error)
            throw error
        default: break
        }
        buffer.append(contentsOf: bytes)
        var records: [SnapshotRecord] = []
        do throws(SnapshotError) {
            let consumed = try parse(&records)
            if consumed > 0 {
                bytesConsumed += consumed
                buffer.removeSubrange(0..<consumed)
            }
            if case .done = state, !buffer.isEmpty {
                throw SnapshotError(.trailingData, "\(buffer.count) bytes follow the snapshot's trailer")
            }
        } catch {
            state = .failed(error)
            throw error
        }
        return records
    }

    /// Declares the input complete.
    /// - Throws: `.truncated` unless a verified trailer was read, or the earlier decoding error.
    public mutating func finish() throws(SnapshotError) {
        switch state {
        case .done: return
        case .failed(let error): throw error
        case .header:
            let error = SnapshotError.truncated("the header (\(buffer.count) of \(SnapshotFormat.headerSize) bytes)")
            state = .failed(error)
            throw error
        case .records:
            let error = SnapshotError.truncated(
                "the records after \(recordCount) complete ones (\(buffer.count) bytes left over, no trailer)")
            state = .failed(error)
            throw error
        }
    }

    /// Parses what is complete in `buffer`; returns the bytes consumed.
    private mutating func parse(_ records: inout [SnapshotRecord]) throws(SnapshotError) -> Int {
        let limits = self.limits
        var state = self.state
        var crc = self.crc
        var recordCount = self.recordCount
        var createdAt = self.createdAt
        var auxiliary = self.auxiliary
        var functionLibraries = self.functionLibraries
        var version = self.version
        defer {
            self.auxiliary = auxiliary
            self.functionLibraries = functionLibraries
            self.version = version
            self.state = state
            self.crc = crc
            self.recordCount = recordCount
            self.createdAt = createdAt
        }
        return try withContiguousBytes(buffer) { (raw) throws(SnapshotError) -> Int in
            var offset = 0
            loop: while true {
                let available = raw.count - offset
                switch state {
                case .header:
                    // Check the magic as soon as its bytes are there, so garbage fails early.
                    let magicBytes = min(available, SnapshotFormat.magic.count)
                    if !SnapshotFormat.magic.prefix(magicBytes).elementsEqual(raw[offset..<offset + magicBytes]) {
                        throw SnapshotError(.badMagic, "not a snapshot: the data does not start with \"CNSNAP\"")
                    }
                    guard available >= SnapshotFormat.headerSize else { break loop }
                    version = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self))
                    guard version >= 1 && version <= SnapshotFormat.version else {
                        throw SnapshotError(
                            .unsupportedVersion,
                            "snapshot format version \(version) is not supported (this build reads up to \(SnapshotFormat.version))")
                    }
                    createdAt = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: Int64.self))
                    crc.update(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + SnapshotFormat.headerSize]))
                    offset += SnapshotFormat.headerSize
                    state = .records
                case .records:
                    guard available >= 1 else { break loop }
                    let opcode = raw[offset]
                    if opcode == SnapshotFormat.trailerOpcode {
                        guard available >= SnapshotFormat.trailerSize else { break loop }
                        crc.update(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 9]))
                        let count = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 1, as: UInt64.self))
                        let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 9, as: UInt64.self))
                        guard stored == crc.value else {
                            throw SnapshotError(.checksumMismatch, "checksum mismatch: the snapshot is damaged (stored \(hex(stored)), computed \(hex(crc.value)))")
                        }
                        guard count == recordCount else {
                            throw SnapshotError(.recordCountMismatch, "the trailer counts \(count) records but \(recordCount) were read")
                        }
                        offset += SnapshotFormat.trailerSize
                        state = .done
                        break loop
                    }
                    if opcode == SnapshotFormat.auxiliaryOpcode {
                        guard recordCount == 0 else {
                            throw SnapshotError.malformed("an auxiliary field after \(recordCount) records (they must precede the records)")
                        }
                        guard functionLibraries.isEmpty else {
                            throw SnapshotError.malformed(
                                "an auxiliary field after \(functionLibraries.count) function libraries (they must precede the libraries)")
                        }
                        guard available >= 5 else { break loop }
                        let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self)))
                        guard length <= SnapshotFormat.maximumAuxiliaryBytes else {
                            throw SnapshotError.limit("an auxiliary field of \(length) bytes (the limit is \(SnapshotFormat.maximumAuxiliaryBytes))")
                        }
                        guard available >= 5 + length else { break loop }
                        var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[offset + 5..<offset + 5 + length]))
                        let name = try reader.string("an auxiliary field's name", limit: length)
                        let value = try reader.string("an auxiliary field's value", limit: length)
                        guard reader.isAtEnd else { throw SnapshotError.malformed("\(reader.remaining) stray bytes inside an auxiliary field") }
                        auxiliary[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
                        crc.update(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 5 + length]))
                        offset += 5 + length
                        continue
                    }
                    // Older versions never wrote libraries: there 0xF5 stays an unknown opcode (below), as it was.
                    if opcode == SnapshotFormat.functionLibraryOpcode && version >= SnapshotFormat.firstVersionWithFunctionLibraries {
                        guard recordCount == 0 else {
                            throw SnapshotError.malformed("a function library after \(recordCount) records (libraries must precede the records)")
                        }
                        guard available >= 5 else { break loop }
                        let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self)))
                        // Checked from the frame's length alone, before its body is buffered.
                        guard length <= limits.maximumFunctionLibraryBytes else {
                            throw SnapshotError.limit(
                                "a function library of \(length) bytes (the limit is \(limits.maximumFunctionLibraryBytes))")
                        }
                        guard available >= 5 + length else { break loop }
                        functionLibraries.append(Array(UnsafeRawBufferPointer(rebasing: raw[offset + 5..<offset + 5 + length])))
                        crc.update(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 5 + length]))
                        offset += 5 + length
                        continue
                    }
                    guard opcode == SnapshotFormat.recordOpcode else {
                        throw SnapshotError.malformed("unknown record opcode \(opcode) after \(recordCount) records")
                    }
                    guard available >= 5 else { break loop }
                    let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self)))
                    guard length <= limits.maximumRecordBytes else {
                        throw SnapshotError.limit("a record of \(length) bytes (the limit is \(limits.maximumRecordBytes))")
                    }
                    guard available >= 5 + length else { break loop }
                    let body = UnsafeRawBufferPointer(rebasing: raw[offset + 5..<offset + 5 + length])
                    records.append(try Self.decodeRecordBody(body, limits: limits))
                    crc.update(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 5 + length]))
                    recordCount += 1
                    offset += 5 + length
                case .done, .failed:
                    break loop
                }
            }
            return offset
        }
    }

    static func decodeRecordBody(_ body: UnsafeRawBufferPointer, limits: Limits) throws(SnapshotError) -> SnapshotRecord {
        var reader = ByteReader(body)
        let database = try reader.varint("a record's database")
        guard database <= UInt64(limits.maximumDatabase) else { throw SnapshotError.limit("database index \(database)") }
        let expiry = try reader.varint("a record's expiry")
        guard expiry <= UInt64(Int64.max) else { throw SnapshotError.malformed("expiry out of range") }
        let key = CompactBytes(try reader.string("a record's key", limit: limits.value.maximumStringLength))
        let value = try ValueCodec.decode(from: &reader, limits: limits.value)
        guard reader.isAtEnd else { throw SnapshotError.malformed("\(reader.remaining) stray bytes inside a record") }
        return SnapshotRecord(database: Int(database), key: key, value: value, expireAt: expiry == 0 ? nil : Int64(expiry - 1))
    }
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

extension Keyspace {
    /// Stores a snapshot record, replacing any value under its key.
    ///
    /// Locks the key's stripe itself (call with no stripe locked).
    /// - Parameters:
    ///   - now: the current time (unix ms), for access clocks and `skipExpired`.
    ///   - skipExpired: drop keys whose expiry is at or before `now` (a primary loading its file); a replica keeps
    ///     them until its primary's DEL arrives.
    /// - Returns: whether the key was stored.
    /// - Throws: `.databaseOutOfRange` when the record's database does not exist here.
    @discardableResult
    public func apply(_ record: SnapshotRecord, now: Int64, skipExpired: Bool = true) throws(SnapshotError) -> Bool {
        guard record.database >= 0 && record.database < databaseCount else {
            throw SnapshotError(
                .databaseOutOfRange,
                "the snapshot has keys in database \(record.database) but this node has \(databaseCount) databases (raise `databases`)")
        }
        if skipExpired, let expireAt = record.expireAt, expireAt <= now { return false }
        let key = KeyRef(record.key)
        let stripe = stripeIndex(for: key)
        lock(stripe: stripe)
        database(record.database, now: now).set(key, record.value, expiry: record.expireAt.map { .at($0) } ?? .remove)
        unlock(stripe: stripe)
        return true
    }

    /// Stores snapshot records (see ``apply(_:now:skipExpired:)``). Returns how many were stored.
    @discardableResult
    public func apply(_ records: [SnapshotRecord], now: Int64, skipExpired: Bool = true) throws(SnapshotError) -> Int {
        var stored = 0
        for record in records where try apply(record, now: now, skipExpired: skipExpired) { stored += 1 }
        return stored
    }
}
