// The state of one client connection (redis `client` struct): selected database, authentication, transaction
// queue, watched keys, subscriptions. Owned by the connection's event loop; the few fields other connections
// read (CLIENT LIST/KILL) are behind a lock or atomic.
public import CacheStore
public import RESPServer
public import Synchronization

/// What other connections may read about a client (CLIENT LIST / INFO).
public struct ClientInfo: Sendable {
    public var name: String = ""
    public var libraryName: String = ""
    public var libraryVersion: String = ""
    public var database: Int = 0
    public var flags: String = "N"
    public var protocolVersion: Int = 2
    public var subscriptions: Int = 0
    public var patternSubscriptions: Int = 0
    public var multiQueued: Int = -1
    /// The ACL user's name (CLIENT LIST `user=`).
    public var userName: String = "default"
    /// In monitor mode (MONITOR).
    public var isMonitor = false
    /// CLIENT NO-EVICT and CLIENT NO-TOUCH (CLIENT LIST flags `e` and `T`).
    public var noEvict = false
    public var noTouch = false
    /// Subscribed to a channel or a pattern: what another connection may read of the session's own
    /// `isInSubscriberMode`, whose sets only its event loop may touch.
    public var isSubscriber: Bool { subscriptions + patternSubscriptions > 0 }
}

/// A queued command inside MULTI.
public struct QueuedCommand: Sendable {
    public let spec: CommandSpec
    public let arguments: CommandArguments
    /// The command's position in the command table (INFO commandstats).
    public let commandIndex: Int
}

/// One client's state.
public final class ClientSession: @unchecked Sendable {
    /// The connection (id, addresses, event loop).
    public let connection: ClientConnection
    /// Milliseconds since the epoch when the client connected.
    public let createdAt: Int64

    // Event-loop-only state.
    /// The selected database.
    public var database = 0 { didSet { updateInfo { $0.database = database } } }
    /// Whether AUTH/HELLO succeeded (or no password is set).
    public var isAuthenticated: Bool
    /// The ACL user the connection is authenticated as (`default` until AUTH); `nil` for the node's own sessions
    /// (the primary's link, the append-only file's replay), which every command is allowed.
    var user: ACLUser? {
        didSet { updateInfo { $0.userName = user?.name ?? "default" } }
    }
    /// The keys of the last prefetched batch (NodeDispatcher.prefetch), hashed once for both the prefetch and the
    /// commands, which find theirs through their ``CommandArguments/note``.
    var prefetchKeys: [KeyRef] = []
    /// Commands queued since MULTI, or `nil` outside a transaction.
    public var transaction: [QueuedCommand]? { didSet { updateInfo { $0.multiQueued = transaction?.count ?? -1 } } }
    /// A queued command failed to queue (unknown, wrong arity): EXEC answers EXECABORT.
    public var transactionHasErrors = false
    /// Keys this client WATCHes, and the token they mark.
    public var watchedKeys: [(database: Int, key: KeyRef)] = []
    public var watchToken: WatchToken?
    /// Subscribed channels and patterns (pub/sub).
    public var channels: Set<CompactBytes> = []
    public var patterns: Set<CompactBytes> = []
    /// RESP2 subscriber mode: only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT, RESET are allowed.
    public var isInSubscriberMode: Bool { !channels.isEmpty || !patterns.isEmpty }
    /// The protocol the connection speaks (mirrors the reply writer; HELLO changes both).
    public var protocolVersion: RESPVersion = .v2 { didSet { updateInfo { $0.protocolVersion = protocolVersion.rawValue } } }
    /// Opaque state a blocked command keeps while suspended.
    public var blockedState: AnyObject?
    /// Cluster mode: ASKING was the previous command (lets the next one run on an importing slot).
    public var isAsking = false
    /// Cluster mode: READONLY (reads of our primary's slots are served here on a replica).
    public var isReadOnlyClusterClient = false
    /// Whether replies are suppressed (CLIENT REPLY OFF/SKIP).
    public var replyMode: ReplyMode = .on
    /// CLIENT NO-TOUCH: this client's commands do not update the access clocks of the keys they read or change.
    public var noTouch = false { didSet { updateInfo { $0.noTouch = noTouch } } }
    /// CLIENT TRACKING's mode while on (the node's ``ClientTracking`` holds the same for other threads).
    public var tracking: TrackingMode?
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) was given for the next command.
    public var trackingCachingGiven = false
    /// Whether this connection is a replica being fed, or this replica's link to its primary.
    public var replicationRole: ReplicationLinkRole = .none
    /// The command of the current input batch whose time is still running (-1: none), and when it started (unix
    /// µs): a command's time ends when the next one of the batch starts, or when the batch ends (INFO commandstats).
    var timedCommand = -1
    var timedCommandStart: Int64 = 0
    /// Set when the connection closed (its event loop ended the session): a command it left waiting for the end of a
    /// CLIENT PAUSE is then dropped, not run.
    var isClosed = false
    /// Since when (unix ms) the client's unread output has been over its soft `client-output-buffer-limit`.
    var outputSoftLimitSince: Int64?
    /// Whether this session applies the primary's stream (writes allowed on a read-only replica).
    var isPrimaryLink: Bool {
        if case .primary = replicationRole { return true }
        return false
    }

    /// CLIENT REPLY modes.
    public enum ReplyMode: Sendable { case on, off, skipNext }

    // Shared with other threads.
    private let info = Mutex(ClientInfo())
    /// The last command's name index and the time of the last interaction (for CLIENT LIST `cmd=`/`idle=`).
    public let lastInteraction = Atomic<Int64>(0)
    /// Index in the command table of the last command (-1 before the first).
    public let lastCommand = Atomic<Int>(-1)
    /// Bytes read from the client and not processed yet, as of its last read (CLIENT LIST `qbuf=`).
    public let queryBufferBytes = Atomic<Int>(0)
    /// Output the client has not read yet, as last seen over the connection's write high-water mark or back under
    /// its low-water mark (CLIENT LIST `omem=`).
    public let outputBufferBytes = Atomic<Int>(0)

    /// The counters of this client's event loop.
    public let stats: StatsBlock

    init(connection: ClientConnection, createdAt: Int64, isAuthenticated: Bool, stats: StatsBlock) {
        self.connection = connection
        self.stats = stats
        self.createdAt = createdAt
        self.isAuthenticated = isAuthenticated
        self.lastInteraction.store(createdAt, ordering: .relaxed)
    }

    /// A snapshot of the shared fields.
    public var snapshot: ClientInfo { info.withLock { $0 } }

    /// Changes the shared fields.
    public func updateInfo(_ change: (inout ClientInfo) -> Void) {
        info.withLock { change(&$0) }
    }
}
