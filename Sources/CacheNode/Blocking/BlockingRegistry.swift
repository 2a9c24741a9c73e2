// Clients blocked in BLPOP/BRPOP/BLMOVE/BRPOPLPUSH/BLMPOP (and BZPOPMIN… for sorted sets): who waits on which key,
// in arrival order, and how a push wakes them (redis blocked.c).
//
// The algorithm, as redis 7 does it:
// - A blocking command that finds nothing calls ``BlockingRegistry/block(_:keys:waitingFor:deadline:)``: the client
//   is queued on each of its keys (FIFO per key) with the command's spec and arguments, a timer is armed on its
//   event loop, and the connection suspends (later pipelined commands stay buffered).
// - A write that makes a list or sorted set non-empty records the key (`CommandContext.signalReady`); after the
//   dispatcher releases the stripe locks it calls ``BlockingRegistry/signal(_:node:)``. For each ready key, the
//   clients queued on it are tried in the order they blocked (the longest waiting client is served first): the
//   client's command is executed again, with its database and protocol, under the stripe locks of its keys. If it
//   now completes, the client leaves every queue and its connection resumes with the reply; if it would block
//   again (another client took the element, the key was deleted or changed type), it keeps its place.
// - Pushes made by a served command (BLMOVE's destination) are handled in the same pass, right away, so linked
//   BLMOVEs complete before anything else runs, as in redis.
// - Waiters are served on the thread that signalled, before that client's next command runs: a pipelined
//   `LPUSH k x; LPOP k` from another client leaves `x` to the client that was already blocked, as in redis. The
//   waiter's session is not touched concurrently: while blocked its connection runs no command, and ownership of
//   the retry passes through the registry's lock (the `serving` state). Only the resume crosses to its event loop.
// - A timeout fires on the client's event loop and replies with the null array; a closing connection cancels its
//   wait. Both race safely with a retry in progress: the retry finishes the job when it sees the flag.
//
// Lock order: a stripe lock may be held when taking the registry lock (commands block under their key locks), never
// the reverse; the registry lock is never held while running a command.
public import CacheStore
import NIOConcurrencyHelpers
import NIOCore
public import RESPServer
import Synchronization

/// Blocked clients by the keys they wait on.
public final class BlockingRegistry: Sendable {
    private let waiterCount = Atomic<Int>(0)
    /// Blocked XREADGROUP clients: they are retried when any write touches a key they wait on, as redis's
    /// `unblock_on_nokey` clients are (a deleted stream or group answers them with NOGROUP, another type with
    /// WRONGTYPE, instead of leaving them waiting on a group that is gone).
    private let anyChangeWaiterCount = Atomic<Int>(0)
    /// The queues. A pthread-based lock (rather than `Mutex`) so ThreadSanitizer can check the code around it.
    private let state = NIOLockedValueBox(RegistryState())

    init() {}

    /// Whether any client is blocked (writers skip recording ready keys otherwise).
    public var hasWaiters: Bool { waiterCount.load(ordering: .relaxed) > 0 }

    /// Whether a client waits to be retried on any change of its keys (the dispatcher then signals every key a
    /// write command touches).
    public var hasAnyChangeWaiters: Bool { anyChangeWaiterCount.load(ordering: .relaxed) > 0 }

    /// The keys clients retried on any change wait on, in every database (FLUSHALL, FLUSHDB, SWAPDB and EXEC
    /// signal them all: the waiters find out for themselves whether their key changed).
    func anyChangeKeys() -> [DatabaseKey] {
        guard hasAnyChangeWaiters else { return [] }
        return state.withLockedValue { state in
            state.queues.filter { $0.value.contains { $0.wakesOnAnyChange } }.map(\.key)
        }
    }

    /// The number of blocked clients.
    public var blockedClientCount: Int { waiterCount.load(ordering: .relaxed) }

    /// The number of distinct keys clients retried on any change are blocked on (INFO
    /// `total_blocking_keys_on_nokey`).
    public var blockedKeyOnNoKeyCount: Int { anyChangeKeys().count }

    /// The number of distinct keys clients are blocked on (INFO `total_blocking_keys`).
    public var blockedKeyCount: Int { state.withLockedValue { $0.queues.count } }

    /// The keys clients wait on in `databases`. SWAPDB passes them to ``signal(_:node:)`` (redis
    /// scanDatabaseForReadyKeys): the data swapped in may serve them; keys without a value of the awaited type
    /// are skipped there.
    public func blockedKeys(inDatabases databases: Set<Int>) -> [DatabaseKey] {
        guard hasWaiters else { return [] }
        return state.withLockedValue { state in state.queues.keys.filter { databases.contains($0.database) } }
    }

    /// Whether `session` is blocked (CLIENT LIST flag `b`).
    public func isBlocked(_ session: ClientSession) -> Bool {
        guard hasWaiters else { return false }
        return state.withLockedValue { $0.bySession[ObjectIdentifier(session)] != nil }
    }

    // MARK: blocking

    /// Suspends the command running in `context` until a write to one of `keys` lets it complete, or until
    /// `deadline` (unix ms; `nil` waits forever).
    ///
    /// Call it from a blocking command's handler when it found nothing to serve and `context.inTransaction` is
    /// false, without having written a reply. The command will later be executed again with the same arguments
    /// whenever one of `keys` holds a value of type `type`; when that execution calls `block` again (it still
    /// found nothing), the client simply keeps waiting in its place.
    ///
    /// - Parameters:
    ///   - context: the blocking command's context; its `suspends` is set.
    ///   - keys: the keys to wait on, in the database of the command.
    ///   - type: the type a key must hold for the command to be worth retrying (`.list`, `.zset`, `.stream`).
    ///   - deadline: when to give up and reply with the null array.
    ///   - arguments: the arguments to execute again, when they differ from the command's (XREAD's `$` resolved to
    ///     the stream's last ID at the time of blocking).
    ///   - wakesOnAnyChange: retry on any write to the keys, whatever they then hold (XREADGROUP).
    public func block(
        _ context: inout CommandContext, keys: [KeyRef], waitingFor type: ValueType, deadline: Int64?,
        arguments: CommandArguments? = nil, wakesOnAnyChange: Bool = false
    ) {
        precondition(!context.inTransaction, "blocking commands must not block inside EXEC")
        context.suspends = true
        context.countsWhenUnblocked = true
        let session = context.session
        let node = context.node
        let sessionID = ObjectIdentifier(session)
        var unique: [DatabaseKey] = []
        for key in keys {
            let databaseKey = DatabaseKey(database: session.database, key: key.bytes)
            if !unique.contains(databaseKey) { unique.append(databaseKey) }
        }
        let firstRun = context.startMicroseconds > 0 ? max(0, node.clock.nowMicroseconds() - context.startMicroseconds) : 0
        let waiter = BlockedClient(
            session: session, spec: context.spec, arguments: arguments ?? context.arguments, database: session.database,
            protocolVersion: session.protocolVersion, keys: unique, type: type, wakesOnAnyChange: wakesOnAnyChange,
            commandIndex: node.commands.lookupIndex(context.arguments), firstRunMicroseconds: firstRun)
        let isRetry = state.withLockedValue { state -> Bool in
            if let existing = state.bySession[sessionID] {
                // A retry that still found nothing: the client keeps its place.
                precondition(existing.phase == .serving, "a blocked client ran another command")
                return true
            }
            for key in unique { state.queues[key, default: []].append(waiter) }
            state.bySession[sessionID] = waiter
            return false
        }
        if isRetry { return }
        waiterCount.add(1, ordering: .relaxed)
        if wakesOnAnyChange { anyChangeWaiterCount.add(1, ordering: .relaxed) }
        session.stats.blockedClients.add(1, ordering: .relaxed)
        session.updateInfo { $0.flags = $0.flags == "N" ? "b" : $0.flags + "b" }
        if let deadline {
            let delay = max(deadline - context.now, 0)
            let timer = session.connection.eventLoop.scheduleTask(in: .milliseconds(delay)) { [self] in
                self.timeOut(waiter, node: node)
            }
            state.withLockedValue { _ in waiter.timer = timer }
        }
    }

    // MARK: waking

    /// Keys that may now satisfy blocked clients: serves the clients waiting on them, longest waiting first.
    /// Called with no stripe locked.
    func signal(_ keys: [DatabaseKey], node: NodeState) {
        guard hasWaiters else { return }
        var pending: [DatabaseKey] = []
        for key in keys where !pending.contains(key) { pending.append(key) }
        var next = 0
        while next < pending.count {
            let key = pending[next]
            next += 1
            let candidates = state.withLockedValue { $0.queues[key] ?? [] }
            var unavailable: [ValueType] = []
            for waiter in candidates where waiter.wakesOnAnyChange || !unavailable.contains(waiter.type) {
                guard claim(waiter) else { continue }
                let attempt = retry(waiter, readyKey: key, node: node)
                settle(waiter, attempt, node: node)
                switch attempt {
                case .notReady:
                    // The key holds no value of this type: later waiters of the same type cannot be served either.
                    if !waiter.wakesOnAnyChange { unavailable.append(waiter.type) }
                case .stillBlocked:
                    break
                case .served(_, let readyKeys):
                    for ready in readyKeys where !pending[next...].contains(ready) { pending.append(ready) }
                }
            }
        }
    }

    /// Removes a closing client's wait.
    func cancel(_ session: ClientSession) {
        guard hasWaiters else { return }
        let sessionID = ObjectIdentifier(session)
        let removed = state.withLockedValue { state -> BlockedClient? in
            guard let waiter = state.bySession[sessionID] else { return nil }
            switch waiter.phase {
            case .waiting:
                state.remove(waiter)
                waiter.phase = .finished
                return waiter
            case .serving:
                waiter.isCancelled = true
                return nil
            case .finished:
                return nil
            }
        }
        if let removed { released(removed) }
    }

    /// Unblocks a blocked client as CLIENT UNBLOCK does: with the null array (as on a timeout) or with the error
    /// `-UNBLOCKED client unblocked via CLIENT UNBLOCK` (a failed call, counted in errorstats). Returns whether the
    /// client was blocked.
    public func unblock(clientID: Int, withError: Bool, node: NodeState) -> Bool {
        guard hasWaiters else { return false }
        let removed = state.withLockedValue { state -> BlockedClient? in
            guard let waiter = state.bySession.values.first(where: { $0.session.connection.id == clientID }),
                waiter.phase == .waiting
            else { return nil }
            state.remove(waiter)
            waiter.phase = .finished
            return waiter
        }
        guard let removed else { return false }
        released(removed)
        guard withError else {
            resumeWithNullArray(removed, node: node)
            return true
        }
        var reply = ReplyWriter(buffer: removed.session.connection.allocator.buffer(capacity: 64),
                                protocolVersion: removed.protocolVersion)
        NodeDispatcher.replyError(
            CommandError(code: "UNBLOCKED", "client unblocked via CLIENT UNBLOCK"), session: removed.session, node: node,
            reply: &reply)
        countEnded(removed, node: node, failed: true)
        removed.session.connection.resume(with: reply.buffer)
        return true
    }

    /// Counts a blocked command that ended (redis updateStatsOnUnblock): one call in commandstats, taking the time of
    /// the run that blocked and of the run that served it (`servedFrom`, unix µs, if one did), failed if it ended in
    /// an error; and the slow log, for that time.
    private func countEnded(_ waiter: BlockedClient, node: NodeState, servedFrom start: Int64? = nil, failed: Bool) {
        let end = node.clock.nowMicroseconds()
        let total = waiter.firstRunMicroseconds + (start.map { max(0, end - $0) } ?? 0)
        if let index = waiter.commandIndex {
            let stats = waiter.session.stats.commands
            stats.add(1, to: .calls, of: index)
            stats.add(Int(total), to: .microseconds, of: index)
            if failed { stats.add(1, to: .failed, of: index) }
        }
        if node.slowLog.threshold >= 0 {
            NodeDispatcher.logSlowCommand(
                waiter.arguments, spec: waiter.spec, session: waiter.session, node: node, from: end - total, to: end)
        }
    }

    // MARK: internals

    /// The outcome of executing a blocked command again.
    private enum Attempt {
        /// The ready key holds no value of the type the client waits for.
        case notReady
        /// The command ran and would block again.
        case stillBlocked
        /// The command completed with `reply`, possibly making `readyKeys` ready (BLMOVE's destination).
        case served(ByteBuffer, readyKeys: [DatabaseKey])
    }

    /// Takes the right to retry `waiter` (it may be served by another thread's signal, time out, or be gone).
    private func claim(_ waiter: BlockedClient) -> Bool {
        state.withLockedValue { _ in
            guard waiter.phase == .waiting else { return false }
            waiter.phase = .serving
            return true
        }
    }

    /// Executes the waiter's command again under the stripe locks of its keys.
    private func retry(_ waiter: BlockedClient, readyKey: DatabaseKey, node: NodeState) -> Attempt {
        let keyspace = node.keyspace
        let now = node.clock.nowMilliseconds()
        var stripes = waiter.spec.keys.positions(in: waiter.arguments).map { position in
            waiter.arguments.withBytes(position) { keyspace.stripeIndex(for: KeyRef($0)) }
        }
        keyspace.lock(stripes: &stripes)
        defer { keyspace.unlock(stripes: stripes) }
        let database = keyspace.database(waiter.database, now: now)
        guard waiter.wakesOnAnyChange || database.peek(KeyRef(readyKey.key))?.type == waiter.type else { return .notReady }
        // The user's rules may have changed while it waited (redis checks a reprocessed command again).
        if let index = waiter.commandIndex,
           let refused = node.acl.refusal(waiter.session, waiter.spec, index, waiter.arguments, context: "toplevel", node: node) {
            waiter.session.stats.commands.add(1, to: .rejected, of: index)
            var reply = ReplyWriter(buffer: waiter.session.connection.allocator.buffer(capacity: 64), protocolVersion: waiter.protocolVersion)
            NodeDispatcher.replyError(CommandError(code: "NOPERM", refused.denial.message(user: refused.username)),
                                      session: waiter.session, node: node, reply: &reply)
            return .served(reply.buffer, readyKeys: [])
        }
        var context = CommandContext(
            arguments: waiter.arguments, spec: waiter.spec, session: waiter.session, node: node, now: now,
            inTransaction: false)
        var reply = ReplyWriter(buffer: waiter.session.connection.allocator.buffer(capacity: 128),
                                protocolVersion: waiter.protocolVersion)
        // Counted (and slow-logged) once served, with the time of this run and of the one that blocked (redis
        // counts a blocked command when it ends, not when it blocks).
        let start = node.clock.nowMicroseconds()
        do {
            try waiter.spec.handler(&context, &reply)
        } catch {
            countEnded(waiter, node: node, servedFrom: start, failed: true)
            NodeDispatcher.replyError(error, session: waiter.session, node: node, reply: &reply)
            return .served(reply.buffer, readyKeys: context.readyKeys)
        }
        if context.suspends { return .stillBlocked }
        countEnded(waiter, node: node, servedFrom: start, failed: false)
        // A served blocking command wrote (popped, moved): it counts towards the save rules like any write.
        if waiter.spec.flags.contains(.write) { waiter.session.stats.changesApplied.wrappingAdd(1, ordering: .relaxed) }
        if node.replication.isRecording { node.replication.propagate(context) }
        return .served(reply.buffer, readyKeys: context.readyKeys)
    }

    /// Finishes a retry: resumes a served client, or returns it to waiting (or completes a timeout or
    /// disconnection that arrived meanwhile).
    private func settle(_ waiter: BlockedClient, _ attempt: Attempt, node: NodeState) {
        enum Ending { case resume(ByteBuffer), timeOut, drop, none }
        let ending = state.withLockedValue { state -> Ending in
            if case .served(let reply, _) = attempt {
                state.remove(waiter)
                waiter.phase = .finished
                return .resume(reply)
            }
            if waiter.isCancelled || waiter.hasTimedOut {
                state.remove(waiter)
                waiter.phase = .finished
                return waiter.isCancelled ? .drop : .timeOut
            }
            waiter.phase = .waiting
            return .none
        }
        switch ending {
        case .resume(let reply):
            released(waiter)
            waiter.session.connection.resume(with: reply)
        case .timeOut:
            released(waiter)
            resumeWithNullArray(waiter, node: node)
        case .drop:
            released(waiter)
        case .none:
            break
        }
    }

    /// Fires on the waiter's event loop when its deadline passes.
    private func timeOut(_ waiter: BlockedClient, node: NodeState) {
        let expired = state.withLockedValue { state -> Bool in
            switch waiter.phase {
            case .waiting:
                state.remove(waiter)
                waiter.phase = .finished
                return true
            case .serving:
                waiter.hasTimedOut = true
                return false
            case .finished:
                return false
            }
        }
        guard expired else { return }
        released(waiter)
        resumeWithNullArray(waiter, node: node)
    }

    /// Bookkeeping once a waiter has left the queues: counters, flags, timer.
    private func released(_ waiter: BlockedClient) {
        let timer = state.withLockedValue { _ in
            defer { waiter.timer = nil }
            return waiter.timer
        }
        timer?.cancel()
        waiterCount.add(-1, ordering: .relaxed)
        if waiter.wakesOnAnyChange { anyChangeWaiterCount.add(-1, ordering: .relaxed) }
        waiter.session.stats.blockedClients.add(-1, ordering: .relaxed)
        waiter.session.updateInfo { info in
            info.flags.removeAll { $0 == "b" }
            if info.flags.isEmpty { info.flags = "N" }
        }
    }

    /// Ends a wait with the null array (a timeout, or CLIENT UNBLOCK TIMEOUT), counting the call.
    private func resumeWithNullArray(_ waiter: BlockedClient, node: NodeState) {
        countEnded(waiter, node: node, failed: false)
        var reply = ReplyWriter(buffer: waiter.session.connection.allocator.buffer(capacity: 8),
                                protocolVersion: waiter.protocolVersion)
        reply.nullArray()
        waiter.session.connection.resume(with: reply.buffer)
    }
}

/// One blocked client. Its mutable fields are only touched under the registry's lock.
final class BlockedClient: @unchecked Sendable {
    enum Phase { case waiting, serving, finished }

    let session: ClientSession
    let spec: CommandSpec
    let arguments: CommandArguments
    /// The database and protocol at the time it blocked (its connection runs nothing else until resumed).
    let database: Int
    let protocolVersion: RESPVersion
    /// The keys it waits on, without duplicates.
    let keys: [DatabaseKey]
    /// The type of value it waits for.
    let type: ValueType
    /// Retried on any write to its keys, not only when they hold `type`.
    let wakesOnAnyChange: Bool
    /// Its command's place in the command table (commandstats), looked up once when it blocked.
    let commandIndex: Int?
    /// How long the run that blocked took (µs): part of the command's time in commandstats and the slow log.
    let firstRunMicroseconds: Int64

    var phase = Phase.waiting
    var hasTimedOut = false
    var isCancelled = false
    var timer: Scheduled<Void>?

    init(session: ClientSession, spec: CommandSpec, arguments: CommandArguments, database: Int,
         protocolVersion: RESPVersion, keys: [DatabaseKey], type: ValueType, wakesOnAnyChange: Bool, commandIndex: Int?,
         firstRunMicroseconds: Int64) {
        self.session = session
        self.spec = spec
        self.arguments = arguments
        self.database = database
        self.protocolVersion = protocolVersion
        self.keys = keys
        self.type = type
        self.wakesOnAnyChange = wakesOnAnyChange
        self.commandIndex = commandIndex
        self.firstRunMicroseconds = firstRunMicroseconds
    }
}

/// The queues, guarded by the registry's lock.
struct RegistryState {
    /// Waiters per key, oldest first.
    var queues: [DatabaseKey: [BlockedClient]] = [:]
    /// The waiter of each blocked session.
    var bySession: [ObjectIdentifier: BlockedClient] = [:]

    /// Takes `waiter` out of every queue.
    mutating func remove(_ waiter: BlockedClient) {
        for key in waiter.keys {
            guard var queue = queues[key] else { continue }
            queue.removeAll { $0 === waiter }
            queues[key] = queue.isEmpty ? nil : queue
        }
        bySession[ObjectIdentifier(waiter.session)] = nil
    }
}
