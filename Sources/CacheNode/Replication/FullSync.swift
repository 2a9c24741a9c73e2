// Full resynchronization (redis's RDB transfer, diskless): the primary takes a point-in-time snapshot of the
// keyspace (Keyspace.beginSnapshot), attaching the replica to the stream *while every stripe is frozen* so the
// snapshot is exactly the state at the offset it announces in `+FULLRESYNC <replid> <offset>`; then the replica's
// buffered stream follows. The replica checks the whole snapshot (trailer checksum) before it replaces its data:
// a corrupt or truncated transfer leaves the old data and the link retries.
//
// Framing. A replica that announced `REPLCONF capa eof` (every cache-node replica) gets the snapshot streamed as it is
// produced, as redis's diskless sync does: `$EOF:<40 random hex characters>\r\n`, the snapshot chunk by chunk (each
// chunk written before the next is sent, so a slow replica holds back the producer instead of the primary buffering
// the whole image), then the same 40 characters. The replica decodes records as they arrive (`SnapshotEndMarkScanner`
// finds the mark) and never holds the raw image either. Other replicas get one `$<length>\r\n<bytes>` bulk.
import CacheStore
import Logging
import NIOCore
import RESPServer
import Synchronization

enum FullSync {
    /// Answers PSYNC with `+FULLRESYNC` and sends a snapshot to the replica in the background: streamed between end
    /// marks when `streaming`, else as one bulk.
    static func start(_ feed: ReplicaFeed, node: NodeState, streaming: Bool, reply: inout ReplyWriter, logger: Logger) {
        var announced: (replid: String, offset: Int64) = ("", 0)
        let snapshot = node.keyspace.beginSnapshot(createdAt: node.clock.nowMilliseconds(), headerWhileFrozen: {
            announced = node.replication.attachFull(feed)
            return ([:], node.functions.librarySources())
        })
        reply.buffer.writeString("+FULLRESYNC \(announced.replid) \(announced.offset)\r\n")
        logger.notice("Full resynchronization for replica \(feed.connection.remoteAddress) at offset \(announced.offset)")
        let replication = node.replication
        if streaming {
            Task.detached { await stream(snapshot, to: feed, replication: replication, logger: logger) }
            return
        }
        Task.detached {
            var bytes: [UInt8] = []
            while let chunk = snapshot.nextChunk() {
                bytes.append(contentsOf: chunk)
                if feed.isClosed(in: replication) {
                    snapshot.cancel()
                    return
                }
            }
            var buffer = feed.connection.allocator.buffer(capacity: bytes.count + 24)
            buffer.writeString("$\(bytes.count)\r\n")
            buffer.writeBytes(bytes)
            feed.connection.send(buffer, promise: nil)
            replication.snapshotSent(feed)
            logger.notice("Snapshot of \(bytes.count) bytes sent to replica \(feed.connection.remoteAddress)")
        }
    }

    /// Streams `snapshot` between end marks, one chunk in flight at a time.
    private static func stream(_ snapshot: KeyspaceSnapshot, to feed: ReplicaFeed, replication: ReplicationState, logger: Logger) async {
        let mark = SnapshotEndMarkScanner.randomMark()
        let connection = feed.connection
        var header = connection.allocator.buffer(capacity: 48)
        header.writeString("$EOF:")
        header.writeBytes(mark)
        header.writeString("\r\n")
        var inFlight: EventLoopFuture<Void>? = send(header, on: connection)
        var total = 0
        do {
            while let chunk = snapshot.nextChunk() {
                if feed.isClosed(in: replication) {
                    snapshot.cancel()
                    return
                }
                // The previous chunk reached the socket before this one is queued: the replica's pace bounds memory.
                try await inFlight?.get()
                var buffer = connection.allocator.buffer(capacity: chunk.count)
                buffer.writeBytes(chunk)
                total += chunk.count
                inFlight = send(buffer, on: connection)
            }
            var trailer = connection.allocator.buffer(capacity: mark.count)
            trailer.writeBytes(mark)
            try await inFlight?.get()
            connection.send(trailer, promise: nil)
        } catch {
            snapshot.cancel()
            logger.notice("Snapshot stream to replica \(connection.remoteAddress) ended: \(error)")
            return
        }
        replication.snapshotSent(feed)
        logger.notice("Snapshot of \(total) bytes streamed to replica \(connection.remoteAddress)")
    }

    private static func send(_ buffer: ByteBuffer, on connection: ClientConnection) -> EventLoopFuture<Void> {
        let promise = connection.eventLoop.makePromise(of: Void.self)
        connection.send(buffer, promise: promise)
        return promise.futureResult
    }

    /// Replaces this replica's data with a received snapshot, after verifying it completely.
    static func load(_ bytes: [UInt8], into node: NodeState) throws {
        var decoder = SnapshotStreamDecoder()
        let records = try decoder.feed(bytes)
        try decoder.finish()
        try load(records: records, functionLibraries: decoder.functionLibraries, into: node)
    }

    /// Replaces this replica's data and FUNCTION libraries with those of a snapshot whose trailer was already
    /// verified (a replica keeps no function of its own across a full sync, as in redis).
    static func load(records: [SnapshotRecord], functionLibraries: [[UInt8]], into node: NodeState) throws {
        let keyspace = node.keyspace
        let now = node.clock.nowMilliseconds()
        for record in records where record.database < 0 || record.database >= keyspace.databaseCount {
            throw PeerProtocolError("the primary's snapshot has keys in database \(record.database) but this node has \(keyspace.databaseCount) databases (raise `databases`)")
        }
        // One critical section: readers never see a half-loaded keyspace. Expired keys are kept: on a replica only
        // the primary's DEL removes them.
        var functionFailure: CommandError?
        keyspace.withAllLocked {
            do throws(CommandError) {
                try node.functions.replaceAll(with: functionLibraries)
            } catch {
                functionFailure = error
                return
            }
            keyspace.flushAll()
            for record in records {
                let key = record.key.withBytes { KeyRef($0) }
                keyspace.database(record.database, now: now).set(key, record.value, expiry: record.expireAt.map { .at($0) } ?? .remove)
            }
        }
        if let functionFailure {
            throw PeerProtocolError("the primary's snapshot holds a function library that does not load here: \(functionFailure.message)")
        }
    }
}

extension ReplicaFeed {
    /// Whether the replica went away (read under the replication lock).
    func isClosed(in state: ReplicationState) -> Bool {
        state.core.withLock { _ in closed }
    }
}

/// Finds the end mark of a streamed snapshot (`$EOF:<mark>`) in the bytes that follow, handing on everything before
/// it; keeps the last `mark.count - 1` bytes back between calls in case the mark is split across reads.
struct SnapshotEndMarkScanner {
    /// The mark's length (redis's `RDB_EOF_MARK_SIZE`).
    static let markLength = 40

    let mark: [UInt8]
    private var held: [UInt8] = []

    init(mark: [UInt8]) { self.mark = mark }

    /// 40 random lowercase hex characters.
    static func randomMark() -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        var generator = SystemRandomNumberGenerator()
        return (0..<markLength).map { _ in digits[Int(generator.next() % 16)] }
    }

    /// Scans `bytes`: returns the snapshot bytes that are certain (before the mark, or all but a held-back tail), and
    /// if the mark was found, the bytes after it (the start of the replication stream).
    mutating func scan(_ bytes: some Collection<UInt8>) -> (snapshot: [UInt8], afterMark: [UInt8]?) {
        var window = held
        window.append(contentsOf: bytes)
        held = []
        if let at = Self.firstIndex(of: mark, in: window) {
            return (Array(window[..<at]), Array(window[(at + mark.count)...]))
        }
        let keep = min(mark.count - 1, window.count)
        held = Array(window.suffix(keep))
        return (Array(window.dropLast(keep)), nil)
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
