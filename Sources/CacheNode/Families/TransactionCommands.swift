// Transactions (redis multi.c): MULTI queues commands, EXEC runs them atomically with every stripe locked,
// WATCH aborts EXEC when a watched key changed (or expired) after WATCH.
import CacheStore
import RESPServer

extension CommandTable {
    static let transactionCommands: [CommandSpec] = [
        // MULTI
        CommandSpec("multi", arity: 1, flags: [.noScript, .fast, .transactionControl, .loading, .stale, .allowBusy], group: .transactions,
                    summary: "Starts a transaction.", since: "1.2.0") { context, reply throws(CommandError) in
            guard context.session.transaction == nil else { throw .nestedMulti }
            context.session.transaction = []
            context.session.transactionHasErrors = false
            reply.ok()
        },
        // EXEC
        CommandSpec("exec", arity: 1, flags: [.noScript, .transactionControl, .wholeKeyspace, .loading, .stale, .skipSlowlog], group: .transactions,
                    summary: "Executes all commands in a transaction.", since: "1.2.0") { context, reply throws(CommandError) in
            let session = context.session
            guard let queued = session.transaction else { throw .execWithoutMulti }
            session.transaction = nil
            defer { TransactionState.unwatchAllLocked(session, keyspace: context.keyspace) }
            if session.transactionHasErrors {
                session.transactionHasErrors = false
                throw .execAbort
            }
            TransactionState.expireWatchedKeys(session, context: context)
            if session.watchToken?.isDirty == true {
                reply.nullArray()
                return
            }
            reply.arrayHeader(queued.count)
            for command in queued {
                // The rules may have changed since the command was queued (redis execCommand checks again).
                if let refused = context.node.acl.refusal(
                    session, command.spec, command.commandIndex, command.arguments, context: "multi", node: context.node) {
                    reply.error(code: "NOPERM", message: "ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: "
                        + refused.denial.message(user: refused.username))
                    continue
                }
                let ready = NodeDispatcher.runQueued(
                    command, session: session, node: context.node, now: context.now, startMicroseconds: context.startMicroseconds,
                    reply: &reply)
                for key in ready { context.appendReady(key) }
            }
            if context.node.replication.isRecording { context.node.replication.commitTransaction() }
        },
        // DISCARD
        CommandSpec("discard", arity: 1, flags: [.noScript, .fast, .transactionControl, .loading, .stale, .allowBusy], group: .transactions,
                    summary: "Discards a transaction.", since: "2.0.0") { context, reply throws(CommandError) in
            guard context.session.transaction != nil else { throw .discardWithoutMulti }
            context.session.transaction = nil
            context.session.transactionHasErrors = false
            TransactionState.unwatchAll(context.session, keyspace: context.keyspace)
            reply.ok()
        },
        // WATCH key [key ...]
        CommandSpec("watch", arity: -2, flags: [.noScript, .fast, .transactionControl, .loading, .stale], keys: .range(first: 1, last: -1, step: 1),
                    group: .transactions, summary: "Monitors changes to keys to determine the execution of a transaction.",
                    since: "2.2.0") { context, reply throws(CommandError) in
            let session = context.session
            guard session.transaction == nil else { throw .watchInMulti }
            let token = session.watchToken ?? WatchToken()
            session.watchToken = token
            for index in 1..<context.arguments.count {
                let key = context.key(index)
                if session.watchedKeys.contains(where: { $0.database == session.database && $0.key.bytes == key.bytes }) { continue }
                context.keyspace.watch(key, database: session.database, token: token, now: context.now)
                session.watchedKeys.append((session.database, key))
            }
            reply.ok()
        },
        // UNWATCH
        CommandSpec("unwatch", arity: 1, flags: [.noScript, .fast, .transactionControl, .loading, .stale, .wholeKeyspace], group: .transactions,
                    summary: "Forgets about all watched keys.", since: "2.2.0") { context, reply throws(CommandError) in
            TransactionState.unwatchAllLocked(context.session, keyspace: context.keyspace)
            reply.ok()
        },
    ]
}

extension CommandContext {
    /// Adds a ready key recorded by a command run inside EXEC.
    mutating func appendReady(_ key: DatabaseKey) {
        readyKeys.append(key)
    }
}

/// WATCH bookkeeping.
enum TransactionState {
    /// Drops every watch of `session`, locking each key's stripe (no stripe may be held by the caller).
    static func unwatchAll(_ session: ClientSession, keyspace: Keyspace) {
        guard let token = session.watchToken else { return }
        for (database, key) in session.watchedKeys {
            let stripe = keyspace.stripeIndex(for: key)
            keyspace.lock(stripe: stripe)
            keyspace.unwatch(key, database: database, token: token)
            keyspace.unlock(stripe: stripe)
        }
        session.watchedKeys = []
        session.watchToken = nil
    }

    /// Drops every watch of `session` when the caller already holds every stripe (EXEC, UNWATCH).
    static func unwatchAllLocked(_ session: ClientSession, keyspace: Keyspace) {
        guard let token = session.watchToken else { return }
        for (database, key) in session.watchedKeys {
            keyspace.unwatch(key, database: database, token: token)
        }
        session.watchedKeys = []
        session.watchToken = nil
    }

    /// Reads every watched key so that one whose TTL passed is expired now, which marks the token dirty
    /// (redis 7 aborts EXEC when a watched key expired after WATCH).
    static func expireWatchedKeys(_ session: ClientSession, context: CommandContext) {
        for (database, key) in session.watchedKeys {
            _ = context.keyspace.database(database, now: context.now).exists(key)
        }
    }
}
