// The cluster authority of HA framework instances, kept in etcd instead of on shared storage: the key file
// (`authority.key`, the ReplicationSec authority key pair as `FrameworkAuthority` writes it) is the value of
// `<prefix>/authority/key`. A leader calls `materialize` before it loads its `FrameworkAuthority`: the key in etcd is
// written to the instance's authority directory (mode 0600 in a 0700 directory, as `FrameworkAuthority` keeps it);
// the first leader, finding none, creates the authority locally (or keeps the one already there, e.g. from the
// former `--authority-dir`) and stores it, put-if-absent and fenced by its leadership term, so two leaders never
// store two different authorities. Every leader therefore issues member identities from the same key.
//
// The key is stored as it is in the file, not encrypted: whoever can read the prefix in etcd can issue member
// identities, exactly as whoever can read the 0600 file can. Restrict the prefix with etcd's authentication and
// role-based access (and client TLS) to the framework's user.

import Foundation

/// Moves the framework's cluster authority between etcd and an instance's authority directory.
public struct EtcdAuthorityStore: Sendable {
    /// The client.
    public let client: EtcdClient
    /// The framework's key prefix, without a trailing slash.
    public let prefix: String
    /// The leader's term; the first store of the key is conditional on it.
    public let fence: EtcdFence?

    /// Creates the store.
    public init(client: EtcdClient, prefix: String = "/cache-framework", fence: EtcdFence?) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        self.fence = fence
    }

    /// The key holding `authority.key`.
    public var key: String { prefix + "/authority/key" }

    /// Makes `directory/authority.key` the authority stored in etcd, storing this instance's (created if needed)
    /// when etcd has none yet. Afterwards `FrameworkAuthority(directory:)` loads the shared authority.
    public func materialize(into directory: String) async throws {
        let path = directory + "/authority.key"
        if let stored = try await client.range(key).kvs.first {
            try Self.write(stored.value, to: path, directory: directory)
            return
        }
        _ = try FrameworkAuthority(directory: directory)
        guard let local = FileManager.default.contents(atPath: path) else {
            throw FrameworkAuthorityError(message: "cannot read \(path) to store the cluster authority in etcd")
        }
        let result = try await client.txn(
            compare: (fence.map { [$0.compare] } ?? []) + [EtcdCompare(key: key, .equal, .version(0))],
            success: [.put(key: key, value: Array(local))],
            failure: [.range(key: key)])
        if !result.succeeded, case .range(let kvs)? = result.results.first, let stored = kvs.first {
            // Another term stored one first: use it.
            try Self.write(stored.value, to: path, directory: directory)
        } else if !result.succeeded {
            throw EtcdError(.fenced, "the cluster authority was not stored in etcd: this instance is no longer the leader")
        }
    }

    private static func write(_ bytes: [UInt8], to path: String, directory: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if manager.contents(atPath: path) == Data(bytes) { return }
        let temporary = path + ".tmp"
        guard manager.createFile(atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o600]),
            rename(temporary, path) == 0
        else { throw FrameworkAuthorityError(message: "cannot write the cluster authority from etcd to \(path)") }
    }
}
