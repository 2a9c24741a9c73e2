// The stream family (redis t_stream.c): XADD XLEN XRANGE XREVRANGE XDEL XTRIM XREAD, the consumer groups (XGROUP,
// XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM), XINFO and XSETID, with redis 7.2's arguments, replies, error
// texts and replication: XADD's `*` and approximate trims reach replicas as the exact ID and the exact trim, and
// what XREADGROUP/XCLAIM/XAUTOCLAIM did to a group as XCLAIM … FORCE JUSTID and XGROUP SETID commands, as redis
// propagates them. XREAD/XREADGROUP with BLOCK wait in the BlockingRegistry like BLPOP (`$` is resolved to the
// stream's last ID before the client waits).
import CacheStore
import DequeModule
import NIOCore
import RESPServer

extension CommandTable {
    static let streamCommands: [CommandSpec] = [
        // XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
        CommandSpec("xadd", arity: -5, flags: [.write, .denyOOM, .fast], keys: .first, group: .stream,
                    summary: "Appends a new message to a stream. Creates the key if it doesn't exist.", since: "5.0.0") {
            context, reply throws(CommandError) in
            try StreamFamily.add(&context, &reply)
        },
        // XLEN key
        CommandSpec("xlen", arity: 2, flags: [.readonly, .fast], keys: .first, group: .stream,
                    summary: "Return the number of messages in a stream.", since: "5.0.0") { context, reply throws(CommandError) in
            reply.integer(try StreamFamily.readStream(context)?.count ?? 0)
        },
        // XRANGE key start end [COUNT count]
        CommandSpec("xrange", arity: -4, flags: [.readonly], keys: .first, group: .stream,
                    summary: "Returns the messages from a stream within a range of IDs.", since: "5.0.0") {
            context, reply throws(CommandError) in
            try StreamFamily.range(context, &reply, reverse: false)
        },
        // XREVRANGE key end start [COUNT count]
        CommandSpec("xrevrange", arity: -4, flags: [.readonly], keys: .first, group: .stream,
                    summary: "Returns the messages from a stream within a range of IDs in reverse order.", since: "5.0.0") {
            context, reply throws(CommandError) in
            try StreamFamily.range(context, &reply, reverse: true)
        },
        // XDEL key id [id ...]
        CommandSpec("xdel", arity: -3, flags: [.write, .fast], keys: .first, group: .stream,
                    summary: "Returns the number of messages after removing them from a stream.", since: "5.0.0") {
            context, reply throws(CommandError) in
            try StreamFamily.delete(&context, &reply)
        },
        // XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
        CommandSpec("xtrim", arity: -4, flags: [.write], keys: .first, group: .stream,
                    summary: "Deletes messages from the beginning of a stream.", since: "5.0.0") { context, reply throws(CommandError) in
            try StreamFamily.trimCommand(&context, &reply)
        },
        // XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
        CommandSpec("xread", arity: -4, flags: [.readonly, .blocking], keys: .custom(StreamFamily.readKeys), group: .stream,
                    summary: "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            try StreamFamily.read(&context, &reply, withGroup: false)
        },
        // XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]
        CommandSpec("xreadgroup", arity: -7, flags: [.write, .blocking], keys: .custom(StreamFamily.readKeys), group: .stream,
                    summary: "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            try StreamFamily.read(&context, &reply, withGroup: true)
        },
        // XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP
        CommandSpec("xgroup", arity: -2, flags: [.write, .denyOOM], keys: .range(first: 2, last: 2, step: 1), group: .stream,
                    summary: "A container for consumer groups commands.", since: "5.0.0",
                    subcommands: [
                        ("create", -5, "Creates a consumer group."),
                        ("setid", -5, "Sets the last-delivered ID of a consumer group."),
                        ("destroy", 4, "Destroys a consumer group."),
                        ("createconsumer", 5, "Creates a consumer in a consumer group."),
                        ("delconsumer", 5, "Deletes a consumer from a consumer group."),
                        ("help", 2, "Returns helpful text about the different subcommands."),
                    ].map { name, arity, summary in
                        CommandSpec("xgroup|\(name)", arity: arity, flags: name == "help" ? [.loading, .stale] : [.write],
                                    keys: name == "help" ? .none : .range(first: 2, last: 2, step: 1), group: .stream,
                                    summary: summary, since: "5.0.0") { _, _ throws(CommandError) in }
                    }) { context, reply throws(CommandError) in
            try StreamFamily.group(&context, &reply)
        },
        // XACK key group id [id ...]
        CommandSpec("xack", arity: -4, flags: [.write, .fast], keys: .first, group: .stream,
                    summary: "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            try StreamFamily.acknowledge(&context, &reply)
        },
        // XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
        CommandSpec("xpending", arity: -3, flags: [.readonly], keys: .first, group: .stream,
                    summary: "Returns the information and entries from a stream consumer group's pending entries list.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            try StreamFamily.pending(context, &reply)
        },
        // XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds]
        //   [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
        CommandSpec("xclaim", arity: -6, flags: [.write, .fast], keys: .first, group: .stream,
                    summary: "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            try StreamFamily.claim(&context, &reply)
        },
        // XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
        CommandSpec("xautoclaim", arity: -6, flags: [.write, .fast], keys: .first, group: .stream,
                    summary: "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.",
                    since: "6.2.0") { context, reply throws(CommandError) in
            try StreamFamily.autoClaim(&context, &reply)
        },
        // XINFO STREAM|GROUPS|CONSUMERS|HELP
        CommandSpec("xinfo", arity: -2, flags: [.readonly], keys: .range(first: 2, last: 2, step: 1), group: .stream,
                    summary: "A container for stream introspection commands.", since: "5.0.0",
                    subcommands: [
                        ("stream", -3, "Returns information about a stream."),
                        ("groups", 3, "Returns a list of the consumer groups of a stream."),
                        ("consumers", 4, "Returns a list of the consumers in a consumer group."),
                        ("help", 2, "Returns helpful text about the different subcommands."),
                    ].map { name, arity, summary in
                        CommandSpec("xinfo|\(name)", arity: arity, flags: name == "help" ? [.loading, .stale] : [.readonly],
                                    keys: name == "help" ? .none : .range(first: 2, last: 2, step: 1), group: .stream,
                                    summary: summary, since: "5.0.0") { _, _ throws(CommandError) in }
                    }) { context, reply throws(CommandError) in
            try StreamFamily.info(context, &reply)
        },
        // XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
        CommandSpec("xsetid", arity: -3, flags: [.write, .denyOOM, .fast], keys: .first, group: .stream,
                    summary: "An internal command for replicating stream values.", since: "5.0.0") { context, reply throws(CommandError) in
            try StreamFamily.setID(&context, &reply)
        },
    ]
}

/// The stream commands' implementations.
enum StreamFamily {
    static let invalidID = CommandError("Invalid stream ID specified as stream command argument")
    static let invalidStart = CommandError("invalid start ID for the interval")
    static let invalidEnd = CommandError("invalid end ID for the interval")

    // MARK: IDs

    /// A decimal `UInt64` (redis string2ull: digits only here, no sign, no spaces).
    static func parseUnsigned(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
        }
        return value
    }

    /// redis streamGenericParseIDOrReply: `ms-seq`, `ms` (sequence `missingSequence`), `-`/`+` unless `strict`, and
    /// `ms-*` when `allowAutoSequence` (then `sequenceGiven` is false).
    static func parseID(
        _ bytes: UnsafeRawBufferPointer, missingSequence: UInt64 = 0, strict: Bool = true, allowAutoSequence: Bool = false
    ) -> (id: StreamID, sequenceGiven: Bool)? {
        guard bytes.count <= 127, !bytes.isEmpty else { return nil }
        if bytes.count == 1 && (bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+")) {
            if strict { return nil }
            return (bytes[0] == UInt8(ascii: "-") ? .zero : .max, true)
        }
        guard let dash = bytes.firstIndex(of: UInt8(ascii: "-")) else {
            guard let milliseconds = parseUnsigned(bytes) else { return nil }
            return (StreamID(milliseconds: milliseconds, sequence: missingSequence), true)
        }
        guard let milliseconds = parseUnsigned(UnsafeRawBufferPointer(rebasing: bytes[..<dash])) else { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[(dash + 1)...])
        if allowAutoSequence && rest.count == 1 && rest[0] == UInt8(ascii: "*") {
            return (StreamID(milliseconds: milliseconds, sequence: 0), false)
        }
        guard let sequence = parseUnsigned(rest) else { return nil }
        return (StreamID(milliseconds: milliseconds, sequence: sequence), true)
    }

    /// A strict ID argument (no `-`/`+`), or the invalid-ID error.
    static func strictID(_ context: CommandContext, _ index: Int) throws(CommandError) -> StreamID {
        guard let parsed = context.arguments.withBytes(index, { parseID($0) }) else { throw invalidID }
        return parsed.id
    }

    /// An interval bound (XRANGE, XPENDING, XAUTOCLAIM): `-`, `+`, an ID, or `(` and an ID for an exclusive bound.
    static func intervalID(_ context: CommandContext, _ index: Int, missingSequence: UInt64) throws(CommandError)
        -> (id: StreamID, exclusive: Bool)
    {
        let parsed = context.arguments.withBytes(index) { bytes -> (StreamID, Bool)? in
            if bytes.count > 1 && bytes[0] == UInt8(ascii: "(") {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[1...])
                return parseID(rest, missingSequence: missingSequence, strict: true).map { ($0.id, true) }
            }
            return parseID(bytes, missingSequence: missingSequence, strict: false).map { ($0.id, false) }
        }
        guard let parsed else { throw invalidID }
        return parsed
    }

    /// The inclusive start of an interval argument.
    static func intervalStart(_ context: CommandContext, _ index: Int) throws(CommandError) -> StreamID {
        let (id, exclusive) = try intervalID(context, index, missingSequence: 0)
        if !exclusive { return id }
        guard let next = id.successor else { throw invalidStart }
        return next
    }

    /// The inclusive end of an interval argument.
    static func intervalEnd(_ context: CommandContext, _ index: Int) throws(CommandError) -> StreamID {
        let (id, exclusive) = try intervalID(context, index, missingSequence: .max)
        if !exclusive { return id }
        guard let previous = id.predecessor else { throw invalidEnd }
        return previous
    }

    static func idBytes(_ id: StreamID) -> [UInt8] { Array(id.description.utf8) }

    // MARK: lookups and replies

    /// The stream at argument 1 for a reader (hits and misses counted), or nil; WRONGTYPE for another type.
    static func readStream(_ context: CommandContext) throws(CommandError) -> StreamValue? {
        let value = context.db.value(context.key(1))
        context.recordLookup(found: value != nil, argument: 1)
        switch value {
        case nil: return nil
        case .stream(let stream)?: return stream
        default: throw .wrongType
        }
    }

    static func replyEntry(_ entry: StreamEntry, _ reply: inout ReplyWriter) {
        reply.arrayHeader(2)
        reply.bulk(entry.id.description)
        reply.arrayHeader(entry.fieldsAndValues.count)
        for item in entry.fieldsAndValues { item.withBytes { reply.bulk($0) } }
    }

    /// The entries of `stream` from `start` to `end` (inclusive), at most `count` (0 = all), as an array.
    static func replyRange(
        _ stream: StreamValue, from start: StreamID, to end: StreamID, count: Int, reverse: Bool, _ reply: inout ReplyWriter
    ) {
        guard start <= end else {
            reply.arrayHeader(0)
            return
        }
        let lower = stream.lowerBound(start)
        var upper = stream.lowerBound(end)
        if upper < stream.count && stream.entries[upper].id == end { upper += 1 }
        var total = Swift.max(upper - lower, 0)
        if count > 0 { total = Swift.min(total, count) }
        reply.arrayHeader(total)
        if reverse {
            for index in stride(from: upper - 1, to: upper - 1 - total, by: -1) { replyEntry(stream.entries[index], &reply) }
        } else {
            for index in lower..<(lower + total) { replyEntry(stream.entries[index], &reply) }
        }
    }

    static func noSuchKeyOrGroup(_ context: CommandContext, group: Int) -> CommandError {
        CommandError(code: "NOGROUP", "No such key '\(context.arguments.string(1))' or consumer group '\(context.arguments.string(group))'")
    }

    /// XPENDING/XCLAIM/XAUTOCLAIM: the stream and its group named in argument 2; WRONGTYPE for another type,
    /// NOGROUP when the key or the group is missing.
    @discardableResult
    static func requireGroup(
        _ context: CommandContext, _ value: StoredValue?, _ groupName: CompactBytes
    ) throws(CommandError) -> (stream: StreamValue, group: StreamConsumerGroup) {
        if let value, value.type != .stream { throw .wrongType }
        guard case .stream(let stream)? = value, let group = stream.groups[groupName] else {
            throw noSuchKeyOrGroup(context, group: 2)
        }
        return (stream, group)
    }

    /// The configured node size (`stream-node-max-entries`, `stream-node-max-bytes`).
    static func nodeLimits(_ context: CommandContext) -> (entries: Int, bytes: Int) {
        let configuration = context.node.configuration
        return (RedisCompatibilityDirective.integer("stream-node-max-entries", in: configuration),
                RedisCompatibilityDirective.integer("stream-node-max-bytes", in: configuration))
    }

    // MARK: XADD / XTRIM

    /// The trimming options of XADD and XTRIM.
    struct TrimOptions {
        var strategy: StreamTrimStrategy?
        var approximate = false
        var limit = 0
        /// NOMKSTREAM (XADD).
        var noMakeStream = false
        /// XADD: the ID argument's position and value (`nil` ID: `*`).
        var idIndex = 0
        var id: StreamID?
        var sequenceGiven = true
    }

    /// redis streamParseAddOrTrimArgsOrReply.
    static func parseTrimOptions(_ context: CommandContext, forAdd: Bool) throws(CommandError) -> TrimOptions {
        let arguments = context.arguments
        var options = TrimOptions()
        var limitGiven = false
        var index = 2
        while index < arguments.count {
            let more = arguments.count - 1 - index
            if forAdd && arguments.withBytes(index, { $0.count == 1 && $0[0] == UInt8(ascii: "*") }) {
                options.idIndex = index
                break
            } else if (arguments.matches(index, "maxlen") || arguments.matches(index, "minid")) && more > 0 {
                if options.strategy != nil {
                    throw CommandError("syntax error, MAXLEN and MINID options at the same time are not compatible")
                }
                let byLength = arguments.matches(index, "maxlen")
                options.approximate = false
                if more >= 2 && arguments.matches(index + 1, "~") {
                    options.approximate = true
                    index += 1
                } else if more >= 2 && arguments.matches(index + 1, "=") {
                    index += 1
                }
                if byLength {
                    guard let maximum = arguments.integer(index + 1) else { throw .notInteger }
                    if maximum < 0 { throw CommandError("The MAXLEN argument must be >= 0.") }
                    options.strategy = .maximumLength(maximum)
                } else {
                    options.strategy = .minimumID(try strictID(context, index + 1))
                }
                index += 2
            } else if arguments.matches(index, "limit") && more > 0 {
                guard let limit = arguments.integer(index + 1) else { throw .notInteger }
                if limit < 0 { throw CommandError("The LIMIT argument must be >= 0.") }
                options.limit = limit
                limitGiven = true
                index += 2
            } else if forAdd && arguments.matches(index, "nomkstream") {
                options.noMakeStream = true
                index += 1
            } else if forAdd {
                guard let parsed = arguments.withBytes(index, { parseID($0, allowAutoSequence: true) }) else { throw invalidID }
                options.id = parsed.id
                options.sequenceGiven = parsed.sequenceGiven
                options.idIndex = index
                break
            } else {
                throw .syntax
            }
        }
        if options.limit > 0 && options.strategy == nil {
            throw CommandError("syntax error, LIMIT cannot be used without specifying a trimming strategy")
        }
        if !forAdd && options.strategy == nil {
            throw CommandError("syntax error, XTRIM must be called with a trimming strategy")
        }
        if context.session.isPrimaryLink {
            // The primary sent the trim it made, exactly.
            options.limit = 0
        } else if limitGiven {
            if !options.approximate { throw CommandError("syntax error, LIMIT cannot be used without the special ~ option") }
        } else if options.approximate {
            options.limit = 100 * nodeLimits(context).entries
            if options.limit <= 0 { options.limit = 10000 }
        } else {
            options.limit = 0
        }
        return options
    }

    /// The trim arguments replicas get: `MAXLEN = n` / `MINID = id` with what the trim left (redis
    /// streamRewriteApproxSpecifier and streamRewriteTrimArgument), so they trim exactly the same entries.
    static func propagatedTrim(_ options: TrimOptions, _ stream: StreamValue) -> [[UInt8]] {
        switch options.strategy {
        case .maximumLength(let maximum)?:
            return [Array("MAXLEN".utf8), [UInt8(ascii: "=")], Array(String(options.approximate ? stream.count : maximum).utf8)]
        case .minimumID(let minimum)?:
            return [Array("MINID".utf8), [UInt8(ascii: "=")], idBytes(options.approximate ? stream.firstID : minimum)]
        case nil:
            return []
        }
    }

    static func add(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let options = try parseTrimOptions(context, forAdd: true)
        let arguments = context.arguments
        let fieldStart = options.idIndex + 1
        let fieldCount = arguments.count - fieldStart
        if options.idIndex == 0 || fieldCount < 2 || fieldCount % 2 == 1 { throw .wrongArity("xadd") }
        if let id = options.id, options.sequenceGiven, id == .zero {
            throw CommandError("The ID specified in XADD must be greater than 0-0")
        }
        let limits = nodeLimits(context)
        let now = context.now
        let outcome = try context.db.modify(context.key(1)) {
            (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> (StreamID, Int, [[UInt8]])? in
            let stream: StreamValue
            switch value {
            case nil:
                if options.noMakeStream { return nil }
                stream = StreamValue()
            case .stream(let existing)?:
                stream = existing
            default:
                throw .wrongType
            }
            if stream.lastID == .max {
                throw CommandError("The stream has exhausted the last possible ID, unable to add more items")
            }
            let id: StreamID
            if let given = options.id {
                if options.sequenceGiven {
                    id = given
                } else if stream.lastID.milliseconds == given.milliseconds {
                    guard stream.lastID.sequence < .max else { throw smallerIDError }
                    id = StreamID(milliseconds: given.milliseconds, sequence: stream.lastID.sequence + 1)
                } else {
                    id = given
                }
            } else {
                let milliseconds = UInt64(Swift.max(now, 0))
                if milliseconds > stream.lastID.milliseconds {
                    id = StreamID(milliseconds: milliseconds, sequence: 0)
                } else {
                    id = stream.lastID.successor ?? .max
                }
            }
            guard id > stream.lastID else { throw smallerIDError }
            var items: [CompactBytes] = []
            items.reserveCapacity(fieldCount)
            for index in fieldStart..<arguments.count { items.append(arguments.withBytes(index) { CompactBytes($0) }) }
            stream.append(StreamEntry(id: id, fieldsAndValues: items), nodeMaxEntries: limits.entries, nodeMaxBytes: limits.bytes)
            if value == nil { value = .stream(stream) }
            modified = true
            var trimmed = 0
            if let strategy = options.strategy {
                trimmed = stream.trim(strategy, approximate: options.approximate, limit: options.limit)
            }
            return (id, trimmed, propagatedTrim(options, stream))
        }
        guard let (id, trimmed, trimArguments) = outcome else {
            reply.null()
            context.suppressPropagation()
            return
        }
        reply.bulk(id.description)
        context.notify(.stream, "xadd", argument: 1)
        if trimmed > 0 { context.notify(.stream, "xtrim", argument: 1) }
        context.signalReady(context.key(1))
        if context.isPropagating {
            var command: [[UInt8]] = [Array("XADD".utf8), arguments.bytes(1)]
            if options.noMakeStream { command.append(Array("NOMKSTREAM".utf8)) }
            command += trimArguments
            command.append(idBytes(id))
            for index in fieldStart..<arguments.count { command.append(arguments.bytes(index)) }
            context.propagate(command)
        }
    }

    static let smallerIDError = CommandError("The ID specified in XADD is equal or smaller than the target stream top item")

    static func trimCommand(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let options = try parseTrimOptions(context, forAdd: false)
        let result = try context.db.modify(context.key(1)) {
            (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> (Int, [[UInt8]]) in
            guard let current = value else { return (0, []) }
            guard case .stream(let stream) = current else { throw .wrongType }
            let deleted = stream.trim(options.strategy!, approximate: options.approximate, limit: options.limit)
            if deleted > 0 { modified = true }
            return (deleted, propagatedTrim(options, stream))
        }
        reply.integer(result.0)
        guard result.0 > 0 else {
            context.suppressPropagation()
            return
        }
        context.notify(.stream, "xtrim", argument: 1)
        if context.isPropagating {
            let command = [Array("XTRIM".utf8), context.arguments.bytes(1)] + result.1
            context.propagate(command)
        }
    }

    // MARK: XRANGE / XDEL

    static func range(_ context: CommandContext, _ reply: inout ReplyWriter, reverse: Bool) throws(CommandError) {
        let start = try intervalStart(context, reverse ? 3 : 2)
        let end = try intervalEnd(context, reverse ? 2 : 3)
        let arguments = context.arguments
        var count = -1
        var index = 4
        while index < arguments.count {
            guard arguments.matches(index, "count"), index + 1 < arguments.count else { throw .syntax }
            guard let value = arguments.integer(index + 1) else { throw .notInteger }
            count = Swift.max(value, 0)
            index += 2
        }
        guard let stream = try readStream(context) else {
            reply.arrayHeader(0)
            return
        }
        if count == 0 {
            reply.nullArray()
            return
        }
        replyRange(stream, from: start, to: end, count: Swift.max(count, 0), reverse: reverse, &reply)
    }

    static func delete(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        var ids: [StreamID] = []
        for index in 2..<context.arguments.count { ids.append(try strictID(context, index)) }
        let deleted = try context.db.modify(context.key(1)) {
            (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
            guard let current = value else { return 0 }
            guard case .stream(let stream) = current else { throw .wrongType }
            var deleted = 0
            for id in ids where stream.delete(id) { deleted += 1 }
            if deleted > 0 { modified = true }
            return deleted
        }
        if deleted > 0 {
            context.notify(.stream, "xdel", argument: 1)
        } else {
            context.suppressPropagation()
        }
        reply.integer(deleted)
    }

    // MARK: XREAD / XREADGROUP

    /// Key positions of XREAD/XREADGROUP: the first half of the arguments after STREAMS.
    @Sendable static func readKeys(_ arguments: CommandArguments) -> [Int] {
        guard let streams = streamsKeyword(arguments) else { return [] }
        let count = (arguments.count - streams - 1) / 2
        return count > 0 ? Array((streams + 1)...(streams + count)) : []
    }

    /// The position of the STREAMS keyword, skipping option values.
    static func streamsKeyword(_ arguments: CommandArguments) -> Int? {
        var index = 1
        while index < arguments.count {
            if arguments.matches(index, "streams") { return index }
            if arguments.matches(index, "group") {
                index += 3
            } else if arguments.matches(index, "count") || arguments.matches(index, "block") {
                index += 2
            } else {
                index += 1
            }
        }
        return nil
    }

    /// What one XREAD/XREADGROUP stream argument asks for.
    enum ReadPosition {
        /// Entries after this ID.
        case after(StreamID)
        /// `>`: entries never delivered to the group.
        case undelivered
    }

    static func read(_ context: inout CommandContext, _ reply: inout ReplyWriter, withGroup: Bool) throws(CommandError) {
        let arguments = context.arguments
        var blocks = false
        var deadline: Int64?
        var count = 0
        var streamsIndex = 0
        var groupIndex = 0
        var noAcknowledge = false
        var index = 1
        while index < arguments.count {
            let more = arguments.count - index - 1
            if arguments.matches(index, "block") && more > 0 {
                if context.fromScript {
                    throw CommandError("\(arguments.string(0)) command is not allowed with BLOCK option from scripts")
                }
                guard let milliseconds = arguments.integer(index + 1) else {
                    throw CommandError("timeout is not an integer or out of range")
                }
                if milliseconds < 0 { throw CommandError("timeout is negative") }
                blocks = true
                deadline = milliseconds == 0 ? nil : context.now + Int64(milliseconds)
                index += 2
            } else if arguments.matches(index, "count") && more > 0 {
                guard let value = arguments.integer(index + 1) else { throw .notInteger }
                count = Swift.max(value, 0)
                index += 2
            } else if arguments.matches(index, "streams") && more > 0 {
                streamsIndex = index + 1
                if (arguments.count - streamsIndex) % 2 != 0 {
                    let (command, id) = withGroup ? ("xreadgroup", ">") : ("xread", "$")
                    throw CommandError("Unbalanced '\(command)' list of streams: for each stream key an ID or '\(id)' must be specified.")
                }
                break
            } else if arguments.matches(index, "group") && more >= 2 {
                if !withGroup { throw CommandError("The GROUP option is only supported by XREADGROUP. You called XREAD instead.") }
                groupIndex = index + 1
                index += 3
            } else if arguments.matches(index, "noack") {
                if !withGroup { throw CommandError("The NOACK option is only supported by XREADGROUP. You called XREAD instead.") }
                noAcknowledge = true
                index += 1
            } else {
                throw .syntax
            }
        }
        if streamsIndex == 0 { throw .syntax }
        if withGroup && groupIndex == 0 { throw CommandError("Missing GROUP option for XREADGROUP") }
        let streamCount = (arguments.count - streamsIndex) / 2
        let db = context.db
        // Resolve every ID first, as redis does, so errors come before any effect.
        var positions: [ReadPosition] = []
        positions.reserveCapacity(streamCount)
        var groupName = CompactBytes.empty
        if withGroup { groupName = arguments.withBytes(groupIndex) { CompactBytes($0) } }
        for position in 0..<streamCount {
            let keyIndex = streamsIndex + position
            let idIndex = keyIndex + streamCount
            let value = db.value(context.key(keyIndex))
            var stream: StreamValue?
            switch value {
            case nil: stream = nil
            case .stream(let existing)?: stream = existing
            default: throw .wrongType
            }
            if withGroup && stream?.groups[groupName] == nil {
                throw CommandError(code: "NOGROUP",
                                   "No such key '\(arguments.string(keyIndex))' or consumer group '\(arguments.string(groupIndex))' in XREADGROUP with GROUP option")
            }
            let word = arguments.withBytes(idIndex) { $0.count == 1 ? $0[0] : 0 }
            if word == UInt8(ascii: "$") {
                if withGroup {
                    throw CommandError("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")
                }
                positions.append(.after(stream?.lastID ?? .zero))
            } else if word == UInt8(ascii: ">") {
                if !withGroup {
                    throw CommandError("The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
                }
                positions.append(.undelivered)
            } else {
                positions.append(.after(try strictID(context, idIndex)))
            }
        }
        // Serve what can be served now.
        var served: [(keyIndex: Int, body: ReplyWriter)] = []
        let consumerName = withGroup ? arguments.withBytes(groupIndex + 1) { CompactBytes($0) } : CompactBytes.empty
        for position in 0..<streamCount {
            let keyIndex = streamsIndex + position
            let key = context.key(keyIndex)
            var body = ReplyWriter(buffer: context.session.connection.allocator.buffer(capacity: 256),
                                   protocolVersion: reply.protocolVersion)
            let didServe: Bool
            if withGroup {
                didServe = try readGroup(
                    &context, key: key, keyIndex: keyIndex, groupIndex: groupIndex, group: groupName,
                    consumer: consumerName, position: positions[position], count: count, noAcknowledge: noAcknowledge,
                    &body)
            } else {
                guard case .after(let after) = positions[position],
                    case .stream(let stream)? = db.value(key), let last = stream.entries.last?.id, last > after,
                    let start = after.successor
                else { continue }
                replyRange(stream, from: start, to: .max, count: count, reverse: false, &body)
                didServe = true
            }
            if didServe { served.append((keyIndex, body)) }
        }
        if !served.isEmpty {
            if reply.protocolVersion == .v2 { reply.arrayHeader(served.count) } else { reply.mapHeader(served.count) }
            for (keyIndex, body) in served {
                if reply.protocolVersion == .v2 { reply.arrayHeader(2) }
                arguments.withBytes(keyIndex) { reply.bulk($0) }
                reply.raw(body.buffer)
            }
            // XREAD is not propagated; XREADGROUP sends what it did to the group (or nothing).
            if case .asReceived = context.propagation { context.suppressPropagation() }
            return
        }
        if blocks && !context.inTransaction {
            // Wait with `$` resolved, so a retry reads after the ID the stream had now.
            var rewritten: [[UInt8]] = (0..<arguments.count).map { arguments.bytes($0) }
            for position in 0..<streamCount {
                if case .after(let id) = positions[position] { rewritten[streamsIndex + streamCount + position] = idBytes(id) }
            }
            let keys = (0..<streamCount).map { context.key(streamsIndex + $0) }
            context.suppressPropagation()
            context.node.blocking.block(&context, keys: keys, waitingFor: .stream, deadline: deadline,
                                        arguments: CommandArguments(rewritten), wakesOnAnyChange: withGroup)
            return
        }
        context.suppressPropagation()
        reply.nullArray()
    }

    /// XREADGROUP on one stream: writes the stream's entries into `reply` and returns true when it serves.
    static func readGroup(
        _ context: inout CommandContext, key: KeyRef, keyIndex: Int, groupIndex: Int, group groupName: CompactBytes,
        consumer consumerName: CompactBytes, position: ReadPosition, count: Int, noAcknowledge: Bool,
        _ reply: inout ReplyWriter
    ) throws(CommandError) -> Bool {
        let now = context.now
        let propagating = context.isPropagating
        let keyBytes = context.arguments.bytes(keyIndex)
        let groupBytes = context.arguments.bytes(groupIndex)
        var propagated: [[[UInt8]]] = []
        var createdConsumer = false
        let didServe = try context.db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Bool in
            guard case .stream(let stream)? = value, let group = stream.groups[groupName] else { return false }
            let consumer: StreamConsumer
            (consumer, createdConsumer) = group.seenConsumer(consumerName, at: now)
            if createdConsumer {
                modified = true
                if noAcknowledge && propagating {
                    propagated.append([Array("XGROUP".utf8), Array("CREATECONSUMER".utf8), keyBytes, groupBytes, consumerName.array])
                }
            }
            switch position {
            case .after(let after):
                // The consumer's history: its pending entries after `after`.
                let pendingIDs = consumer.pending.ids
                var index = consumer.pending.lowerBound(after.successor ?? .max)
                if after == .max { index = pendingIDs.count }
                var emitted = 0
                let total = count > 0 ? Swift.min(count, pendingIDs.count - index) : pendingIDs.count - index
                reply.arrayHeader(total)
                while emitted < total {
                    let id = pendingIDs[index]
                    if let entry = stream.entry(id) {
                        replyEntry(entry, &reply)
                        if let pending = group.pending[id] {
                            pending.deliveryTime = now
                            pending.deliveryCount += 1
                            modified = true
                        }
                    } else {
                        reply.arrayHeader(2)
                        reply.bulk(id.description)
                        reply.nullArray()
                    }
                    emitted += 1
                    index += 1
                }
                return true
            case .undelivered:
                guard let last = stream.entries.last?.id, last > group.lastDeliveredID,
                    let start = group.lastDeliveredID.successor
                else { return false }
                let lower = stream.lowerBound(start)
                let total = count > 0 ? Swift.min(count, stream.count - lower) : stream.count - lower
                reply.arrayHeader(total)
                var lastIDChanged = false
                for index in lower..<(lower + total) {
                    let entry = stream.entries[index]
                    if entry.id > group.lastDeliveredID {
                        if group.entriesRead != -1 && !stream.rangeHasTombstones(from: entry.id) {
                            group.entriesRead += 1
                        } else if stream.entriesAdded > 0 {
                            group.entriesRead = stream.estimatedDistanceFromFirstEverEntry(entry.id)
                        }
                        group.lastDeliveredID = entry.id
                        if noAcknowledge { lastIDChanged = true }
                    }
                    replyEntry(entry, &reply)
                    if !noAcknowledge {
                        group.addPending(entry.id, consumer: consumer, deliveryTime: now, deliveryCount: 1)
                        consumer.activeTime = now
                        if propagating {
                            propagated.append(claimPropagation(key: keyBytes, group: groupBytes, id: entry.id,
                                                               pending: group.pending[entry.id]!, groupState: group))
                        }
                    }
                }
                if lastIDChanged && propagating { propagated.append(setIDPropagation(key: keyBytes, group: groupBytes, group)) }
                modified = true
                return true
            }
        }
        if createdConsumer { context.notify(.stream, "xgroup-createconsumer", argument: keyIndex) }
        for command in propagated { context.propagate(command) }
        return didServe
    }

    /// `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID LASTID last` (redis streamPropagateXCLAIM).
    static func claimPropagation(
        key: [UInt8], group: [UInt8], id: StreamID, pending: PendingEntry, groupState: StreamConsumerGroup
    ) -> [[UInt8]] {
        [Array("XCLAIM".utf8), key, group, pending.consumer.name.array, [UInt8(ascii: "0")], idBytes(id),
         Array("TIME".utf8), Array(String(pending.deliveryTime).utf8), Array("RETRYCOUNT".utf8),
         Array(String(pending.deliveryCount).utf8), Array("FORCE".utf8), Array("JUSTID".utf8), Array("LASTID".utf8),
         idBytes(groupState.lastDeliveredID)]
    }

    /// `XGROUP SETID key group last ENTRIESREAD n` (redis streamPropagateGroupID).
    static func setIDPropagation(key: [UInt8], group: [UInt8], _ state: StreamConsumerGroup) -> [[UInt8]] {
        [Array("XGROUP".utf8), Array("SETID".utf8), key, group, idBytes(state.lastDeliveredID),
         Array("ENTRIESREAD".utf8), Array(String(state.entriesRead).utf8)]
    }

    // MARK: XGROUP

    static func group(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let subcommand = arguments.lowercased(1)
        let syntaxError = CommandError(
            "unknown subcommand or wrong number of arguments for '\(arguments.string(1).prefix(128))'. Try XGROUP HELP.")
        if subcommand == "help" && arguments.count == 2 {
            reply.simpleStringLines([
                "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CREATE <key> <groupname> <id|$> [option]",
                "    Create a new consumer group. Options are:",
                "    * MKSTREAM",
                "      Create the empty stream if it does not exist.",
                "    * ENTRIESREAD entries_read",
                "      Set the group's entries_read counter (internal use).",
                "CREATECONSUMER <key> <groupname> <consumer>",
                "    Create a new consumer in the specified group.",
                "DELCONSUMER <key> <groupname> <consumer>",
                "    Remove the specified consumer.",
                "DESTROY <key> <groupname>",
                "    Remove the specified group.",
                "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                "    Set the current group ID and entries_read counter.",
                "HELP",
                "    Print this help.",
            ])
            context.suppressPropagation()
            return
        }
        guard arguments.count >= 4 else { throw syntaxError }
        var makeStream = false
        var entriesRead: Int64 = -1
        var index = 5
        while index < arguments.count {
            if subcommand == "create" && arguments.matches(index, "mkstream") {
                makeStream = true
                index += 1
            } else if subcommand == "create" || subcommand == "setid", arguments.matches(index, "entriesread"),
                index + 1 < arguments.count
            {
                guard let value = arguments.integer(index + 1) else { throw .notInteger }
                if value < 0 && value != -1 { throw CommandError("value for ENTRIESREAD must be positive or -1") }
                entriesRead = Int64(value)
                index += 2
            } else {
                throw syntaxError
            }
        }
        let groupName = arguments.withBytes(3) { CompactBytes($0) }
        let keyText = arguments.string(2)
        let groupText = arguments.string(3)
        enum Outcome { case ok(StaticString), integer(Int, StaticString?) }
        let outcome = try context.db.modify(context.key(2)) {
            (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Outcome in
            var stream: StreamValue?
            switch value {
            case nil: stream = nil
            case .stream(let existing)?: stream = existing
            default: throw .wrongType
            }
            if !makeStream {
                guard let stream else {
                    throw CommandError("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
                }
                if stream.groups[groupName] == nil && ["setid", "createconsumer", "delconsumer"].contains(subcommand) {
                    throw CommandError(code: "NOGROUP", "No such consumer group '\(groupText)' for key name '\(keyText)'")
                }
            }
            switch subcommand {
            case "create" where arguments.count >= 5 && arguments.count <= 8:
                let id: StreamID
                if arguments.withBytes(4, { $0.count == 1 && $0[0] == UInt8(ascii: "$") }) {
                    id = stream?.lastID ?? .zero
                } else {
                    id = try strictID(context, 4)
                }
                let target: StreamValue
                if let stream {
                    target = stream
                } else {
                    target = StreamValue()
                    value = .stream(target)
                    modified = true
                }
                guard target.groups[groupName] == nil else {
                    throw CommandError(code: "BUSYGROUP", "Consumer Group name already exists")
                }
                target.groups[groupName] = StreamConsumerGroup(lastDeliveredID: id, entriesRead: entriesRead)
                modified = true
                return .ok("xgroup-create")
            case "setid" where arguments.count == 5 || arguments.count == 7:
                guard let stream, let group = stream.groups[groupName] else { throw syntaxError }
                let id: StreamID
                if arguments.withBytes(4, { $0.count == 1 && $0[0] == UInt8(ascii: "$") }) {
                    id = stream.lastID
                } else {
                    guard let parsed = arguments.withBytes(4, { parseID($0, strict: false) }) else { throw invalidID }
                    id = parsed.id
                }
                group.lastDeliveredID = id
                group.entriesRead = entriesRead
                modified = true
                return .ok("xgroup-setid")
            case "destroy" where arguments.count == 4:
                guard let stream, stream.groups.removeValue(forKey: groupName) != nil else { return .integer(0, nil) }
                modified = true
                return .integer(1, "xgroup-destroy")
            case "createconsumer" where arguments.count == 5:
                guard let group = stream?.groups[groupName] else { throw syntaxError }
                let consumerName = arguments.withBytes(4) { CompactBytes($0) }
                if group.consumers[consumerName] != nil { return .integer(0, nil) }
                group.consumers[consumerName] = StreamConsumer(name: consumerName, seenTime: context.now)
                modified = true
                return .integer(1, "xgroup-createconsumer")
            case "delconsumer" where arguments.count == 5:
                guard let group = stream?.groups[groupName] else { throw syntaxError }
                guard let pending = group.removeConsumer(arguments.withBytes(4) { CompactBytes($0) }) else {
                    return .integer(0, nil)
                }
                modified = true
                return .integer(pending, "xgroup-delconsumer")
            default:
                throw syntaxError
            }
        }
        switch outcome {
        case .ok(let event):
            context.notify(.stream, event, argument: 2)
            reply.ok()
        case .integer(let number, let event):
            if let event {
                context.notify(.stream, event, argument: 2)
                // Blocked XREADGROUP clients of a destroyed group get their error.
                if subcommand == "destroy" { context.signalReady(context.key(2)) }
            } else {
                context.suppressPropagation()
            }
            reply.integer(number)
        }
    }

    // MARK: XACK / XPENDING

    static func acknowledge(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        var ids: [StreamID] = []
        for index in 3..<context.arguments.count { ids.append(try strictID(context, index)) }
        let groupName = context.arguments.withBytes(2) { CompactBytes($0) }
        let acknowledged = try context.db.modify(context.key(1)) {
            (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
            guard let current = value else { return 0 }
            guard case .stream(let stream) = current else { throw .wrongType }
            guard let group = stream.groups[groupName] else { return 0 }
            var acknowledged = 0
            for id in ids where group.acknowledge(id) { acknowledged += 1 }
            if acknowledged > 0 { modified = true }
            return acknowledged
        }
        if acknowledged == 0 { context.suppressPropagation() }
        reply.integer(acknowledged)
    }

    static func pending(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let summary = arguments.count == 3
        if arguments.count != 3 && (arguments.count < 6 || arguments.count > 9) { throw .syntax }
        var minimumIdle = 0
        var start = StreamID.zero
        var end = StreamID.max
        var count = 0
        var consumerName: CompactBytes?
        if arguments.count >= 6 {
            var startIndex = 3
            if arguments.matches(3, "idle") {
                guard let idle = arguments.integer(4) else { throw .notInteger }
                minimumIdle = idle
                if arguments.count < 8 { throw .syntax }
                startIndex += 2
            }
            guard startIndex + 2 < arguments.count, let value = arguments.integer(startIndex + 2) else { throw .notInteger }
            count = Swift.max(value, 0)
            start = try intervalStart(context, startIndex)
            end = try intervalEnd(context, startIndex + 1)
            if startIndex + 3 < arguments.count { consumerName = arguments.withBytes(startIndex + 3) { CompactBytes($0) } }
        }
        let value = context.db.value(context.key(1))
        let groupName = arguments.withBytes(2) { CompactBytes($0) }
        let (_, group) = try requireGroup(context, value, groupName)
        if summary {
            reply.arrayHeader(4)
            guard let first = group.pendingIDs.ids.first, let last = group.pendingIDs.ids.last else {
                reply.integer(0)
                reply.null()
                reply.null()
                reply.nullArray()
                return
            }
            reply.integer(group.pendingIDs.count)
            reply.bulk(first.description)
            reply.bulk(last.description)
            let consumers = group.consumersByName.filter { !$0.pending.isEmpty }
            reply.arrayHeader(consumers.count)
            for consumer in consumers {
                reply.arrayHeader(2)
                consumer.name.withBytes { reply.bulk($0) }
                reply.bulk(String(consumer.pending.count))
            }
            return
        }
        let ids: OrderedStreamIDs
        if let consumerName {
            guard let consumer = group.consumers[consumerName] else {
                reply.arrayHeader(0)
                return
            }
            ids = consumer.pending
        } else {
            ids = group.pendingIDs
        }
        var rows: [(StreamID, PendingEntry)] = []
        var index = ids.lowerBound(start)
        while index < ids.count && (count == 0 || rows.count < count) && start <= end {
            let id = ids.ids[index]
            if id > end { break }
            index += 1
            guard let entry = group.pending[id] else { continue }
            if minimumIdle > 0 && context.now - entry.deliveryTime < Int64(minimumIdle) { continue }
            rows.append((id, entry))
        }
        if count == 0 { rows = [] }
        reply.arrayHeader(rows.count)
        for (id, entry) in rows {
            reply.arrayHeader(4)
            reply.bulk(id.description)
            entry.consumer.name.withBytes { reply.bulk($0) }
            reply.integer(Int(Swift.max(context.now - entry.deliveryTime, 0)))
            reply.integer(entry.deliveryCount)
        }
    }

    // MARK: XCLAIM / XAUTOCLAIM

    static func claim(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let groupName = arguments.withBytes(2) { CompactBytes($0) }
        try requireGroup(context, context.db.value(context.key(1)), groupName)
        guard let minimumIdleValue = arguments.integer(4) else {
            throw CommandError("Invalid min-idle-time argument for XCLAIM")
        }
        let minimumIdle = Int64(Swift.max(minimumIdleValue, 0))
        var ids: [StreamID] = []
        var index = 5
        while index < arguments.count, let parsed = arguments.withBytes(index, { parseID($0) }) {
            ids.append(parsed.id)
            index += 1
        }
        let now = context.now
        var deliveryTime: Int64 = -1
        var retryCount = -1
        var force = false
        var justID = false
        var lastID = StreamID.zero
        while index < arguments.count {
            let more = arguments.count - index - 1
            if arguments.matches(index, "force") {
                force = true
            } else if arguments.matches(index, "justid") {
                justID = true
            } else if arguments.matches(index, "idle") && more > 0 {
                index += 1
                guard let idle = arguments.integer(index) else { throw CommandError("Invalid IDLE option argument for XCLAIM") }
                deliveryTime = now - Int64(idle)
            } else if arguments.matches(index, "time") && more > 0 {
                index += 1
                guard let time = arguments.integer(index) else { throw CommandError("Invalid TIME option argument for XCLAIM") }
                deliveryTime = Int64(time)
            } else if arguments.matches(index, "retrycount") && more > 0 {
                index += 1
                guard let count = arguments.integer(index) else {
                    throw CommandError("Invalid RETRYCOUNT option argument for XCLAIM")
                }
                retryCount = count
            } else if arguments.matches(index, "lastid") && more > 0 {
                index += 1
                lastID = try strictID(context, index)
            } else {
                throw CommandError("Unrecognized XCLAIM option '\(arguments.string(index))'")
            }
            index += 1
        }
        if deliveryTime != -1 {
            if deliveryTime < 0 || deliveryTime > now { deliveryTime = now }
        } else {
            deliveryTime = now
        }
        let keyBytes = arguments.bytes(1)
        let consumerName = arguments.withBytes(3) { CompactBytes($0) }
        var propagated: [[[UInt8]]] = []
        var createdConsumer = false
        let propagating = context.isPropagating
        try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
            guard case .stream(let stream)? = value, let group = stream.groups[groupName] else { return }
            var propagateLastID = false
            if lastID > group.lastDeliveredID {
                group.lastDeliveredID = lastID
                propagateLastID = true
                modified = true
            }
            let consumer: StreamConsumer
            (consumer, createdConsumer) = group.seenConsumer(consumerName, at: now)
            if createdConsumer { modified = true }
            var claimed: [StreamID] = []
            for id in ids {
                guard stream.entry(id) != nil else {
                    // Gone from the stream: its pending entry goes too.
                    if let pending = group.pending[id] {
                        if propagating {
                            propagated.append(claimPropagation(key: keyBytes, group: arguments.bytes(2), id: id,
                                                               pending: pending, groupState: group))
                        }
                        propagateLastID = false
                        group.acknowledge(id)
                        modified = true
                    }
                    continue
                }
                var pending = group.pending[id]
                var created = false
                if force && pending == nil {
                    group.addPending(id, consumer: consumer, deliveryTime: now, deliveryCount: 1)
                    pending = group.pending[id]
                    created = true
                }
                guard let pending else { continue }
                if !created && minimumIdle > 0 && now - pending.deliveryTime < minimumIdle { continue }
                group.addPending(id, consumer: consumer, deliveryTime: deliveryTime, deliveryCount: pending.deliveryCount)
                if retryCount >= 0 {
                    pending.deliveryCount = retryCount
                } else if !justID {
                    pending.deliveryCount += 1
                }
                claimed.append(id)
                consumer.activeTime = now
                if propagating {
                    propagated.append(claimPropagation(key: keyBytes, group: arguments.bytes(2), id: id,
                                                       pending: pending, groupState: group))
                }
                propagateLastID = false
                modified = true
            }
            if propagateLastID && propagating {
                propagated.append(setIDPropagation(key: keyBytes, group: arguments.bytes(2), group))
            }
            reply.arrayHeader(claimed.count)
            for id in claimed {
                if justID {
                    reply.bulk(id.description)
                } else if let entry = stream.entry(id) {
                    replyEntry(entry, &reply)
                } else {
                    reply.null()
                }
            }
        }
        if createdConsumer { context.notify(.stream, "xgroup-createconsumer", argument: 1) }
        if propagated.isEmpty { context.suppressPropagation() }
        for command in propagated { context.propagate(command) }
    }

    static func autoClaim(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let groupName = arguments.withBytes(2) { CompactBytes($0) }
        // The options are checked before the group, as redis does.
        guard let minimumIdleValue = arguments.integer(4) else {
            throw CommandError("Invalid min-idle-time argument for XAUTOCLAIM")
        }
        let minimumIdle = Int64(Swift.max(minimumIdleValue, 0))
        let start = try intervalStart(context, 5)
        let attemptsFactor = 10
        var count = 100
        var justID = false
        var index = 6
        while index < arguments.count {
            let more = arguments.count - index - 1
            if arguments.matches(index, "count") && more > 0 {
                guard let value = arguments.integer(index + 1), value >= 1, value <= Int.max / attemptsFactor else {
                    throw CommandError("COUNT must be > 0")
                }
                count = value
                index += 2
            } else if arguments.matches(index, "justid") {
                justID = true
                index += 1
            } else {
                throw .syntax
            }
        }
        try requireGroup(context, context.db.value(context.key(1)), groupName)
        let now = context.now
        let keyBytes = arguments.bytes(1)
        let groupBytes = arguments.bytes(2)
        let consumerName = arguments.withBytes(3) { CompactBytes($0) }
        var propagated: [[[UInt8]]] = []
        var createdConsumer = false
        let propagating = context.isPropagating
        try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
            guard case .stream(let stream)? = value, let group = stream.groups[groupName] else { return }
            let consumer: StreamConsumer
            (consumer, createdConsumer) = group.seenConsumer(consumerName, at: now)
            if createdConsumer { modified = true }
            var attempts = count * attemptsFactor
            var remaining = count
            var claimed: [StreamID] = []
            var deleted: [StreamID] = []
            var position = group.pendingIDs.lowerBound(start)
            while attempts > 0 && remaining > 0 && position < group.pendingIDs.count {
                attempts -= 1
                let id = group.pendingIDs.ids[position]
                let pending = group.pending[id]!
                if stream.entry(id) == nil {
                    if propagating {
                        propagated.append(claimPropagation(key: keyBytes, group: groupBytes, id: id, pending: pending, groupState: group))
                    }
                    group.acknowledge(id)
                    deleted.append(id)
                    remaining -= 1
                    modified = true
                    continue  // the next ID moved into `position`
                }
                position += 1
                if minimumIdle > 0 && now - pending.deliveryTime < minimumIdle { continue }
                group.addPending(id, consumer: consumer, deliveryTime: now, deliveryCount: pending.deliveryCount)
                if !justID { pending.deliveryCount += 1 }
                claimed.append(id)
                remaining -= 1
                consumer.activeTime = now
                if propagating {
                    propagated.append(claimPropagation(key: keyBytes, group: groupBytes, id: id, pending: pending, groupState: group))
                }
                modified = true
            }
            let cursor = position < group.pendingIDs.count ? group.pendingIDs.ids[position] : .zero
            reply.arrayHeader(3)
            reply.bulk(cursor.description)
            reply.arrayHeader(claimed.count)
            for id in claimed {
                if justID {
                    reply.bulk(id.description)
                } else if let entry = stream.entry(id) {
                    replyEntry(entry, &reply)
                }
            }
            reply.arrayHeader(deleted.count)
            for id in deleted { reply.bulk(id.description) }
        }
        if createdConsumer { context.notify(.stream, "xgroup-createconsumer", argument: 1) }
        if propagated.isEmpty { context.suppressPropagation() }
        for command in propagated { context.propagate(command) }
    }

    // MARK: XINFO

    static func info(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let subcommand = arguments.lowercased(1)
        let syntaxError = CommandError(
            "unknown subcommand or wrong number of arguments for '\(arguments.string(1).prefix(128))'. Try XINFO HELP.")
        if subcommand == "help" {
            guard arguments.count == 2 else { throw syntaxError }
            reply.simpleStringLines([
                "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
                "HELP",
                "    Print this help.",
            ])
            return
        }
        guard arguments.count >= 3 else { throw syntaxError }
        guard let value = context.db.value(context.key(2)) else { throw .noSuchKey }
        guard case .stream(let stream) = value else { throw .wrongType }
        let now = context.now
        switch subcommand {
        case "consumers" where arguments.count == 4:
            guard let group = stream.groups[arguments.withBytes(3, { CompactBytes($0) })] else {
                throw CommandError(code: "NOGROUP",
                                   "No such consumer group '\(arguments.string(3))' for key name '\(arguments.string(2))'")
            }
            let consumers = group.consumersByName
            reply.arrayHeader(consumers.count)
            for consumer in consumers {
                reply.mapHeader(4)
                reply.bulk("name")
                consumer.name.withBytes { reply.bulk($0) }
                reply.bulk("pending")
                reply.integer(consumer.pending.count)
                reply.bulk("idle")
                reply.integer(Int(Swift.max(now - consumer.seenTime, 0)))
                reply.bulk("inactive")
                reply.integer(Int(consumer.activeTime != -1 ? now - consumer.activeTime : -1))
            }
        case "groups" where arguments.count == 3:
            let groups = stream.groupsByName
            reply.arrayHeader(groups.count)
            for (name, group) in groups {
                reply.mapHeader(6)
                reply.bulk("name")
                name.withBytes { reply.bulk($0) }
                reply.bulk("consumers")
                reply.integer(group.consumers.count)
                reply.bulk("pending")
                reply.integer(group.pending.count)
                reply.bulk("last-delivered-id")
                reply.bulk(group.lastDeliveredID.description)
                reply.bulk("entries-read")
                if group.entriesRead != -1 { reply.integer(Int(group.entriesRead)) } else { reply.null() }
                reply.bulk("lag")
                if let lag = stream.lag(of: group) { reply.integer(Int(lag)) } else { reply.null() }
            }
        case "stream":
            try streamInfo(context, stream, &reply, syntaxError: syntaxError)
        default:
            throw syntaxError
        }
    }

    static func streamInfo(
        _ context: CommandContext, _ stream: StreamValue, _ reply: inout ReplyWriter, syntaxError: CommandError
    ) throws(CommandError) {
        let arguments = context.arguments
        let optionCount = arguments.count - 3
        var full = false
        var count = 10
        if optionCount > 0 {
            guard optionCount == 1 || optionCount == 3, arguments.matches(3, "full") else { throw syntaxError }
            full = true
            if optionCount == 3 {
                guard arguments.matches(4, "count") else { throw syntaxError }
                guard let value = arguments.integer(5) else { throw .notInteger }
                count = value < 0 ? 10 : value
            }
        }
        reply.mapHeader(full ? 9 : 10)
        reply.bulk("length")
        reply.integer(stream.count)
        reply.bulk("radix-tree-keys")
        reply.integer(stream.nodeCount)
        reply.bulk("radix-tree-nodes")
        reply.integer(stream.nodeCount + 1)
        reply.bulk("last-generated-id")
        reply.bulk(stream.lastID.description)
        reply.bulk("max-deleted-entry-id")
        reply.bulk(stream.maximumDeletedID.description)
        reply.bulk("entries-added")
        reply.integer(Int(clamping: stream.entriesAdded))
        reply.bulk("recorded-first-entry-id")
        reply.bulk(stream.firstID.description)
        if !full {
            reply.bulk("groups")
            reply.integer(stream.groups.count)
            reply.bulk("first-entry")
            if let first = stream.entries.first { replyEntry(first, &reply) } else { reply.null() }
            reply.bulk("last-entry")
            if let last = stream.entries.last { replyEntry(last, &reply) } else { reply.null() }
            return
        }
        reply.bulk("entries")
        replyRange(stream, from: .zero, to: .max, count: count, reverse: false, &reply)
        reply.bulk("groups")
        let groups = stream.groupsByName
        reply.arrayHeader(groups.count)
        for (name, group) in groups {
            reply.mapHeader(7)
            reply.bulk("name")
            name.withBytes { reply.bulk($0) }
            reply.bulk("last-delivered-id")
            reply.bulk(group.lastDeliveredID.description)
            reply.bulk("entries-read")
            if group.entriesRead != -1 { reply.integer(Int(group.entriesRead)) } else { reply.null() }
            reply.bulk("lag")
            if let lag = stream.lag(of: group) { reply.integer(Int(lag)) } else { reply.null() }
            reply.bulk("pel-count")
            reply.integer(group.pending.count)
            reply.bulk("pending")
            let shown = count == 0 ? group.pendingIDs.count : Swift.min(count, group.pendingIDs.count)
            reply.arrayHeader(shown)
            for id in group.pendingIDs.ids.prefix(shown) {
                let entry = group.pending[id]!
                reply.arrayHeader(4)
                reply.bulk(id.description)
                entry.consumer.name.withBytes { reply.bulk($0) }
                reply.integer(Int(entry.deliveryTime))
                reply.integer(entry.deliveryCount)
            }
            reply.bulk("consumers")
            let consumers = group.consumersByName
            reply.arrayHeader(consumers.count)
            for consumer in consumers {
                reply.mapHeader(5)
                reply.bulk("name")
                consumer.name.withBytes { reply.bulk($0) }
                reply.bulk("seen-time")
                reply.integer(Int(consumer.seenTime))
                reply.bulk("active-time")
                reply.integer(Int(consumer.activeTime))
                reply.bulk("pel-count")
                reply.integer(consumer.pending.count)
                reply.bulk("pending")
                let shownOwn = count == 0 ? consumer.pending.count : Swift.min(count, consumer.pending.count)
                reply.arrayHeader(shownOwn)
                for id in consumer.pending.ids.prefix(shownOwn) {
                    let entry = group.pending[id]!
                    reply.arrayHeader(3)
                    reply.bulk(id.description)
                    reply.integer(Int(entry.deliveryTime))
                    reply.integer(entry.deliveryCount)
                }
            }
        }
    }

    // MARK: XSETID

    static func setID(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let id = try strictID(context, 2)
        var entriesAdded: Int?
        var maximumDeletedID: StreamID?
        var index = 3
        while index < arguments.count {
            if arguments.matches(index, "entriesadded") && index + 1 < arguments.count {
                guard let value = arguments.integer(index + 1) else { throw .notInteger }
                if value < 0 { throw CommandError("entries_added must be positive") }
                entriesAdded = value
                index += 2
            } else if arguments.matches(index, "maxdeletedid") && index + 1 < arguments.count {
                let deletedID = try strictID(context, index + 1)
                if id < deletedID {
                    throw CommandError("The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
                }
                maximumDeletedID = deletedID
                index += 2
            } else {
                throw .syntax
            }
        }
        try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
            guard let current = value else { throw .noSuchKey }
            guard case .stream(let stream) = current else { throw .wrongType }
            if id < stream.maximumDeletedID {
                throw CommandError("The ID specified in XSETID is smaller than current max_deleted_entry_id")
            }
            if let last = stream.entries.last?.id, id < last {
                throw CommandError("The ID specified in XSETID is smaller than the target stream top item")
            }
            if let entriesAdded, stream.count > entriesAdded {
                throw CommandError("The entries_added specified in XSETID is smaller than the target stream length")
            }
            stream.lastID = id
            if let entriesAdded { stream.entriesAdded = UInt64(entriesAdded) }
            if let maximumDeletedID, maximumDeletedID != .zero { stream.maximumDeletedID = maximumDeletedID }
            modified = true
        }
        context.notify(.stream, "xsetid", argument: 1)
        reply.ok()
    }
}
