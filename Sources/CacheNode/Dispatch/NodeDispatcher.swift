// The one place where every command is checked before it runs (redis processCommand): lookup, arity,
// authentication, subscriber-mode and transaction rules, maxmemory; then the stripes of its keys are locked, the
// handler runs, the locks are released, and blocked clients are woken if the command fed their keys.
import CacheStore
import Logging
public import RESPServer
import NIOCore
import Synchronization

/// Executes commands against a node's state; the protocol layer's ``CommandDispatcher``.
public struct NodeDispatcher: CommandDispatcher {
    public typealias Session = ClientSession

    /// The node this dispatcher serves.
    public let node: NodeState

    public init(node: NodeState) {
        self.node = node
    }

    public func refusal(for connection: ClientConnection) -> String? {
        guard node.connectedClientCount >= node.maxClients.load(ordering: .relaxed) else { return nil }
        node.rejectedConnections.add(1, ordering: .relaxed)
        return "max number of clients reached"
    }

    public func recordQueryBuffer(_ session: ClientSession, bufferedBytes: Int) {
        session.queryBufferBytes.store(bufferedBytes, ordering: .relaxed)
    }

    public func closingForQueryBufferLimit(_ session: ClientSession, bufferedBytes: Int) {
        node.queryBufferLimitDisconnections.add(1, ordering: .relaxed)
    }

    public func outputBufferChanged(_ session: ClientSession, bufferedBytes: Int) -> Bool {
        session.outputBufferBytes.store(bufferedBytes, ordering: .relaxed)
        // A replica's stream is limited where it is buffered (ReplicationState); the primary's link is never closed.
        guard case .none = session.replicationRole else { return false }
        let limits = node.outputBufferLimits
        let isSubscriber = session.isInSubscriberMode || node.pubsub.shardSubscriptionCount(session) > 0
        let limit = isSubscriber ? limits.pubsub : limits.normal
        guard limit.exceeded(bytes: bufferedBytes, since: &session.outputSoftLimitSince, now: node.clock.nowMilliseconds()) else {
            return false
        }
        node.outputBufferLimitDisconnections.add(1, ordering: .relaxed)
        Self.logger.warning(
            "Client id=\(session.connection.id) addr=\(session.connection.remoteAddress) closed for overcoming of output buffer limits (\(isSubscriber ? "pubsub" : "normal") class, \(bufferedBytes) bytes unread).")
        return true
    }

    private static let logger = Logger(label: "cache-node.clients")

    public func inputProcessed(_ session: ClientSession) {
        guard session.timedCommand >= 0 else { return }
        endCommandTiming(session, at: node.clock.nowMicroseconds())
    }

    /// Ends the time of the session's running command at `microseconds` (the next command's start, or the end of
    /// its batch): one clock reading per command plus one per batch, rather than two per command.
    @inline(__always)
    private func endCommandTiming(_ session: ClientSession, at microseconds: Int64) {
        let index = session.timedCommand
        guard index >= 0 else { return }
        session.stats.commands.add(Int(max(0, microseconds - session.timedCommandStart)), to: .microseconds, of: index)
        session.timedCommand = -1
    }

    public func recordTraffic(_ session: ClientSession, inputBytes: Int, outputBytes: Int) {
        if inputBytes > 0 { session.stats.netInputBytes.wrappingAdd(inputBytes, ordering: .relaxed) }
        if outputBytes > 0 { session.stats.netOutputBytes.wrappingAdd(outputBytes, ordering: .relaxed) }
    }

    public func openSession(for connection: ClientConnection) -> ClientSession {
        let stats = node.stats.block(for: ObjectIdentifier(connection.eventLoop))
        let session = ClientSession(
            connection: connection,
            createdAt: node.clock.nowMilliseconds(),
            isAuthenticated: node.acl.defaultUser.authenticatesWithoutPassword || node.replication.isSecureConnection(connection),
            stats: stats
        )
        session.user = node.acl.defaultUser
        stats.connectionsReceived.add(1, ordering: .relaxed)
        stats.connectedClients.add(1, ordering: .relaxed)
        node.register(session)
        return session
    }

    public func isAuthenticated(_ session: ClientSession) -> Bool {
        session.isAuthenticated
    }

    public func closeSession(_ session: inout ClientSession) {
        node.blocking.cancel(session)
        node.pubsub.unsubscribeAll(session)
        node.monitors.remove(session)
        session.isClosed = true
        node.clientPause.forget(session)
        if session.tracking != nil { node.tracking.disable(session.connection.id) }
        TransactionState.unwatchAll(session, keyspace: node.keyspace)
        if case .replica(let feed) = session.replicationRole { node.replication.detach(feed) }
        if node.replication.mode != .off { node.replication.cancelWait(connectionID: session.connection.id) }
        session.stats.connectedClients.add(-1, ordering: .relaxed)
        node.unregister(session)
    }

    /// Most keys one batch hints: beyond a few dozen outstanding loads the CPU drops hints, and the batch's stripes
    /// stay locked while they are issued.
    private static var prefetchKeyLimit: Int { 64 }

    /// Starts loading the hash-table slots and entries of a pipelined batch's keys into the CPU cache (see
    /// ``Keyspace/prefetch(_:database:)``), so that their lookups overlap their cache misses: the key of each
    /// single-key command, and the keys of commands whose keys are a range of arguments (MGET, MSET, DEL, ...), up to
    /// `prefetchKeyLimit` keys. Each command's note keeps its command-table index and, for a single-key command, its
    /// key's place in `session.prefetchKeys`, so neither the name is looked up nor the key hashed again when it runs.
    /// Inside MULTI nothing runs until EXEC, so nothing is prefetched.
    public func prefetch(_ commands: inout [CommandArguments], count: Int, session: ClientSession) {
        guard session.transaction == nil else { return }
        var keys = session.prefetchKeys
        session.prefetchKeys = []
        keys.removeAll(keepingCapacity: true)
        let table = node.commands
        for position in 0..<count {
            // In place (inout): reading the element as a value would copy it, a retain and a release per reference.
            Self.noteCommand(&commands[position], table: table, keys: &keys)
        }
        if keys.count > 1 {
            let busyScript = node.busyScript
            node.keyspace.prefetch(keys, database: session.database, abandoningWhen: { busyScript.isBusy })
        }
        session.prefetchKeys = keys
    }

    /// Notes `command`'s command-table index and, for a single-key command, appends its key to `keys` and notes its
    /// place there; a multi-key command's keys are appended for the hint only (it finds them itself when it runs).
    @inline(__always)
    private static func noteCommand(_ command: inout CommandArguments, table: CommandTable, keys: inout [KeyRef]) {
        guard let index = table.lookupIndex(command) else { return }
        var note = DispatchNote(command: Int32(truncatingIfNeeded: index), key: -1)
        let spec = table.commands[index]
        if keys.count < prefetchKeyLimit && spec.acceptsArgumentCount(command.count) {
            switch spec.keys {
            case .range(1, 1, _) where command.count >= 2:
                note.key = Int32(truncatingIfNeeded: keys.count)
                keys.append(command.withBytes(1) { KeyRef($0) })
            case .range:
                for keyPosition in spec.keys.positions(in: command).prefix(prefetchKeyLimit - keys.count) {
                    keys.append(command.withBytes(keyPosition) { KeyRef($0) })
                }
            default:
                break
            }
        }
        command.note = note
    }

    /// The key of a single-key command (its argument 1): the one its batch's prefetch hashed when the command's
    /// note points at it (and its bytes match), else hashed now.
    private func singleKey(of arguments: CommandArguments, session: ClientSession) -> KeyRef {
        arguments.withBytes(1) { bytes in
            let position = Int(arguments.note.key)
            if position >= 0 && position < session.prefetchKeys.count {
                let key = session.prefetchKeys[position]
                if key.hasBytes(bytes) { return key }
            }
            return KeyRef(bytes)
        }
    }

    public func dispatch(_ arguments: inout CommandArguments, session: ClientSession, reply: inout ReplyWriter) -> DispatchOutcome {
        let notedIndex = Int(arguments.note.command)
        guard let commandIndex = notedIndex >= 0 ? notedIndex : node.commands.lookupIndex(arguments) else {
            return reject(Self.unknownCommand(arguments), session: session, reply: &reply, flagTransaction: true)
        }
        let spec = node.commands.commands[commandIndex]
        // CLIENT LIST's cmd=: a container's subcommand too (client|list), as redis 7 shows it.
        session.lastCommand.store(
            spec.subcommands.isEmpty ? commandIndex : CommandTable.lastCommandCode(commandIndex, spec, arguments),
            ordering: .relaxed)
        guard spec.acceptsArgumentCount(arguments.count) else {
            return reject(.wrongArity(spec.name), commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
        }
        if !spec.subcommands.isEmpty, let subcommand = spec.subcommandWithWrongArity(in: arguments) {
            return reject(.wrongArity(subcommand.name), commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
        }
        if !session.isAuthenticated && !spec.flags.contains(.noAuth) {
            return reject(.noAuth, commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
        }
        // ACL: one relaxed load for a user with every permission.
        if session.user?.isUnrestricted.load(ordering: .relaxed) == false, let refusal = aclRefusal(spec, commandIndex, arguments, session: session) {
            return reject(refusal, commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
        }
        if session.isInSubscriberMode && reply.protocolVersion == .v2 && !spec.flags.contains(.allowedWhileSubscribed) {
            return reject(
                CommandError(
                    "Can't execute '\(spec.name)': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                ), commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: false)
        }
        // Cluster mode: the one check when it is off; see ClusterRouting. The primary's replication stream is never
        // redirected (redis skips CLIENT_MASTER): a replica applies its primary's writes for slots it does not serve.
        var clusterCheck: ClusterLockedCheck?
        if let cluster = node.cluster, !session.isPrimaryLink {
            switch routeInCluster(cluster, spec, arguments, session: session) {
            case .serve: break
            case .check(let check): clusterCheck = check
            case .reject(let error):
                if spec.flags.contains(.transactionControl) && spec.name == "exec" && session.transaction != nil {
                    Self.discardTransaction(session, keyspace: node.keyspace, locked: false)
                    return reject(error, commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: false)
                }
                return reject(error, commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
            }
        }
        if spec.flags.contains(.write) && node.replication.isReplica && node.replication.readOnly && !session.isPrimaryLink {
            return reject(.readOnlyReplica, commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
        }
        // A script past busy-reply-threshold: -BUSY, the one relaxed load otherwise. The primary's stream waits for it.
        if node.busyScript.isBusy && !session.isPrimaryLink && !Self.servedWhileBusy(spec, arguments, session: session) {
            return reject(node.busyScript.refusal, commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
        }
        // CLIENT PAUSE: the one relaxed load while nothing is paused. A held command (queued in MULTI too) waits with
        // its connection suspended (redis blockPostponeClient).
        if node.clientPause.mode != .none && postponeIfPaused(spec, arguments, session: session, protocolVersion: reply.protocolVersion) {
            return .suspend
        }
        if session.transaction != nil && !spec.flags.contains(.transactionControl) {
            if spec.flags.contains(.noMulti) || spec.subcommand(of: arguments)?.flags.contains(.noMulti) == true {
                return reject(CommandError("Command not allowed inside a transaction"), commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
            }
            session.transaction!.append(QueuedCommand(spec: spec, arguments: arguments, commandIndex: commandIndex))
            session.updateInfo { $0.multiQueued = session.transaction?.count ?? -1 }
            reply.buffer.writeStaticString("+QUEUED\r\n")
            return .proceed
        }
        if session.replyMode == .on {
            return execute(spec, commandIndex, &arguments, session: session, reply: &reply, clusterCheck: clusterCheck)
        }
        // CLIENT REPLY OFF|SKIP: run the command, then drop what it wrote (SKIP drops one reply).
        // The skip is used up by this command, whatever it is: a CLIENT REPLY SKIP it runs skips the next one.
        let wasSkipping = session.replyMode == .skipNext
        if wasSkipping { session.replyMode = .on }
        let mark = reply.buffer.writerIndex
        let outcome = execute(spec, commandIndex, &arguments, session: session, reply: &reply, clusterCheck: clusterCheck)
        // CLIENT REPLY ON clears a pending skip before it answers (redis), so its OK is sent.
        let turnedRepliesOn = wasSkipping && spec.name == "client" && arguments.count == 3 && arguments.matches(1, "reply")
            && arguments.matches(2, "on")
        // (Un)subscribe confirmations are sent whatever CLIENT REPLY says, under RESP2 as under RESP3 (where they
        // are pushes), as redis 7.2 sends them (its CLIENT_PUSHING flag overrides the silencing).
        let wrotePushesOnly = spec.flags.contains(.pubsub) && spec.name.hasSuffix("subscribe")
        if (session.replyMode != .on || (wasSkipping && !turnedRepliesOn)) && !wrotePushesOnly {
            reply.buffer.moveWriterIndex(to: mark)
        }
        return outcome
    }

    /// The lock waits of ``execute``: they give up once a script holding the locks turns busy (the primary's stream
    /// waits for it). Kept out of line, so the closure they pass costs nothing when a free lock is taken at once.
    @inline(never)
    private func lockUnlessBusy(stripe: Int, capturing: Bool, session: ClientSession) -> Bool {
        let busyScript = node.busyScript
        return node.keyspace.lock(stripe: stripe, capturing: capturing, abandoningWhen: { busyScript.isBusy && !session.isPrimaryLink })
    }

    @inline(never)
    private func lockUnlessBusy(stripes: inout [Int], capturing: Bool, session: ClientSession) -> Bool {
        let busyScript = node.busyScript
        return node.keyspace.lock(stripes: &stripes, capturing: capturing, abandoningWhen: { busyScript.isBusy && !session.isPrimaryLink })
    }

    @inline(never)
    private func lockUnlessBusy(all capturing: Bool, session: ClientSession) -> Bool {
        let busyScript = node.busyScript
        return node.keyspace.lockAll(capturing: capturing, abandoningWhen: { busyScript.isBusy && !session.isPrimaryLink })
    }

    /// A command that gave up waiting for the locks a busy script holds (its arguments handed back already): refused
    /// -BUSY, untimed.
    @inline(never)
    private func refuseForBusyScript(_ commandIndex: Int, session: ClientSession, reply: inout ReplyWriter) -> DispatchOutcome {
        session.timedCommand = -1
        return reject(node.busyScript.refusal, commandIndex: commandIndex, session: session, reply: &reply, flagTransaction: true)
    }

    /// Whether a command is served while a script is busy (redis CMD_ALLOW_BUSY): DISCARD and RESET only for a client
    /// that watches no keys (dropping its watches takes the locks of the keys, which the script holds).
    @inline(never)
    static func servedWhileBusy(_ spec: CommandSpec, _ arguments: CommandArguments, session: ClientSession) -> Bool {
        if !spec.subcommands.isEmpty { return spec.subcommand(of: arguments)?.flags.contains(.allowBusy) == true }
        guard spec.flags.contains(.allowBusy) else { return false }
        return session.watchToken == nil || (spec.name != "discard" && spec.name != "reset")
    }

    /// ACL: why the session's user may not run this command (logged in ACL LOG), or `nil`.
    @inline(never)
    private func aclRefusal(_ spec: CommandSpec, _ commandIndex: Int, _ arguments: CommandArguments, session: ClientSession) -> CommandError? {
        guard let refused = node.acl.refusal(
            session, spec, commandIndex, arguments, context: session.transaction != nil ? "multi" : "toplevel", node: node)
        else { return nil }
        return CommandError(code: "NOPERM", refused.denial.message(user: refused.username))
    }

    /// CLIENT PAUSE: parks the command if the pause holds it back (every command under ALL; under WRITE those that
    /// may write or replicate). A deadline that passed ends the pause here if its timer has not yet. Never held: a
    /// replica's or primary's link, and the connection-level commands that change how the connection itself reads
    /// (AUTH, HELLO, QUIT, RESET, SHUTDOWN).
    @inline(never)
    private func postponeIfPaused(
        _ spec: CommandSpec, _ arguments: CommandArguments, session: ClientSession, protocolVersion: RESPVersion
    ) -> Bool {
        let pause = node.clientPause
        let now = node.clock.nowMilliseconds()
        if pause.endMilliseconds <= now {
            Self.endPause(node: node, dueAt: now)
            return false
        }
        if spec.flags.contains(.noAuth) { return false }
        if case .none = session.replicationRole {} else { return false }
        switch pause.mode {
        case .none: return false
        case .all: break
        case .write:
            if spec.name == "exec" {
                guard let queued = session.transaction, queued.contains(where: { Self.mayReplicate($0.spec, $0.arguments, node: node) }) else {
                    return false
                }
            } else if !Self.mayReplicate(spec, arguments, node: node) {
                return false
            }
        }
        return pause.postpone(PostponedCommand(session: session, arguments: arguments, protocolVersion: protocolVersion))
    }

    /// Whether a command writes or may feed replicas (redis CMD_WRITE | CMD_MAY_REPLICATE): EVAL, EVALSHA and FCALL
    /// unless their script or function declares `no-writes` (redis evalGetCommandFlags, fcallGetCommandFlags).
    static func mayReplicate(_ spec: CommandSpec, _ arguments: CommandArguments, node: NodeState) -> Bool {
        guard !spec.flags.isDisjoint(with: [.write, .mayReplicate]) else { return false }
        guard arguments.count > 1 else { return true }
        let flags: ScriptFlags?
        switch spec.name {
        case "eval": flags = try? ScriptFlags.parse(arguments.bytes(1)).flags
        case "evalsha": flags = node.scripts.flags(of: arguments.string(1).lowercased())
        case "fcall": flags = node.functions.flags(of: arguments.string(1))
        // Only FUNCTION's writing subcommands (LOAD, DELETE, FLUSH, RESTORE) carry redis's write flag.
        case "function": return spec.subcommand(of: arguments)?.flags.contains(.write) == true
        default: return true
        }
        return flags?.contains(.noWrites) != true
    }

    /// Ends the pause once `dueAt` reached its deadline (from the pause's timer, `generation` being the deadline's),
    /// or at once (CLIENT UNPAUSE, `dueAt` nil), and runs the commands that waited, each on its client's event
    /// loop in arrival order. A timer that finds the deadline not reached yet (the clock behind the loop's timer)
    /// waits again.
    static func endPause(node: NodeState, dueAt now: Int64?, generation: Int? = nil, timerLoop: (any EventLoop)? = nil) {
        let pause = node.clientPause
        guard let waiting = pause.unpause(onlyIfDueAt: now, generation: generation, keyspace: node.keyspace) else {
            if let now, let generation, let timerLoop, let remaining = pause.remaining(at: now, generation: generation) {
                timerLoop.scheduleTask(in: .milliseconds(max(1, remaining))) {
                    endPause(node: node, dueAt: node.clock.nowMilliseconds(), generation: generation, timerLoop: timerLoop)
                }
            }
            return
        }
        for command in waiting {
            let session = command.session
            session.connection.eventLoop.execute {
                guard !session.isClosed else { return }
                var arguments = command.arguments
                var reply = ReplyWriter(buffer: session.connection.allocator.buffer(capacity: 64), protocolVersion: command.protocolVersion)
                let outcome = NodeDispatcher(node: node).dispatch(&arguments, session: session, reply: &reply)
                // Suspended again: blocked (BLPOP) or paused anew; whoever holds it now resumes it.
                if outcome != .suspend { session.connection.resume(with: reply.buffer) }
            }
        }
    }

    /// Runs one command now: memory check, locks, handler, unlock, wake-ups.
    func execute(
        _ spec: CommandSpec, _ commandIndex: Int, _ arguments: inout CommandArguments, session: ClientSession,
        reply: inout ReplyWriter, clusterCheck: ClusterLockedCheck? = nil
    ) -> DispatchOutcome {
        let keyspace = node.keyspace
        var outOfMemoryAtStart = false
        // Over maxmemory, keys are evicted before any command, reads too (redis performEvictions in processCommand):
        // memory a write overshot by comes down at the next command, whatever it is. Only commands that may grow
        // memory are refused when nothing more can go.
        if keyspace.maxMemory > 0,
            case .outOfMemory = keyspace.evictIfNeeded(now: node.clock.nowMilliseconds(), baseline: node.baselineMemory.load(ordering: .relaxed))
        {
            if needsMemory(spec, session: session) {
                session.stats.rejectedCommandsOOM.add(1, ordering: .relaxed)
                session.stats.commands.add(1, to: .rejected, of: commandIndex)
                return reject(.outOfMemory, session: session, reply: &reply, flagTransaction: false)
            }
            // A script is not refused up front; its first write that may grow memory is (redis scriptVerifyOOM).
            if spec.flags.contains(.mayReplicate) { outOfMemoryAtStart = true }
        }
        // The arguments move into the context for the command and back out after it: a copy would cost a
        // reference-count increment and decrement per buffer they hold.
        // The one clock reading per command: its time (unix ms), and the end of the previous command's duration.
        let startMicroseconds = node.clock.nowMicroseconds()
        let coarseStart = node.slowLog.threshold >= 0 ? node.clock.coarseNowMicroseconds() : .min
        endCommandTiming(session, at: startMicroseconds)
        session.timedCommand = commandIndex
        session.timedCommandStart = startMicroseconds
        var context = CommandContext(
            arguments: consume arguments, spec: spec, session: session, node: node, now: startMicroseconds / 1000,
            inTransaction: false)
        context.clusterCheck = clusterCheck
        context.startMicroseconds = startMicroseconds
        if outOfMemoryAtStart { context.outOfMemoryAtStart = true }
        session.stats.commandsProcessed.wrappingAdd(1, ordering: .relaxed)
        session.lastInteraction.store(context.now, ordering: .relaxed)

        // A wait for the locks gives up if a script holding them turns busy meanwhile (the command is refused -BUSY,
        // as it would have been had it arrived a moment later); see lockUnlessBusy.
        if spec.flags.contains(.wholeKeyspace) {
            // Read-only whole-keyspace commands (INFO, KEYS, SCAN, DBSIZE) need not wait for a running snapshot
            // to serialize the stripes it has not captured yet; writers (FLUSHALL, SWAPDB, EXEC) must.
            let capturing = spec.flags.contains(.write) || spec.flags.contains(.mayReplicate) || spec.name == "exec"
            guard lockUnlessBusy(all: capturing, session: session) else {
                arguments = context.surrenderArguments()
                return refuseForBusyScript(commandIndex, session: session, reply: &reply)
            }
            run(spec, commandIndex, &context, &reply)
            keyspace.unlockAll()
        } else {
            switch spec.keys {
            case .none:
                run(spec, commandIndex, &context, &reply)
            case .range(1, 1, _):
                // The common single-key command: hash the key once, reuse it in the handler.
                let key = singleKey(of: context.arguments, session: session)
                context.cachedKey = key
                context.cachedKeyIndex = 1
                let stripe = keyspace.stripeIndex(for: key)
                let capturing = !spec.flags.contains(.readonly)
                // The free lock without a wait (as cheap as taking it), else the wait that may give up.
                guard keyspace.tryLock(stripe: stripe, capturing: capturing)
                    || lockUnlessBusy(stripe: stripe, capturing: capturing, session: session)
                else {
                    arguments = context.surrenderArguments()
                    return refuseForBusyScript(commandIndex, session: session, reply: &reply)
                }
                run(spec, commandIndex, &context, &reply)
                keyspace.unlock(stripe: stripe)
            default:
                let positions = spec.keys.positions(in: context.arguments)
                var stripes = positions.map { position in
                    context.arguments.withBytes(position) { keyspace.stripeIndex(for: KeyRef($0)) }
                }
                guard lockUnlessBusy(stripes: &stripes, capturing: !spec.flags.contains(.readonly), session: session) else {
                    arguments = context.surrenderArguments()
                    return refuseForBusyScript(commandIndex, session: session, reply: &reply)
                }
                run(spec, commandIndex, &context, &reply)
                keyspace.unlock(stripes: stripes)
            }
        }
        // The slow log: while it is on, two coarse clock readings (CLOCK_REALTIME_COARSE, a fifth of a precise
        // one's cost here), and a precise one only for a command they say may have reached the threshold. The
        // coarse clock lags the precise one by a tick or more (over 5 ms seen here), so it is compared with itself:
        // a command's coarse duration falls short of its real one by at most about a tick while it keeps a CPU busy.
        let slowThreshold = node.slowLog.threshold
        if slowThreshold >= 0 {
            let clock = node.clock
            let mayBeSlow = coarseStart == .min
                || clock.coarseNowMicroseconds() &- coarseStart >= slowThreshold &- 2 &* clock.coarseResolutionMicroseconds
            if mayBeSlow && !context.suspends && !spec.flags.contains(.skipSlowlog) {
                logIfSlow(context, spec: spec, startedAt: startMicroseconds)
            }
        }
        // Counted once it ran, as redis does: INFO does not count itself, and CONFIG RESETSTAT counts after its reset.
        // A command that blocked is counted when it ends (BlockingRegistry), with the time of this run.
        if context.countsWhenUnblocked {
            session.timedCommand = -1
        } else {
            session.stats.commands.add(1, to: .calls, of: commandIndex)
        }
        if node.monitors.isActive && Self.monitorsSee(spec, context.arguments) {
            node.feedMonitors(context.arguments, spec: spec, session: session)
        }
        // A tracking client's reads may have grown the tracking table past its limit (all locks released here).
        if session.tracking != nil { node.enforceTrackingLimit() }
        if node.blocking.hasAnyChangeWaiters { signalChangedKeys(&context) }
        if !context.readyKeys.isEmpty {
            node.blocking.signal(context.readyKeys, node: node)
        }
        let outcome: DispatchOutcome = context.closesConnection ? .closeAfterReply : context.suspends ? .suspend : .proceed
        // CLIENT CACHING applies to the next command (the commands of a transaction, through its EXEC).
        if session.trackingCachingGiven && session.transaction == nil && spec.name != "client" { session.trackingCachingGiven = false }
        arguments = context.surrenderArguments()
        return outcome
    }

    /// Whether MONITOR shows a command once it ran: not administrative ones (nor administrative subcommands), nor the
    /// scripting commands that showed themselves before their scripts ran.
    static func monitorsSee(_ spec: CommandSpec, _ arguments: CommandArguments) -> Bool {
        spec.flags.isDisjoint(with: [.admin, .skipMonitor]) && spec.subcommand(of: arguments)?.flags.contains(.admin) != true
    }

    /// Takes a precise reading of the time and writes the command to the slow log if it ran long enough.
    @inline(never)
    private func logIfSlow(_ context: borrowing CommandContext, spec: CommandSpec, startedAt start: Int64) {
        let end = node.clock.nowMicroseconds()
        Self.logSlowCommand(context.arguments, spec: spec, session: context.session, node: node, from: start, to: end)
    }

    /// Writes a command that ran from `start` to `end` (unix µs) to the slow log, if that reached the threshold.
    static func logSlowCommand(
        _ arguments: CommandArguments, spec: CommandSpec, session: ClientSession, node: NodeState, from start: Int64, to end: Int64
    ) {
        node.slowLog.record(
            arguments, commandName: spec.name, microseconds: max(0, end - start), endedAtMicroseconds: end,
            clientAddress: session.connection.remoteAddress, clientName: session.snapshot.name)
    }

    /// Runs the handler, turning a thrown error into an error reply.
    private func run(_ spec: CommandSpec, _ commandIndex: Int, _ context: inout CommandContext, _ reply: inout ReplyWriter) {
        if let check = context.clusterCheck, let error = check.verify(context) {
            if check.isTransaction { Self.discardTransaction(context.session, keyspace: node.keyspace, locked: true) }
            context.session.stats.commands.add(1, to: .failed, of: commandIndex)
            Self.replyError(error, session: context.session, node: node, reply: &reply)
            return
        }
        do {
            try spec.handler(&context, &reply)
            // A script's declared keys are not tracked; the reads its commands make are (redis tracks per call).
            if let mode = context.session.tracking, !mode.broadcast, spec.flags.contains(.readonly), spec.group != .scripting {
                Self.rememberTrackedReads(spec, context, mode: mode)
            }
            // A blocking command that suspends has changed nothing yet: it counts, and is propagated, when served.
            if spec.flags.contains(.write) && !context.suspends && !context.changedNothing {
                context.session.stats.changesApplied.wrappingAdd(1, ordering: .relaxed)
                // With the command's stripe locks still held: the stream order is the execution order per key.
                if node.replication.isRecording { node.replication.propagate(context) }
            }
        } catch {
            context.session.stats.commands.add(1, to: .failed, of: commandIndex)
            Self.replyError(error, session: context.session, node: node, reply: &reply)
        }
    }

    /// CLIENT TRACKING's default mode: remembers the keys a read command of a tracking client read, under their
    /// stripe locks (so a concurrent write of one of them either came first or will invalidate it). OPTIN tracks
    /// only after CLIENT CACHING YES, OPTOUT skips after CLIENT CACHING NO (redis trackingRememberKeys).
    static func rememberTrackedReads(_ spec: CommandSpec, _ context: CommandContext, mode: TrackingMode) {
        let session = context.session
        if (mode.optIn && !session.trackingCachingGiven) || (mode.optOut && session.trackingCachingGiven) { return }
        if spec.flags.contains(.pubsub) { return }
        let keyspace = context.node.keyspace
        let id = session.connection.id
        for position in spec.keys.positions(in: context.arguments) {
            context.arguments.withBytes(position) { keyspace.trackRead(KeyRef($0), by: id) }
        }
    }

    /// Cluster routing for one command (redis processCommand's cluster redirection block). ASKING lasts one
    /// command: it is consumed here by whatever command follows it.
    private func routeInCluster(
        _ cluster: ClusterState, _ spec: CommandSpec, _ arguments: CommandArguments, session: ClientSession
    ) -> ClusterRoute {
        let asking = session.isAsking
        session.isAsking = false
        let positions: [Int]
        switch spec.keys {
        case .none:
            if spec.flags.contains(.transactionControl) && spec.name == "exec", let queued = session.transaction, !queued.isEmpty {
                return cluster.routing.routeTransaction(queued, asking: asking, readOnlyClient: session.isReadOnlyClusterClient)
            }
            return .serve
        case .range(1, 1, _): positions = [1]
        default: positions = spec.keys.positions(in: arguments)
        }
        if positions.isEmpty { return .serve }
        return cluster.routing.route(spec, arguments, positions: positions, asking: asking, readOnlyClient: session.isReadOnlyClusterClient)
    }

    /// Drops a transaction whose EXEC was redirected (redis discardTransaction: the queue and the watches).
    static func discardTransaction(_ session: ClientSession, keyspace: Keyspace, locked: Bool) {
        session.transaction = nil
        session.transactionHasErrors = false
        if locked {
            TransactionState.unwatchAllLocked(session, keyspace: keyspace)
        } else {
            TransactionState.unwatchAll(session, keyspace: keyspace)
        }
    }

    private func needsMemory(_ spec: CommandSpec, session: ClientSession) -> Bool {
        if spec.flags.contains(.denyOOM) { return true }
        if spec.name == "exec", let queued = session.transaction {
            return queued.contains { $0.spec.flags.contains(.denyOOM) }
        }
        return false
    }

    private func reject(
        _ error: CommandError, commandIndex: Int? = nil, session: ClientSession, reply: inout ReplyWriter, flagTransaction: Bool
    ) -> DispatchOutcome {
        if flagTransaction && session.transaction != nil { session.transactionHasErrors = true }
        if let commandIndex { session.stats.commands.add(1, to: .rejected, of: commandIndex) }
        Self.replyError(error, session: session, node: node, reply: &reply)
        return .proceed
    }

    /// Writes `error` as a command's reply and counts it (INFO stats `total_error_replies`, INFO errorstats).
    static func replyError(_ error: CommandError, session: ClientSession, node: NodeState, reply: inout ReplyWriter) {
        session.stats.errorReplies.wrappingAdd(1, ordering: .relaxed)
        node.recordErrorReply(code: error.code)
        reply.error(code: error.code, message: error.message)
    }

    /// Blocked XREADGROUP clients are retried on any write to their keys (redis signalDeletedKeyAsReady): the
    /// keys a write command names, or every such key after a whole-keyspace command (FLUSHALL, SWAPDB, EXEC).
    private func signalChangedKeys(_ context: inout CommandContext) {
        let spec = context.spec
        if context.suspends || context.changedNothing { return }
        if spec.flags.contains(.wholeKeyspace) {
            // Writers only (INFO, KEYS and SCAN change nothing); EXEC and scripts may have written anything.
            guard spec.flags.contains(.write) || spec.flags.contains(.mayReplicate) || spec.name == "exec" else { return }
            for key in node.blocking.anyChangeKeys() { context.appendReady(key) }
        } else if spec.flags.contains(.write) {
            let arguments = context.arguments
            let database = context.session.database
            for position in spec.keys.positions(in: arguments) {
                context.appendReady(DatabaseKey(database: database, key: arguments.withBytes(position) { CompactBytes($0) }))
            }
        }
    }

    /// redis's wording: `unknown command 'foo', with args beginning with: 'a' 'b' `.
    static func unknownCommand(_ arguments: CommandArguments) -> CommandError {
        let name = arguments.count > 0 ? String(arguments.string(0).prefix(128)) : ""
        var rest = ""
        if arguments.count > 1 {
            for index in 1..<arguments.count {
                let argument = arguments.string(index)
                if rest.count + argument.count > 128 { break }
                rest += "'\(argument)' "
            }
        }
        return CommandError("unknown command '\(name)', with args beginning with: \(rest)")
    }

    /// Runs a queued command inside EXEC, with every stripe already locked. Returns keys made ready.
    static func runQueued(
        _ queued: QueuedCommand, session: ClientSession, node: NodeState, now: Int64, startMicroseconds: Int64,
        reply: inout ReplyWriter, fromScript: Bool = false
    ) -> [DatabaseKey] {
        var context = CommandContext(
            arguments: queued.arguments, spec: queued.spec, session: session, node: node, now: now, inTransaction: true)
        context.fromScript = fromScript
        // The time of the EXEC or script running it: TIME answers it, as redis's cached time.
        context.startMicroseconds = startMicroseconds
        session.stats.commandsProcessed.wrappingAdd(1, ordering: .relaxed)
        // Counted, not timed: EXEC's time covers the commands it runs.
        session.stats.commands.add(1, to: .calls, of: queued.commandIndex)
        // Each command EXEC runs goes to the slow log on its own (a script's are covered by its EVAL).
        let timesForSlowLog = !fromScript && node.slowLog.threshold >= 0
        let start = timesForSlowLog ? node.clock.nowMicroseconds() : 0
        defer {
            if timesForSlowLog {
                logSlowCommand(queued.arguments, spec: queued.spec, session: session, node: node, from: start, to: node.clock.nowMicroseconds())
            }
        }
        do {
            try queued.spec.handler(&context, &reply)
            if let mode = session.tracking, !mode.broadcast, queued.spec.flags.contains(.readonly) {
                rememberTrackedReads(queued.spec, context, mode: mode)
            }
            if queued.spec.flags.contains(.write) && !context.changedNothing {
                session.stats.changesApplied.wrappingAdd(1, ordering: .relaxed)
                if node.replication.isRecording { node.replication.propagate(context) }
            }
        } catch {
            session.stats.commands.add(1, to: .failed, of: queued.commandIndex)
            replyError(error, session: session, node: node, reply: &reply)
        }
        if node.monitors.isActive && monitorsSee(queued.spec, queued.arguments) {
            node.feedMonitors(queued.arguments, spec: queued.spec, session: session, fromScript: fromScript)
        }
        return context.readyKeys
    }
}
