// Node → node requests for cluster mode (MIGRATE's RESTORE-ASKING batches, CLUSTER MEET's pull of a peer's id),
// behind a small protocol so the transport can be swapped (e.g. for the replication branch's peer link over the
// secure channel) without touching the commands.
//
// Requests are synchronous with a deadline: the caller (MIGRATE) holds the stripe locks of the keys it moves until
// the target answered, which is what makes MIGRATE atomic per key, as redis's (blocking) migrateCommand is. The
// standard transport runs the replication branch's PeerLink (plaintext or secure channel) on its own event loop
// group. Idle connections are cached per target, like redis's migrate socket cache.
import Dispatch
public import NIOCore
public import NIOPosix
public import ReplicationSec
import Synchronization

/// A peer request failed below the command level (connect, write, read, timeout, protocol).
public struct ClusterPeerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// Whether the deadline passed (redis does not retry a MIGRATE that timed out).
    public let isTimeout: Bool
    /// A policy refusal (no secure port, plaintext not allowed, wrong peer), not an I/O failure: reported as `-ERR`.
    public let isRefusal: Bool
    public init(_ message: String, isTimeout: Bool = false, isRefusal: Bool = false) {
        self.message = message
        self.isTimeout = isTimeout
        self.isRefusal = isRefusal
    }
    public var description: String { message }
}

/// An open connection to a peer node that answers pipelined commands in order.
public protocol ClusterPeerConnection: AnyObject, Sendable {
    /// Sends `commands` (each an argument list) in one write and reads one reply per command, within `timeout` ms.
    func exchange(_ commands: [[[UInt8]]], timeout: Int) throws(ClusterPeerError) -> [PeerReply]
    /// Sends `encoded` (RESP commands, `replies` of them) in one write and reads one reply per command.
    func exchange(encoded: ByteBuffer, replies: Int, timeout: Int) throws(ClusterPeerError) -> [PeerReply]
    /// The database the last SELECT on this connection chose, -1 when unknown (MIGRATE skips a repeated SELECT,
    /// as redis's migrate cache does).
    var selectedDatabase: Int { get set }
    /// Closes the connection.
    func close()
}

/// Opens connections to peer nodes.
public protocol ClusterPeerTransport: Sendable {
    /// Connects to `host:port` within `timeout` ms.
    func connect(host: String, port: Int, timeout: Int) throws(ClusterPeerError) -> any ClusterPeerConnection
}

/// A small cache of idle peer connections by `host:port` (a connection is taken out while in use). As redis's
/// migrate socket cache, a connection idle for longer than ``maximumIdle`` is closed instead of reused.
public final class ClusterPeerPool: Sendable {
    /// redis's MIGRATE_SOCKET_CACHE_TTL.
    public static let maximumIdle: Duration = .seconds(10)

    private let transport: any ClusterPeerTransport
    private let idle = Mutex<[String: [(connection: any ClusterPeerConnection, since: ContinuousClock.Instant)]]>([:])

    public init(transport: any ClusterPeerTransport = PeerLinkTransport()) {
        self.transport = transport
    }

    /// Runs `body` with a connection to `host:port` (cached or new). A connection on which `body` failed is closed;
    /// a failure on a cached connection that was not a timeout is retried once on a new one (the peer may have
    /// closed an idle link), as redis's MIGRATE does.
    public func withConnection<Result>(
        host: String, port: Int, timeout: Int, _ body: (any ClusterPeerConnection) throws(ClusterPeerError) -> Result
    ) throws(ClusterPeerError) -> Result {
        let name = "\(host):\(port)"
        let now = ContinuousClock.now
        let (cached, expired) = idle.withLock { idle -> ((any ClusterPeerConnection)?, [any ClusterPeerConnection]) in
            var expired: [any ClusterPeerConnection] = []
            while let entry = idle[name]?.popLast() {
                if now - entry.since <= Self.maximumIdle { return (entry.connection, expired) }
                expired.append(entry.connection)
            }
            return (nil, expired)
        }
        for connection in expired { connection.close() }
        if let cached {
            do {
                let result = try body(cached)
                release(cached, name: name)
                return result
            } catch {
                cached.close()
                if error.isTimeout || error.isRefusal { throw error }
            }
        }
        let connection = try transport.connect(host: host, port: port, timeout: timeout)
        do {
            let result = try body(connection)
            release(connection, name: name)
            return result
        } catch {
            connection.close()
            throw error
        }
    }

    private func release(_ connection: any ClusterPeerConnection, name: String) {
        let now = ContinuousClock.now
        idle.withLock { $0[name, default: []].append((connection, now)) }
    }
}

/// Connections over the peer link (``PeerLink``): plaintext, or the ReplicationSec secure channel when `security`
/// is set (identities configured). The command handler that uses it is synchronous and holds stripe locks, so each
/// exchange runs on the link's own event loop group and the caller waits for it with a deadline.
public struct PeerLinkTransport: ClusterPeerTransport {
    let security: SecureChannelConfiguration?
    let group: any EventLoopGroup

    /// - Parameters:
    ///   - security: the secure channel settings, or `nil` for plaintext.
    ///   - group: where links run; must not be the group of the listener whose handlers call this.
    public init(security: SecureChannelConfiguration? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.security = security
        self.group = group
    }

    public func connect(host: String, port: Int, timeout: Int) throws(ClusterPeerError) -> any ClusterPeerConnection {
        let endpoint = PeerEndpoint(host: host, port: port, security: security, connectTimeout: .milliseconds(Int64(timeout)))
        let group = self.group
        let link = try waitFor(timeout: timeout + 100, what: "connect to \(host):\(port)") {
            try await PeerLink.connect(to: endpoint, group: group)
        }
        return PeerLinkConnection(link: link)
    }
}

/// One ``PeerLink`` used synchronously.
final class PeerLinkConnection: ClusterPeerConnection {
    let link: PeerLink
    private let database = Atomic<Int>(-1)

    init(link: PeerLink) { self.link = link }

    var selectedDatabase: Int {
        get { database.load(ordering: .relaxed) }
        set { database.store(newValue, ordering: .relaxed) }
    }

    func exchange(_ commands: [[[UInt8]]], timeout: Int) throws(ClusterPeerError) -> [PeerReply] {
        var buffer = link.channel.allocator.buffer(capacity: commands.reduce(0) { $0 + $1.reduce(16) { $0 + $1.count + 16 } })
        for command in commands { RESPCommandEncoder.encode(command, into: &buffer) }
        return try exchange(encoded: buffer, replies: commands.count, timeout: timeout)
    }

    /// Writes the batch straight into the link's pipeline and waits on a semaphore for the replies (one promise for
    /// the batch): no task on the concurrency pool, so a pool busy with work that waits for the caller's stripe
    /// locks cannot stall it.
    func exchange(encoded: ByteBuffer, replies count: Int, timeout: Int) throws(ClusterPeerError) -> [PeerReply] {
        let channel = link.channel
        let promise = channel.eventLoop.makePromise(of: [PeerReply].self)
        let outcome = Mutex<Result<[PeerReply], any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        promise.futureResult.whenComplete { result in
            outcome.withLock { $0 = result }
            done.signal()
        }
        channel.writeAndFlush(PeerReplyHandler.Request(bytes: encoded, promises: [], batch: (count, promise))).whenFailure { error in
            promise.fail(error)
        }
        guard done.wait(timeout: .now() + .milliseconds(timeout)) == .success else {
            close()
            throw ClusterPeerError("no reply within \(timeout) ms", isTimeout: true)
        }
        switch outcome.withLock({ $0 })! {
        case .success(let replies): return replies
        case .failure(let error):
            close()
            throw ClusterPeerError("the link failed: \(error)")
        }
    }

    func close() {
        link.channel.close(promise: nil)
    }
}

/// Runs `operation` on the concurrency pool and blocks the calling thread until it finishes or `timeout` ms pass.
private func waitFor<Value: Sendable>(
    timeout: Int, what: String, _ operation: @escaping @Sendable () async throws -> Value
) throws(ClusterPeerError) -> Value {
    let outcome = Mutex<Result<Value, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let result: Result<Value, any Error>
        do { result = .success(try await operation()) } catch { result = .failure(error) }
        outcome.withLock { $0 = result }
        done.signal()
    }
    guard done.wait(timeout: .now() + .milliseconds(timeout)) == .success else {
        throw ClusterPeerError("\(what) timed out after \(timeout) ms", isTimeout: true)
    }
    switch outcome.withLock({ $0 })! {
    case .success(let value): return value
    case .failure(let error): throw ClusterPeerError("\(what) failed: \(error)")
    }
}
