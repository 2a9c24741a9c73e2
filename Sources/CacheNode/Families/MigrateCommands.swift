// MIGRATE and RESTORE-ASKING: moving keys between nodes, atomically per key (redis cluster.c migrateCommand).
//
// The source holds the stripe locks of the keys it moves for the whole exchange (the dispatcher took them for the
// command's key positions): it serializes the values (DUMP payloads), sends one pipelined batch of
// `RESTORE-ASKING key ttl payload [REPLACE]` over a cached peer connection, and deletes each key only after the
// target acknowledged its RESTORE. No write can slip in between the copy and the delete, and if the target fails
// or dies mid-transfer the keys stay here (-IOERR, as redis). The exchange blocks this event loop for one round
// trip, as redis's MIGRATE blocks its server; other event loops keep serving other stripes.
import CacheStore
import NIOCore
import RESPServer
import Synchronization

let migrateCommands: [CommandSpec] = [
    // MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password | AUTH2 username password]
    //   [KEYS key [key ...]]
    CommandSpec("migrate", arity: -6, flags: [.write], keys: .custom(MigrateFamily.keyPositions), group: .generic,
                summary: "Atomically transfers a key from one Redis instance to another.", since: "2.6.0") { context, reply throws(CommandError) in
        try MigrateFamily.migrate(&context, &reply)
    },
    // RESTORE-ASKING key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
    CommandSpec("restore-asking", arity: -4, flags: [.write, .denyOOM, .asking], keys: .first, group: .server,
                summary: "An internal command for migrating keys in a cluster.", since: "3.0.0") { context, reply throws(CommandError) in
        try MigrateFamily.restore(&context, &reply)
    },
]

enum MigrateFamily {
    /// The keys of a MIGRATE: argument 3, or everything after KEYS when argument 3 is empty.
    @Sendable static func keyPositions(_ arguments: CommandArguments) -> [Int] {
        guard arguments.count > 5 else { return [] }
        if arguments.length(3) > 0 { return [3] }
        var index = 6
        while index < arguments.count {
            if arguments.matches(index, "auth") {
                index += 2
            } else if arguments.matches(index, "auth2") {
                index += 3
            } else if arguments.matches(index, "keys") {
                return Array((index + 1)..<arguments.count)
            } else {
                index += 1
            }
        }
        return []
    }

    static func migrate(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        var copy = false
        var replace = false
        var auth: [[UInt8]]? = nil
        var firstKey = 3
        var keyCount = 1
        var index = 6
        while index < arguments.count {
            if arguments.matches(index, "copy") {
                copy = true
            } else if arguments.matches(index, "replace") {
                replace = true
            } else if arguments.matches(index, "auth") {
                guard index + 1 < arguments.count else { throw .syntax }
                auth = [Array("AUTH".utf8), arguments.bytes(index + 1)]
                index += 1
            } else if arguments.matches(index, "auth2") {
                guard index + 2 < arguments.count else { throw .syntax }
                auth = [Array("AUTH".utf8), arguments.bytes(index + 1), arguments.bytes(index + 2)]
                index += 2
            } else if arguments.matches(index, "keys") {
                guard arguments.length(3) == 0 else {
                    throw CommandError("When using MIGRATE KEYS option, the key argument must be set to the empty string")
                }
                firstKey = index + 1
                keyCount = arguments.count - firstKey
                break
            } else {
                throw .syntax
            }
            index += 1
        }
        guard let port = arguments.integer(2), (1...65535).contains(port) else { throw CommandError("Invalid port") }
        guard let database = arguments.integer(4), let timeoutArgument = arguments.integer(5) else { throw .notInteger }
        let timeout = timeoutArgument <= 0 ? 1000 : timeoutArgument
        let host = arguments.string(1)

        // Serialize the keys that exist (missing or expired ones are skipped, as redis does), straight into the one
        // buffer the batch is written from: RESTORE-ASKING in and out of cluster mode (redis-server accepts it
        // either way, and on an importing slot it is served without a separate ASKING).
        let db = context.node.keyspace.database(context.session.database, now: context.now)
        var keys: [KeyRef] = []
        keys.reserveCapacity(keyCount)
        var movedPositions: [Int] = []
        movedPositions.reserveCapacity(keyCount)
        var body = ByteBufferAllocator().buffer(capacity: 64 * keyCount)
        for position in firstKey..<(firstKey + keyCount) {
            let key = context.key(position)
            guard let value = db.peek(key) else { continue }
            var ttl = 0
            if case .expiresAt(let at) = db.expiry(key) { ttl = max(1, Int(at - context.now)) }
            body.writeStaticString(replace ? "*5\r\n$14\r\nRESTORE-ASKING\r\n$" : "*4\r\n$14\r\nRESTORE-ASKING\r\n$")
            arguments.withBytes(position) { bytes in
                ReplyWriterDecimal.write(bytes.count, to: &body)
                body.writeBytes(bytes)
            }
            body.writeStaticString("\r\n$")
            let ttlText = String(ttl).utf8
            ReplyWriterDecimal.write(ttlText.count, to: &body)
            body.writeBytes(ttlText)
            body.writeStaticString("\r\n$")
            let payload = DumpPayload.encode(value)
            ReplyWriterDecimal.write(payload.count, to: &body)
            body.writeBytes(payload)
            body.writeStaticString(replace ? "\r\n$7\r\nREPLACE\r\n" : "\r\n")
            keys.append(key)
            movedPositions.append(position)
        }
        if keys.isEmpty {
            context.suppressPropagation()
            reply.simpleString("NOKEY")
            return
        }
        let pool = context.node.cluster?.peers ?? context.node.replication.peers
        var replies: [PeerReply] = []
        var preamble = 0
        do {
            try pool.withConnection(host: host, port: port, timeout: timeout) {
                (connection: any ClusterPeerConnection) throws(ClusterPeerError) in
                // AUTH and SELECT first when needed (SELECT only when the cached connection is elsewhere, as redis).
                var request = ByteBufferAllocator().buffer(capacity: body.readableBytes + 64)
                preamble = 0
                if let auth {
                    RESPCommandEncoder.encode(auth, into: &request)
                    preamble += 1
                }
                let select = connection.selectedDatabase != database
                if select {
                    RESPCommandEncoder.encode([Array("SELECT".utf8), Array(String(database).utf8)], into: &request)
                    preamble += 1
                }
                request.writeImmutableBuffer(body)
                replies = try connection.exchange(encoded: request, replies: preamble + keys.count, timeout: timeout)
                if select {
                    if case .error = replies[preamble - 1] {
                        connection.selectedDatabase = -1
                    } else {
                        connection.selectedDatabase = database
                    }
                }
            }
        } catch {
            context.suppressPropagation()
            if error.isRefusal { throw CommandError("MIGRATE refused: \(error.message)") }
            throw CommandError(code: "IOERR", "error or timeout reading to target instance")
        }
        for reply in replies.prefix(preamble) {
            if case .error(let message) = reply {
                context.suppressPropagation()
                throw CommandError("Target instance replied with error: \(message)")
            }
        }
        // Delete each key the target acknowledged (replicas get one DEL of them, as redis propagates); report the
        // first refusal (its key stays here).
        var firstError: String?
        var deleted: [[UInt8]] = []
        for (offset, key) in keys.enumerated() {
            switch replies[preamble + offset] {
            case .error(let message):
                if firstError == nil { firstError = message }
            default:
                if !copy {
                    db.delete(key)
                    context.notify(.generic, "del", argument: movedPositions[offset])
                    if context.isPropagating { deleted.append(arguments.bytes(movedPositions[offset])) }
                }
            }
        }
        if deleted.isEmpty {
            context.suppressPropagation()
        } else {
            context.propagate([Array("DEL".utf8)] + deleted)
        }
        if let firstError {
            // Not thrown: the deletes above must still reach the replicas.
            context.session.stats.errorReplies.add(1, ordering: .relaxed)
            reply.error(code: "ERR", message: "Target instance replied with error: \(firstError)")
            return
        }
        reply.ok()
    }

    static func restore(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        var replace = false
        var absoluteTTL = false
        var index = 4
        while index < arguments.count {
            if arguments.matches(index, "replace") {
                replace = true
            } else if arguments.matches(index, "absttl") {
                absoluteTTL = true
            } else if (arguments.matches(index, "idletime") || arguments.matches(index, "freq")) && index + 1 < arguments.count {
                guard arguments.integer(index + 1) != nil else { throw .notInteger }
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        guard let ttl = arguments.integer(2) else { throw .notInteger }
        guard ttl >= 0 else { throw CommandError("Invalid TTL value, must be >= 0") }
        let key = context.key(1)
        let db = context.db
        if !replace && db.exists(key) { throw CommandError(code: "BUSYKEY", "Target key name already exists.") }
        let value: StoredValue
        do {
            value = try DumpPayload.decode(arguments.bytes(3))
        } catch {
            throw CommandError("DUMP payload version or checksum are wrong")
        }
        var expiry = ExpiryUpdate.remove
        if ttl > 0 {
            let at = absoluteTTL ? Int64(ttl) : context.now + Int64(ttl)
            if at <= context.now {
                if db.delete(key) { context.notify(.generic, "del", argument: 1) }
                reply.ok()
                return
            }
            expiry = .at(at)
            // Replicas get the absolute expiry (redis rewrites a relative RESTORE TTL to ABSTTL when propagating).
            if !absoluteTTL && context.isPropagating {
                context.propagate([Array("RESTORE".utf8), arguments.bytes(1), Array(String(at).utf8), arguments.bytes(3),
                                   Array("REPLACE".utf8), Array("ABSTTL".utf8)])
            }
        }
        db.set(key, value, expiry: expiry)
        context.notify(.generic, "restore", argument: 1)
        context.signalReady(key)
        reply.ok()
    }
}
