// How the append-only file hangs off the replication stream: it receives every byte `appendLocked` records, so the
// node records its stream whenever the AOF is on (even with no replica), and a new AOF file starts with the
// database the stream has selected.
import CacheStore
import NIOCore
import Synchronization

extension ReplicationState {
    /// Attaches (or with nil, detaches) the AOF; attaching starts recording the stream. Locks every stripe.
    func setAppendOnlyLog(_ log: AppendOnlyLog?, keyspace: Keyspace? = nil) {
        guard let log, let keyspace else {
            core.withLock { $0.appendOnlyLog = nil }
            return
        }
        keyspace.withAllLocked {
            core.withLock { core in
                attachLocked(log, &core)
            }
        }
    }

    /// Inside a snapshot's freeze (every stripe locked): runs `switchFiles` under the stream's lock, so the AOF moves
    /// to its new file between two recorded writes, and makes sure the new file starts with a SELECT.
    func switchAppendOnlyLog(_ log: AppendOnlyLog, keyspace: Keyspace, _ switchFiles: () -> Void) {
        core.withLock { core in
            switchFiles()
            attachLocked(log, &core)
        }
    }

    private func attachLocked(_ log: AppendOnlyLog, _ core: inout ReplicationCore) {
        core.appendOnlyLog = log
        if isReplica {
            // The primary's stream selects a database only when it changes: state the current one.
            var select = ByteBuffer()
            RESPCommandEncoder.encode(["SELECT", String(core.streamDatabase)], into: &select)
            select.withUnsafeReadableBytes { log.append($0) }
        } else {
            activateLocked(&core)
            // The next recorded write selects its database explicitly.
            core.lastDatabase = -1
        }
    }
}
