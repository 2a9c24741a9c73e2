// MIGRATE and RESTORE-ASKING: moving keys between nodes, atomically per key (redis cluster.c migrateCommand).
//
// The source holds the stripe locks of the keys it moves for the whole exchange (the dispatcher took them for the
// command's key positions): it serializes the values (DUMP payloads), sends one pipelined batch of
// `RESTORE-ASKING key ttl payload [REPLACE]` over a cached peer connection, and deletes each key only after the
// target acknowledged its RESTORE. No write can slip in between the copy and the delete, and if the target fails
// or dies mid-transfer the keys stay here (-IOERR, as redis). The exchange blocks this event loop for one round
// trip, as redis's MIGRATE blocks its server; other event loops keep serving other stripes.
import CacheStore
import RESPServer

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
    /// Peer connections for MIGRATE when the node is not in cluster mode.
    static let standalonePeers = ClusterPeerPool()

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

        // Serialize the keys that exist (missing or expired ones are skipped, as redis does).
        let db = context.node.keyspace.database(context.session.database, now: context.now)
        // RESTORE-ASKING in and out of cluster mode: redis-server accepts it either way, and on an importing
        // slot it is served without a separate ASKING.
        let restoreName = Array("RESTORE-ASKING".utf8)
        var keys: [KeyRef] = []
        var commands: [[[UInt8]]] = []
        commands.reserveCapacity(keyCount + 2)
        if let auth { commands.append(auth) }
        commands.append([Array("SELECT".utf8), Array(String(database).utf8)])
        let preamble = commands.count
        for position in firstKey..<(firstKey + keyCount) {
            let key = context.key(position)
            guard let value = db.peek(key) else { continue }
            var ttl = 0
            if case .expiresAt(let at) = db.expiry(key) { ttl = max(1, Int(at - context.now)) }
            var command = [arguments.bytes(position), Array(String(ttl).utf8), DumpPayload.encode(value)]
            command.insert(restoreName, at: 0)
            if replace { command.append(Array("REPLACE".utf8)) }
            commands.append(command)
            keys.append(key)
        }
        if keys.isEmpty {
            reply.simpleString("NOKEY")
            return
        }
        let pool = context.node.cluster?.peers ?? standalonePeers
        let replies: [PeerReply]
        do {
            replies = try pool.withConnection(host: host, port: port, timeout: timeout) {
                (connection: any ClusterPeerConnection) throws(ClusterPeerError) -> [PeerReply] in
                try connection.exchange(commands, timeout: timeout)
            }
        } catch {
            throw CommandError(code: "IOERR", "error or timeout reading to target instance")
        }
        for reply in replies.prefix(preamble) {
            if case .error(let message) = reply { throw CommandError("Target instance replied with error: \(message)") }
        }
        // Delete each key the target acknowledged; report the first refusal (its key stays here).
        var firstError: String?
        for (offset, key) in keys.enumerated() {
            switch replies[preamble + offset] {
            case .error(let message):
                if firstError == nil { firstError = message }
            default:
                if !copy { db.delete(key) }
            }
        }
        if let firstError { throw CommandError("Target instance replied with error: \(firstError)") }
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
                db.delete(key)
                reply.ok()
                return
            }
            expiry = .at(at)
        }
        db.set(key, value, expiry: expiry)
        context.signalReady(key)
        reply.ok()
    }
}
