// Role changes and the replica side of ReplicationState: REPLICAOF host port (become a replica and start the link),
// REPLICAOF NO ONE (promote, keeping data and shifting the replication id so the other replicas can continue by
// partial resync), and the link's bookkeeping (full sync loaded, CONTINUE, stream bytes applied).
import CacheStore
import Foundation
import Logging
import NIOCore
import RESPServer
import ReplicationSec
import Synchronization

/// What the server wires in at start-up for links to primaries.
struct ReplicationRuntime: Sendable {
    var group: any EventLoopGroup
    var logger: Logger
    var security: NodeSecurity?
}

extension ReplicationState {
    /// Installs the event loops, logger and identity used by replica links.
    func install(_ runtime: ReplicationRuntime) {
        self.runtime.withLock { $0 = runtime }
    }

    /// Loads the signed revocation list at `path` and installs it (`CONFIG SET revocation-list`, pushed by the
    /// framework): new handshakes check it, and the trust store closes open secure links whose peer it revokes. A list
    /// that is not newer than the installed one changes nothing.
    func installRevocationList(at path: String) throws(ConfigurationError) {
        guard let security = runtime.withLock({ $0?.security }) else {
            throw ConfigurationError("this node has no identity (--node-identity), so there are no peers to check a revocation list against")
        }
        let list: RevocationList
        do {
            list = try KeyFiles.decodeRevocationList(try String(contentsOfFile: path, encoding: .utf8), authority: security.trustStore.authority)
        } catch {
            throw ConfigurationError("cannot load the revocation list \(path): \(error)")
        }
        do {
            try security.trustStore.install(list)
            logger.notice("Installed revocation list \(list.sequence) (\(list.serials.count) revoked)")
        } catch {
            guard error.code == SecureChannelError.staleRevocationList.code else { throw ConfigurationError("cannot install the revocation list \(path): \(error)") }
        }
    }

    /// Connections for MIGRATE outside cluster mode.
    var peers: ClusterPeerPool { peersStorage.withLock { $0 } }

    /// Sends MIGRATE traffic outside cluster mode through `transport` from now on.
    func usePeerTransport(_ transport: any ClusterPeerTransport) {
        let pool = ClusterPeerPool(transport: transport)
        peersStorage.withLock { $0 = pool }
    }

    /// Whether `connection` arrived through the secure replication listener.
    func isSecureConnection(_ connection: ClientConnection) -> Bool {
        let port = securePort.load(ordering: .relaxed)
        guard port >= 0 else { return false }
        return connection.localAddress.hasSuffix(":\(port)")
    }

    /// Why a replica's PSYNC/REPLCONF on `connection` must be refused, or `nil`.
    func refusal(for connection: ClientConnection) -> CommandError? {
        if hasIdentity {
            guard isSecureConnection(connection) else {
                let port = securePort.load(ordering: .relaxed)
                return CommandError(
                    "secure replication required: this node replicates only over the secure channel on its replication port \(port); start the replica with --node-identity and --cluster-authority and point it at that port")
            }
            return nil
        }
        guard plaintextAllowed else {
            return CommandError(
                "plaintext replication is disabled: start both nodes with --replication-plaintext yes, or give both --node-identity and --cluster-authority")
        }
        return nil
    }

    /// Why this node cannot become a replica, or `nil`.
    func replicaRefusal() -> CommandError? {
        if !hasIdentity && !plaintextAllowed {
            return CommandError(
                "plaintext replication is disabled: start this node with --replication-plaintext yes (on the primary too), or give both nodes --node-identity and --cluster-authority")
        }
        return nil
    }

    /// The current link (replica side).
    var link: ReplicaLink? { linkStorage.withLock { $0 } }

    // MARK: REPLICAOF

    /// REPLICAOF host port: stops any current link, becomes a read-only replica (keeping its data until a full
    /// sync replaces it) and starts the link. Returns `false` when already replicating from that primary.
    @discardableResult
    func becomeReplica(of host: String, port: Int, node: NodeState) -> Bool {
        if let current = link, current.host == host, current.port == port { return false }
        link?.stop()
        guard let runtime = runtime.withLock({ $0 }) else { return false }
        // Keep what this node holds so it can try a partial resync: its id and offset.
        let (cachedID, offset): (String?, Int64) = core.withLock { core in
            for feed in core.feeds { feed.closed = true; let connection = feed.connection; connection.eventLoop.execute { connection.close() } }
            core.feeds.removeAll()
            guard let backlog = core.backlog else { return (nil, -1) }
            return (core.identity.replid, backlog.masterOffset)
        }
        modeStorage.store(Mode.replica.rawValue, ordering: .relaxed)
        node.keyspace.isReplica = true
        let security = runtime.security.map { $0.clientConfiguration(logger: runtime.logger) }
        let link = ReplicaLink(
            node: node, host: host, port: port, security: security, eventLoop: runtime.group.next(),
            logger: runtime.logger, listeningPort: node.boundPort.load(ordering: .relaxed), cachedReplID: cachedID, offset: offset)
        linkStorage.withLock { $0 = link }
        runtime.logger.notice("Replicating from \(host):\(port)")
        link.start()
        return true
    }

    /// REPLICAOF NO ONE: stops the link and becomes a primary, keeping the data; the primary's id moves to
    /// `master_replid2` (valid up to the offset reached) so the other replicas can PSYNC to this node.
    func promote(node: NodeState) {
        let stopped = linkStorage.withLock { link -> ReplicaLink? in
            defer { link = nil }
            return link
        }
        stopped?.stop()
        guard mode == .replica else { return }
        core.withLock { core in
            if core.backlog == nil {
                core.backlog = ReplicationBacklog(capacity: core.backlogSize, masterOffset: 0)
            }
            core.identity.shift(to: ReplicationIdentity.random(), at: core.masterOffset)
            core.lastDatabase = -1
        }
        node.keyspace.isReplica = false
        modeStorage.store(Mode.primary.rawValue, ordering: .relaxed)
        runtime.withLock { $0 }?.logger.notice("Promoted to primary (REPLICAOF NO ONE); previous replication id kept as replid2")
    }

    // MARK: link bookkeeping

    /// A full copy at `offset` of the primary's stream `replid` was loaded.
    func fullSyncLoaded(replid: String, offset: Int64) {
        core.withLock { core in
            core.identity.adopt(replid, keepingHistoryUpTo: nil)
            core.backlog = ReplicationBacklog(capacity: core.backlogSize, masterOffset: offset)
            // The link's session starts the stream in database 0.
            core.streamDatabase = 0
        }
    }

    /// The primary accepted a partial resync; with `newReplID` when its id changed (it was promoted).
    func continued(newReplID: String?, at offset: Int64) {
        core.withLock { core in
            if core.backlog == nil { core.backlog = ReplicationBacklog(capacity: core.backlogSize, masterOffset: offset) }
            if let newReplID { core.identity.shift(to: newReplID, at: offset) }
        }
    }

    /// Stream bytes applied on this replica: recorded verbatim, so the offsets match the primary's. `database` is
    /// the stream's selected database after them.
    func appendFromPrimary(_ bytes: ByteBuffer, database: Int) {
        core.withLock { core in
            core.streamDatabase = database
            Self.appendLocked(&core, bytes, now: nil)
        }
    }

    /// Starts recording the stream now (as the first replica's sync does), with every stripe locked.
    func startRecording(keyspace: Keyspace) {
        keyspace.withAllLocked { core.withLock { activateLocked(&$0) } }
    }

    /// The stream bytes held in the backlog from `offset`, if it covers them.
    func backlogBytes(from offset: Int64) -> [UInt8]? {
        core.withLock { $0.backlog?.bytes(from: offset) }
    }

    /// Marks this node a replica without a link (tests of the replica's rules).
    func markReplicaForTesting(keyspace: Keyspace) {
        modeStorage.store(Mode.replica.rawValue, ordering: .relaxed)
        keyspace.isReplica = true
    }

    // MARK: persistence

    /// Runs `body` at a point where the keyspace and the stream offset agree: between two commands applied from
    /// the primary on a replica (snapshots call this, then freeze the stripes inside it).
    func withStreamApplyPaused<Result>(_ body: () -> Result) -> Result {
        guard let link else { return body() }
        return link.withStreamApplyPaused(body)
    }

    /// The replication id and offset the keyspace matches, as snapshot auxiliary fields; empty when this node never
    /// took part in replication. Call while every stripe is locked (inside a snapshot's freeze).
    func persistedPosition() -> [String: String] {
        core.withLock { core in
            guard let backlog = core.backlog else { return [:] }
            return [
                SnapshotFormat.AuxiliaryField.replicationID: core.identity.replid,
                SnapshotFormat.AuxiliaryField.replicationOffset: String(backlog.masterOffset),
            ]
        }
    }

    /// At start-up of a node configured as a replica, adopts the replication id and offset saved with the snapshot it
    /// loaded (redis replicationCacheMasterUsingMyself), so its link asks for a partial resync from there. The node
    /// is read-only from now on. Returns the adopted position, or `nil` when the snapshot had none.
    @discardableResult
    func restoreReplicaPosition(from auxiliary: [String: String], keyspace: Keyspace) -> (replid: String, offset: Int64)? {
        guard let replid = auxiliary[SnapshotFormat.AuxiliaryField.replicationID], replid.utf8.count == 40,
              let offsetText = auxiliary[SnapshotFormat.AuxiliaryField.replicationOffset], let offset = Int64(offsetText), offset >= 0
        else { return nil }
        core.withLock { core in
            core.identity = ReplicationIdentity(replid: replid)
            core.backlog = ReplicationBacklog(capacity: core.backlogSize, masterOffset: offset)
        }
        modeStorage.store(Mode.replica.rawValue, ordering: .relaxed)
        keyspace.isReplica = true
        return (replid, offset)
    }

    /// Stops the link at shutdown.
    func shutdown() {
        linkStorage.withLock { $0 }?.stop()
    }
}
