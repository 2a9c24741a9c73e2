// The hash family (redis t_hash.c): field/value maps stored in a `HashValue`. Writers share `HashFamily.setFields`
// and `hashForWriting`; readers share `readHash` (hit/miss accounting and WRONGTYPE); HKEYS/HVALS/HGETALL share
// `replyAll`; HRANDFIELD follows redis 7.2's reply shapes (flat array in RESP2, array of pairs in RESP3).
import CacheStore
import RESPServer

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

extension CommandTable {
    static let hashCommands: [CommandSpec] = [
        // HSET key field value [field value ...]
        CommandSpec("hset", arity: -4, flags: [.write, .denyOOM, .fast], keys: .first, group: .hash,
                    summary: "Creates or modifies the value of a field in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            reply.integer(try HashFamily.setFields(&context, command: "hset"))
        },
        // HMSET key field value [field value ...] (deprecated alias of HSET replying OK)
        CommandSpec("hmset", arity: -4, flags: [.write, .denyOOM, .fast], keys: .first, group: .hash,
                    summary: "Sets the values of multiple fields.", since: "2.0.0") { context, reply throws(CommandError) in
            _ = try HashFamily.setFields(&context, command: "hmset")
            reply.ok()
        },
        // HSETNX key field value
        CommandSpec("hsetnx", arity: 4, flags: [.write, .denyOOM, .fast], keys: .first, group: .hash,
                    summary: "Sets the value of a field in a hash only when the field doesn't exist.", since: "2.0.0") {
            context, reply throws(CommandError) in
            let arguments = context.arguments
            let added = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Bool in
                let hash = try HashFamily.hashForWriting(&value)
                let field = arguments.withBytes(2) { CompactBytes($0) }
                if hash.value(forField: field) != nil { return false }
                hash.set(field: field, value: arguments.withBytes(3) { CompactBytes($0) })
                modified = true
                return true
            }
            if added { context.notify(.hash, "hset", argument: 1) }
            reply.integer(added ? 1 : 0)
        },
        // HGET key field
        CommandSpec("hget", arity: 3, flags: [.readonly, .fast], keys: .first, group: .hash,
                    summary: "Returns the value of a field in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            guard let hash = try HashFamily.readHash(context) else {
                reply.null()
                return
            }
            let found = context.arguments.withBytes(2) { hash.value(forField: CompactBytes($0)) }
            if let found { found.withBytes { reply.bulk($0) } } else { reply.null() }
        },
        // HMGET key field [field ...]
        CommandSpec("hmget", arity: -3, flags: [.readonly, .fast], keys: .first, group: .hash,
                    summary: "Returns the values of all fields in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            let hash = try HashFamily.readHash(context)
            let arguments = context.arguments
            reply.arrayHeader(arguments.count - 2)
            for index in 2..<arguments.count {
                if let hash, let found = arguments.withBytes(index, { hash.value(forField: CompactBytes($0)) }) {
                    found.withBytes { reply.bulk($0) }
                } else {
                    reply.null()
                }
            }
        },
        // HDEL key field [field ...]
        CommandSpec("hdel", arity: -3, flags: [.write, .fast], keys: .first, group: .hash,
                    summary: "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
                    since: "2.0.0") { context, reply throws(CommandError) in
            let arguments = context.arguments
            var emptied = false
            let deleted = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                guard let current = value else { return 0 }
                guard case .hash(let hash) = current else { throw .wrongType }
                var deleted = 0
                for index in 2..<arguments.count where arguments.withBytes(index, { hash.remove(field: CompactBytes($0)) }) {
                    deleted += 1
                    if hash.count == 0 {
                        value = nil
                        emptied = true
                        break
                    }
                }
                if deleted > 0 { modified = true }
                return deleted
            }
            if deleted > 0 { context.notify(.hash, "hdel", argument: 1) }
            if emptied { context.notify(.generic, "del", argument: 1) }
            reply.integer(deleted)
        },
        // HLEN key
        CommandSpec("hlen", arity: 2, flags: [.readonly, .fast], keys: .first, group: .hash,
                    summary: "Returns the number of fields in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            reply.integer(try HashFamily.readHash(context)?.count ?? 0)
        },
        // HSTRLEN key field
        CommandSpec("hstrlen", arity: 3, flags: [.readonly, .fast], keys: .first, group: .hash,
                    summary: "Returns the length of the value of a field.", since: "3.2.0") { context, reply throws(CommandError) in
            let hash = try HashFamily.readHash(context)
            let length = hash.flatMap { hash in context.arguments.withBytes(2) { hash.value(forField: CompactBytes($0))?.count } }
            reply.integer(length ?? 0)
        },
        // HEXISTS key field
        CommandSpec("hexists", arity: 3, flags: [.readonly, .fast], keys: .first, group: .hash,
                    summary: "Determines whether a field exists in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            let hash = try HashFamily.readHash(context)
            let exists = hash.map { hash in context.arguments.withBytes(2) { hash.value(forField: CompactBytes($0)) != nil } } ?? false
            reply.integer(exists ? 1 : 0)
        },
        // HINCRBY key field increment
        CommandSpec("hincrby", arity: 4, flags: [.write, .denyOOM, .fast], keys: .first, group: .hash,
                    summary: "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
                    since: "2.0.0") { context, reply throws(CommandError) in
            let increment = try context.integer(3)
            let arguments = context.arguments
            let result = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                let hash = try HashFamily.hashForWriting(&value)
                let field = arguments.withBytes(2) { CompactBytes($0) }
                var current = 0
                if let existing = hash.value(forField: field) {
                    guard let parsed = existing.withBytes({ RESPNumberParsing.parseInteger($0) }) else {
                        throw HashFamily.notAnInteger
                    }
                    current = parsed
                }
                let (sum, overflow) = current.addingReportingOverflow(increment)
                guard !overflow else { throw .overflow }
                hash.set(field: field, value: .decimal(sum))
                modified = true
                return sum
            }
            context.notify(.hash, "hincrby", argument: 1)
            reply.integer(result)
        },
        // HINCRBYFLOAT key field increment
        CommandSpec("hincrbyfloat", arity: 4, flags: [.write, .denyOOM, .fast], keys: .first, group: .hash,
                    summary: "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
                    since: "2.6.0") { context, reply throws(CommandError) in
            guard let increment = context.arguments.withBytes(3, { RedisLongDouble.parse($0) }) else { throw .notFloat }
            guard increment.isFinite else { throw CommandError("value is NaN or Infinity") }
            let arguments = context.arguments
            let text = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> CompactBytes in
                let hash = try HashFamily.hashForWriting(&value)
                let field = arguments.withBytes(2) { CompactBytes($0) }
                var current: RedisLongDouble.Value = 0
                if let existing = hash.value(forField: field) {
                    guard let parsed = existing.withBytes({ RedisLongDouble.parse($0) }) else {
                        throw CommandError("hash value is not a float")
                    }
                    current = parsed
                }
                let result = current + increment
                guard result.isFinite else { throw CommandError("increment would produce NaN or Infinity") }
                let text = RedisLongDouble.humanText(result)
                hash.set(field: field, value: text)
                modified = true
                return text
            }
            text.withBytes { reply.bulk($0) }
            context.notify(.hash, "hincrbyfloat", argument: 1)
            context.propagate([Array("HSET".utf8), arguments.bytes(1), arguments.bytes(2), text.array])
        },
        // HKEYS key
        CommandSpec("hkeys", arity: 2, flags: [.readonly], keys: .first, group: .hash,
                    summary: "Returns all fields in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            try HashFamily.replyAll(context, &reply, fields: true, values: false)
        },
        // HVALS key
        CommandSpec("hvals", arity: 2, flags: [.readonly], keys: .first, group: .hash,
                    summary: "Returns all values in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            try HashFamily.replyAll(context, &reply, fields: false, values: true)
        },
        // HGETALL key
        CommandSpec("hgetall", arity: 2, flags: [.readonly], keys: .first, group: .hash,
                    summary: "Returns all fields and values in a hash.", since: "2.0.0") { context, reply throws(CommandError) in
            try HashFamily.replyAll(context, &reply, fields: true, values: true)
        },
        // HRANDFIELD key [count [WITHVALUES]]
        CommandSpec("hrandfield", arity: -2, flags: [.readonly], keys: .first, group: .hash,
                    summary: "Returns one or more random fields from a hash.", since: "6.2.0") { context, reply throws(CommandError) in
            try HashFamily.randomFields(context, &reply)
        },
        // HSCAN key cursor [MATCH pattern] [COUNT count]
        CommandSpec("hscan", arity: -3, flags: [.readonly], keys: .first, group: .hash,
                    summary: "Iterates over fields and values of a hash.", since: "2.8.0") { context, reply throws(CommandError) in
            let scan = try ScanOptions.parse(context.arguments, cursorIndex: 2, allowType: false)
            var found: [(CompactBytes, CompactBytes)] = []
            var next: UInt64 = 0
            if let hash = try HashFamily.readHash(context) {
                next = hash.scan(cursor: scan.cursor, count: scan.count) { field, value in
                    if scan.matches(field) { found.append((field, value)) }
                }
            }
            reply.arrayHeader(2)
            reply.bulk(String(next))
            reply.arrayHeader(found.count * 2)
            for (field, value) in found {
                field.withBytes { reply.bulk($0) }
                value.withBytes { reply.bulk($0) }
            }
        },
    ]
}

/// Shared implementations of the hash commands.
enum HashFamily {
    static let notAnInteger = CommandError("hash value is not an integer")

    /// The hash in `value`, created (and stored into `value`) when the key is missing; WRONGTYPE for other types.
    @inline(__always)
    static func hashForWriting(_ value: inout StoredValue?) throws(CommandError) -> HashValue {
        switch value {
        case nil:
            let hash = HashValue()
            value = .hash(hash)
            return hash
        case .hash(let hash)?:
            return hash
        default:
            throw .wrongType
        }
    }

    /// Reads the hash at argument 1 (counting a keyspace hit or miss): `nil` if missing, WRONGTYPE for other types.
    @inline(__always)
    static func readHash(_ context: CommandContext) throws(CommandError) -> HashValue? {
        let value = context.db.value(context.key(1))
        context.recordLookup(found: value != nil, argument: 1)
        switch value {
        case nil: return nil
        case .hash(let hash)?: return hash
        default: throw .wrongType
        }
    }

    /// HSET/HMSET: stores every field/value pair from argument 2 on; returns the number of new fields.
    static func setFields(_ context: inout CommandContext, command: String) throws(CommandError) -> Int {
        let arguments = context.arguments
        guard arguments.count % 2 == 0 else { throw .wrongArity(command) }
        let added = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
            let hash = try hashForWriting(&value)
            var added = 0
            var index = 2
            while index < arguments.count {
                let field = arguments.withBytes(index) { CompactBytes($0) }
                let fieldValue = arguments.withBytes(index + 1) { CompactBytes($0) }
                if hash.set(field: field, value: fieldValue) { added += 1 }
                index += 2
            }
            modified = true
            return added
        }
        context.notify(.hash, "hset", argument: 1)
        return added
    }

    /// HKEYS/HVALS (arrays) and HGETALL (a map: RESP3 `%`, RESP2 a flat array).
    static func replyAll(_ context: CommandContext, _ reply: inout ReplyWriter, fields: Bool, values: Bool) throws(CommandError) {
        let hash = try readHash(context)
        let count = hash?.count ?? 0
        if fields && values { reply.mapHeader(count) } else { reply.arrayHeader(count) }
        guard let hash else { return }
        for (field, value) in hash.fields {
            if fields { field.withBytes { reply.bulk($0) } }
            if values { value.withBytes { reply.bulk($0) } }
        }
    }

    /// HRANDFIELD key [count [WITHVALUES]] (redis 7.2 hrandfieldCommand / hrandfieldWithCountCommand): one random
    /// field as a bulk string; with a count, distinct fields (positive) or independent draws (negative), values
    /// interleaved in RESP2 and paired in RESP3.
    static func randomFields(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let key = context.key(1)
        guard arguments.count >= 3 else {
            guard let hash = try readHash(context) else {
                reply.null()
                return
            }
            let position = context.db.withRandomGenerator(for: key) { Int.random(in: 0..<hash.count, using: &$0) }
            hash.entry(at: position).key.withBytes { reply.bulk($0) }
            return
        }
        let requested = try SetFamily.rangedCount(arguments, 2)
        if arguments.count > 4 || (arguments.count == 4 && !arguments.matches(3, "withvalues")) { throw .syntax }
        let withValues = arguments.count == 4
        if withValues && (requested < -(Int.max / 2) || requested > Int.max / 2) {
            throw CommandError("value is out of range")
        }
        guard let hash = try readHash(context), requested != 0 else {
            reply.arrayHeader(0)
            return
        }
        let nested = withValues && reply.protocolVersion == .v3
        func write(_ position: Int, _ reply: inout ReplyWriter) {
            let (field, value) = hash.entry(at: position)
            if nested { reply.arrayHeader(2) }
            field.withBytes { reply.bulk($0) }
            if withValues { value.withBytes { reply.bulk($0) } }
        }
        let size = hash.count
        let replyCount = requested < 0 ? -requested : min(requested, size)
        reply.arrayHeader(withValues && !nested ? replyCount * 2 : replyCount)
        if requested >= size {
            for position in 0..<size { write(position, &reply) }
            return
        }
        context.db.withRandomGenerator(for: key) { random in
            if requested < 0 {
                for _ in 0..<replyCount { write(Int.random(in: 0..<size, using: &random), &reply) }
            } else {
                for position in CollectionSampling.distinctPositions(count: replyCount, size: size, using: &random) {
                    write(position, &reply)
                }
            }
        }
    }
}

/// redis's `long double` arithmetic for HINCRBYFLOAT (and INCRBYFLOAT): `string2ld` parsing (strtold, no leading
/// space, no trailing bytes, no NaN, no overflow) and `ld2string(LD_STR_HUMAN)` output (`%.17Lf` with trailing
/// zeros removed), so `0.1 + 0.2` reads back as `0.3` and results match redis digit for digit. On x86-64 this is
/// the 80-bit x87 type redis uses; elsewhere `long double` is (at best) a `Double`.
enum RedisLongDouble {
    #if arch(x86_64) && !os(Windows)
    typealias Value = Float80
    #else
    typealias Value = Double
    #endif

    /// The longest text accepted or produced (redis `MAX_LONG_DOUBLE_CHARS`).
    static let maximumLength = 5 * 1024

    /// Parses `bytes` as redis's `string2ld` does; `nil` if they are not a valid number.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Value? {
        guard bytes.count > 0, bytes.count < maximumLength else { return nil }
        let first = bytes[0]
        if first == 0x20 || (first >= 0x09 && first <= 0x0D) { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { buffer -> Value? in
            let base = buffer.baseAddress!
            UnsafeMutableRawPointer(base).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            base[bytes.count] = 0
            errno = 0
            var end: UnsafeMutablePointer<CChar>?
            #if arch(x86_64) && !os(Windows)
            let value = strtold(base, &end)
            #else
            let value = strtod(base, &end)
            #endif
            guard let end, end == base + bytes.count else { return nil }
            if errno == ERANGE && (value.isInfinite || value == 0) { return nil }
            if value.isNaN { return nil }
            return value
        }
    }

    /// Formats `value` (finite) as redis's `ld2string(..., LD_STR_HUMAN)`.
    static func humanText(_ value: Value) -> CompactBytes {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: maximumLength) { buffer -> CompactBytes in
            #if arch(x86_64) && !os(Windows)
            let format = "%.17Lf"
            #else
            let format = "%.17f"
            #endif
            var length = Int(withVaList([value]) { vsnprintf(buffer.baseAddress!, maximumLength, format, $0) })
            length = min(max(length, 0), maximumLength - 1)
            let bytes = UnsafeMutableRawBufferPointer(buffer)
            if bytes[0..<length].contains(UInt8(ascii: ".")) {
                while length > 0 && bytes[length - 1] == UInt8(ascii: "0") { length -= 1 }
                if length > 0 && bytes[length - 1] == UInt8(ascii: ".") { length -= 1 }
            }
            if length == 2 && bytes[0] == UInt8(ascii: "-") && bytes[1] == UInt8(ascii: "0") {
                bytes[0] = UInt8(ascii: "0")
                length = 1
            }
            return CompactBytes(UnsafeRawBufferPointer(rebasing: bytes[0..<length]))
        }
    }
}
