// Replication commands (redis replication.c): REPLICAOF/SLAVEOF, ROLE, WAIT, and the primary side of the
// replication protocol replicas speak: REPLCONF (listening-port, capa, ack, getack) and PSYNC (+CONTINUE with the
// backlog, or +FULLRESYNC with a snapshot). SYNC (pre-PSYNC replicas) is refused.
import CacheStore
import Foundation
import Logging
import NIOCore
import RESPServer
import Synchronization

extension CommandTable {
    static let replicationCommands: [CommandSpec] = [
        // REPLICAOF host port | NO ONE
        CommandSpec("replicaof", arity: 3, flags: [.noScript, .admin, .noMulti, .stale], group: .server,
                    summary: "Configures a server as replica of another, or promotes it to a primary.", since: "5.0.0") {
            context, reply throws(CommandError) in
            try ReplicationFamily.replicaOf(context, &reply)
        },
        // SLAVEOF host port | NO ONE
        CommandSpec("slaveof", arity: 3, flags: [.noScript, .admin, .noMulti, .stale], group: .server,
                    summary: "Sets a Redis server as a replica of another, or promotes it to being a master.") {
            context, reply throws(CommandError) in
            try ReplicationFamily.replicaOf(context, &reply)
        },
        // ROLE
        CommandSpec("role", arity: 1, flags: [.noScript, .fast, .loading, .stale], group: .server,
                    summary: "Returns the replication role.", since: "2.8.12") { context, reply throws(CommandError) in
            ReplicationFamily.role(context, &reply)
        },
        // WAIT numreplicas timeout
        CommandSpec("wait", arity: 3, flags: [.blocking], group: .generic,
                    summary: "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
                    since: "3.0.0") { context, reply throws(CommandError) in
            try ReplicationFamily.wait(&context, &reply)
        },
        // REPLCONF option value [option value ...]
        CommandSpec("replconf", arity: -1, flags: [.noScript, .admin, .noMulti, .loading, .stale, .allowBusy], group: .server,
                    summary: "An internal command for configuring the replication stream.", since: "3.0.0") {
            context, reply throws(CommandError) in
            try ReplicationFamily.replconf(context, &reply)
        },
        // PSYNC replicationid offset
        CommandSpec("psync", arity: -3, flags: [.noScript, .admin, .noMulti], group: .server,
                    summary: "An internal command used in replication.", since: "2.8.0") { context, reply throws(CommandError) in
            try ReplicationFamily.psync(&context, &reply)
        },
        // SYNC
        CommandSpec("sync", arity: 1, flags: [.noScript, .admin, .noMulti], group: .server,
                    summary: "An internal command used in replication.") { context, reply throws(CommandError) in
            if let refusal = context.node.replication.refusal(for: context.session.connection) { throw refusal }
            throw CommandError("SYNC is not supported: replicas must use PSYNC")
        },
    ]
}

/// The replication commands' implementations.
enum ReplicationFamily {
    static func replicaOf(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let replication = context.node.replication
        if context.arguments.matches(1, "no") && context.arguments.matches(2, "one") {
            replication.promote(node: context.node)
            reply.ok()
            return
        }
        guard let port = context.arguments.integer(2), (1...65535).contains(port) else {
            throw CommandError("Invalid master port")
        }
        if let refusal = replication.replicaRefusal() { throw refusal }
        if replication.becomeReplica(of: context.arguments.string(1), port: port, node: context.node) {
            reply.ok()
        } else {
            reply.simpleString("OK Already connected to specified master")
        }
    }

    /// ROLE: `master offset [[ip port offset]…]` or `slave host port state offset`.
    static func role(_ context: CommandContext, _ reply: inout ReplyWriter) {
        let replication = context.node.replication
        if replication.isReplica, let link = replication.link {
            let status = link.status.withLock { $0 }
            reply.arrayHeader(5)
            reply.bulk("slave")
            reply.bulk(status.host)
            reply.integer(status.port)
            reply.bulk(roleState(status.state))
            reply.integer(Int(status.offset))
            return
        }
        let offset = replication.snapshot.offset
        let replicas = replication.replicas
        reply.arrayHeader(3)
        reply.bulk("master")
        reply.integer(Int(offset))
        reply.arrayHeader(replicas.count)
        for replica in replicas {
            reply.arrayHeader(3)
            reply.bulk(replica.ip)
            reply.bulk(String(replica.port))
            reply.bulk(String(replica.offset))
        }
    }

    /// INFO replication, with redis's field names.
    static func infoFields(_ node: NodeState) -> [(String, String)] {
        let replication = node.replication
        let (identity, offset, backlog) = replication.snapshot
        var fields: [(String, String)] = []
        if replication.isReplica, let link = replication.link {
            let status = link.status.withLock { $0 }
            let age = status.lastIOMilliseconds > 0 ? (monotonicMilliseconds() - status.lastIOMilliseconds) / 1000 : -1
            fields += [
                ("role", "slave"), ("master_host", status.host), ("master_port", String(status.port)),
                ("master_link_status", status.state == .streaming ? "up" : "down"),
                ("master_last_io_seconds_ago", String(age)),
                ("master_sync_in_progress", status.state == .receivingSnapshot ? "1" : "0"),
                ("slave_read_repl_offset", String(max(0, status.offset))), ("slave_repl_offset", String(max(0, status.offset))),
                ("slave_priority", "100"), ("slave_read_only", replication.readOnly ? "1" : "0"), ("replica_announced", "1"),
                ("master_link_secure", status.secure ? "1" : "0"),
            ]
            if status.state != .streaming, let error = status.lastError {
                fields.append(("master_link_down_reason", error.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")))
            }
        } else {
            fields.append(("role", "master"))
        }
        let replicas = replication.isReplica ? [] : replication.replicas
        fields.append(("connected_slaves", String(replicas.count)))
        for (index, replica) in replicas.enumerated() {
            fields.append((
                "slave\(index)",
                "ip=\(replica.ip),port=\(replica.port),state=\(replica.online ? "online" : "wait_bgsave"),offset=\(replica.offset),lag=\(replica.lagSeconds)"))
        }
        fields += [
            ("master_failover_state", "no-failover"), ("master_replid", identity.replid), ("master_replid2", identity.replid2),
            ("master_repl_offset", String(offset)), ("second_repl_offset", String(identity.secondReplOffset)),
            ("repl_backlog_active", backlog == nil ? "0" : "1"), ("repl_backlog_size", String(backlog?.size ?? node.configuration.replBacklogSize)),
            ("repl_backlog_first_byte_offset", String(backlog?.first ?? 0)), ("repl_backlog_histlen", String(backlog?.length ?? 0)),
        ]
        return fields
    }

    /// ROLE's link state names.
    static func roleState(_ state: ReplicaLinkStateMachine.State) -> String {
        switch state {
        case .idle: return "none"
        case .waitingToReconnect: return "connect"
        case .connecting, .awaitingPong, .awaitingListeningPortAck, .awaitingCapaAck, .awaitingPSyncReply: return "connecting"
        case .receivingSnapshot: return "sync"
        case .streaming: return "connected"
        }
    }

    /// WAIT numreplicas timeout (redis waitCommand): suspends the client until that many replicas acknowledged
    /// the current offset, or the timeout (ms; 0 = forever) passed; replies with the number that did.
    static func wait(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let replication = context.node.replication
        if replication.isReplica {
            throw CommandError(
                "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.")
        }
        let needed = try context.integer(1)
        let timeout = try context.integer(2)
        guard timeout >= 0 else { throw CommandError("timeout is negative") }
        if context.inTransaction {
            reply.integer(replication.wait(needed: Int.max, timeoutMilliseconds: -1, connection: nil) ?? 0)
            return
        }
        if let count = replication.wait(needed: needed, timeoutMilliseconds: timeout, connection: context.session.connection) {
            reply.integer(count)
        } else {
            context.suspends = true
        }
    }

    static func replconf(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let session = context.session
        let replication = context.node.replication
        guard arguments.count >= 2 else {
            reply.ok()
            return
        }
        // An established replica's acknowledgement: no reply (the replica does not read one).
        if arguments.matches(1, "ack") {
            if case .replica(let feed) = session.replicationRole, arguments.count >= 3, let offset = Int64(arguments.string(2)) {
                replication.acknowledge(feed, offset: offset)
            }
            return
        }
        if arguments.matches(1, "getack") { return }
        if let refusal = replication.refusal(for: session.connection) { throw refusal }
        guard arguments.count % 2 == 1 else { throw .syntax }
        var index = 1
        while index < arguments.count {
            let option = arguments.lowercased(index)
            switch option {
            case "listening-port":
                guard let port = arguments.integer(index + 1), (0...65535).contains(port) else { throw .notInteger }
                switch session.replicationRole {
                case .replica: break
                case .handshaking(_, let streams): session.replicationRole = .handshaking(listeningPort: port, streamsSnapshot: streams)
                default: session.replicationRole = .handshaking(listeningPort: port, streamsSnapshot: false)
                }
            case "capa":
                if arguments.lowercased(index + 1) == "eof" {
                    switch session.replicationRole {
                    case .replica: break
                    case .handshaking(let port, _): session.replicationRole = .handshaking(listeningPort: port, streamsSnapshot: true)
                    default: session.replicationRole = .handshaking(listeningPort: 0, streamsSnapshot: true)
                    }
                }
            case "ip-address", "rdb-only", "rdb-filter-only", "rdb-channel":
                break
            default:
                throw CommandError("Unrecognized REPLCONF option: \(option.prefix(64))")
            }
            index += 2
        }
        reply.ok()
    }

    /// PSYNC replid offset (redis syncCommand / masterTryPartialResynchronization).
    static func psync(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let replication = context.node.replication
        let session = context.session
        if let refusal = replication.refusal(for: session.connection) { throw refusal }
        if replication.isReplica {
            throw CommandError(code: "NOMASTERLINK", "this node is a replica; chained replication is not supported, replicate from its primary")
        }
        if case .replica = session.replicationRole { throw CommandError("PSYNC already received on this connection") }
        let requestedID = context.arguments.string(1)
        guard let requestedOffset = Int64(context.arguments.string(2)) else { throw .notInteger }
        var listeningPort = 0
        var streamsSnapshot = false
        if case .handshaking(let port, let streams) = session.replicationRole {
            listeningPort = port
            streamsSnapshot = streams
        }
        let feed = ReplicaFeed(connection: session.connection, listeningPort: listeningPort)
        let logger = replication.logger
        switch replication.decide(requestedID: requestedID, offset: requestedOffset) {
        case .partial(let from):
            if let backlog = replication.attachPartial(feed, from: from) {
                session.replicationRole = .replica(feed)
                replication.syncPartialOK.add(1, ordering: .relaxed)
                let replid = replication.snapshot.identity.replid
                reply.buffer.writeString("+CONTINUE \(replid)\r\n")
                reply.buffer.writeBytes(backlog)
                logger.notice("Partial resynchronization accepted for replica \(session.connection.remoteAddress): sending \(backlog.count) bytes of backlog from offset \(from)")
                return
            }
            replication.syncPartialErr.add(1, ordering: .relaxed)
            logger.notice("Partial resynchronization not possible for \(session.connection.remoteAddress): backlog moved on")
        case .full(let reason):
            if requestedID != "?" {
                replication.syncPartialErr.add(1, ordering: .relaxed)
                logger.notice("Partial resynchronization refused for \(session.connection.remoteAddress): \(reason)")
            }
        }
        replication.syncFull.add(1, ordering: .relaxed)
        session.replicationRole = .replica(feed)
        FullSync.start(feed, node: context.node, streaming: streamsSnapshot, reply: &reply, logger: logger)
    }
}
