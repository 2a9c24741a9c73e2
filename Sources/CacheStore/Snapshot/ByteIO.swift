// Little building blocks of the snapshot encodings: LEB128 varints, fixed little-endian integers and a bounds-
// checked reader over borrowed bytes. Every read checks what is left first, so hostile lengths fail cleanly.

extension Array where Element == UInt8 {
    /// Appends `value` as an unsigned LEB128 varint (1 byte below 128, at most 10).
    @inline(__always)
    mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends a length-prefixed byte string.
    @inline(__always)
    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) {
        appendVarint(UInt64(bytes.count))
        append(contentsOf: bytes)
    }

    /// Appends a length-prefixed ``CompactBytes``.
    @inline(__always)
    mutating func appendBytes(_ bytes: CompactBytes) {
        bytes.withBytes { appendBytes($0) }
    }

    /// Appends a fixed-width little-endian integer.
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Overwrites 4 bytes at `offset` with `value` little-endian.
    mutating func patchUInt32(_ value: UInt32, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for index in 0..<4 { self[offset + index] = raw[index] }
        }
    }
}

/// Reads the snapshot encodings from borrowed bytes, checking bounds before every read.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    mutating func byte(_ what: @autoclosure () -> String) throws(SnapshotError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated(what()) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint(_ what: @autoclosure () -> String) throws(SnapshotError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw .truncated(what()) }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { throw .malformed("varint overflows 64 bits in \(what())") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// A varint used as a length or count: at most `limit`, and at most what is left at `minimumSize` bytes each.
    mutating func length(_ what: @autoclosure () -> String, limit: Int, minimumSize: Int = 1) throws(SnapshotError) -> Int {
        let value = try varint(what())
        guard value <= UInt64(limit) else { throw .limit("\(what()) of \(value) (the limit is \(limit))") }
        let length = Int(value)
        if length.multipliedReportingOverflow(by: minimumSize).partialValue > remaining || length > remaining {
            throw .truncated(what())
        }
        return length
    }

    mutating func littleEndian<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws(SnapshotError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .truncated(what()) }
        defer { offset += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func bytes(count: Int, _ what: @autoclosure () -> String) throws(SnapshotError) -> UnsafeRawBufferPointer {
        guard count <= remaining else { throw .truncated(what()) }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }

    /// A length-prefixed byte string of at most `limit` bytes.
    mutating func string(_ what: @autoclosure () -> String, limit: Int) throws(SnapshotError) -> UnsafeRawBufferPointer {
        let count = try length(what(), limit: limit)
        return try bytes(count: count, what())
    }
}

/// Runs `body` over the bytes of any collection, contiguously.
func withContiguousBytes<Result, Failure: Error>(
    _ bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
) throws(Failure) -> Result {
    var outcome: Swift.Result<Result, Failure>?
    bytes.withContiguousStorageIfAvailable { buffer in
        do throws(Failure) { outcome = .success(try body(UnsafeRawBufferPointer(buffer))) } catch { outcome = .failure(error) }
    }
    if let outcome { return try outcome.get() }
    let array = Array(bytes)
    array.withUnsafeBytes { raw in
        do throws(Failure) { outcome = .success(try body(raw)) } catch { outcome = .failure(error) }
    }
    return try outcome!.get()
}
