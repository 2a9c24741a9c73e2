// The keyspace's hash: the SipHash code against the reference implementation's published test vectors (SipHash-2-4,
// key 00..0f, message 00..len-1), and the keyspace's SipHash-1-3 spreading real key names over the low bits that
// pick stripes and table slots.
import CacheStore
import Testing

struct KeyHashingTests {
    /// `vectors_sip64` from the SipHash reference code (veorq/SipHash), as its little-endian output bytes.
    static let referenceVectors: [(length: Int, output: [UInt8])] = [
        (0, [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72]),
        (1, [0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74]),
        (2, [0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d]),
        (3, [0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85]),
        (4, [0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf]),
        (5, [0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18]),
        (6, [0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb]),
        (7, [0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab]),
        (8, [0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93]),
        (9, [0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e]),
        (15, [0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1]),
    ]

    @Test func sipHash24MatchesTheReferenceVectors() {
        let k0: UInt64 = 0x0706_0504_0302_0100
        let k1: UInt64 = 0x0f0e_0d0c_0b0a_0908
        for (length, output) in Self.referenceVectors {
            let message = (0..<length).map { UInt8($0) }
            let hash = message.withUnsafeBytes {
                SipHash.hash($0, k0: k0, k1: k1, compressionRounds: 2, finalizationRounds: 4)
            }
            let expected = output.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            #expect(hash == expected, "message of \(length) bytes")
        }
    }

    @Test func keyHashIsStableAndSpreadsKeysOverTheLowBits() {
        let keyCount = 65_536
        var buckets = [Int](repeating: 0, count: 256)
        var seen = Set<UInt64>()
        var unstable = 0
        for index in 0..<keyCount {
            let digits = String(index)
            let name = Array(("key:" + String(repeating: "0", count: 12 - digits.count) + digits).utf8)
            let hash = name.withUnsafeBytes { KeyHashing.hash($0) }
            if name.withUnsafeBytes({ KeyHashing.hash($0) }) != hash { unstable += 1 }
            buckets[Int(hash & 0xff)] += 1
            seen.insert(hash)
        }
        #expect(unstable == 0)
        #expect(seen.count == keyCount)
        // 256 keys per bucket on average; a binomial spread stays well inside ±25%.
        #expect(buckets.min()! > 192 && buckets.max()! < 320, "bucket sizes \(buckets.min()!)...\(buckets.max()!)")
    }
}
