// The keyspace's hash function: SipHash-1-3 (the strength of Swift's Hasher and Rust's default) keyed with a
// per-process random key, so clients cannot aim collisions, written out for byte strings. A key is hashed once per
// command; Swift's Hasher took 2.7% of the server's samples at pipelined GETs, most of it in its generic set-up and
// byte buffering, and this takes 0.8%. redis hashes its keys with SipHash-1-2 (siphash.c).

/// The hash function of the keyspace.
public enum KeyHashing {
    /// The process's SipHash key, drawn once from the system's random source.
    private static let key: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// The 64-bit keyspace hash of `bytes` (SipHash-1-3 under the process's random key).
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let (k0, k1) = key
        return SipHash.hash(bytes, k0: k0, k1: k1, compressionRounds: 1, finalizationRounds: 3)
    }
}

/// SipHash (Aumasson and Bernstein) over a byte string, with the number of rounds as parameters: 2-4 is the
/// reference function its published test vectors are for, 1-3 what ``KeyHashing`` uses.
public enum SipHash {
    /// SipHash-`compressionRounds`-`finalizationRounds` of `bytes` under the key (`k0`, `k1`), the two little-endian
    /// halves of the 16-byte key.
    @inline(__always)
    public static func hash(
        _ bytes: UnsafeRawBufferPointer, k0: UInt64, k1: UInt64, compressionRounds: Int, finalizationRounds: Int
    ) -> UInt64 {
        var state = State(k0: k0, k1: k1)
        let count = bytes.count
        let fullBlocks = count & ~7
        var offset = 0
        while offset < fullBlocks {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            state.compress(word, rounds: compressionRounds)
            offset += 8
        }
        // The last block: the remaining 0-7 bytes, with the length's low byte on top.
        var last = UInt64(truncatingIfNeeded: count) << 56
        var shift: UInt64 = 0
        while offset < count {
            last |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        state.compress(last, rounds: compressionRounds)
        return state.finalize(rounds: finalizationRounds)
    }

    struct State {
        var v0: UInt64
        var v1: UInt64
        var v2: UInt64
        var v3: UInt64

        @inline(__always)
        init(k0: UInt64, k1: UInt64) {
            v0 = k0 ^ 0x736f_6d65_7073_6575
            v1 = k1 ^ 0x646f_7261_6e64_6f6d
            v2 = k0 ^ 0x6c79_6765_6e65_7261
            v3 = k1 ^ 0x7465_6462_7974_6573
        }

        @inline(__always)
        mutating func round() {
            v0 = v0 &+ v1
            v1 = v1.rotatedLeft(by: 13)
            v1 ^= v0
            v0 = v0.rotatedLeft(by: 32)
            v2 = v2 &+ v3
            v3 = v3.rotatedLeft(by: 16)
            v3 ^= v2
            v0 = v0 &+ v3
            v3 = v3.rotatedLeft(by: 21)
            v3 ^= v0
            v2 = v2 &+ v1
            v1 = v1.rotatedLeft(by: 17)
            v1 ^= v2
            v2 = v2.rotatedLeft(by: 32)
        }

        @inline(__always)
        mutating func compress(_ word: UInt64, rounds: Int) {
            v3 ^= word
            for _ in 0..<rounds { round() }
            v0 ^= word
        }

        @inline(__always)
        mutating func finalize(rounds: Int) -> UInt64 {
            v2 ^= 0xff
            for _ in 0..<rounds { round() }
            return v0 ^ v1 ^ v2 ^ v3
        }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(by count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 &- count))
    }
}
