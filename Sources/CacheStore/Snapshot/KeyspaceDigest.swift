// DEBUG DIGEST / DEBUG DIGEST-VALUE: an order-independent digest of the keyspace, computed as redis's debug.c
// does, so two nodes (a primary and its replicas, or a node before and after a restart) can be compared with
// one command. Per key: mix(key), then the value (lists mixed in order; set members, hash fields and sorted set
// members xor-ed so their order does not matter), then the "!!expire!!" marker for volatile keys (the marker,
// not the time, as redis does); the key digests
// are xor-ed together and each non-empty database is mixed in first by its index. mix(d, x) = SHA1(d ^ SHA1(x)).
// As in redis 7, each value starts with its type code (string 0, list 1, set 2, zset 3, hash 4) and scores are
// hashed as "%.17g" text, so the digest of the same dataset equals redis-server's own DEBUG DIGEST.
// The 20-byte SHA-1 here is only a fingerprint, never a security boundary.
import DequeModule
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// SHA-1 (FIPS 180-4), used only to fingerprint keyspace contents.
struct SHA1 {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var sha = SHA1()
        sha.update(bytes)
        return sha.finish()
    }

    static func hash(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { hash($0) } }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length += UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, bytes.count)
            pending.append(contentsOf: bytes[0..<take])
            offset = take
            if pending.count == 64 {
                pending.withUnsafeBytes { compress($0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        while bytes.count - offset >= 64 {
            compress(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + 64]))
            offset += 64
        }
        pending.append(contentsOf: bytes[offset...])
    }

    mutating func finish() -> [UInt8] {
        let bitLength = length &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        tail.withUnsafeBytes { raw in
            for block in stride(from: 0, to: raw.count, by: 64) { compress(UnsafeRawBufferPointer(rebasing: raw[block..<block + 64])) }
        }
        var out: [UInt8] = []
        for word in [state.0, state.1, state.2, state.3, state.4] {
            for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        return out
    }

    private mutating func compress(_ block: UnsafeRawBufferPointer) {
        state = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for index in 0..<16 {
                w[index] = UInt32(block[index * 4]) << 24 | UInt32(block[index * 4 + 1]) << 16
                    | UInt32(block[index * 4 + 2]) << 8 | UInt32(block[index * 4 + 3])
            }
            for index in 16..<80 {
                let value = w[index - 3] ^ w[index - 8] ^ w[index - 14] ^ w[index - 16]
                w[index] = value << 1 | value >> 31
            }
            var (a, b, c, d, e) = state
            for index in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch index {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[index]
                e = d
                d = c
                c = b << 30 | b >> 2
                b = a
                a = temp
            }
            return (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
        }
    }
}

/// redis's digest helpers (debug.c xorDigest / mixDigest) over 20-byte digests.
public enum KeyspaceDigest {
    /// `digest ^= SHA1(bytes)`.
    static func xor(_ digest: inout [UInt8], _ bytes: UnsafeRawBufferPointer) {
        let hash = SHA1.hash(bytes)
        for index in 0..<20 { digest[index] ^= hash[index] }
    }

    /// `digest = SHA1(digest ^ SHA1(bytes))`.
    static func mix(_ digest: inout [UInt8], _ bytes: UnsafeRawBufferPointer) {
        xor(&digest, bytes)
        digest = SHA1.hash(digest)
    }

    static func mix(_ digest: inout [UInt8], _ bytes: CompactBytes) { bytes.withBytes { mix(&digest, $0) } }
    static func mix(_ digest: inout [UInt8], _ text: String) { Array(text.utf8).withUnsafeBytes { mix(&digest, $0) } }

    /// The digest of one value (DEBUG DIGEST-VALUE): its contents and whether it has an expiry, not its name.
    public static func digest(of value: StoredValue, hasExpiry: Bool) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 20)
        mixValue(&digest, value)
        if hasExpiry { xorMarker(&digest) }
        return digest
    }

    /// `score` as C's "%.17g" (what redis hashes).
    static func scoreText(_ score: Double) -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: 64)
        let length = withVaList([score]) { vsnprintf(&buffer, 64, "%.17g", $0) }
        return buffer.prefix(Int(max(0, min(length, 63)))).map { UInt8(bitPattern: $0) }
    }

    static func xorMarker(_ digest: inout [UInt8]) {
        Array("!!expire!!".utf8).withUnsafeBytes { xor(&digest, $0) }
    }

    static func mixValue(_ digest: inout [UInt8], _ value: StoredValue) {
        let typeCode: UInt32
        switch value.type {
        case .string: typeCode = 0
        case .list: typeCode = 1
        case .set: typeCode = 2
        case .zset: typeCode = 3
        case .hash: typeCode = 4
        case .stream: typeCode = 6
        }
        var bigEndianType = typeCode.bigEndian
        withUnsafeBytes(of: &bigEndianType) { mix(&digest, $0) }
        switch value {
        case .shortString, .string:
            value.withStringBytes { mix(&digest, $0) }
        case .list(let list):
            for item in list.items { mix(&digest, item) }
        case .set(let set):
            for member in set.members { member.withBytes { xor(&digest, $0) } }
        case .hash(let hash):
            for (field, fieldValue) in hash.fields {
                var element = [UInt8](repeating: 0, count: 20)
                mix(&element, field)
                mix(&element, fieldValue)
                element.withUnsafeBytes { xor(&digest, $0) }
            }
        case .sortedSet(let zset):
            var node = zset.order.first
            while let current = node {
                var element = [UInt8](repeating: 0, count: 20)
                mix(&element, current.member)
                scoreText(current.score).withUnsafeBytes { mix(&element, $0) }
                element.withUnsafeBytes { xor(&digest, $0) }
                node = current.next
            }
        case .stream(let stream):
            // redis mixes the stream's listpacks, which this store does not have: entries, counters and
            // groups are mixed instead (equal streams digest equal; the value differs from redis's).
            for entry in stream.entries {
                mix(&digest, entry.id.description)
                for item in entry.fieldsAndValues { mix(&digest, item) }
            }
            mix(&digest, "\(stream.lastID) \(stream.entriesAdded) \(stream.maximumDeletedID)")
            for (name, group) in stream.groupsByName {
                mix(&digest, name)
                mix(&digest, "\(group.lastDeliveredID) \(group.entriesRead) \(group.pending.count)")
            }
        }
    }

    /// The digest of every key of every database (all zeros when empty). Requires every stripe locked.
    public static func digest(of keyspace: Keyspace) -> [UInt8] {
        var final = [UInt8](repeating: 0, count: 20)
        for database in 0..<keyspace.databaseCount {
            var databaseDigest = [UInt8](repeating: 0, count: 20)
            var keys = 0
            for stripe in keyspace.stripes {
                guard let table = stripe.existingTable(database) else { continue }
                for position in 0..<table.count {
                    let entry = table.entry(at: position).pointee
                    var digest = [UInt8](repeating: 0, count: 20)
                    mix(&digest, entry.key)
                    mixValue(&digest, entry.value)
                    if entry.meta.expireAt != nil { xorMarker(&digest) }
                    digest.withUnsafeBytes { xor(&databaseDigest, $0) }
                    keys += 1
                }
            }
            guard keys > 0 else { continue }
            var index = UInt32(database).bigEndian
            withUnsafeBytes(of: &index) { mix(&final, $0) }
            for index in 0..<20 { final[index] ^= databaseDigest[index] }
        }
        return final
    }

    /// Lowercase hex of a digest.
    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
