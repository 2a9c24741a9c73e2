// The `StateStore` in etcd, for several framework instances of which one leads (`EtcdLeaderElection`): the leader
// writes the scheduler's intents and the local backend's process journal here, and a new leader loads them, so it
// reconciles and adopts the running tasks instead of launching them again.
//
// Key layout under the prefix (default `/cache-framework`; values are JSON unless noted):
//   <prefix>/leader                      the election key (EtcdLeaderElection), attached to the leader's lease
//   <prefix>/state/framework_id          the framework id (text)
//   <prefix>/state/next_task_number      the next task number (decimal text; never lowered)
//   <prefix>/state/clusters/<name>       a ClusterSpec
//   <prefix>/state/tasks/<task id>       a TaskRecord
//   <prefix>/state/layouts/<name>        a ClusterLayout (cluster-mode slots, topology epoch, heals)
//   <prefix>/state/volume-homes/<slot>   the agent id holding a persistent member slot's volume (plain text)
//   <prefix>/state/pending               a batch too large for one transaction, while it is being applied
//   <prefix>/local/<task id>             a local backend process (LocalTaskEntry: task info, pid, start ticks)
//
// Atomicity: a batch is one etcd transaction whose success branch holds every put and delete of the batch (several
// intents on one key collapse to the last, as etcd refuses a key twice in a transaction). A batch with more
// operations than etcd allows in one transaction (`--max-txn-ops`, 128 by default) is first written whole to
// `state/pending` in one transaction, then applied in chunks, then `pending` is deleted; `load` applies a pending
// batch on top of the state (and, for a leader, finishes applying it), so such a batch too is seen all or nothing.
//
// Fencing: with a `fence` (the leader key and the create revision of the leader's own election key), every
// transaction compares the leader key's create revision first. A deposed leader — its lease expired, the key deleted
// or re-created by another instance — gets `EtcdError.fenced` and writes nothing, even if it has not yet noticed.

public import CacheFramework
import Foundation

/// The leader key a write is conditional on.
public struct EtcdFence: Hashable, Sendable, CustomStringConvertible {
    /// The election key.
    public var key: String
    /// The create revision of the key when this instance created it.
    public var createRevision: Int64

    /// Creates a fence.
    public init(key: String, createRevision: Int64) {
        self.key = key
        self.createRevision = createRevision
    }

    /// The comparison every guarded transaction starts with.
    public var compare: EtcdCompare { EtcdCompare(key: key, .equal, .createRevision(createRevision)) }

    public var description: String { "\(key)@\(createRevision)" }
}

/// A `StateStore` (and local process journal) in etcd.
public struct EtcdStateStore: StateStore, LocalTaskJournal {
    /// The client.
    public let client: EtcdClient
    /// The key prefix, without a trailing slash.
    public let prefix: String
    /// The leader key writes are conditional on (`nil`: unguarded, for tools and tests).
    public let fence: EtcdFence?
    /// The most operations put in one transaction (etcd's `--max-txn-ops`, 128 by default).
    public let maximumOperationsPerTransaction: Int

    /// Creates a store.
    /// - Parameters:
    ///   - client: the etcd client.
    ///   - prefix: where the framework's keys live, e.g. `/cache-framework`.
    ///   - fence: the leader's election key and its create revision; every write is refused once it changed.
    ///   - maximumOperationsPerTransaction: etcd's `--max-txn-ops`.
    public init(client: EtcdClient, prefix: String = "/cache-framework", fence: EtcdFence?, maximumOperationsPerTransaction: Int = 128) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        self.fence = fence
        self.maximumOperationsPerTransaction = max(2, maximumOperationsPerTransaction)
    }

    /// The election key under `prefix`.
    public static func leaderKey(prefix: String) -> String {
        (prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix) + "/leader"
    }

    var statePrefix: String { prefix + "/state/" }
    var frameworkIDKey: String { prefix + "/state/framework_id" }
    var nextTaskNumberKey: String { prefix + "/state/next_task_number" }
    var pendingKey: String { prefix + "/state/pending" }
    var clustersPrefix: String { prefix + "/state/clusters/" }
    var tasksPrefix: String { prefix + "/state/tasks/" }
    var layoutsPrefix: String { prefix + "/state/layouts/" }
    var volumeHomesPrefix: String { prefix + "/state/volume-homes/" }
    var localPrefix: String { prefix + "/local/" }

    // MARK: StateStore

    public func load() async throws -> SchedulerSnapshot {
        let range = try await client.range(prefix: statePrefix)
        var snapshot = SchedulerSnapshot()
        let decoder = JSONDecoder()
        var pending: PendingBatch?
        for kv in range.kvs {
            do {
                if kv.key == frameworkIDKey {
                    snapshot.frameworkID = FrameworkID(kv.stringValue)
                } else if kv.key == nextTaskNumberKey {
                    snapshot.nextTaskNumber = UInt64(kv.stringValue) ?? snapshot.nextTaskNumber
                } else if kv.key == pendingKey {
                    pending = try decoder.decode(PendingBatch.self, from: Data(kv.value))
                } else if kv.key.hasPrefix(clustersPrefix) {
                    let spec = try decoder.decode(ClusterSpec.self, from: Data(kv.value))
                    snapshot.clusters[spec.name] = spec
                } else if kv.key.hasPrefix(tasksPrefix) {
                    let record = try decoder.decode(TaskRecord.self, from: Data(kv.value))
                    snapshot.tasks[record.taskID] = record
                } else if kv.key.hasPrefix(layoutsPrefix) {
                    let layout = try decoder.decode(ClusterLayout.self, from: Data(kv.value))
                    snapshot.layouts[layout.cluster] = layout
                } else if kv.key.hasPrefix(volumeHomesPrefix), let slot = MemberSlot(description: String(kv.key.dropFirst(volumeHomesPrefix.count))) {
                    snapshot.volumeHomes[slot] = AgentID(kv.stringValue)
                }
            } catch {
                throw StateStoreError(message: "etcd key \(kv.key) does not hold what the framework wrote there (\(error)); "
                    + "delete it with etcdctl or restore the prefix \(prefix) from a backup")
            }
        }
        if let pending {
            // A large batch was interrupted: it counts as applied (its record was durable); a leader finishes it.
            for operation in pending.operations { operation.apply(to: &snapshot, store: self) }
            if fence != nil { try await finish(pending) }
        }
        return snapshot
    }

    public func apply(_ batch: PersistBatch) async throws {
        var operations = try storeOperations(for: batch.intents)
        if batch.intents.contains(where: { if case .setNextTaskNumber = $0 { true } else { false } }) {
            // Never lower it: read what is stored (only the fenced leader writes it) and keep the larger.
            let stored = try await client.range(nextTaskNumberKey).kvs.first.flatMap { UInt64($0.stringValue) } ?? 0
            if let index = operations.firstIndex(where: { $0.key == nextTaskNumberKey }),
                case .put(let key, let value) = operations[index], let number = UInt64(String(decoding: value, as: UTF8.self))
            {
                operations[index] = .put(key: key, value: Array(String(max(number, stored)).utf8))
            }
        }
        guard !operations.isEmpty else { return }
        if operations.count <= maximumOperationsPerTransaction - 1 {
            try await guardedTransaction(operations.map(\.etcd), what: "batch \(batch.id)")
            return
        }
        let pending = PendingBatch(batchID: batch.id, operations: operations)
        let encoded = try JSONEncoder().encode(pending)
        try await guardedTransaction([.put(key: pendingKey, value: Array(encoded))], what: "batch \(batch.id) (recorded as pending)")
        try await finish(pending)
    }

    /// Applies a recorded pending batch in chunks, then deletes the record.
    private func finish(_ pending: PendingBatch) async throws {
        let chunkSize = maximumOperationsPerTransaction - 1
        var start = 0
        while start < pending.operations.count {
            let chunk = pending.operations[start..<min(start + chunkSize, pending.operations.count)]
            try await guardedTransaction(chunk.map(\.etcd), what: "batch \(pending.batchID) (chunk at \(start))")
            start += chunkSize
        }
        try await guardedTransaction([.deleteRange(key: pendingKey)], what: "batch \(pending.batchID) (completion)")
    }

    /// Runs `operations` in one transaction, conditional on the fence.
    private func guardedTransaction(_ operations: [EtcdOperation], what: String) async throws {
        guard let fence else {
            _ = try await client.txn(compare: [], success: operations)
            return
        }
        let result = try await client.txn(compare: [fence.compare], success: operations, failure: [.range(key: fence.key)])
        guard result.succeeded else {
            var holder = "nobody"
            if case .range(let kvs)? = result.results.first, let kv = kvs.first {
                holder = "\(kv.stringValue) (create revision \(kv.createRevision))"
            }
            throw EtcdError(
                .fenced,
                "this instance is no longer the leader (its election key \(fence) is gone; now held by \(holder)): "
                    + "\(what) was not written; the instance steps down")
        }
    }

    /// The batch's intents as one operation per key, in first-touch order, each key's last intent winning.
    private func storeOperations(for intents: [StateIntent]) throws -> [StoreOperation] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var order: [String] = []
        var byKey: [String: StoreOperation] = [:]
        func set(_ operation: StoreOperation) {
            if byKey[operation.key] == nil { order.append(operation.key) }
            byKey[operation.key] = operation
        }
        var nextTaskNumber: UInt64?
        for intent in intents {
            switch intent {
            case .setFrameworkID(let id):
                set(.put(key: frameworkIDKey, value: Array(id.value.utf8)))
            case .putCluster(let spec):
                set(.put(key: clustersPrefix + spec.name, value: Array(try encoder.encode(spec))))
            case .deleteCluster(let name):
                set(.delete(key: clustersPrefix + name))
                set(.delete(key: layoutsPrefix + name))
            case .putLayout(let layout):
                set(.put(key: layoutsPrefix + layout.cluster, value: Array(try encoder.encode(layout))))
            case .putTask(let record):
                set(.put(key: tasksPrefix + record.taskID.value, value: Array(try encoder.encode(record))))
            case .deleteTask(let id):
                set(.delete(key: tasksPrefix + id.value))
            case .setNextTaskNumber(let number):
                nextTaskNumber = max(nextTaskNumber ?? 0, number)
                set(.put(key: nextTaskNumberKey, value: Array(String(nextTaskNumber!).utf8)))
            case .putVolumeHome(let slot, let agentID):
                set(.put(key: volumeHomesPrefix + slot.description, value: Array(agentID.value.utf8)))
            case .deleteVolumeHome(let slot):
                set(.delete(key: volumeHomesPrefix + slot.description))
            }
        }
        return order.map { byKey[$0]! }
    }

    // MARK: LocalTaskJournal

    public func recordLaunch(_ entry: LocalTaskEntry) async throws { try await recordLaunches([entry]) }

    public func recordLaunches(_ entries: [LocalTaskEntry]) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let operations: [EtcdOperation] = try entries.map {
            .put(key: localPrefix + $0.info.taskID.value, value: Array(try encoder.encode(JournalEntry($0))))
        }
        var start = 0
        let chunkSize = maximumOperationsPerTransaction - 1
        while start < operations.count {
            try await guardedTransaction(Array(operations[start..<min(start + chunkSize, operations.count)]), what: "the process journal")
            start += chunkSize
        }
    }

    public func recordExit(_ taskID: TaskID) async throws {
        try await guardedTransaction([.deleteRange(key: localPrefix + taskID.value)], what: "the exit of \(taskID)")
    }

    public func loadLaunches() async throws -> [LocalTaskEntry] {
        let decoder = JSONDecoder()
        return try await client.range(prefix: localPrefix).kvs.map { kv in
            do {
                return try decoder.decode(JournalEntry.self, from: Data(kv.value)).entry
            } catch {
                throw StateStoreError(message: "etcd key \(kv.key) is not a process journal entry (\(error)); delete it with etcdctl")
            }
        }
    }
}

/// One write of a batch, keyed.
enum StoreOperation: Codable, Hashable, Sendable {
    case put(key: String, value: [UInt8])
    case delete(key: String)

    var key: String {
        switch self {
        case .put(let key, _), .delete(let key): key
        }
    }

    var etcd: EtcdOperation {
        switch self {
        case .put(let key, let value): .put(key: key, value: value)
        case .delete(let key): .deleteRange(key: key)
        }
    }

    /// What the operation does to a loaded snapshot (for a pending batch not yet applied).
    func apply(to snapshot: inout SchedulerSnapshot, store: EtcdStateStore) {
        let decoder = JSONDecoder()
        switch self {
        case .put(let key, let value):
            if key == store.frameworkIDKey {
                snapshot.frameworkID = FrameworkID(String(decoding: value, as: UTF8.self))
            } else if key == store.nextTaskNumberKey, let number = UInt64(String(decoding: value, as: UTF8.self)) {
                snapshot.nextTaskNumber = max(snapshot.nextTaskNumber, number)
            } else if key.hasPrefix(store.clustersPrefix), let spec = try? decoder.decode(ClusterSpec.self, from: Data(value)) {
                snapshot.clusters[spec.name] = spec
            } else if key.hasPrefix(store.tasksPrefix), let record = try? decoder.decode(TaskRecord.self, from: Data(value)) {
                snapshot.tasks[record.taskID] = record
            } else if key.hasPrefix(store.layoutsPrefix), let layout = try? decoder.decode(ClusterLayout.self, from: Data(value)) {
                snapshot.layouts[layout.cluster] = layout
            } else if key.hasPrefix(store.volumeHomesPrefix), let slot = MemberSlot(description: String(key.dropFirst(store.volumeHomesPrefix.count))) {
                snapshot.volumeHomes[slot] = AgentID(String(decoding: value, as: UTF8.self))
            }
        case .delete(let key):
            if key.hasPrefix(store.clustersPrefix) {
                snapshot.clusters[String(key.dropFirst(store.clustersPrefix.count))] = nil
            } else if key.hasPrefix(store.tasksPrefix) {
                snapshot.tasks[TaskID(String(key.dropFirst(store.tasksPrefix.count)))] = nil
            } else if key.hasPrefix(store.layoutsPrefix) {
                snapshot.layouts[String(key.dropFirst(store.layoutsPrefix.count))] = nil
            } else if key.hasPrefix(store.volumeHomesPrefix), let slot = MemberSlot(description: String(key.dropFirst(store.volumeHomesPrefix.count))) {
                snapshot.volumeHomes[slot] = nil
            }
        }
    }
}

/// A batch too large for one transaction, recorded before it is applied in chunks.
struct PendingBatch: Codable, Hashable, Sendable {
    var batchID: UInt64
    var operations: [StoreOperation]
}

/// `LocalTaskEntry` as JSON.
struct JournalEntry: Codable {
    var info: TaskInfo
    var pid: Int32
    var startTicks: UInt64

    init(_ entry: LocalTaskEntry) {
        info = entry.info
        pid = entry.pid
        startTicks = entry.startTicks
    }

    var entry: LocalTaskEntry { LocalTaskEntry(info: info, pid: pid, startTicks: startTicks) }
}
