// The value stored under a key: a string (inline up to 14 bytes, else one heap block), a collection object or a
// stream.
// Collections are reference types mutated in place under their stripe's lock; each keeps a running estimate of
// its heap size so memory accounting stays O(1) per write.

/// The Redis data type of a value, with the names TYPE returns.
public enum ValueType: String, Sendable, Hashable, CaseIterable {
    case string, list, hash, set, zset, stream
}

/// A value in the keyspace.
public enum StoredValue {
    /// A string of at most 14 bytes, zero-padded, length in the last byte.
    case shortString(UInt64, UInt32, UInt16, UInt8)
    /// A longer string. The block may be mutated in place (APPEND, SETRANGE) when uniquely referenced.
    case string(HeapBytes)
    case list(ListValue)
    case hash(HashValue)
    case set(SetValue)
    case sortedSet(SortedSetValue)
    case stream(StreamValue)

    /// Strings up to this many bytes need no allocation.
    public static let shortStringCapacity = 14

    /// A string value holding a copy of `bytes`.

    public static func string(copying bytes: UnsafeRawBufferPointer) -> StoredValue {
        if bytes.count <= shortStringCapacity {
            var words: (UInt64, UInt32, UInt16) = (0, 0, 0)
            withUnsafeMutableBytes(of: &words) { raw in
                if let base = bytes.baseAddress { raw.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
            }
            return .shortString(words.0, words.1, words.2, UInt8(truncatingIfNeeded: bytes.count))
        }
        return .string(HeapBytes.make(copying: bytes))
    }

    /// A string value from text.
    public static func string(_ text: String) -> StoredValue {
        var text = text
        return text.withUTF8 { .string(copying: UnsafeRawBufferPointer($0)) }
    }

    /// A string value holding the decimal form of `value` (INCR results).
    public static func integerString(_ value: Int) -> StoredValue {
        .string(String(value))
    }

    /// The value's type.

    public var type: ValueType {
        switch self {
        case .shortString, .string: return .string
        case .list: return .list
        case .hash: return .hash
        case .set: return .set
        case .sortedSet: return .zset
        case .stream: return .stream
        }
    }

    /// The heap object holding the value (a prefetch target), or `nil` for a short string, which lives in its entry.
    var objectAddress: UnsafeRawPointer? {
        switch self {
        case .shortString: return nil
        case .string(let block): return UnsafeRawPointer(Unmanaged.passUnretained(block).toOpaque())
        case .list(let list): return UnsafeRawPointer(Unmanaged.passUnretained(list).toOpaque())
        case .hash(let hash): return UnsafeRawPointer(Unmanaged.passUnretained(hash).toOpaque())
        case .set(let set): return UnsafeRawPointer(Unmanaged.passUnretained(set).toOpaque())
        case .sortedSet(let sortedSet): return UnsafeRawPointer(Unmanaged.passUnretained(sortedSet).toOpaque())
        case .stream(let stream): return UnsafeRawPointer(Unmanaged.passUnretained(stream).toOpaque())
        }
    }

    /// Calls `body` with the bytes if this is a string, else returns `nil`.

    public func withStringBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result? {
        switch self {
        case .shortString(let w0, let w1, let w2, let length):
            var words = (w0, w1, w2)
            return try withUnsafeBytes(of: &words) { raw in
                try body(UnsafeRawBufferPointer(rebasing: raw[0..<Int(length)]))
            }
        case .string(let block):
            return try block.withBytes(body)
        default:
            return nil
        }
    }

    /// The string's length, or `nil` for collections.
    public var stringLength: Int? {
        switch self {
        case .shortString(_, _, _, let length): return Int(length)
        case .string(let block): return block.count
        default: return nil
        }
    }

    /// Heap bytes this value holds beyond its 16 inline bytes (an estimate for collections).

    public var heapSize: Int {
        switch self {
        case .shortString: return 0
        case .string(let block): return block.allocatedSize
        case .list(let list): return list.memoryUsage
        case .hash(let hash): return hash.memoryUsage
        case .set(let set): return set.memoryUsage
        case .sortedSet(let zset): return zset.memoryUsage
        case .stream(let stream): return stream.memoryUsage
        }
    }

    /// A deep copy (COPY command): collections are duplicated, strings share immutable storage.
    public func duplicate() -> StoredValue {
        switch self {
        case .shortString: return self
        case .string(let block): return block.withBytes { .string(copying: $0) }
        case .list(let list): return .list(list.duplicate())
        case .hash(let hash): return .hash(hash.duplicate())
        case .set(let set): return .set(set.duplicate())
        case .sortedSet(let zset): return .sortedSet(zset.duplicate())
        case .stream(let stream): return .stream(stream.duplicate())
        }
    }
}
