// The node's replication hub (redis replication.c, primary side): the replication ids, the backlog, the stream
// offset, the replicas being fed and the clients waiting in WAIT. Write commands append to the stream here while
// their stripe locks are still held, so for any key the stream order is the order the commands ran in, across
// event loops; one mutex then orders the whole stream.
//
// Cost when replication is off: the dispatcher loads one atomic (`mode`) per write command and does nothing else.
// Recording starts the first time a replica asks for a sync (as redis creates its backlog on the first replica)
// and never stops; a replica node records the primary's stream verbatim instead (so after a promotion the other
// replicas can continue from its backlog).
//
// Lock order: stripe locks → `core`; nothing calls back into the keyspace or a channel synchronously while `core`
// is held (flushes and closes are scheduled on the replica's event loop).
public import CacheStore
import Logging
import NIOCore
import RESPServer
public import Synchronization

/// How a connection takes part in replication.
public enum ReplicationLinkRole: Sendable {
    /// An ordinary client.
    case none
    /// A replica between REPLCONF and PSYNC; `streamsSnapshot`: it announced `capa eof` (takes a snapshot framed
    /// by an end mark, streamed as it is produced, rather than a `$<length>` bulk).
    case handshaking(listeningPort: Int, streamsSnapshot: Bool)
    /// A replica this node feeds.
    case replica(ReplicaFeed)
    /// This replica's link to its primary (the "master client": writes allowed, nothing propagated).
    case primary
}

/// One replica fed by this node. Its mutable fields are guarded by the replication state's lock.
public final class ReplicaFeed: @unchecked Sendable {
    let connection: ClientConnection
    let listeningPort: Int
    /// Streaming (after the snapshot was sent, or at once for a partial resync).
    var online = false
    var closed = false
    var pending: ByteBuffer
    var flushScheduled = false
    /// Bytes handed to the channel and not yet written to the socket.
    let inFlight = Atomic<Int>(0)
    var ackOffset: Int64 = 0
    var lastAckMilliseconds: Int64
    var softLimitSince: Int64?
    weak var owner: ReplicationState?

    init(connection: ClientConnection, listeningPort: Int) {
        self.connection = connection
        self.listeningPort = listeningPort
        self.pending = connection.allocator.buffer(capacity: 0)
        self.lastAckMilliseconds = monotonicMilliseconds()
    }

    /// The replica's address as INFO prints it.
    var ip: String { String(connection.remoteAddress.split(separator: ":").dropLast().joined(separator: ":")) }
}

/// A client blocked in WAIT.
struct WaitRequest {
    let id: Int
    let target: Int64
    let needed: Int
    let connection: ClientConnection
}

/// Everything under the replication lock.
struct ReplicationCore {
    var identity: ReplicationIdentity
    var backlog: ReplicationBacklog?
    var backlogSize: Int
    /// The database the stream last selected (-1 forces a SELECT before the next command).
    var lastDatabase = -1
    var scratch = ByteBuffer()
    /// A transaction being collected (EXEC holds every stripe, so at most one at a time).
    var transaction = ByteBuffer()
    var transactionDatabase = -1
    var transactionCommands = 0
    var feeds: [ReplicaFeed] = []
    var waiters: [WaitRequest] = []
    var nextWaiterID = 0
    var outputLimit: OutputLimit
    /// The append-only file, fed with every stream byte while `appendonly` is on.
    var appendOnlyLog: AppendOnlyLog?
    /// On a replica: the database the primary's stream has selected (a new AOF file starts with it).
    var streamDatabase = 0

    var masterOffset: Int64 { backlog?.masterOffset ?? 0 }
}

/// The node's replication state.
public final class ReplicationState: KeyspaceObserver, @unchecked Sendable {
    /// What the node does with its stream.
    public enum Mode: Int, Sendable {
        /// No replica ever connected: nothing is recorded.
        case off = 0
        /// A primary recording its writes.
        case primary = 1
        /// A replica recording its primary's stream.
        case replica = 2
    }

    let modeStorage = Atomic<Int>(Mode.off.rawValue)
    let readOnlyStorage = Atomic<Bool>(true)
    let core: Mutex<ReplicationCore>
    /// INFO stats `sync_full`, `sync_partial_ok`, `sync_partial_err`.
    public let syncFull = Atomic<Int>(0)
    /// Replicas closed for passing the replica class of `client-output-buffer-limit`.
    public let outputLimitDisconnections = Atomic<Int>(0)
    public let syncPartialOK = Atomic<Int>(0)
    public let syncPartialErr = Atomic<Int>(0)
    /// The replica side: the link to the primary, if any.
    let linkStorage = Mutex<ReplicaLink?>(nil)
    /// Wired in by the server at start-up.
    let runtime = Mutex<ReplicationRuntime?>(nil)

    /// Security policy: whether the node has an identity (replication only over the secure port) and whether
    /// plaintext replication was opted into.
    let hasIdentity: Bool
    let plaintextAllowed: Bool
    /// The secure replication listener's port (-1 until bound).
    let securePort = Atomic<Int>(-1)
    /// Connections for MIGRATE outside cluster mode (``NodePeerTransport``: secure once the server installs the
    /// identity, plaintext only by opt-in).
    let peersStorage: Mutex<ClusterPeerPool>

    init(configuration: NodeConfiguration) {
        hasIdentity = configuration.nodeIdentity != nil
        plaintextAllowed = configuration.replicationPlaintext
        peersStorage = Mutex(ClusterPeerPool(transport: NodePeerTransport(
            policy: configuration.replicationPlaintext ? .plaintext : .refused, logger: Logger(label: "cache-node.replication"))))
        core = Mutex(ReplicationCore(
            identity: ReplicationIdentity(replid: ReplicationIdentity.random()), backlogSize: configuration.replBacklogSize,
            outputLimit: configuration.clientOutputBufferLimits.replica))
        readOnly = configuration.replicaReadOnly
    }

    /// The current mode.
    public var mode: Mode { Mode(rawValue: modeStorage.load(ordering: .relaxed)) ?? .off }

    /// Whether writes are appended to the stream (one relaxed load: the dispatcher's only cost when off).
    @inline(__always)
    public var isRecording: Bool { modeStorage.load(ordering: .relaxed) == Mode.primary.rawValue }

    /// Whether this node is a replica.
    @inline(__always)
    public var isReplica: Bool { modeStorage.load(ordering: .relaxed) == Mode.replica.rawValue }

    /// `replica-read-only`.
    var readOnly: Bool {
        get { readOnlyStorage.load(ordering: .relaxed) }
        set { readOnlyStorage.store(newValue, ordering: .relaxed) }
    }

    func apply(_ configuration: NodeConfiguration) {
        readOnly = configuration.replicaReadOnly
        core.withLock { core in
            core.backlogSize = configuration.replBacklogSize
            core.backlog?.resize(to: configuration.replBacklogSize)
            core.outputLimit = configuration.clientOutputBufferLimits.replica
        }
    }

    /// The ids, offset and backlog figures (INFO, ROLE).
    public var snapshot: (identity: ReplicationIdentity, offset: Int64, backlog: (size: Int, first: Int64, length: Int)?) {
        core.withLock { core in
            (core.identity, core.masterOffset,
             core.backlog.map { ($0.capacity, $0.firstByteOffset, $0.historyLength) })
        }
    }

    // MARK: recording (primary)

    /// Starts recording if not yet (call with every stripe locked, so no write is half-propagated): creates the
    /// backlog at the current offset. Returns the offset.
    func activateLocked(_ core: inout ReplicationCore) {
        if core.backlog == nil {
            core.backlog = ReplicationBacklog(capacity: core.backlogSize, masterOffset: 0)
        }
        if modeStorage.load(ordering: .relaxed) == Mode.off.rawValue {
            modeStorage.store(Mode.primary.rawValue, ordering: .relaxed)
        }
    }

    /// Appends what a successful write command did (called by the dispatcher with its stripe locks held).
    func propagate(_ context: borrowing CommandContext) {
        let database = context.session.database
        switch context.propagation {
        case .suppressed:
            return
        case .commands(let commands):
            append(database: database, inTransaction: context.inTransaction) { buffer in
                for command in commands { RESPCommandEncoder.encode(command, into: &buffer) }
            }
        case .asReceived:
            if let rewritten = PropagationRewriter.rewrite(context.spec.name, context.arguments, now: context.now) {
                if rewritten.isEmpty { return }
                append(database: database, inTransaction: context.inTransaction) { buffer in
                    for command in rewritten { RESPCommandEncoder.encode(command, into: &buffer) }
                }
            } else {
                let arguments = context.arguments
                append(database: database, inTransaction: context.inTransaction) { buffer in
                    Self.encode(arguments, into: &buffer)
                }
            }
        }
    }

    /// Encodes received arguments as a RESP array.
    static func encode(_ arguments: CommandArguments, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        ReplyWriterDecimal.write(arguments.count, to: &buffer)
        for index in 0..<arguments.count {
            arguments.withBytes(index) { bytes in
                buffer.writeInteger(UInt8(ascii: "$"))
                ReplyWriterDecimal.write(bytes.count, to: &buffer)
                buffer.writeBytes(bytes)
                buffer.writeStaticString("\r\n")
            }
        }
    }

    private func append(database: Int, inTransaction: Bool, _ encode: (inout ByteBuffer) -> Void) {
        core.withLock { core in
            if inTransaction {
                if core.transactionCommands == 0 { core.transactionDatabase = core.lastDatabase }
                if database != core.transactionDatabase {
                    RESPCommandEncoder.encode(["SELECT", String(database)], into: &core.transaction)
                    core.transactionDatabase = database
                }
                encode(&core.transaction)
                core.transactionCommands += 1
                return
            }
            core.scratch.clear()
            if database != core.lastDatabase {
                RESPCommandEncoder.encode(["SELECT", String(database)], into: &core.scratch)
                core.lastDatabase = database
            }
            encode(&core.scratch)
            let bytes = core.scratch
            Self.appendLocked(&core, bytes, now: nil)
        }
    }

    /// Wraps the commands collected during EXEC in MULTI … EXEC and appends them (EXEC still holds every stripe).
    /// Drops the writes recorded since the last commit (a script SHUTDOWN NOSAVE stopped): they reach neither replicas
    /// nor the append-only file.
    func discardTransaction() {
        core.withLock { core in
            core.transaction.clear()
            core.transactionCommands = 0
        }
    }

    func commitTransaction() {
        core.withLock { core in
            guard core.transactionCommands > 0 else { return }
            core.scratch.clear()
            RESPCommandEncoder.encode(["MULTI"], into: &core.scratch)
            core.scratch.writeImmutableBuffer(core.transaction)
            RESPCommandEncoder.encode(["EXEC"], into: &core.scratch)
            core.lastDatabase = core.transactionDatabase
            core.transaction.clear()
            core.transactionCommands = 0
            let bytes = core.scratch
            Self.appendLocked(&core, bytes, now: nil)
        }
    }

    /// Appends raw stream bytes: to the backlog and to every replica's buffer, scheduling their flushes.
    static func appendLocked(_ core: inout ReplicationCore, _ bytes: ByteBuffer, now: Int64?) {
        bytes.withUnsafeReadableBytes { core.backlog?.append($0) }
        if let log = core.appendOnlyLog { bytes.withUnsafeReadableBytes { log.append($0) } }
        for feed in core.feeds where !feed.closed {
            feed.pending.writeImmutableBuffer(bytes)
            let buffered = feed.pending.readableBytes + feed.inFlight.load(ordering: .relaxed)
            if core.outputLimit.exceeded(bytes: buffered, since: &feed.softLimitSince, now: now ?? monotonicMilliseconds()) {
                feed.closed = true
                feed.owner?.outputLimitDisconnections.add(1, ordering: .relaxed)
                let connection = feed.connection
                // Closing runs the connection's close path, which takes this lock: do it on its loop, later.
                connection.eventLoop.execute { connection.close() }
                continue
            }
            if feed.online && !feed.flushScheduled {
                feed.flushScheduled = true
                scheduleFlush(feed)
            }
        }
    }

    static func scheduleFlush(_ feed: ReplicaFeed) {
        feed.connection.eventLoop.execute { [feed] in
            guard let state = feed.owner else { return }
            state.flush(feed)
        }
    }

    /// Hands a replica's buffered stream to its channel (on the replica connection's event loop).
    func flush(_ feed: ReplicaFeed) {
        let bytes: ByteBuffer? = core.withLock { _ in
            feed.flushScheduled = false
            guard !feed.closed, feed.online, feed.pending.readableBytes > 0 else { return nil }
            let bytes = feed.pending
            feed.pending = feed.connection.allocator.buffer(capacity: 0)
            return bytes
        }
        guard let bytes else { return }
        let count = bytes.readableBytes
        feed.inFlight.add(count, ordering: .relaxed)
        let promise = feed.connection.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in feed.inFlight.subtract(count, ordering: .relaxed) }
        feed.connection.send(bytes, promise: promise)
    }

    // MARK: keyspace events

    public func keyExpired(database: Int, key: CompactBytes) {
        guard isRecording else { return }
        propagateDelete(database: database, key: key)
    }

    public func keyEvicted(database: Int, key: CompactBytes) {
        guard isRecording else { return }
        propagateDelete(database: database, key: key)
    }

    private func propagateDelete(database: Int, key: CompactBytes) {
        append(database: database, inTransaction: false) { buffer in
            key.withBytes { keyBytes in
                buffer.writeStaticString("*2\r\n$3\r\nDEL\r\n$")
                ReplyWriterDecimal.write(keyBytes.count, to: &buffer)
                buffer.writeBytes(keyBytes)
                buffer.writeStaticString("\r\n")
            }
        }
    }

    // MARK: replicas (primary side)

    /// Adds a replica that continues from `offset` (partial resync): returns the backlog bytes to send after
    /// `+CONTINUE`, or `nil` when the backlog no longer covers it.
    func attachPartial(_ feed: ReplicaFeed, from offset: Int64) -> [UInt8]? {
        core.withLock { core -> [UInt8]? in
            guard let bytes = core.backlog?.bytes(from: offset) else { return nil }
            feed.online = true
            feed.ackOffset = offset - 1
            feed.owner = self
            core.feeds.append(feed)
            return bytes
        }
    }

    /// Adds a replica that takes a full copy; call with every stripe locked (the snapshot's freeze). The stream
    /// after the returned offset is buffered until ``snapshotSent(_:)``.
    func attachFull(_ feed: ReplicaFeed) -> (replid: String, offset: Int64) {
        core.withLock { core in
            activateLocked(&core)
            // The replica starts in database 0: make the next command select explicitly.
            core.lastDatabase = -1
            feed.owner = self
            feed.ackOffset = core.masterOffset
            core.feeds.append(feed)
            return (core.identity.replid, core.masterOffset)
        }
    }

    /// The snapshot was handed to the replica's channel: start streaming what was buffered meanwhile.
    func snapshotSent(_ feed: ReplicaFeed) {
        core.withLock { _ in
            feed.online = true
            if !feed.flushScheduled {
                feed.flushScheduled = true
                Self.scheduleFlush(feed)
            }
        }
    }

    /// A replica's connection closed.
    func detach(_ feed: ReplicaFeed) {
        core.withLock { core in
            feed.closed = true
            core.feeds.removeAll { $0 === feed }
        }
    }

    /// REPLCONF ACK from a replica; resumes WAITs that are now satisfied.
    func acknowledge(_ feed: ReplicaFeed, offset: Int64) {
        let now = monotonicMilliseconds()
        let resumed: [(ClientConnection, Int)] = core.withLock { core in
            feed.ackOffset = max(feed.ackOffset, offset)
            feed.lastAckMilliseconds = now
            guard !core.waiters.isEmpty else { return [] }
            var done: [(ClientConnection, Int)] = []
            var remaining: [WaitRequest] = []
            for waiter in core.waiters {
                let count = Self.acknowledgedCount(core, target: waiter.target)
                if count >= waiter.needed {
                    done.append((waiter.connection, count))
                } else {
                    remaining.append(waiter)
                }
            }
            core.waiters = remaining
            return done
        }
        for (connection, count) in resumed { Self.resume(connection, count) }
    }

    static func acknowledgedCount(_ core: ReplicationCore, target: Int64) -> Int {
        core.feeds.reduce(0) { $0 + ($1.online && !$1.closed && $1.ackOffset >= target ? 1 : 0) }
    }

    static func resume(_ connection: ClientConnection, _ count: Int) {
        var buffer = connection.allocator.buffer(capacity: 16)
        buffer.writeInteger(UInt8(ascii: ":"))
        ReplyWriterDecimal.write(count, to: &buffer)
        connection.resume(with: buffer)
    }

    /// How to serve `PSYNC requestedID offset`.
    func decide(requestedID: String, offset: Int64) -> PSyncDecision {
        core.withLock { $0.identity.decide(requestedID: requestedID, offset: offset, backlog: $0.backlog) }
    }

    /// The logger for replication events (a default one until the server installs its own).
    var logger: Logger { runtime.withLock { $0?.logger } ?? Logger(label: "cache-node.replication") }

    /// WAIT: the number of replicas that acknowledged the current offset now, or `nil` after registering the client
    /// (and asking the replicas for an ACK); the client is resumed with the count later.
    func wait(needed: Int, timeoutMilliseconds: Int, connection: ClientConnection?) -> Int? {
        let registered: (id: Int, timeout: Int)? = core.withLock { core in
            let target = core.masterOffset
            let count = Self.acknowledgedCount(core, target: target)
            if count >= needed { return nil }
            guard let connection else { return nil }
            let id = core.nextWaiterID
            core.nextWaiterID += 1
            core.waiters.append(WaitRequest(id: id, target: target, needed: needed, connection: connection))
            if core.backlog != nil && !core.feeds.isEmpty {
                core.scratch.clear()
                RESPCommandEncoder.encode(["REPLCONF", "GETACK", "*"], into: &core.scratch)
                let bytes = core.scratch
                Self.appendLocked(&core, bytes, now: nil)
            }
            return (id, timeoutMilliseconds)
        }
        guard let registered else {
            return core.withLock { Self.acknowledgedCount($0, target: $0.masterOffset) }
        }
        if registered.timeout > 0, let connection {
            connection.eventLoop.scheduleTask(in: .milliseconds(Int64(registered.timeout))) { [self] in
                self.waitTimedOut(id: registered.id)
            }
        }
        return nil
    }

    private func waitTimedOut(id: Int) {
        let found: (ClientConnection, Int)? = core.withLock { core in
            guard let index = core.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            let waiter = core.waiters.remove(at: index)
            return (waiter.connection, Self.acknowledgedCount(core, target: waiter.target))
        }
        if let (connection, count) = found { Self.resume(connection, count) }
    }

    /// Drops the WAIT of a closing client.
    func cancelWait(connectionID: Int) {
        core.withLock { core in core.waiters.removeAll { $0.connection.id == connectionID } }
    }

    /// The replicas for INFO / ROLE.
    var replicas: [(ip: String, port: Int, online: Bool, offset: Int64, lagSeconds: Int64)] {
        let now = monotonicMilliseconds()
        return core.withLock { core in
            core.feeds.filter { !$0.closed }.map {
                ($0.ip, $0.listeningPort, $0.online, $0.ackOffset, max(0, (now - $0.lastAckMilliseconds) / 1000))
            }
        }
    }
}

/// Monotonic milliseconds (output-buffer soft limits, ACK ages and INFO lag; commands use NodeClock).
func monotonicMilliseconds() -> Int64 {
    Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000)
}
