// Owned byte strings sized for a cache: keys and collection members up to 22 bytes live inline in 24 bytes
// (no allocation at all), longer ones in one heap block. Most keys ("user:1000", "key:000000123456") fit inline.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// One heap block holding a byte string: a count header and the bytes in the same allocation.
public final class HeapBytes: ManagedBuffer<Int, UInt8> {
    /// Allocates a block with room for at least `capacity` bytes and copies `bytes` into it.
    public static func make(copying bytes: UnsafeRawBufferPointer, capacity: Int? = nil) -> HeapBytes {
        let storage = HeapBytes.create(minimumCapacity: max(capacity ?? bytes.count, bytes.count)) { _ in bytes.count }
        let block = unsafeDowncast(storage, to: HeapBytes.self)
        block.withUnsafeMutablePointerToElements { elements in
            if let base = bytes.baseAddress {
                UnsafeMutableRawPointer(elements).copyMemory(from: base, byteCount: bytes.count)
            }
        }
        return block
    }

    /// The number of bytes stored.
    public var count: Int {
        get { header }
        set { header = newValue }
    }

    /// Calls `body` with the stored bytes.

    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeMutablePointers { header, elements in
            try body(UnsafeRawBufferPointer(start: elements, count: header.pointee))
        }
    }

    /// Calls `body` with the whole writable capacity and the current count, which `body` may change.

    public func withMutableBytes<Result>(
        _ body: (UnsafeMutableRawBufferPointer, inout Int) throws -> Result
    ) rethrows -> Result {
        let capacity = self.capacity
        return try withUnsafeMutablePointers { header, elements in
            try body(UnsafeMutableRawBufferPointer(start: elements, count: capacity), &header.pointee)
        }
    }

    /// Bytes this block occupies on the heap (object header, count and capacity).
    public var allocatedSize: Int { 32 + capacity }
}

/// An owned byte string: inline up to ``CompactBytes/inlineCapacity`` bytes, otherwise in a ``HeapBytes`` block.
///
/// The representation is canonical (a string that fits inline is always inline), so equality compares words for
/// short strings and bytes otherwise.
public enum CompactBytes: Hashable, @unchecked Sendable {
    /// Up to 22 bytes, zero-padded, with the length in the last byte.
    case inline(UInt64, UInt64, UInt32, UInt16, UInt8)
    /// Longer strings; the block is never mutated once it backs a `CompactBytes`.
    case heap(HeapBytes)

    /// The most bytes stored without an allocation.
    public static let inlineCapacity = 22

    /// The empty string.
    public static let empty = CompactBytes.inline(0, 0, 0, 0, 0)

    /// Copies `bytes`.

    public init(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count <= Self.inlineCapacity {
            var words: (UInt64, UInt64, UInt32, UInt16) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &words) { raw in
                if let base = bytes.baseAddress {
                    raw.baseAddress!.copyMemory(from: base, byteCount: bytes.count)
                }
            }
            self = .inline(words.0, words.1, words.2, words.3, UInt8(truncatingIfNeeded: bytes.count))
        } else {
            self = .heap(HeapBytes.make(copying: bytes))
        }
    }

    /// Copies a byte sequence.
    public init<S: Sequence>(bytes: S) where S.Element == UInt8 {
        let array = Array(bytes)
        self = array.withUnsafeBytes { CompactBytes($0) }
    }

    /// The UTF-8 bytes of `string`.
    public init(_ string: String) {
        var string = string
        self = string.withUTF8 { CompactBytes(UnsafeRawBufferPointer($0)) }
    }

    /// The number of bytes.

    public var count: Int {
        switch self {
        case .inline(_, _, _, _, let length): return Int(length)
        case .heap(let block): return block.count
        }
    }

    /// Calls `body` with the bytes.

    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        switch self {
        case .inline(let w0, let w1, let w2, let w3, let length):
            var words = (w0, w1, w2, w3)
            return try withUnsafeBytes(of: &words) { raw in
                try body(UnsafeRawBufferPointer(rebasing: raw[0..<Int(length)]))
            }
        case .heap(let block):
            return try block.withBytes(body)
        }
    }

    /// The bytes as an array.
    public var array: [UInt8] { withBytes { Array($0) } }

    /// The bytes as text (invalid UTF-8 repaired), for logs and tests.
    public var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }

    /// Heap bytes used beyond the 24 inline bytes.

    public var heapSize: Int {
        switch self {
        case .inline: return 0
        case .heap(let block): return block.allocatedSize
        }
    }

    public static func == (lhs: CompactBytes, rhs: CompactBytes) -> Bool {
        switch (lhs, rhs) {
        case (.inline(let a0, let a1, let a2, let a3, let a4), .inline(let b0, let b1, let b2, let b3, let b4)):
            return a0 == b0 && a1 == b1 && a2 == b2 && a3 == b3 && a4 == b4
        case (.heap(let a), .heap(let b)):
            if a === b { return true }
            return a.withBytes { x in b.withBytes { y in x.count == y.count && memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
        default:
            return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: $0) }
    }

    /// Lexicographic byte order (memcmp, then length), as redis compares members and keys.
    public static func lexicographicallyPrecedes(_ lhs: CompactBytes, _ rhs: CompactBytes) -> Bool {
        lhs.withBytes { a in rhs.withBytes { b in ByteOrder.compare(a, b) < 0 } }
    }
}

/// Byte-wise comparison as redis's `sdscmp`/`memcmp` does it.
public enum ByteOrder {
    /// Negative, zero or positive as `a` sorts before, equal to, or after `b`.

    public static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let common = min(a.count, b.count)
        if common > 0 {
            let result = memcmp(a.baseAddress!, b.baseAddress!, common)
            if result != 0 { return Int(result) }
        }
        return a.count - b.count
    }
}

/// A key ready for lookups: its bytes and its hash, computed once per command argument.
public struct KeyRef: Sendable {
    /// The key's bytes.
    public let bytes: CompactBytes
    /// The key's 64-bit hash (process-seeded SipHash, so clients cannot aim collisions).
    public let hash: UInt64

    /// Copies `bytes` and hashes them.

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = CompactBytes(bytes)
        self.hash = KeyHashing.hash(bytes)
    }

    /// Wraps already-owned bytes.
    public init(_ bytes: CompactBytes) {
        self.bytes = bytes
        self.hash = bytes.withBytes { KeyHashing.hash($0) }
    }

    /// A key from text.
    public init(_ string: String) {
        self.init(CompactBytes(string))
    }

    /// Whether this key's bytes are `other`.
    public func hasBytes(_ other: UnsafeRawBufferPointer) -> Bool {
        bytes.withBytes { mine in mine.count == other.count && ByteOrder.compare(mine, other) == 0 }
    }
}
