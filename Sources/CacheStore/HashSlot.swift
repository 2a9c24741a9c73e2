// Redis Cluster key → hash slot mapping: CRC16 (XMODEM: polynomial 0x1021, initial value 0, no reflection, as
// redis src/crc16.c) of the key, or of its `{hash tag}`, modulo 16384 (redis cluster.c keyHashSlot).
//
// Hash tag rule, exactly as redis: find the first `{`; if a `}` follows it with at least one byte in between,
// hash only the bytes between them; otherwise (no `{`, no `}` after it, or `{}`) hash the whole key.

/// The 16384 hash slots of Redis Cluster.
public enum HashSlot {
    /// The number of slots.
    public static let count = 16384

    /// The slot of `key`.
    @inlinable
    public static func slot(of key: UnsafeRawBufferPointer) -> Int {
        let count = key.count
        var open = 0
        while open < count && key[open] != UInt8(ascii: "{") { open += 1 }
        if open < count {
            var close = open + 1
            while close < count && key[close] != UInt8(ascii: "}") { close += 1 }
            if close < count && close > open + 1 {
                return Int(crc16(UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close]))) & 0x3FFF
            }
        }
        return Int(crc16(key)) & 0x3FFF
    }

    /// The slot of a key given as text.
    public static func slot(of key: String) -> Int {
        var key = key
        return key.withUTF8 { slot(of: UnsafeRawBufferPointer($0)) }
    }

    /// The slot of a key given as bytes.
    public static func slot(of key: [UInt8]) -> Int {
        key.withUnsafeBytes { slot(of: $0) }
    }

    /// CRC16-XMODEM of `bytes` (`crc16("123456789") == 0x31C3`).
    @inlinable
    public static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        crc16Table.withUnsafeBufferPointer { table in
            var crc: UInt16 = 0
            for byte in bytes {
                crc = (crc &<< 8) ^ table[Int((crc &>> 8) ^ UInt16(byte)) & 0xFF]
            }
            return crc
        }
    }

    /// The table-driven form of polynomial 0x1021 (redis crc16.c `crc16tab`), computed once.
    @usableFromInline
    static let crc16Table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
