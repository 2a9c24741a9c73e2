// DUMP/RESTORE payloads: the value's codec bytes, the 2-byte codec version and a CRC-64 of both, as redis appends
// its RDB version and CRC64 to the serialized value. RESTORE refuses a payload whose version or checksum is wrong
// before decoding a single byte of it.

/// The serialized form of one value exchanged by DUMP and RESTORE.
public enum DumpPayload {
    /// Bytes after the value: 2-byte version and 8-byte checksum, little-endian.
    static let footerSize = 10

    /// The payload of `value`.
    public static func encode(_ value: StoredValue) -> [UInt8] {
        var bytes = ValueCodec.encode(value)
        bytes.appendLittleEndian(ValueCodec.version)
        bytes.appendLittleEndian(CRC64.checksum(bytes))
        return bytes
    }

    /// The value of a payload, after checking its version and checksum.
    /// - Throws: `.unsupportedVersion` / `.checksumMismatch` (RESTORE's "DUMP payload version or checksum are
    ///   wrong"), `.truncated` for fewer bytes than a footer, or a decoding error of the value itself.
    public static func decode(_ bytes: some Collection<UInt8>, limits: ValueCodec.Limits = .standard) throws(SnapshotError) -> StoredValue {
        try withContiguousBytes(bytes) { (raw) throws(SnapshotError) -> StoredValue in
            guard raw.count > footerSize else { throw SnapshotError.truncated("a DUMP payload (\(raw.count) bytes)") }
            let bodyEnd = raw.count - footerSize
            let version = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: bodyEnd, as: UInt16.self))
            guard version >= 1 && version <= ValueCodec.version else {
                throw SnapshotError(.unsupportedVersion, "DUMP payload version \(version) is not supported (this build reads up to \(ValueCodec.version))")
            }
            let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: bodyEnd + 2, as: UInt64.self))
            var crc = CRC64()
            crc.update(UnsafeRawBufferPointer(rebasing: raw[0..<bodyEnd + 2]))
            guard crc.value == stored else { throw SnapshotError(.checksumMismatch, "DUMP payload checksum mismatch") }
            return try ValueCodec.decode(UnsafeRawBufferPointer(rebasing: raw[0..<bodyEnd]), limits: limits)
        }
    }
}
