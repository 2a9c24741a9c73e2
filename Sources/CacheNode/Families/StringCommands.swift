// The string family (redis t_string.c): GET/SET and their variants share `setGeneric` and `readString`;
// counters share `incrementGeneric`.
import CacheStore
import RESPServer

extension CommandTable {
    static let stringCommands: [CommandSpec] = [
        // GET key
        CommandSpec("get", arity: 2, flags: [.readonly, .fast], keys: .first, group: .string,
                    summary: "Returns the string value of a key.") { context, reply throws(CommandError) in
            try StringFamily.replyString(context.db.value(context.key(1)), context: context, reply: &reply)
        },
        // SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds |
        //   PXAT unix-time-milliseconds | KEEPTTL]
        CommandSpec("set", arity: -3, flags: [.write, .denyOOM], keys: .first, group: .string,
                    summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.") {
            context, reply throws(CommandError) in
            let options = try StringFamily.parseSetOptions(context.arguments, from: 3, now: context.now, command: "set")
            try StringFamily.setGeneric(&context, &reply, key: 1, value: 2, options: options)
        },
        // SETNX key value
        CommandSpec("setnx", arity: 3, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Set the string value of a key only when the key doesn't exist.") { context, reply throws(CommandError) in
            var options = StringFamily.SetOptions()
            options.condition = .ifMissing
            options.replyStyle = .integer
            try StringFamily.setGeneric(&context, &reply, key: 1, value: 2, options: options)
        },
        // SETEX key seconds value
        CommandSpec("setex", arity: 4, flags: [.write, .denyOOM], keys: .first, group: .string,
                    summary: "Sets the string value and expiration time of a key.", since: "2.0.0") { context, reply throws(CommandError) in
            var options = StringFamily.SetOptions()
            options.expiry = .at(try StringFamily.expireTime(context, argument: 2, unitMilliseconds: 1000, relative: true, command: "setex"))
            try StringFamily.setGeneric(&context, &reply, key: 1, value: 3, options: options)
        },
        // PSETEX key milliseconds value
        CommandSpec("psetex", arity: 4, flags: [.write, .denyOOM], keys: .first, group: .string,
                    summary: "Sets the string value and expiration time in milliseconds of a key.", since: "2.6.0") {
            context, reply throws(CommandError) in
            var options = StringFamily.SetOptions()
            options.expiry = .at(try StringFamily.expireTime(context, argument: 2, unitMilliseconds: 1, relative: true, command: "psetex"))
            try StringFamily.setGeneric(&context, &reply, key: 1, value: 3, options: options)
        },
        // GETSET key value
        CommandSpec("getset", arity: 3, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Returns the previous string value of a key after setting it to a new value.") { context, reply throws(CommandError) in
            var options = StringFamily.SetOptions()
            options.returnOld = true
            try StringFamily.setGeneric(&context, &reply, key: 1, value: 2, options: options)
        },
        // GETDEL key
        CommandSpec("getdel", arity: 2, flags: [.write, .fast], keys: .first, group: .string,
                    summary: "Returns the string value of a key after deleting the key.", since: "6.2.0") { context, reply throws(CommandError) in
            let key = context.key(1)
            let db = context.db
            let value = db.peek(key)
            try StringFamily.replyString(value, context: context, reply: &reply)
            if value != nil {
                db.delete(key)
                context.notify(.generic, "del", argument: 1)
            }
        },
        // GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]
        CommandSpec("getex", arity: -2, flags: [.write, .fast], keys: .first, group: .string,
                    summary: "Returns the string value of a key after setting its expiration time.", since: "6.2.0") {
            context, reply throws(CommandError) in
            let arguments = context.arguments
            var expiry: ExpiryUpdate = .keep
            var index = 2
            var seen = false
            while index < arguments.count {
                if arguments.matches(index, "persist") && !seen {
                    expiry = .remove
                    index += 1
                } else if let unit = StringFamily.expiryUnit(arguments, index), index + 1 < arguments.count, !seen {
                    expiry = .at(try StringFamily.expireTime(context, argument: index + 1, unitMilliseconds: unit.milliseconds,
                                                             relative: unit.relative, command: "getex"))
                    index += 2
                } else {
                    throw .syntax
                }
                seen = true
            }
            let key = context.key(1)
            let db = context.db
            let value = db.value(key)
            try StringFamily.replyString(value, context: context, reply: &reply)
            guard value != nil else { return }
            switch expiry {
            case .keep: break
            case .remove:
                if case .expiresAt = db.expiry(key) {
                    db.setExpiry(key, at: nil)
                    context.notify(.generic, "persist", argument: 1)
                }
            case .at(let at):
                db.setExpiry(key, at: at)
                // A time already past deletes the key (not on a replica, which waits for its primary's DEL).
                context.notify(.generic, db.exists(key) ? "expire" : "del", argument: 1)
            }
        },
        // MGET key [key ...]
        CommandSpec("mget", arity: -2, flags: [.readonly, .fast], keys: .range(first: 1, last: -1, step: 1), group: .string,
                    summary: "Atomically returns the string values of one or more keys.") { context, reply throws(CommandError) in
            let db = context.db
            reply.arrayHeader(context.arguments.count - 1)
            for index in 1..<context.arguments.count {
                let value = db.value(context.key(index))
                context.recordLookup(found: value != nil, argument: index)
                if let value, value.type == .string {
                    StringFamily.writeBulk(value, &reply)
                } else {
                    reply.null()
                }
            }
        },
        // MSET key value [key value ...]
        CommandSpec("mset", arity: -3, flags: [.write, .denyOOM], keys: .range(first: 1, last: -1, step: 2), group: .string,
                    summary: "Atomically creates or modifies the string values of one or more keys.", since: "1.0.1") {
            context, reply throws(CommandError) in
            guard context.arguments.count % 2 == 1 else { throw .wrongArity("mset") }
            let db = context.db
            for index in stride(from: 1, to: context.arguments.count, by: 2) {
                db.set(context.key(index), context.arguments.withBytes(index + 1) { StoredValue.string(copying: $0) })
                context.notify(.string, "set", argument: index)
            }
            reply.ok()
        },
        // MSETNX key value [key value ...]
        CommandSpec("msetnx", arity: -3, flags: [.write, .denyOOM], keys: .range(first: 1, last: -1, step: 2), group: .string,
                    summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.",
                    since: "1.0.1") { context, reply throws(CommandError) in
            guard context.arguments.count % 2 == 1 else { throw .wrongArity("msetnx") }
            let db = context.db
            for index in stride(from: 1, to: context.arguments.count, by: 2) where db.exists(context.key(index)) {
                reply.integer(0)
                return
            }
            for index in stride(from: 1, to: context.arguments.count, by: 2) {
                db.set(context.key(index), context.arguments.withBytes(index + 1) { StoredValue.string(copying: $0) })
                context.notify(.string, "set", argument: index)
            }
            reply.integer(1)
        },
        // APPEND key value
        CommandSpec("append", arity: 3, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.", since: "2.0.0") {
            context, reply throws(CommandError) in
            let maximum = context.node.configuration.protoMaxBulkLength
            let length = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                try context.arguments.withBytes(2) { (suffix: UnsafeRawBufferPointer) throws(CommandError) -> Int in
                    guard let current = value else {
                        value = .string(copying: suffix)
                        modified = true
                        return suffix.count
                    }
                    guard let currentLength = current.stringLength else { throw .wrongType }
                    guard currentLength + suffix.count <= maximum else { throw .stringTooLong }
                    if suffix.isEmpty { return currentLength }
                    value = StringFamily.appending(current, suffix)
                    modified = true
                    return currentLength + suffix.count
                }
            }
            // redis notifies even when nothing was appended to an existing string.
            context.notify(.string, "append", argument: 1)
            reply.integer(length)
        },
        // STRLEN key
        CommandSpec("strlen", arity: 2, flags: [.readonly, .fast], keys: .first, group: .string,
                    summary: "Returns the length of a string value.", since: "2.2.0") { context, reply throws(CommandError) in
            guard let value = context.db.value(context.key(1)) else {
                reply.integer(0)
                return
            }
            guard let length = value.stringLength else { throw .wrongType }
            reply.integer(length)
        },
        // INCR key
        CommandSpec("incr", arity: 2, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.") {
            context, reply throws(CommandError) in
            try StringFamily.incrementGeneric(&context, &reply, by: 1)
        },
        // DECR key
        CommandSpec("decr", arity: 2, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.") {
            context, reply throws(CommandError) in
            try StringFamily.incrementGeneric(&context, &reply, by: -1)
        },
        // INCRBY key increment
        CommandSpec("incrby", arity: 3, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.") {
            context, reply throws(CommandError) in
            try StringFamily.incrementGeneric(&context, &reply, by: try context.integer(2))
        },
        // DECRBY key decrement
        CommandSpec("decrby", arity: 3, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.") {
            context, reply throws(CommandError) in
            let decrement = try context.integer(2)
            guard decrement != Int.min else { throw CommandError("decrement would overflow") }
            try StringFamily.incrementGeneric(&context, &reply, by: -decrement)
        },
        // INCRBYFLOAT key increment
        CommandSpec("incrbyfloat", arity: 3, flags: [.write, .denyOOM, .fast], keys: .first, group: .string,
                    summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
                    since: "2.6.0") { context, reply throws(CommandError) in
            // long double arithmetic and %.17Lf output as redis, shared with HINCRBYFLOAT.
            guard let increment = context.arguments.withBytes(2, { RedisLongDouble.parse($0) }) else { throw .notFloat }
            let text = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> CompactBytes in
                var current: RedisLongDouble.Value = 0
                if let existing = value {
                    guard existing.type == .string else { throw .wrongType }
                    guard let parsed = existing.withStringBytes({ RedisLongDouble.parse($0) }) ?? nil else {
                        throw .notFloat
                    }
                    current = parsed
                }
                let result = current + increment
                guard result.isFinite else { throw CommandError("increment would produce NaN or Infinity") }
                let text = RedisLongDouble.humanText(result)
                value = text.withBytes { StoredValue.string(copying: $0) }
                modified = true
                return text
            }
            text.withBytes { reply.bulk($0) }
            context.notify(.string, "incrbyfloat", argument: 1)
            // Replicas store the result rather than redo the float arithmetic (redis: SET key result KEEPTTL).
            let key = context.arguments.bytes(1)
            context.propagate([Array("SET".utf8), key, text.array, Array("KEEPTTL".utf8)])
        },
        // GETRANGE key start end
        CommandSpec("getrange", arity: 4, flags: [.readonly], keys: .first, group: .string,
                    summary: "Returns a substring of the string stored at a key.", since: "2.4.0") { context, reply throws(CommandError) in
            try StringFamily.getRange(&context, &reply)
        },
        // SUBSTR key start end (the old name of GETRANGE)
        CommandSpec("substr", arity: 4, flags: [.readonly], keys: .first, group: .string,
                    summary: "Returns a substring from a string value.") { context, reply throws(CommandError) in
            try StringFamily.getRange(&context, &reply)
        },
        // LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]
        CommandSpec("lcs", arity: -3, flags: [.readonly], keys: .range(first: 1, last: 2, step: 1), group: .string,
                    summary: "Finds the longest common substring.", since: "7.0.0") { context, reply throws(CommandError) in
            try StringFamily.longestCommonSubsequence(context, &reply)
        },
        // SETRANGE key offset value
        CommandSpec("setrange", arity: 4, flags: [.write, .denyOOM], keys: .first, group: .string,
                    summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
                    since: "2.2.0") { context, reply throws(CommandError) in
            let offset = try context.integer(2)
            guard offset >= 0 else { throw CommandError("offset is out of range") }
            let maximum = context.node.configuration.protoMaxBulkLength
            let length = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                try context.arguments.withBytes(3) { (patch: UnsafeRawBufferPointer) throws(CommandError) -> Int in
                    var bytes: [UInt8]
                    if let existing = value {
                        guard let current = existing.withStringBytes({ Array($0) }) else { throw .wrongType }
                        bytes = current
                        if patch.isEmpty { return bytes.count }
                    } else {
                        if patch.isEmpty { return 0 }
                        bytes = []
                    }
                    guard offset <= maximum - patch.count else { throw .stringTooLong }  // (offset + count could overflow)
                    if bytes.count < offset + patch.count {
                        bytes.append(contentsOf: repeatElement(0, count: offset + patch.count - bytes.count))
                    }
                    bytes.withUnsafeMutableBytes { raw in
                        raw.baseAddress!.advanced(by: offset).copyMemory(from: patch.baseAddress!, byteCount: patch.count)
                    }
                    value = bytes.withUnsafeBytes { StoredValue.string(copying: $0) }
                    modified = true
                    return bytes.count
                }
            }
            if context.arguments.withBytes(3, { !$0.isEmpty }) { context.notify(.string, "setrange", argument: 1) }
            reply.integer(length)
        },
    ]
}

/// Shared implementations of the string commands.
enum StringFamily {
    enum Condition { case always, ifMissing, ifExists }
    enum ReplyStyle { case ok, integer }

    struct SetOptions {
        var condition = Condition.always
        var expiry = ExpiryUpdate.remove
        var returnOld = false
        var replyStyle = ReplyStyle.ok
    }

    /// Writes a string value as a bulk reply.
    static func writeBulk(_ value: StoredValue, _ reply: inout ReplyWriter) {
        _ = value.withStringBytes { reply.bulk($0) }
    }

    /// Replies with a string value, null if missing, WRONGTYPE for other types.
    static func replyString(_ value: StoredValue?, context: CommandContext, reply: inout ReplyWriter) throws(CommandError) {
        guard let value else {
            context.recordLookup(found: false, argument: 1)
            reply.null()
            return
        }
        context.recordLookup(found: true, argument: 1)
        guard value.withStringBytes({ reply.bulk($0) }) != nil else { throw .wrongType }
    }

    /// Recognises EX/PX/EXAT/PXAT at `index`.
    static func expiryUnit(_ arguments: CommandArguments, _ index: Int) -> (milliseconds: Int, relative: Bool)? {
        if arguments.matches(index, "ex") { return (1000, true) }
        if arguments.matches(index, "px") { return (1, true) }
        if arguments.matches(index, "exat") { return (1000, false) }
        if arguments.matches(index, "pxat") { return (1, false) }
        return nil
    }

    /// Reads an expire time argument and returns the absolute unix ms, with redis's checks (positive, no overflow).
    static func expireTime(_ context: CommandContext, argument: Int, unitMilliseconds: Int, relative: Bool, command: String)
        throws(CommandError) -> Int64
    {
        let amount = try context.integer(argument)
        guard amount > 0 else { throw .invalidExpire(command) }
        let (milliseconds, overflow) = amount.multipliedReportingOverflow(by: unitMilliseconds)
        guard !overflow else { throw .invalidExpire(command) }
        if !relative { return Int64(milliseconds) }
        let (absolute, overflow2) = Int64(milliseconds).addingReportingOverflow(context.now)
        guard !overflow2 else { throw .invalidExpire(command) }
        return absolute
    }

    /// Parses SET's options from `start`.
    static func parseSetOptions(_ arguments: CommandArguments, from start: Int, now: Int64, command: String) throws(CommandError) -> SetOptions {
        var options = SetOptions()
        var index = start
        var sawExpiry = false
        var sawKeepTTL = false
        while index < arguments.count {
            if arguments.matches(index, "nx") && options.condition != .ifExists {
                options.condition = .ifMissing
            } else if arguments.matches(index, "xx") && options.condition != .ifMissing {
                options.condition = .ifExists
            } else if arguments.matches(index, "get") {
                options.returnOld = true
            } else if arguments.matches(index, "keepttl") && !sawExpiry {
                sawKeepTTL = true
                options.expiry = .keep
            } else if let unit = expiryUnit(arguments, index), !sawExpiry, !sawKeepTTL, index + 1 < arguments.count {
                guard let amount = arguments.integer(index + 1) else { throw .notInteger }
                guard amount > 0 else { throw .invalidExpire(command) }
                let (milliseconds, overflow) = amount.multipliedReportingOverflow(by: unit.milliseconds)
                guard !overflow else { throw .invalidExpire(command) }
                if unit.relative {
                    let (absolute, overflow2) = Int64(milliseconds).addingReportingOverflow(now)
                    guard !overflow2 else { throw .invalidExpire(command) }
                    options.expiry = .at(absolute)
                } else {
                    options.expiry = .at(Int64(milliseconds))
                }
                sawExpiry = true
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        return options
    }

    /// SET and its variants (redis setGenericCommand).
    static func setGeneric(_ context: inout CommandContext, _ reply: inout ReplyWriter, key keyIndex: Int, value valueIndex: Int,
                           options: SetOptions) throws(CommandError) {
        let db = context.db
        let key = context.key(keyIndex)
        // Fast path: plain SET without conditions or GET never needs the old value.
        if options.condition == .always && !options.returnOld {
            db.set(key, context.arguments.withBytes(valueIndex) { StoredValue.string(copying: $0) }, expiry: options.expiry)
            notifySet(context, key: keyIndex, options: options)
            if options.replyStyle == .integer { reply.integer(1) } else { reply.ok() }
            return
        }
        let old = db.peek(key)
        if options.returnOld, let old, old.type != .string { throw .wrongType }
        let allowed: Bool
        switch options.condition {
        case .always: allowed = true
        case .ifMissing: allowed = old == nil
        case .ifExists: allowed = old != nil
        }
        if allowed {
            db.set(key, context.arguments.withBytes(valueIndex) { StoredValue.string(copying: $0) }, expiry: options.expiry)
            notifySet(context, key: keyIndex, options: options)
        }
        if options.returnOld {
            if let old { writeBulk(old, &reply) } else { reply.null() }
        } else if options.replyStyle == .integer {
            reply.integer(allowed ? 1 : 0)
        } else if allowed {
            reply.ok()
        } else {
            reply.null()
        }
    }

    /// The events of a SET that stored its value: `set`, and `expire` when it gave the key a TTL.
    private static func notifySet(_ context: CommandContext, key: Int, options: SetOptions) {
        context.notify(.string, "set", argument: key)
        if case .at = options.expiry { context.notify(.generic, "expire", argument: key) }
    }

    /// INCR/DECR/INCRBY/DECRBY (redis incrDecrCommand).
    static func incrementGeneric(_ context: inout CommandContext, _ reply: inout ReplyWriter, by increment: Int) throws(CommandError) {
        let result = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
            var current = 0
            if let existing = value {
                guard existing.type == .string else { throw .wrongType }
                guard let parsed = existing.withStringBytes({ RESPNumberParsing.parseInteger($0) }) ?? nil else {
                    throw .notInteger
                }
                current = parsed
            }
            let (sum, overflow) = current.addingReportingOverflow(increment)
            guard !overflow else { throw .overflow }
            value = .integerString(sum)
            modified = true
            return sum
        }
        context.notify(.string, "incrby", argument: 1)
        reply.integer(result)
    }

    /// GETRANGE with redis's index rules (negative from the end; clamped; empty when start > end).
    static func getRange(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        var start = try context.integer(2)
        var end = try context.integer(3)
        guard let value = context.db.value(context.key(1)) else {
            reply.bulk("")
            return
        }
        guard value.type == .string else { throw .wrongType }
        _ = value.withStringBytes { bytes in
            let length = bytes.count
            if start < 0 && end < 0 && start > end {
                reply.bulk("")
                return
            }
            if start < 0 { start = length + start }
            if end < 0 { end = length + end }
            if start < 0 { start = 0 }
            if end < 0 { end = 0 }
            if end >= length { end = length - 1 }
            if length == 0 || start > end {
                reply.bulk("")
                return
            }
            reply.bulk(UnsafeRawBufferPointer(rebasing: bytes[start...end]))
        }
    }

    /// LCS (redis lcsCommand): the longest common subsequence of two strings by dynamic programming, as the string,
    /// its length (LEN), or the matching ranges from the end backwards (IDX, optionally only those of at least
    /// MINMATCHLEN, WITHMATCHLEN adding each range's length). Missing keys are empty strings. The table takes
    /// (len1 + 1) × (len2 + 1) × 4 bytes, refused past `proto-max-bulk-len` as redis refuses it.
    static func longestCommonSubsequence(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let db = context.db
        var strings: [[UInt8]] = []
        for index in 1...2 {
            guard let value = db.value(context.key(index)) else {
                strings.append([])
                continue
            }
            guard let bytes = value.withStringBytes({ Array($0) }) else {
                throw CommandError("The specified keys must contain string values")
            }
            strings.append(bytes)
        }
        var getLength = false, getIndexes = false, withMatchLength = false
        var minimumMatch = 0
        var index = 3
        while index < arguments.count {
            if arguments.matches(index, "idx") {
                getIndexes = true
            } else if arguments.matches(index, "len") {
                getLength = true
            } else if arguments.matches(index, "withmatchlen") {
                withMatchLength = true
            } else if arguments.matches(index, "minmatchlen") && index + 1 < arguments.count {
                guard let value = arguments.integer(index + 1) else { throw .notInteger }
                minimumMatch = max(value, 0)
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        if getLength && getIndexes {
            throw CommandError("If you want both the length and indexes, please just use IDX.")
        }
        let a = strings[0], b = strings[1]
        let width = b.count + 1
        let (cells, overflow) = (a.count + 1).multipliedReportingOverflow(by: width)
        guard !overflow, cells <= context.node.configuration.protoMaxBulkLength / 4 else {
            throw CommandError("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        }
        var table = [UInt32](repeating: 0, count: cells)
        if !a.isEmpty && !b.isEmpty {
            for i in 1...a.count {
                for j in 1...b.count {
                    table[i * width + j] = a[i - 1] == b[j - 1]
                        ? table[(i - 1) * width + j - 1] + 1
                        : max(table[(i - 1) * width + j], table[i * width + j - 1])
                }
            }
        }
        let length = Int(table[a.count * width + b.count])
        if getLength {
            reply.integer(length)
            return
        }
        // Walk back from the end, collecting the subsequence and the ranges where both strings match in a row.
        var result = [UInt8](repeating: 0, count: length)
        var ranges: [(a: (Int, Int), b: (Int, Int))] = []
        var remaining = length
        var i = a.count, j = b.count
        var rangeStart: (a: Int, b: Int)?
        var rangeEnd = (a: 0, b: 0)
        while i > 0 && j > 0 {
            var emit = false
            if a[i - 1] == b[j - 1] {
                result[remaining - 1] = a[i - 1]
                if let start = rangeStart {
                    if start.a == i && start.b == j {
                        rangeStart = (i - 1, j - 1)
                    } else {
                        emit = true
                    }
                } else {
                    rangeStart = (i - 1, j - 1)
                    rangeEnd = (i - 1, j - 1)
                }
                if let start = rangeStart, start.a == 0 || start.b == 0 { emit = true }
                remaining -= 1
                i -= 1
                j -= 1
            } else {
                if table[(i - 1) * width + j] > table[i * width + j - 1] { i -= 1 } else { j -= 1 }
                if rangeStart != nil { emit = true }
            }
            if emit, let start = rangeStart {
                let matchLength = rangeEnd.a - start.a + 1
                if minimumMatch == 0 || matchLength >= minimumMatch {
                    ranges.append(((start.a, rangeEnd.a), (start.b, rangeEnd.b)))
                }
                rangeStart = nil
            }
        }
        guard getIndexes else {
            result.withUnsafeBytes { reply.bulk($0) }
            return
        }
        reply.mapHeader(2)
        reply.bulk("matches")
        reply.arrayHeader(ranges.count)
        for range in ranges {
            reply.arrayHeader(withMatchLength ? 3 : 2)
            reply.arrayHeader(2)
            reply.integer(range.a.0)
            reply.integer(range.a.1)
            reply.arrayHeader(2)
            reply.integer(range.b.0)
            reply.integer(range.b.1)
            if withMatchLength { reply.integer(range.a.1 - range.a.0 + 1) }
        }
        reply.bulk("len")
        reply.integer(length)
    }

    /// The value with `suffix` appended, growing the heap block in place when it is uniquely referenced and has room.
    static func appending(_ value: StoredValue, _ suffix: UnsafeRawBufferPointer) -> StoredValue {
        if case .string(var block) = value, isKnownUniquelyReferenced(&block) {
            let grown = block.withMutableBytes { (storage, count) -> Bool in
                guard storage.count - count >= suffix.count else { return false }
                (storage.baseAddress! + count).copyMemory(from: suffix.baseAddress!, byteCount: suffix.count)
                count += suffix.count
                return true
            }
            if grown { return .string(block) }
        }
        // Copy into a block with room to grow (redis sds preallocation: double up to 1 MiB, then +1 MiB).
        return value.withStringBytes { current -> StoredValue in
            let newLength = current.count + suffix.count
            let capacity = newLength < 1024 * 1024 ? newLength * 2 : newLength + 1024 * 1024
            let block = HeapBytes.make(copying: current, capacity: capacity)
            block.withMutableBytes { storage, count in
                (storage.baseAddress! + count).copyMemory(from: suffix.baseAddress!, byteCount: suffix.count)
                count += suffix.count
            }
            return newLength <= StoredValue.shortStringCapacity ? block.withBytes { .string(copying: $0) } : .string(block)
        }!
    }
}
