// The `NFVStore` in etcd, for HA framework instances: the NFV lifecycle state follows the leader like the
// scheduler's state does (`EtcdStateStore`). The whole `NFVSnapshot` is one JSON value at `<prefix>/nfv/snapshot`;
// each batch is a read, apply and write of that key in one transaction that also compares the leader's fence and
// the key's mod revision, so a deposed leader writes nothing and no batch is lost to a concurrent write. NFV state
// is small (instances and their operation occurrences), well under etcd's 1.5 MiB request limit.

public import CacheFrameworkNFV
public import CacheFrameworkRuntime
import Foundation

/// An `NFVStore` holding its snapshot in one etcd key.
public struct EtcdNFVStore: NFVStore {
    /// The client.
    public let client: EtcdClient
    /// The framework's key prefix (as `EtcdStateStore`'s), without a trailing slash.
    public let prefix: String
    /// The leader key writes are conditional on (`nil`: unguarded).
    public let fence: EtcdFence?

    /// Creates a store under `prefix`, fenced by the leader's term.
    public init(client: EtcdClient, prefix: String = "/cache-framework", fence: EtcdFence?) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        self.fence = fence
    }

    /// The key of the snapshot.
    public var key: String { prefix + "/nfv/snapshot" }

    public func load() async throws -> NFVSnapshot {
        try await read().snapshot
    }

    public func apply(_ batch: NFVBatch) async throws {
        let (snapshot, modRevision) = try await read()
        var next = snapshot
        next.apply(batch)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let value = Array(try encoder.encode(next))
        let compare = (fence.map { [$0.compare] } ?? []) + [EtcdCompare(key: key, .equal, .modRevision(modRevision))]
        let result = try await client.txn(compare: compare, success: [.put(key: key, value: value)])
        guard result.succeeded else {
            throw NFVStoreError(
                message: "NFV batch \(batch.id) was not written to etcd: this instance is no longer the leader "
                    + "(election key \(fence.map(\.description) ?? "-")) or \(key) changed under it; the instance steps down")
        }
    }

    private func read() async throws -> (snapshot: NFVSnapshot, modRevision: Int64) {
        guard let kv = try await client.range(key).kvs.first else { return (NFVSnapshot(), 0) }
        do {
            return (try JSONDecoder().decode(NFVSnapshot.self, from: Data(kv.value)), kv.modRevision)
        } catch {
            throw NFVStoreError(
                message: "etcd key \(key) does not hold an NFV snapshot (\(error)); delete it with etcdctl or restore it from a backup")
        }
    }
}
