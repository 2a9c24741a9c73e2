// What a command handler sees: its arguments, the client's session, the node, and the time of this command.
// Side effects the dispatcher acts on after the locks are released (waking blocked clients, suspending this
// client) are recorded here rather than performed under a lock.
public import CacheStore
public import RESPServer
import Synchronization

/// What a write command sends to replicas.
public enum Propagation: Sendable {
    /// The command as received (relative TTLs rewritten to absolute ones).
    case asReceived
    /// Nothing.
    case suppressed
    /// These commands instead.
    case commands([[[UInt8]]])
}

/// The context of one command execution.
public struct CommandContext {
    /// The arguments, `arguments[0]` being the command name as sent.
    public let arguments: CommandArguments
    /// The command being run.
    public let spec: CommandSpec
    /// The client's state.
    public let session: ClientSession
    /// Node-wide state.
    public let node: NodeState
    /// The time this command runs at (unix ms), read once.
    public let now: Int64
    /// Whether the command runs inside EXEC (blocking commands must not block).
    public let inTransaction: Bool
    /// Keys that became non-empty lists or sorted sets (blocked clients waiting on them get a chance).
    public internal(set) var readyKeys: [DatabaseKey] = []
    /// Set by blocking commands that had to wait: the connection suspends until resumed.
    public var suspends = false
    /// Set by ``BlockingRegistry/block(_:keys:waitingFor:deadline:arguments:wakesOnAnyChange:)``: the command is
    /// counted in commandstats (and the slow log) when it is served, times out or is unblocked, not now (redis counts
    /// a blocked call once, when it ends).
    public internal(set) var countsWhenUnblocked = false
    /// When the dispatcher started this command (unix µs; 0 outside it): a blocked command's first run is part of its
    /// time.
    var startMicroseconds: Int64 = 0
    /// Set by QUIT: the connection closes once the reply is sent.
    public var closesConnection = false
    /// What a successful write sends to replicas (default: the command as received, with relative TTLs made
    /// absolute by ``PropagationRewriter``).
    public internal(set) var propagation = Propagation.asReceived

    /// Cluster mode, slot under migration: checked under the stripe locks before the handler runs.
    var clusterCheck: ClusterLockedCheck?
    var cachedKey: KeyRef?
    var cachedKeyIndex = -1
    /// EVAL: memory was over `maxmemory` with nothing to evict when the script started (its first write that may
    /// grow memory is then refused, as redis's pre_command_oom_state).
    var outOfMemoryAtStart = false
    /// Run by a Lua script's redis.call (redis's CLIENT_SCRIPT): SORT then orders a set it would leave unordered.
    var fromScript = false

    init(arguments: CommandArguments, spec: CommandSpec, session: ClientSession, node: NodeState, now: Int64, inTransaction: Bool) {
        self.arguments = arguments
        self.spec = spec
        self.session = session
        self.node = node
        self.now = now
        self.inTransaction = inTransaction
    }

    /// Ends the context, handing back the arguments the dispatcher moved into it for the command.
    consuming func surrenderArguments() -> CommandArguments {
        arguments
    }

    /// The client's selected database at this command's time.
    public var db: Database {
        var database = node.keyspace.database(session.database, now: now, client: session.connection.id)
        // CLIENT NO-TOUCH: the client's commands leave access clocks alone, except TOUCH (redis lookupKey).
        if session.noTouch && spec.name != "touch" { database.touchesKeys = false }
        return database
    }

    /// The keyspace.
    public var keyspace: Keyspace { node.keyspace }

    /// Argument `index` as a key.
    public func key(_ index: Int) -> KeyRef {
        if index == cachedKeyIndex, let cachedKey { return cachedKey }
        return arguments.withBytes(index) { KeyRef($0) }
    }

    /// Argument `index` as owned bytes (a member, field or value to store).
    public func bytes(_ index: Int) -> CompactBytes {
        arguments.withBytes(index) { CompactBytes($0) }
    }

    /// Argument `index` as an integer, or the standard "not an integer" error.
    public func integer(_ index: Int) throws(CommandError) -> Int {
        guard let value = arguments.integer(index) else { throw .notInteger }
        return value
    }

    /// Argument `index` as a float, or the standard "not a valid float" error.
    public func double(_ index: Int) throws(CommandError) -> Double {
        guard let value = arguments.double(index) else { throw .notFloat }
        return value
    }

    /// Counts a read's keyspace hit or miss (INFO `keyspace_hits`/`keyspace_misses`) of the key in argument `index`;
    /// a miss is a `keymiss` keyspace event.
    public func recordLookup(found: Bool, argument index: Int) {
        if found {
            session.stats.keyspaceHits.wrappingAdd(1, ordering: .relaxed)
        } else {
            session.stats.keyspaceMisses.wrappingAdd(1, ordering: .relaxed)
            notify(.keyMiss, "keymiss", argument: index)
        }
    }

    /// Whether writes are being propagated to replicas (build rewritten commands only then).
    public var isPropagating: Bool { node.replication.isRecording }

    /// Propagates `arguments` instead of the command as received (call once per command to send; e.g. SPOP sends
    /// the SREM of what it popped). Does nothing unless replicas are being fed.
    public mutating func propagate(_ arguments: @autoclosure () -> [[UInt8]]) {
        guard isPropagating else { return }
        switch propagation {
        case .commands(var list):
            list.append(arguments())
            propagation = .commands(list)
        default:
            propagation = .commands([arguments()])
        }
    }

    /// Propagates nothing for this command (it changed nothing).
    public mutating func suppressPropagation() {
        propagation = .suppressed
    }

    /// Whether the command declared that it changed nothing (``suppressPropagation()``): a write command that did
    /// not count as a change for the save rules (redis's `dirty`).
    var changedNothing: Bool {
        if case .suppressed = propagation { return true }
        return false
    }

    /// Publishes keyspace event `event` of class `type` for the key in argument `index`, in the client's database
    /// (redis notifyKeyspaceEvent). Does nothing, at the cost of one relaxed load, unless `notify-keyspace-events`
    /// enables the class.
    @inline(__always)
    public func notify(_ type: KeyspaceEventClasses, _ event: StaticString, argument index: Int) {
        let events = node.keyspaceEvents
        guard events.publishes(type) else { return }
        let database = session.database
        arguments.withBytes(index) { events.notify(type, event, key: $0, database: database) }
    }

    /// Publishes keyspace event `event` of class `type` for `key`, in `database` (default: the client's).
    @inline(__always)
    public func notify(_ type: KeyspaceEventClasses, _ event: StaticString, key: CompactBytes, database: Int? = nil) {
        let events = node.keyspaceEvents
        guard events.publishes(type) else { return }
        events.notify(type, event, key: key, database: database ?? session.database)
    }

    /// Records that `key` in the current database may now satisfy blocked clients.
    public mutating func signalReady(_ key: KeyRef) {
        signalReady(key, inDatabase: session.database)
    }

    /// Records that `key` in `database` may now satisfy blocked clients (MOVE and COPY ... DB to another database).
    public mutating func signalReady(_ key: KeyRef, inDatabase database: Int) {
        if node.blocking.hasWaiters {
            readyKeys.append(DatabaseKey(database: database, key: key.bytes))
        }
    }

    /// Records that every key clients wait on in `databases` may now satisfy them (SWAPDB, redis
    /// scanDatabaseForReadyKeys); keys without a value of the awaited type are skipped when they are tried.
    public mutating func signalReady(inDatabases databases: Set<Int>) {
        readyKeys += node.blocking.blockedKeys(inDatabases: databases)
    }
}
