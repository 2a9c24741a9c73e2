// Writes nodes.conf (the `cluster-config-file`): CLUSTER NODES lines plus the epoch line, atomically by rename, either
// now (before the command that changed the topology replies) or coalesced on a background queue.
//
// Which changes wait for the file. redis saves nodes.conf in beforeSleep, once per event-loop iteration, before the
// replies of that iteration go out (clusterDoBeforeSleep(CLUSTER_TODO_SAVE_CONFIG)): many SETSLOTs in one pipeline cost
// one write. Here most topology changes still write before they reply (`ClusterState.mutate(durable: true)`, the
// default: CLUSTER TOPOLOGY SET, ADDSLOTS, MEET, REPLICATE, FAILOVER, RESET, epochs, SAVECONFIG). CLUSTER SETSLOT and
// the SETSLOTSRANGE extension — the calls a reshard makes per slot or per batch, thousands of them — only schedule a
// write: the newest topology is kept, one write runs at a time on a serial queue, and a burst of changes costs one or
// two writes however long it is. The reply can therefore precede the file by the length of one write. That is enough
// because nodes.conf is a restart hint, not what makes a migration safe:
// - it is not fsynced (neither here nor for redis's SETSLOT), so it only survives a process crash, never power loss;
// - no acknowledged key depends on it: MIGRATE deletes a key on the source only after the target acknowledged its
//   RESTORE, and the target claims a slot (SETSLOT NODE) before the source gives it away;
// - the topology source is authoritative: it records each migration batch before sending it and re-sends it after a
//   failure (every step is idempotent), and pushes the whole topology with a new epoch after each batch, which is
//   written before the push is acknowledged. A node restarted from a nodes.conf that missed the last SETSLOTs is
//   brought up to date by that push or retry, exactly as one restarted from an older file would be.
// Pending writes are flushed at shutdown (`ClusterState.flushConfig()`), and by CLUSTER SAVECONFIG.
import CacheStore
import Dispatch
import Foundation
import Synchronization

/// Writes a node's nodes.conf, now or coalesced off the event loop.
final class ClusterConfigWriter: Sendable {
    /// The file (absolute).
    let path: String
    /// The newest topology not yet written, and whether a drain is queued or running.
    private let state = Mutex<(pending: ClusterTopology?, draining: Bool)>((nil, false))
    private let queue = DispatchQueue(label: "cache-node.nodes-conf")
    /// How many times the file was written (tests: coalescing).
    let writes = Atomic<Int>(0)

    init(path: String) {
        self.path = path
    }

    /// Writes `topology` (or a newer one scheduled meanwhile) before returning.
    func write(_ topology: ClusterTopology) {
        schedule(topology)
        flush()
    }

    /// Keeps `topology` as the next content and makes sure a background write will pick it up.
    func schedule(_ topology: ClusterTopology) {
        let start = state.withLock { state -> Bool in
            state.pending = topology
            if state.draining { return false }
            state.draining = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    /// Waits until nothing scheduled is left unwritten.
    func flush() {
        queue.sync { drain() }
    }

    /// Writes pending topologies until none is left (on the queue only, so writes never overlap or reorder).
    private func drain() {
        while true {
            let next = state.withLock { state -> ClusterTopology? in
                guard let pending = state.pending else {
                    state.draining = false
                    return nil
                }
                state.pending = nil
                return pending
            }
            guard let next else { return }
            save(next)
        }
    }

    private func save(_ topology: ClusterTopology) {
        let text = topology.nodesDescription(now: 0)
            + "vars currentEpoch \(topology.currentEpoch) lastVoteEpoch 0 topologyEpoch \(topology.topologyEpoch)\n"
        let temporary = path + ".tmp-\(getpid())"
        do {
            try text.write(toFile: temporary, atomically: false, encoding: .utf8)
            _ = rename(temporary, path)
            writes.add(1, ordering: .relaxed)
        } catch {
            // Not fatal: the topology source pushes again after a restart.
        }
    }
}
