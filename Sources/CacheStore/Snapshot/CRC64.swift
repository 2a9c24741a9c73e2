// CRC-64/Jones as redis computes it (crc64.c: reflected polynomial 0xad93d23594c935a9, initial value 0, no final
// xor), table-driven with slicing-by-8 so checksumming a snapshot costs ~1 ns/byte. Snapshot files and DUMP
// payloads end with this checksum; crc64("123456789") == 0xe9c6d914c4b8d9ca (redis's own self-test value).

/// A running CRC-64/Jones checksum (the one redis uses for RDB files and DUMP payloads).
public struct CRC64: Sendable, Hashable {
    /// The checksum of the bytes fed so far.
    public private(set) var value: UInt64

    /// Starts a checksum, optionally continuing from a previous `value`.
    public init(value: UInt64 = 0) {
        self.value = value
    }

    /// The checksum of `bytes`.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt64 {
        var crc = CRC64()
        crc.update(bytes)
        return crc.value
    }

    /// Feeds `bytes`.
    public mutating func update(_ bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil { Array(bytes).withUnsafeBytes { update($0) } }
    }

    /// Feeds `bytes`.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        var crc = value
        Self.tables.withUnsafeBufferPointer { table in
            while remaining >= 8 {
                crc ^= UInt64(littleEndian: pointer.loadUnaligned(as: UInt64.self))
                crc = table[7 * 256 + Int(crc & 0xFF)] ^ table[6 * 256 + Int((crc >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((crc >> 16) & 0xFF)] ^ table[4 * 256 + Int((crc >> 24) & 0xFF)]
                    ^ table[3 * 256 + Int((crc >> 32) & 0xFF)] ^ table[2 * 256 + Int((crc >> 40) & 0xFF)]
                    ^ table[1 * 256 + Int((crc >> 48) & 0xFF)] ^ table[Int(crc >> 56)]
                pointer += 8
                remaining -= 8
            }
            while remaining > 0 {
                crc = table[Int((crc ^ UInt64(pointer.load(as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                pointer += 1
                remaining -= 1
            }
        }
        value = crc
    }

    /// Bit-reversed Jones polynomial (0xad93d23594c935a9 reflected).
    static let reflectedPolynomial: UInt64 = 0x95AC_9329_AC4B_C9B5

    /// Eight 256-entry tables: table 0 is the classic byte-at-a-time table, table k advances k more zero bytes.
    static let tables: [UInt64] = {
        var tables = [UInt64](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var crc = UInt64(index)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ reflectedPolynomial : crc >> 1 }
            tables[index] = crc
        }
        for slice in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}
