// The generic key family (redis db.c, expire.c, object.c): existence, deletion, renaming, expiry, iteration and
// per-database commands. Expiry setters share `expireGeneric`, readers share `ttlGeneric`.
import CacheStore
import RESPServer

extension CommandTable {
    static let keyCommands: [CommandSpec] = [
        // DEL key [key ...]
        CommandSpec("del", arity: -2, flags: [.write], keys: .range(first: 1, last: -1, step: 1), group: .generic,
                    summary: "Deletes one or more keys.") { context, reply throws(CommandError) in
            KeyFamily.deleteGeneric(&context, &reply, lazily: context.keyspace.lazyFreeTriggers.contains(.userDelete))
        },
        // UNLINK key [key ...]
        CommandSpec("unlink", arity: -2, flags: [.write, .fast], keys: .range(first: 1, last: -1, step: 1), group: .generic,
                    summary: "Asynchronously deletes one or more keys.", since: "4.0.0") { context, reply throws(CommandError) in
            KeyFamily.deleteGeneric(&context, &reply, lazily: true)
        },
        // EXISTS key [key ...]
        CommandSpec("exists", arity: -2, flags: [.readonly, .fast], keys: .range(first: 1, last: -1, step: 1), group: .generic,
                    summary: "Determines whether one or more keys exist.") { context, reply throws(CommandError) in
            let db = context.db
            var count = 0
            for index in 1..<context.arguments.count where db.exists(context.key(index)) { count += 1 }
            reply.integer(count)
        },
        // TOUCH key [key ...]
        CommandSpec("touch", arity: -2, flags: [.readonly, .fast], keys: .range(first: 1, last: -1, step: 1), group: .generic,
                    summary: "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
                    since: "3.2.1") { context, reply throws(CommandError) in
            let db = context.db
            var count = 0
            for index in 1..<context.arguments.count where db.value(context.key(index)) != nil { count += 1 }
            reply.integer(count)
        },
        // TYPE key
        CommandSpec("type", arity: 2, flags: [.readonly, .fast], keys: .first, group: .generic,
                    summary: "Determines the type of value stored at a key.") { context, reply throws(CommandError) in
            reply.simpleString(context.db.peek(context.key(1))?.type.rawValue ?? "none")
        },
        // RENAME key newkey
        CommandSpec("rename", arity: 3, flags: [.write], keys: .range(first: 1, last: 2, step: 1), group: .generic,
                    summary: "Renames a key and overwrites the destination.") { context, reply throws(CommandError) in
            if try KeyFamily.renameGeneric(&context, onlyIfMissing: false) { reply.ok() }
        },
        // RENAMENX key newkey
        CommandSpec("renamenx", arity: 3, flags: [.write, .fast], keys: .range(first: 1, last: 2, step: 1), group: .generic,
                    summary: "Renames a key only when the target key name doesn't exist.") { context, reply throws(CommandError) in
            reply.integer(try KeyFamily.renameGeneric(&context, onlyIfMissing: true) ? 1 : 0)
        },
        // COPY source destination [DB destination-db] [REPLACE]
        CommandSpec("copy", arity: -3, flags: [.write, .denyOOM], keys: .range(first: 1, last: 2, step: 1), group: .generic,
                    summary: "Copies the value of a key to a new key.", since: "6.2.0") { context, reply throws(CommandError) in
            let arguments = context.arguments
            var targetDatabase = context.session.database
            var replace = false
            var index = 3
            while index < arguments.count {
                if arguments.matches(index, "replace") {
                    replace = true
                } else if arguments.matches(index, "db") && index + 1 < arguments.count {
                    guard let number = arguments.integer(index + 1) else { throw .notInteger }
                    guard number >= 0 && number < context.keyspace.databaseCount else { throw .invalidDatabase }
                    targetDatabase = number
                    index += 1
                } else {
                    throw .syntax
                }
                index += 1
            }
            let source = context.key(1)
            let destination = context.key(2)
            let sourceDatabase = context.db
            if targetDatabase == context.session.database && source.bytes == destination.bytes {
                throw CommandError("source and destination objects are the same")
            }
            guard let value = sourceDatabase.peek(source) else {
                reply.integer(0)
                return
            }
            let target = context.keyspace.database(targetDatabase, now: context.now)
            if target.exists(destination) && !replace {
                reply.integer(0)
                return
            }
            let expiry: ExpiryUpdate
            if case .expiresAt(let at) = sourceDatabase.expiry(source) { expiry = .at(at) } else { expiry = .remove }
            target.set(destination, value.duplicate(), expiry: expiry)
            context.notify(.generic, "copy_to", key: destination.bytes, database: targetDatabase)
            if value.type == .list || value.type == .zset || value.type == .stream { context.signalReady(destination, inDatabase: targetDatabase) }
            reply.integer(1)
        },
        // MOVE key db
        CommandSpec("move", arity: 3, flags: [.write, .fast], keys: .first, group: .generic,
                    summary: "Moves a key to another database.") { context, reply throws(CommandError) in
            if context.node.cluster != nil { throw CommandError("MOVE is not allowed in cluster mode") }
            guard let number = context.arguments.integer(2) else { throw .notInteger }
            guard number >= 0 && number < context.keyspace.databaseCount else { throw .invalidDatabase }
            guard number != context.session.database else { throw CommandError("source and destination objects are the same") }
            let key = context.key(1)
            let target = context.keyspace.database(number, now: context.now)
            guard context.db.exists(key), !target.exists(key), let (value, expireAt) = context.db.take(key) else {
                reply.integer(0)
                return
            }
            target.set(key, value, expiry: expireAt.map { .at($0) } ?? .remove)
            context.notify(.generic, "move_from", argument: 1)
            context.notify(.generic, "move_to", key: key.bytes, database: number)
            if value.type == .list || value.type == .zset || value.type == .stream { context.signalReady(key, inDatabase: number) }
            reply.integer(1)
        },
        // EXPIRE key seconds [NX | XX | GT | LT]
        CommandSpec("expire", arity: -3, flags: [.write, .fast], keys: .first, group: .generic,
                    summary: "Sets the expiration time of a key in seconds.") { context, reply throws(CommandError) in
            try KeyFamily.expireGeneric(&context, &reply, unitMilliseconds: 1000, relative: true)
        },
        // PEXPIRE key milliseconds [NX | XX | GT | LT]
        CommandSpec("pexpire", arity: -3, flags: [.write, .fast], keys: .first, group: .generic,
                    summary: "Sets the expiration time of a key in milliseconds.", since: "2.6.0") { context, reply throws(CommandError) in
            try KeyFamily.expireGeneric(&context, &reply, unitMilliseconds: 1, relative: true)
        },
        // EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
        CommandSpec("expireat", arity: -3, flags: [.write, .fast], keys: .first, group: .generic,
                    summary: "Sets the expiration time of a key to a Unix timestamp.", since: "1.2.0") { context, reply throws(CommandError) in
            try KeyFamily.expireGeneric(&context, &reply, unitMilliseconds: 1000, relative: false)
        },
        // PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
        CommandSpec("pexpireat", arity: -3, flags: [.write, .fast], keys: .first, group: .generic,
                    summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.", since: "2.6.0") {
            context, reply throws(CommandError) in
            try KeyFamily.expireGeneric(&context, &reply, unitMilliseconds: 1, relative: false)
        },
        // TTL key
        CommandSpec("ttl", arity: 2, flags: [.readonly, .fast], keys: .first, group: .generic,
                    summary: "Returns the expiration time in seconds of a key.") { context, reply throws(CommandError) in
            KeyFamily.ttlGeneric(context, &reply) { at, now in (at - now + 500) / 1000 }
        },
        // PTTL key
        CommandSpec("pttl", arity: 2, flags: [.readonly, .fast], keys: .first, group: .generic,
                    summary: "Returns the expiration time in milliseconds of a key.", since: "2.6.0") { context, reply throws(CommandError) in
            KeyFamily.ttlGeneric(context, &reply) { at, now in at - now }
        },
        // EXPIRETIME key
        CommandSpec("expiretime", arity: 2, flags: [.readonly, .fast], keys: .first, group: .generic,
                    summary: "Returns the expiration time of a key as a Unix timestamp.", since: "7.0.0") { context, reply throws(CommandError) in
            KeyFamily.ttlGeneric(context, &reply) { at, _ in at / 1000 }
        },
        // PEXPIRETIME key
        CommandSpec("pexpiretime", arity: 2, flags: [.readonly, .fast], keys: .first, group: .generic,
                    summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.", since: "7.0.0") {
            context, reply throws(CommandError) in
            KeyFamily.ttlGeneric(context, &reply) { at, _ in at }
        },
        // PERSIST key
        CommandSpec("persist", arity: 2, flags: [.write, .fast], keys: .first, group: .generic,
                    summary: "Removes the expiration time of a key.", since: "2.2.0") { context, reply throws(CommandError) in
            let key = context.key(1)
            guard case .expiresAt = context.db.expiry(key) else {
                reply.integer(0)
                return
            }
            context.db.setExpiry(key, at: nil)
            context.notify(.generic, "persist", argument: 1)
            reply.integer(1)
        },
        // KEYS pattern
        CommandSpec("keys", arity: 2, flags: [.readonly, .wholeKeyspace], group: .generic,
                    summary: "Returns all key names that match a pattern.") { context, reply throws(CommandError) in
            var matches: [CompactBytes] = []
            let pattern = context.arguments.bytes(1)
            let matchesAll = pattern == [UInt8(ascii: "*")]
            pattern.withUnsafeBytes { patternBytes in
                context.db.forEachKey { key, _ in
                    if matchesAll || key.withBytes({ GlobPattern.matches(patternBytes, $0) }) { matches.append(key) }
                }
            }
            reply.arrayHeader(matches.count)
            for key in matches { key.withBytes { reply.bulk($0) } }
        },
        // SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
        CommandSpec("scan", arity: -2, flags: [.readonly, .wholeKeyspace], group: .generic,
                    summary: "Iterates over the key names in the database.", since: "2.8.0") { context, reply throws(CommandError) in
            let scan = try ScanOptions.parse(context.arguments, cursorIndex: 1, allowType: true)
            var found: [CompactBytes] = []
            let next = context.db.scan(cursor: scan.cursor, count: scan.count) { key, value in
                if let type = scan.type, value.type != type { return }
                if scan.matches(key) { found.append(key) }
            }
            reply.arrayHeader(2)
            reply.bulk(String(next))
            reply.arrayHeader(found.count)
            for key in found { key.withBytes { reply.bulk($0) } }
        },
        // RANDOMKEY
        CommandSpec("randomkey", arity: 1, flags: [.readonly, .wholeKeyspace], group: .generic,
                    summary: "Returns a random key name from the database.") { context, reply throws(CommandError) in
            if let key = context.db.randomKey() {
                key.withBytes { reply.bulk($0) }
            } else {
                reply.null()
            }
        },
        // DBSIZE
        CommandSpec("dbsize", arity: 1, flags: [.readonly, .fast, .wholeKeyspace], group: .server,
                    summary: "Returns the number of keys in the database.") { context, reply throws(CommandError) in
            reply.integer(context.db.count)
        },
        // SELECT index
        CommandSpec("select", arity: 2, flags: [.fast, .loading, .stale], group: .connection,
                    summary: "Changes the selected database.") { context, reply throws(CommandError) in
            guard let number = context.arguments.integer(1) else { throw CommandError("invalid DB index") }
            if context.node.cluster != nil && number != 0 { throw CommandError("SELECT is not allowed in cluster mode") }
            guard number >= 0 && number < context.keyspace.databaseCount else { throw .invalidDatabase }
            context.session.database = number
            reply.ok()
        },
        // SWAPDB index1 index2
        CommandSpec("swapdb", arity: 3, flags: [.write, .fast, .wholeKeyspace], group: .server,
                    summary: "Swaps two Redis databases.", since: "4.0.0") { context, reply throws(CommandError) in
            if context.node.cluster != nil { throw CommandError("SWAPDB is not allowed in cluster mode") }
            guard let first = context.arguments.integer(1) else { throw CommandError("invalid first DB index") }
            guard let second = context.arguments.integer(2) else { throw CommandError("invalid second DB index") }
            let count = context.keyspace.databaseCount
            guard first >= 0 && first < count && second >= 0 && second < count else { throw .invalidDatabase }
            if first != second {
                context.keyspace.swapDatabases(first, second, now: context.now)
                // Clients blocked in either database may find what they wait for in the data swapped in.
                context.signalReady(inDatabases: [first, second])
            }
            reply.ok()
        },
        // FLUSHDB [ASYNC | SYNC]
        CommandSpec("flushdb", arity: -1, flags: [.write, .wholeKeyspace], group: .server,
                    summary: "Removes all keys from the current database.") { context, reply throws(CommandError) in
            context.db.removeAll(lazily: try KeyFamily.flushesLazily(context))
            context.node.tracking.flushed()
            reply.ok()
        },
        // FLUSHALL [ASYNC | SYNC]
        CommandSpec("flushall", arity: -1, flags: [.write, .wholeKeyspace], group: .server,
                    summary: "Removes all keys from all databases.") { context, reply throws(CommandError) in
            context.keyspace.flushAll(lazily: try KeyFamily.flushesLazily(context))
            context.node.tracking.flushed()
            reply.ok()
        },
        // OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT|HELP key
        CommandSpec("object", arity: -2, flags: [.readonly], keys: .custom({ $0.count > 2 ? [2] : [] }), group: .generic,
                    summary: "A container for object introspection commands.", since: "2.2.3",
                    subcommands: CommandSpec.subcommands(
                        of: "object", group: .generic, since: "2.2.3", keys: { $0 == "help" ? .none : .range(first: 2, last: 2, step: 1) }, [
                            ("encoding", 3, [.readonly], "Returns the internal encoding of a Redis object."),
                            ("freq", 3, [.readonly], "Returns the logarithmic access frequency counter of a Redis object."),
                            ("idletime", 3, [.readonly], "Returns the time since the last access to a Redis object."),
                            ("refcount", 3, [.readonly], "Returns the reference count of a value of a key."),
                            ("help", 2, [.readonly], "Returns helpful text about the different subcommands."),
                        ])) { context, reply throws(CommandError) in
            try KeyFamily.object(&context, &reply)
        },
    ]
}

/// Parsed SCAN/SSCAN/HSCAN/ZSCAN options.
struct ScanOptions {
    var cursor: UInt64 = 0
    var count = 10
    var pattern: CompactBytes?
    var type: ValueType?

    /// Parses `cursor [MATCH pattern] [COUNT count] [TYPE type]` (TYPE only for SCAN).
    static func parse(_ arguments: CommandArguments, cursorIndex: Int, allowType: Bool) throws(CommandError) -> ScanOptions {
        var options = ScanOptions()
        guard let cursor = arguments.withBytes(cursorIndex, { bytes -> UInt64? in
            UInt64(String(decoding: bytes, as: UTF8.self))
        }) else { throw CommandError("invalid cursor") }
        options.cursor = cursor
        var index = cursorIndex + 1
        while index < arguments.count {
            guard index + 1 < arguments.count else { throw .syntax }
            if arguments.matches(index, "count") {
                guard let count = arguments.integer(index + 1) else { throw .notInteger }
                guard count >= 1 else { throw .syntax }
                options.count = count
            } else if arguments.matches(index, "match") {
                let pattern = arguments.withBytes(index + 1) { CompactBytes($0) }
                options.pattern = pattern == CompactBytes("*") ? nil : pattern
            } else if allowType && arguments.matches(index, "type") {
                // An unknown type matches nothing, as in redis 7.0.
                options.type = ValueType(rawValue: arguments.lowercased(index + 1))
                if options.type == nil { options.count = max(options.count, 1); options.pattern = CompactBytes("\u{0}never\u{0}") }
            } else {
                throw .syntax
            }
            index += 2
        }
        return options
    }

    /// Whether `element` matches the MATCH pattern.
    func matches(_ element: CompactBytes) -> Bool {
        guard let pattern else { return true }
        return pattern.withBytes { p in element.withBytes { GlobPattern.matches(p, $0) } }
    }
}

/// Shared implementations of the key commands.
enum KeyFamily {
    /// DEL and UNLINK; `lazily`: large values are freed in the background (UNLINK always, DEL with
    /// lazyfree-lazy-user-del).
    static func deleteGeneric(_ context: inout CommandContext, _ reply: inout ReplyWriter, lazily: Bool) {
        let db = context.db
        var deleted = 0
        for index in 1..<context.arguments.count where db.delete(context.key(index), lazily: lazily) {
            deleted += 1
            context.notify(.generic, "del", argument: index)
        }
        reply.integer(deleted)
    }

    /// RENAME/RENAMENX. Returns whether the rename happened; throws "no such key" when the source is missing.
    static func renameGeneric(_ context: inout CommandContext, onlyIfMissing: Bool) throws(CommandError) -> Bool {
        let db = context.db
        let source = context.key(1)
        let destination = context.key(2)
        guard db.exists(source) else { throw .noSuchKey }
        if source.bytes == destination.bytes { return !onlyIfMissing }
        if onlyIfMissing && db.exists(destination) { return false }
        guard let (value, expireAt) = db.take(source) else { throw .noSuchKey }
        db.set(destination, value, expiry: expireAt.map { .at($0) } ?? .remove)
        context.notify(.generic, "rename_from", argument: 1)
        context.notify(.generic, "rename_to", argument: 2)
        if value.type == .list || value.type == .zset || value.type == .stream { context.signalReady(destination) }
        return true
    }

    /// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX/XX/GT/LT (redis expireGenericCommand).
    static func expireGeneric(_ context: inout CommandContext, _ reply: inout ReplyWriter, unitMilliseconds: Int, relative: Bool)
        throws(CommandError)
    {
        let arguments = context.arguments
        var nx = false, xx = false, gt = false, lt = false
        for index in 3..<max(3, arguments.count) {
            if arguments.matches(index, "nx") { nx = true }
            else if arguments.matches(index, "xx") { xx = true }
            else if arguments.matches(index, "gt") { gt = true }
            else if arguments.matches(index, "lt") { lt = true }
            else { throw CommandError("Unsupported option \(arguments.string(index))") }
        }
        if nx && (xx || gt || lt) { throw CommandError("NX and XX, GT or LT options at the same time are not compatible") }
        if gt && lt { throw CommandError("GT and LT options at the same time are not compatible") }
        let name = context.spec.name
        guard let amount = arguments.integer(2) else { throw .notInteger }
        let (scaled, overflow) = amount.multipliedReportingOverflow(by: unitMilliseconds)
        guard !overflow else { throw .invalidExpire(name) }
        var expireAt = Int64(scaled)
        if relative {
            let (sum, overflow2) = expireAt.addingReportingOverflow(context.now)
            guard !overflow2 else { throw .invalidExpire(name) }
            expireAt = sum
        }
        let key = context.key(1)
        let db = context.db
        let current = db.expiry(key)
        switch current {
        case .missing:
            reply.integer(0)
            return
        case .persistent:
            if xx || gt {
                reply.integer(0)
                return
            }
        case .expiresAt(let at):
            if nx || (gt && expireAt <= at) || (lt && expireAt >= at) {
                reply.integer(0)
                return
            }
        }
        db.setExpiry(key, at: expireAt)
        // A time already past deletes the key (not on a replica, which waits for its primary's DEL).
        context.notify(.generic, db.exists(key) ? "expire" : "del", argument: 1)
        reply.integer(1)
    }

    /// TTL and friends: -2 missing, -1 persistent, else `transform(expireAt, now)`.
    static func ttlGeneric(_ context: CommandContext, _ reply: inout ReplyWriter, _ transform: (Int64, Int64) -> Int64) {
        switch context.db.expiry(context.key(1)) {
        case .missing: reply.integer(-2)
        case .persistent: reply.integer(-1)
        case .expiresAt(let at): reply.integer(Int(max(0, transform(at, context.now))))
        }
    }

    /// FLUSHALL/FLUSHDB's option: whether the keys are freed in the background (ASYNC; with neither option,
    /// lazyfree-lazy-user-flush decides).
    static func flushesLazily(_ context: CommandContext) throws(CommandError) -> Bool {
        let arguments = context.arguments
        if arguments.count > 2 { throw .syntax }
        guard arguments.count == 2 else { return context.node.configuration.lazyFreeUserFlush }
        if arguments.matches(1, "async") { return true }
        if arguments.matches(1, "sync") { return false }
        throw .syntax
    }

    /// OBJECT subcommands.
    static func object(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        if arguments.matches(1, "help") {
            let lines = [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>", "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>", "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>", "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>", "    Return the number of references of the value associated with the specified",
                "    <key>.", "HELP", "    Print this help.",
            ]
            reply.simpleStringLines(lines)
            return
        }
        guard arguments.count == 3 else { throw .unknownSubcommand(arguments.string(1), of: "object") }
        let key = context.key(2)
        let db = context.db
        guard let value = db.peek(key), let access = db.accessClock(key) else {
            reply.null()
            return
        }
        if arguments.matches(1, "encoding") {
            reply.bulk(ObjectEncoding.name(of: value, thresholds: ObjectEncoding.Thresholds(context.node.configuration)))
        } else if arguments.matches(1, "refcount") {
            reply.integer(1)
        } else if arguments.matches(1, "idletime") {
            guard !context.keyspace.evictionPolicy.usesLFU else {
                throw CommandError("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
            }
            reply.integer(context.keyspace.idleSeconds(access: access, now: context.now))
        } else if arguments.matches(1, "freq") {
            guard context.keyspace.evictionPolicy.usesLFU else {
                throw CommandError("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
            }
            reply.integer(context.keyspace.frequency(access: access, now: context.now))
        } else {
            throw .unknownSubcommand(arguments.string(1), of: "object")
        }
    }
}

/// The encoding names OBJECT ENCODING reports, derived from the value's current size with redis 7.2's rules and the
/// configured thresholds (`*-max-listpack-*`, `set-max-intset-entries`, `list-max-listpack-size`), so tools see the
/// encoding redis would have. Unlike redis, a collection that shrinks back under a threshold reports the compact
/// encoding again (redis converts one way only, lists aside).
enum ObjectEncoding {
    /// The thresholds, from the configuration (redis's defaults unless set).
    struct Thresholds {
        var hashEntries = 128, hashValue = 64
        var setIntsetEntries = 512, setEntries = 128, setValue = 64
        var zsetEntries = 128, zsetValue = 64
        /// `list-max-listpack-size`: entries when positive; -1…-5 mean 4, 8, 16, 32, 64 KB.
        var listSize = -2

        init() {}

        init(_ configuration: NodeConfiguration) {
            func value(_ name: String) -> Int { RedisCompatibilityDirective.integer(name, in: configuration) }
            (hashEntries, hashValue) = (value("hash-max-listpack-entries"), value("hash-max-listpack-value"))
            (setIntsetEntries, setEntries, setValue) =
                (value("set-max-intset-entries"), value("set-max-listpack-entries"), value("set-max-listpack-value"))
            (zsetEntries, zsetValue) = (value("zset-max-listpack-entries"), value("zset-max-listpack-value"))
            listSize = value("list-max-listpack-size")
        }
    }

    static func name(of value: StoredValue, thresholds: Thresholds = Thresholds()) -> String {
        switch value {
        case .shortString, .string:
            let length = value.stringLength ?? 0
            // (withStringBytes' own optional unwrapped first: every string used to report "int".)
            if length <= 20, (value.withStringBytes({ RESPNumberParsing.parseInteger($0) }) ?? nil) != nil { return "int" }
            return length <= 44 ? "embstr" : "raw"
        case .list(let list):
            if thresholds.listSize > 0 { return list.count <= thresholds.listSize ? "listpack" : "quicklist" }
            // A listpack's size: 7 bytes of header and end, and per entry its encoding, the bytes and a back length.
            let limit = 4096 << min(max(-thresholds.listSize - 1, 0), 4)
            var bytes = 7
            for position in 0..<list.count {
                let count = list.element(at: position).count
                bytes += (count < 64 ? 1 : count < 4096 ? 2 : 5) + count + (count < 127 ? 1 : count < 16383 ? 2 : 3)
                if bytes > limit { return "quicklist" }
            }
            return "listpack"
        case .hash(let hash):
            return hash.fields.count <= thresholds.hashEntries
                && hash.fields.allSatisfy({ $0.key.count <= thresholds.hashValue && $0.value.count <= thresholds.hashValue })
                ? "listpack" : "hashtable"
        case .set(let set):
            if set.members.count <= thresholds.setIntsetEntries
                && set.members.allSatisfy({ $0.withBytes { RESPNumberParsing.parseInteger($0) } != nil }) {
                return "intset"
            }
            return set.members.count <= thresholds.setEntries && set.members.allSatisfy({ $0.count <= thresholds.setValue })
                ? "listpack" : "hashtable"
        case .sortedSet(let zset):
            return zset.scores.count <= thresholds.zsetEntries && zset.scores.keys.allSatisfy({ $0.count <= thresholds.zsetValue })
                ? "listpack" : "skiplist"
        case .stream:
            return "stream"
        }
    }
}
