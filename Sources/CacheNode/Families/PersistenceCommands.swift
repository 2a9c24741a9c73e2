// Persistence commands (redis rdb.c, cluster.c DUMP/RESTORE, debug.c): SAVE, BGSAVE [SCHEDULE], LASTSAVE, DUMP,
// RESTORE and DEBUG DIGEST / DIGEST-VALUE / RELOAD. Snapshots are written by Persistence/SnapshotPersistence.swift;
// payloads and digests come from CacheStore's Snapshot folder.
import CacheStore
import NIOCore
import RESPServer
import Synchronization

extension CommandTable {
    static let persistenceCommands: [CommandSpec] = [
        // SAVE
        CommandSpec("save", arity: 1, flags: [.noScript, .admin, .noMulti], group: .server,
                    summary: "Synchronously saves the database(s) to disk.") { context, reply throws(CommandError) in
            do throws(PersistenceError) {
                _ = try context.node.persistence.save(node: context.node)
            } catch {
                throw CommandError(error.message)
            }
            reply.ok()
        },
        // BGSAVE [SCHEDULE]
        // Not inside MULTI: EXEC holds every stripe, and a snapshot's freeze must take them (redis allows it).
        CommandSpec("bgsave", arity: -1, flags: [.noScript, .admin, .noMulti], group: .server,
                    summary: "Asynchronously saves the database(s) to disk.") { context, reply throws(CommandError) in
            let arguments = context.arguments
            let schedule = arguments.count == 2 && arguments.matches(1, "schedule")
            guard arguments.count == 1 || schedule else { throw .syntax }
            let persistence = context.node.persistence
            do throws(SnapshotPersistence.StartRefusal) {
                try persistence.startBackgroundSave(node: context.node)
                reply.simpleString("Background saving started")
            } catch {
                guard schedule else { throw CommandError("Background save already in progress") }
                persistence.schedule()
                reply.simpleString("Background saving scheduled")
            }
        },
        // BGREWRITEAOF
        CommandSpec("bgrewriteaof", arity: 1, flags: [.noScript, .admin, .noMulti], group: .server,
                    summary: "Asynchronously rewrites the append-only file to disk.", since: "1.0.0") { context, reply throws(CommandError) in
            let node = context.node
            do {
                try node.appendOnly.startRewrite(node: node)
                reply.simpleString("Background append only file rewriting started")
            } catch is AppendOnlyLog.RewriteRefusal {
                throw CommandError("Background append only file rewriting already in progress")
            } catch {
                throw CommandError("Background append only file rewriting failed: \(error)")
            }
        },
        // LASTSAVE
        CommandSpec("lastsave", arity: 1, flags: [.fast, .loading, .stale], group: .server,
                    summary: "Returns the Unix timestamp of the last successful save to disk.") { context, reply throws(CommandError) in
            reply.integer(Int(context.node.lastSave.load(ordering: .relaxed)))
        },
        // DUMP key
        CommandSpec("dump", arity: 2, flags: [.readonly], keys: .first, group: .generic,
                    summary: "Returns a serialized representation of the value stored at a key.", since: "2.6.0") { context, reply throws(CommandError) in
            guard let value = context.db.value(context.key(1)) else {
                reply.null()
                return
            }
            reply.bulk(bytes: DumpPayload.encode(value))
        },
        // RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
        CommandSpec("restore", arity: -4, flags: [.write, .denyOOM], keys: .first, group: .generic,
                    summary: "Creates a key from the serialized representation of a value.", since: "2.6.0") { context, reply throws(CommandError) in
            try PersistenceFamily.restore(&context, &reply)
        },
        // DEBUG DIGEST | DIGEST-VALUE key... | RELOAD | SLEEP seconds | SET-ACTIVE-EXPIRE 0|1 | HELP (inside EXEC, where
        // every stripe is already locked, all but RELOAD)
        CommandSpec("debug", arity: -2, flags: [.noScript, .admin, .loading, .stale], group: .server,
                    summary: "A container for debugging commands.", since: "1.0.0") { context, reply throws(CommandError) in
            try PersistenceFamily.debug(&context, &reply)
        },
    ]
}

/// Shared implementations of the persistence commands.
enum PersistenceFamily {
    /// DEBUG PROTOCOL: a test value of each RESP type (redis debug.c), in the client's protocol.
    static func debugProtocol(_ type: String, reply: inout ReplyWriter) throws(CommandError) {
        let resp3 = reply.protocolVersion == .v3
        switch type {
        case "string": reply.bulk("Hello World")
        case "integer": reply.integer(12345)
        case "double": reply.double(3.141)
        case "bignum":
            if resp3 {
                reply.buffer.writeStaticString("(1234567999999999999999999999999999999\r\n")
            } else {
                reply.bulk("1234567999999999999999999999999999999")
            }
        case "null": reply.null()
        case "array", "set":
            if type == "set" { reply.setHeader(3) } else { reply.arrayHeader(3) }
            for value in 0..<3 { reply.integer(value) }
        case "map":
            reply.mapHeader(3)
            for value in 0..<3 {
                reply.integer(value)
                reply.boolean(value == 1)
            }
        case "attrib":
            if resp3 {
                reply.buffer.writeStaticString("|1\r\n")
                reply.bulk("key-popularity")
                reply.arrayHeader(2)
                reply.bulk("key:123")
                reply.integer(90)
            }
            // An attribute is no reply of its own: a real one follows.
            reply.bulk("Some real reply following the attribute")
        case "push":
            guard resp3 else { throw CommandError("RESP2 is not supported by this command") }
            reply.pushHeader(2)
            reply.bulk("server-cpu-usage")
            reply.integer(42)
            reply.bulk("Some real reply following the push reply")
        case "true": reply.boolean(true)
        case "false": reply.boolean(false)
        case "verbatim": reply.verbatim("This is a verbatim\nstring")
        default:
            throw CommandError(
                "Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")
        }
    }

    static func restore(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        guard let ttl = arguments.integer(2) else { throw .notInteger }
        var replace = false
        var absoluteTTL = false
        var idleSeconds: Int?
        var frequency: Int?
        var index = 4
        while index < arguments.count {
            if arguments.matches(index, "replace") {
                replace = true
            } else if arguments.matches(index, "absttl") {
                absoluteTTL = true
            } else if arguments.matches(index, "idletime") && index + 1 < arguments.count && frequency == nil {
                guard let value = arguments.integer(index + 1) else { throw .notInteger }
                guard value >= 0 else { throw CommandError("Invalid IDLETIME value, must be >= 0") }
                idleSeconds = value
                index += 1
            } else if arguments.matches(index, "freq") && index + 1 < arguments.count && idleSeconds == nil {
                guard let value = arguments.integer(index + 1) else { throw .notInteger }
                guard value >= 0 && value <= 255 else { throw CommandError("Invalid FREQ value, must be >= 0 and <= 255") }
                frequency = value
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        guard ttl >= 0 else { throw CommandError("Invalid TTL value, must be >= 0") }
        let key = context.key(1)
        let db = context.db
        if !replace && db.exists(key) { throw CommandError(code: "BUSYKEY", "Target key name already exists.") }
        let value: StoredValue
        do throws(SnapshotError) {
            value = try DumpPayload.decode(arguments.bytes(3))
        } catch {
            switch error.kind {
            case .checksumMismatch, .unsupportedVersion, .truncated:
                throw CommandError("DUMP payload version or checksum are wrong")
            default:
                throw CommandError("Bad data format")
            }
        }
        var expireAt: Int64?
        if ttl > 0 {
            expireAt = absoluteTTL ? Int64(ttl) : context.now + Int64(ttl)
        }
        if let expireAt, expireAt <= context.now {
            // Already expired: as redis does, the key is removed (REPLACE) and nothing is stored.
            if db.delete(key) { context.notify(.generic, "del", argument: 1) }
            reply.ok()
            return
        }
        db.set(key, value, expiry: expireAt.map { .at($0) } ?? .remove)
        if idleSeconds != nil || frequency != nil { db.restoreAccess(key, idleSeconds: idleSeconds, frequency: frequency) }
        context.notify(.generic, "restore", argument: 1)
        if value.type == .list || value.type == .zset || value.type == .stream { context.signalReady(key) }
        reply.ok()
    }

    static func debug(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let keyspace = context.keyspace
        switch arguments.lowercased(1) {
        case "digest":
            guard arguments.count == 2 else { throw .wrongArity("debug") }
            if !context.inTransaction { keyspace.lockAll(capturing: false) }
            let digest = KeyspaceDigest.digest(of: keyspace)
            if !context.inTransaction { keyspace.unlockAll() }
            reply.simpleString(KeyspaceDigest.hex(digest))
        case "object":
            // DEBUG OBJECT key: redis's one-line description (the address and refcount are placeholders here), of the
            // key as stored, expired or not (redis's dbFind).
            guard arguments.count == 3 else { throw .wrongArity("debug") }
            let key = context.key(2)
            let db = context.db
            let thresholds = ObjectEncoding.Thresholds(context.node.configuration)
            let now = context.now
            let describe = { () -> String? in
                guard let (value, access) = db.stored(key) else { return nil }
                let idle = keyspace.evictionPolicy.usesLFU ? 0 : keyspace.idleSeconds(access: access, now: now)
                return "Value at:0x0 refcount:1 encoding:\(ObjectEncoding.name(of: value, thresholds: thresholds)) "
                    + "serializedlength:\(ValueCodec.encode(value).count) lru:\(max(0, Int(now / 1000) - idle) & 0xFFFFFF) lru_seconds_idle:\(idle)"
            }
            guard let line = context.inTransaction ? describe() : keyspace.withLocked([key], describe) else {
                throw CommandError("no such key")
            }
            reply.simpleString(line)
        case "digest-value":
            reply.arrayHeader(arguments.count - 2)
            for index in 2..<arguments.count {
                let key = context.key(index)
                let db = context.db
                let digestValue = { () -> [UInt8] in
                    guard let value = db.peek(key) else { return [UInt8](repeating: 0, count: 20) }
                    var hasExpiry = false
                    if case .expiresAt = db.expiry(key) { hasExpiry = true }
                    return KeyspaceDigest.digest(of: value, hasExpiry: hasExpiry)
                }
                let digest = context.inTransaction ? digestValue() : keyspace.withLocked([key], digestValue)
                reply.simpleString(KeyspaceDigest.hex(digest))
            }
        case "reload":
            // It saves and replaces the keyspace under locks EXEC already holds.
            guard !context.inTransaction else { throw CommandError("DEBUG RELOAD is not allowed inside a transaction") }
            // DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save (unless NOSAVE), verify the file in full, then replace the
            // keyspace and the FUNCTION libraries with its contents (tests the round trip). NOFLUSH loads over what
            // is there: a library that exists already fails the load unless MERGE lets the file's replace it.
            var save = true, flush = true, merge = false
            for index in 2..<arguments.count {
                if arguments.matches(index, "merge") {
                    merge = true
                } else if arguments.matches(index, "noflush") {
                    flush = false
                } else if arguments.matches(index, "nosave") {
                    save = false
                } else {
                    throw CommandError("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
                }
            }
            let node = context.node
            let contents: (records: [SnapshotRecord], functionLibraries: [[UInt8]])
            do throws(PersistenceError) {
                if save { _ = try node.persistence.save(node: node) }
                let configuration = node.configuration
                let path = SnapshotFile.path(directory: configuration.directory, filename: configuration.databaseFilename)
                contents = try SnapshotFile.readContents(path: path, databases: keyspace.databaseCount)
            } catch {
                throw CommandError("Error trying to load the snapshot: \(error.message)")
            }
            do throws(CommandError) {
                if flush {
                    try node.functions.replaceAll(with: contents.functionLibraries)
                } else {
                    try node.functions.restore(contents.functionLibraries, policy: merge ? .replace : .append)
                }
            } catch {
                throw CommandError("Error trying to load the RDB dump, check server logs. (\(error.message))")
            }
            keyspace.withAllLocked { if flush { keyspace.flushAll() } }
            _ = try? keyspace.apply(contents.records, now: node.clock.nowMilliseconds())
            reply.ok()
        case "sleep":
            // DEBUG SLEEP seconds (fractions allowed): blocks this event loop, as it blocks redis's one thread.
            guard arguments.count == 3 else { throw .wrongArity("debug") }
            let seconds = arguments.double(2) ?? 0
            context.node.clock.sleep(microseconds: Int64(max(0, min(seconds, 86_400)) * 1_000_000))
            reply.ok()
        case "pause-cron":
            // DEBUG PAUSE-CRON 0|1: stops the housekeeping cycle (active expiry, the tracking table's limit).
            guard arguments.count == 3, let flag = arguments.integer(2) else { throw .wrongArity("debug") }
            context.node.housekeepingPaused.store(flag != 0, ordering: .relaxed)
            reply.ok()
        case "set-active-expire":
            guard arguments.count == 3, let flag = arguments.integer(2) else { throw .wrongArity("debug") }
            context.node.activeExpiryEnabled.store(flag != 0, ordering: .relaxed)
            reply.ok()
        case "protocol":
            // One reply of each RESP type, as the client's protocol has it (redis's test hook).
            guard arguments.count == 3 else { throw .wrongArity("debug") }
            try PersistenceFamily.debugProtocol(arguments.lowercased(2), reply: &reply)
        case "set-disable-deny-scripts":
            // Lets scripts call the commands they may not (redis's test hook, script_disable_deny_script).
            guard arguments.count == 3, let flag = arguments.integer(2) else { throw .wrongArity("debug") }
            context.node.scriptsMayCallAnyCommand.store(flag != 0, ordering: .relaxed)
            reply.ok()
        case "help":
            let lines = [
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DIGEST", "    Output a hex signature representing the current DB content.",
                "OBJECT <key>", "    Show low level info about the `key` and associated value.",
                "DIGEST-VALUE <key> [<key> ...]", "    Output a hex signature of the values of all the specified keys.",
                "RELOAD [MERGE] [NOFLUSH] [NOSAVE]", "    Save the dataset to disk and reload it back to memory.",
                "    * MERGE: libraries in the file replace loaded ones of the same name (with NOFLUSH).",
                "    * NOFLUSH: load over the current dataset instead of replacing it.",
                "    * NOSAVE: reload the file on disk without saving first.",
                "SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed.",
                "PAUSE-CRON <0|1>", "    Stop periodic cron job processing.",
                "SET-ACTIVE-EXPIRE <0|1>", "    Setting it to 0 disables expiring keys in the background when they are not accessed.",
                "PROTOCOL <type>", "    Reply with a test value of the specified type. <type> can be: string,",
                "    integer, double, bignum, null, array, set, map, attrib, push, verbatim, true, false.",
                "SET-DISABLE-DENY-SCRIPTS <0|1>", "    For testing: scripts may call commands scripts are normally denied.",
                "HELP", "    Print this help.",
            ]
            reply.simpleStringLines(lines)
        default:
            throw .unknownSubcommand(arguments.string(1), of: "debug")
        }
    }
}
