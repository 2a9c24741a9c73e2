// The replication backlog (redis `repl_backlog`): a ring buffer holding the last `repl-backlog-size` bytes of the
// replication stream, with the stream offsets they cover, so a replica that reconnects can continue from its
// offset (PSYNC partial resync) instead of taking a full copy. A pure value; ReplicationState guards it.
//
// Offsets follow redis: `masterOffset` (master_repl_offset) counts every byte ever appended to the stream; the
// backlog holds bytes `firstByteOffset ... masterOffset` (1-based, so `firstByteOffset` = masterOffset + 1 while
// empty); a replica asks for `PSYNC <replid> <its offset + 1>`.

/// A ring buffer over the tail of the replication stream.
public struct ReplicationBacklog: Sendable {
    /// The ring (allocated at ``capacity``).
    private var ring: [UInt8]
    /// Where the next byte goes in `ring`.
    private var writeIndex = 0
    /// The configured size in bytes (`repl-backlog-size`).
    public private(set) var capacity: Int
    /// Bytes of history held (≤ capacity): INFO `repl_backlog_histlen`.
    public private(set) var historyLength = 0
    /// Offset of the last byte appended: INFO `master_repl_offset`.
    public private(set) var masterOffset: Int64

    /// Creates an empty backlog whose next byte will have offset `masterOffset + 1`.
    public init(capacity: Int, masterOffset: Int64 = 0) {
        precondition(capacity > 0, "backlog capacity must be positive")
        self.capacity = capacity
        self.ring = [UInt8](repeating: 0, count: capacity)
        self.masterOffset = masterOffset
    }

    /// Offset of the oldest byte held: INFO `repl_backlog_first_byte_offset`.
    public var firstByteOffset: Int64 { masterOffset - Int64(historyLength) + 1 }

    /// Appends stream bytes.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var source = bytes
        if source.count > capacity {
            // Only the tail can be kept.
            source = UnsafeRawBufferPointer(rebasing: source[(source.count - capacity)...])
        }
        ring.withUnsafeMutableBytes { ringBytes in
            var remaining = source
            while !remaining.isEmpty {
                let chunk = min(remaining.count, capacity - writeIndex)
                ringBytes.baseAddress!.advanced(by: writeIndex).copyMemory(from: remaining.baseAddress!, byteCount: chunk)
                writeIndex = (writeIndex + chunk) % capacity
                remaining = UnsafeRawBufferPointer(rebasing: remaining[chunk...])
            }
        }
        masterOffset += Int64(bytes.count)
        historyLength = min(capacity, historyLength + bytes.count)
    }

    /// Appends stream bytes from an array.
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Whether the bytes from `offset` (the first byte a replica needs: its offset + 1) to the end are held.
    public func canServe(from offset: Int64) -> Bool {
        offset >= firstByteOffset && offset <= masterOffset + 1
    }

    /// The bytes from `offset` to the end, or `nil` when they are no longer (or not yet) held.
    public func bytes(from offset: Int64) -> [UInt8]? {
        guard canServe(from: offset) else { return nil }
        let count = Int(masterOffset - offset + 1)
        var result = [UInt8]()
        result.reserveCapacity(count)
        let start = (writeIndex - count + capacity) % capacity
        if start + count <= capacity {
            result.append(contentsOf: ring[start..<(start + count)])
        } else {
            result.append(contentsOf: ring[start...])
            result.append(contentsOf: ring[..<(count - (capacity - start))])
        }
        return result
    }

    /// Changes the capacity (CONFIG SET repl-backlog-size), keeping as much of the newest history as fits.
    public mutating func resize(to newCapacity: Int) {
        precondition(newCapacity > 0, "backlog capacity must be positive")
        guard newCapacity != capacity else { return }
        let keep = min(historyLength, newCapacity)
        let tail = bytes(from: masterOffset - Int64(keep) + 1) ?? []
        let offset = masterOffset - Int64(keep)
        self = ReplicationBacklog(capacity: newCapacity, masterOffset: offset)
        append(tail)
    }
}
