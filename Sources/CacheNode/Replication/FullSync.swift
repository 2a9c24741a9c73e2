// Full resynchronization (redis's RDB transfer, diskless): the primary takes a point-in-time snapshot of the
// keyspace (Keyspace.beginSnapshot), attaching the replica to the stream *while every stripe is frozen* so the
// snapshot is exactly the state at the offset it announces in `+FULLRESYNC <replid> <offset>`; the snapshot
// streams out as `$<length>\r\n<bytes>` (checksummed by its trailer) off the event loops, then the replica's
// buffered stream follows. The replica checks the whole snapshot (trailer checksum) before it replaces its data:
// a corrupt or truncated transfer leaves the old data and the link retries.
import CacheStore
import Logging
import NIOCore
import RESPServer
import Synchronization

enum FullSync {
    /// Answers PSYNC with `+FULLRESYNC` and streams a snapshot to the replica in the background.
    static func start(_ feed: ReplicaFeed, node: NodeState, reply: inout ReplyWriter, logger: Logger) {
        var announced: (replid: String, offset: Int64) = ("", 0)
        let snapshot = node.keyspace.beginSnapshot(createdAt: node.clock.nowMilliseconds()) {
            announced = node.replication.attachFull(feed)
        }
        reply.buffer.writeString("+FULLRESYNC \(announced.replid) \(announced.offset)\r\n")
        logger.notice("Full resynchronization for replica \(feed.connection.remoteAddress) at offset \(announced.offset)")
        let replication = node.replication
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

    /// Replaces this replica's data with a received snapshot, after verifying it completely.
    static func load(_ bytes: [UInt8], into node: NodeState) throws {
        var decoder = SnapshotStreamDecoder()
        let records = try decoder.feed(bytes)
        try decoder.finish()
        let keyspace = node.keyspace
        let now = node.clock.nowMilliseconds()
        for record in records where record.database < 0 || record.database >= keyspace.databaseCount {
            throw PeerProtocolError("the primary's snapshot has keys in database \(record.database) but this node has \(keyspace.databaseCount) databases (raise `databases`)")
        }
        // One critical section: readers never see a half-loaded keyspace. Expired keys are kept: on a replica only
        // the primary's DEL removes them.
        keyspace.withAllLocked {
            keyspace.flushAll()
            for record in records {
                let key = record.key.withBytes { KeyRef($0) }
                keyspace.database(record.database, now: now).set(key, record.value, expiry: record.expireAt.map { .at($0) } ?? .remove)
            }
        }
    }
}

extension ReplicaFeed {
    /// Whether the replica went away (read under the replication lock).
    func isClosed(in state: ReplicationState) -> Bool {
        state.core.withLock { _ in closed }
    }
}
