// The list family (redis t_list.c): pushes, pops (with COUNT), ranges, positional access, LPOS, moves between
// lists, LMPOP, and the blocking forms BLPOP/BRPOP/BLMOVE/BRPOPLPUSH/BLMPOP. Pushes share `ListFamily.push`, pops
// `popFirstNonEmpty`, moves `move`; the blocking commands run the same code and, when nothing is there, park the
// client in the node's BlockingRegistry, which executes them again when a key they wait on gets a list.
// Empty lists are deleted, as redis does; every push signals the key so blocked clients get a chance.
import CacheStore
import RESPServer

extension CommandTable {
    static let listCommands: [CommandSpec] = [
        // LPUSH key element [element ...]
        CommandSpec("lpush", arity: -3, flags: [.write, .denyOOM, .fast], keys: .first, group: .list,
                    summary: "Prepends one or more elements to a list. Creates the key if it doesn't exist.") {
            context, reply throws(CommandError) in
            try ListFamily.push(&context, &reply, at: .head, onlyIfExists: false)
        },
        // RPUSH key element [element ...]
        CommandSpec("rpush", arity: -3, flags: [.write, .denyOOM, .fast], keys: .first, group: .list,
                    summary: "Appends one or more elements to a list. Creates the key if it doesn't exist.") {
            context, reply throws(CommandError) in
            try ListFamily.push(&context, &reply, at: .tail, onlyIfExists: false)
        },
        // LPUSHX key element [element ...]
        CommandSpec("lpushx", arity: -3, flags: [.write, .denyOOM, .fast], keys: .first, group: .list,
                    summary: "Prepends one or more elements to a list only when the list exists.", since: "2.2.0") {
            context, reply throws(CommandError) in
            try ListFamily.push(&context, &reply, at: .head, onlyIfExists: true)
        },
        // RPUSHX key element [element ...]
        CommandSpec("rpushx", arity: -3, flags: [.write, .denyOOM, .fast], keys: .first, group: .list,
                    summary: "Appends an element to a list only when the list exists.", since: "2.2.0") {
            context, reply throws(CommandError) in
            try ListFamily.push(&context, &reply, at: .tail, onlyIfExists: true)
        },
        // LPOP key [count]
        CommandSpec("lpop", arity: -2, flags: [.write, .fast], keys: .first, group: .list,
                    summary: "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.") {
            context, reply throws(CommandError) in
            try ListFamily.pop(&context, &reply, from: .head)
        },
        // RPOP key [count]
        CommandSpec("rpop", arity: -2, flags: [.write, .fast], keys: .first, group: .list,
                    summary: "Returns and removes the last elements of a list. Deletes the list if the last element was popped.") {
            context, reply throws(CommandError) in
            try ListFamily.pop(&context, &reply, from: .tail)
        },
        // LLEN key
        CommandSpec("llen", arity: 2, flags: [.readonly, .fast], keys: .first, group: .list,
                    summary: "Returns the length of a list.") { context, reply throws(CommandError) in
            let list = try ListFamily.read(context, key: 1)
            reply.integer(list?.count ?? 0)
        },
        // LRANGE key start stop
        CommandSpec("lrange", arity: 4, flags: [.readonly], keys: .first, group: .list,
                    summary: "Returns a range of elements from a list.") { context, reply throws(CommandError) in
            let start = try context.integer(2)
            let stop = try context.integer(3)
            guard let list = try ListFamily.read(context, key: 1), let range = list.range(start: start, stop: stop) else {
                reply.arrayHeader(0)
                return
            }
            reply.arrayHeader(range.count)
            for position in range { ListFamily.writeMember(list.element(at: position), &reply) }
        },
        // LINDEX key index
        CommandSpec("lindex", arity: 3, flags: [.readonly], keys: .first, group: .list,
                    summary: "Returns an element from a list by its index.") { context, reply throws(CommandError) in
            guard let list = try ListFamily.read(context, key: 1) else {
                reply.null()
                return
            }
            let index = try context.integer(2)
            if let position = list.position(ofIndex: index) {
                ListFamily.writeMember(list.element(at: position), &reply)
            } else {
                reply.null()
            }
        },
        // LSET key index element
        CommandSpec("lset", arity: 4, flags: [.write, .denyOOM], keys: .first, group: .list,
                    summary: "Sets the value of an element in a list by its index.") { context, reply throws(CommandError) in
            let arguments = context.arguments
            try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
                guard let stored = value else { throw .noSuchKey }
                guard case .list(let list) = stored else { throw .wrongType }
                guard let index = arguments.integer(2) else { throw .notInteger }
                guard let position = list.position(ofIndex: index) else { throw .indexOutOfRange }
                list.replace(at: position, with: arguments.withBytes(3) { CompactBytes($0) })
                modified = true
            }
            context.notify(.list, "lset", argument: 1)
            reply.ok()
        },
        // LINSERT key <BEFORE | AFTER> pivot element
        CommandSpec("linsert", arity: 5, flags: [.write, .denyOOM], keys: .first, group: .list,
                    summary: "Inserts an element before or after another element in a list.", since: "2.2.0") {
            context, reply throws(CommandError) in
            let arguments = context.arguments
            let after: Bool
            if arguments.matches(2, "after") {
                after = true
            } else if arguments.matches(2, "before") {
                after = false
            } else {
                throw .syntax
            }
            let length = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                guard let stored = value else { return 0 }
                guard case .list(let list) = stored else { throw .wrongType }
                let pivot = arguments.withBytes(3) { CompactBytes($0) }
                guard list.insert(arguments.withBytes(4) { CompactBytes($0) }, after: after, pivot: pivot) else { return -1 }
                modified = true
                return list.count
            }
            if length > 0 { context.notify(.list, "linsert", argument: 1) }
            reply.integer(length)
        },
        // LREM key count element
        CommandSpec("lrem", arity: 4, flags: [.write], keys: .first, group: .list,
                    summary: "Removes elements from a list. Deletes the list if the last element was removed.") {
            context, reply throws(CommandError) in
            let limit = try context.integer(2)
            let arguments = context.arguments
            var emptied = false
            let removed = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                guard let stored = value else { return 0 }
                guard case .list(let list) = stored else { throw .wrongType }
                let member = arguments.withBytes(3) { CompactBytes($0) }
                let removed = list.remove(member, limit: limit == Int.min ? Int.max : abs(limit), fromTail: limit < 0)
                if removed > 0 { modified = true }
                if list.count == 0 {
                    value = nil
                    emptied = true
                }
                return removed
            }
            if removed > 0 { context.notify(.list, "lrem", argument: 1) }
            if emptied { context.notify(.generic, "del", argument: 1) }
            reply.integer(removed)
        },
        // LTRIM key start stop
        CommandSpec("ltrim", arity: 4, flags: [.write], keys: .first, group: .list,
                    summary: "Removes elements from both ends a list. Deletes the list if all elements were trimmed.") {
            context, reply throws(CommandError) in
            let start = try context.integer(2)
            let stop = try context.integer(3)
            var trimmed = false, emptied = false
            try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
                guard let stored = value else { return }
                guard case .list(let list) = stored else { throw .wrongType }
                let length = list.count
                if let range = list.range(start: start, stop: stop) {
                    list.trim(head: range.lowerBound, tail: length - range.upperBound)
                } else {
                    list.trim(head: length, tail: 0)
                }
                modified = true
                trimmed = true
                if list.count == 0 {
                    value = nil
                    emptied = true
                }
            }
            if trimmed { context.notify(.list, "ltrim", argument: 1) }
            if emptied { context.notify(.generic, "del", argument: 1) }
            reply.ok()
        },
        // LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
        CommandSpec("lpos", arity: -3, flags: [.readonly], keys: .first, group: .list,
                    summary: "Returns the index of matching elements in a list.", since: "6.0.6") {
            context, reply throws(CommandError) in
            try ListFamily.position(&context, &reply)
        },
        // LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>
        CommandSpec("lmove", arity: 5, flags: [.write, .denyOOM], keys: .range(first: 1, last: 2, step: 1), group: .list,
                    summary: "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
                    since: "6.2.0") { context, reply throws(CommandError) in
            let from = try ListFamily.end(context.arguments, 3)
            let to = try ListFamily.end(context.arguments, 4)
            try ListFamily.move(&context, &reply, from: from, to: to)
        },
        // RPOPLPUSH source destination
        CommandSpec("rpoplpush", arity: 3, flags: [.write, .denyOOM], keys: .range(first: 1, last: 2, step: 1), group: .list,
                    summary: "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
                    since: "1.2.0") { context, reply throws(CommandError) in
            try ListFamily.move(&context, &reply, from: .tail, to: .head)
        },
        // LMPOP numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
        CommandSpec("lmpop", arity: -4, flags: [.write], keys: ListFamily.countedKeys(countIndex: 1), group: .list,
                    summary: "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
                    since: "7.0.0") { context, reply throws(CommandError) in
            let request = try ListFamily.parseMultiPop(context.arguments, numkeysIndex: 1)
            if try !ListFamily.popFirstNonEmpty(&context, &reply, keys: request.keys, from: request.end, count: request.count) {
                reply.nullArray()
            }
        },
        // BLPOP key [key ...] timeout
        CommandSpec("blpop", arity: -3, flags: [.write, .blocking], keys: .range(first: 1, last: -2, step: 1), group: .list,
                    summary: "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
                    since: "2.0.0") { context, reply throws(CommandError) in
            let last = context.arguments.count - 1
            let deadline = try BlockingTimeout.deadline(context, argument: last)
            try ListFamily.blockingPop(&context, &reply, keys: 1..<last, from: .head, count: nil, deadline: deadline)
        },
        // BRPOP key [key ...] timeout
        CommandSpec("brpop", arity: -3, flags: [.write, .blocking], keys: .range(first: 1, last: -2, step: 1), group: .list,
                    summary: "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
                    since: "2.0.0") { context, reply throws(CommandError) in
            let last = context.arguments.count - 1
            let deadline = try BlockingTimeout.deadline(context, argument: last)
            try ListFamily.blockingPop(&context, &reply, keys: 1..<last, from: .tail, count: nil, deadline: deadline)
        },
        // BLMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout
        CommandSpec("blmove", arity: 6, flags: [.write, .denyOOM, .blocking], keys: .range(first: 1, last: 2, step: 1), group: .list,
                    summary: "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
                    since: "6.2.0") { context, reply throws(CommandError) in
            let from = try ListFamily.end(context.arguments, 3)
            let to = try ListFamily.end(context.arguments, 4)
            let deadline = try BlockingTimeout.deadline(context, argument: 5)
            try ListFamily.blockingMove(&context, &reply, from: from, to: to, deadline: deadline)
        },
        // BRPOPLPUSH source destination timeout
        CommandSpec("brpoplpush", arity: 4, flags: [.write, .denyOOM, .blocking], keys: .range(first: 1, last: 2, step: 1), group: .list,
                    summary: "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
                    since: "2.2.0") { context, reply throws(CommandError) in
            let deadline = try BlockingTimeout.deadline(context, argument: 3)
            try ListFamily.blockingMove(&context, &reply, from: .tail, to: .head, deadline: deadline)
        },
        // BLMPOP timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
        CommandSpec("blmpop", arity: -5, flags: [.write, .blocking], keys: ListFamily.countedKeys(countIndex: 2), group: .list,
                    summary: "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
                    since: "7.0.0") { context, reply throws(CommandError) in
            // redis checks numkeys, the direction and COUNT before the timeout.
            let request = try ListFamily.parseMultiPop(context.arguments, numkeysIndex: 2)
            let deadline = try BlockingTimeout.deadline(context, argument: 1)
            try ListFamily.blockingPop(&context, &reply, keys: request.keys, from: request.end, count: request.count, deadline: deadline)
        },
    ]
}

/// Shared implementations of the list commands.
enum ListFamily {
    /// A parsed LMPOP/BLMPOP request.
    struct MultiPop {
        /// The argument positions of the keys.
        var keys: Range<Int>
        var end: ListEnd
        var count: Int
    }

    static let notPositive = CommandError("value is out of range, must be positive")

    /// Writes a member as a bulk string.
    @inline(__always)
    static func writeMember(_ member: CompactBytes, _ reply: inout ReplyWriter) {
        member.withBytes { reply.bulk($0) }
    }

    /// The list at argument `key` for a read (counts a hit or miss), `nil` if missing, WRONGTYPE for other types.
    static func read(_ context: CommandContext, key: Int) throws(CommandError) -> ListValue? {
        guard let value = context.db.value(context.key(key)) else {
            context.recordLookup(found: false, argument: key)
            return nil
        }
        context.recordLookup(found: true, argument: key)
        guard case .list(let list) = value else { throw .wrongType }
        return list
    }

    /// `LEFT` or `RIGHT` at `index` (redis getListPositionFromObjectOrReply).
    static func end(_ arguments: CommandArguments, _ index: Int) throws(CommandError) -> ListEnd {
        if arguments.matches(index, "left") { return .head }
        if arguments.matches(index, "right") { return .tail }
        throw .syntax
    }

    /// An integer in `minimum...maximum` (redis getRangeLongFromObjectOrReply): `message` for both a non-number
    /// and a value out of range when given, else redis's default texts.
    static func integer(_ arguments: CommandArguments, _ index: Int, in bounds: ClosedRange<Int>, message: String?)
        throws(CommandError) -> Int
    {
        guard let value = arguments.integer(index) else { throw message.map { CommandError($0) } ?? .notInteger }
        guard bounds.contains(value) else {
            throw CommandError(message ?? "value is out of range, value must between \(bounds.lowerBound) and \(bounds.upperBound)")
        }
        return value
    }

    /// Key positions for `numkeys key…` at `countIndex`, safe for any numkeys (the handler reports bad ones).
    static func countedKeys(countIndex: Int) -> KeySpec {
        .custom { arguments in
            guard countIndex < arguments.count, let count = arguments.integer(countIndex), count > 0 else { return [] }
            let available = arguments.count - countIndex - 1
            return Array((countIndex + 1)..<(countIndex + 1 + min(count, available)))
        }
    }

    // MARK: pushes and pops

    /// LPUSH/RPUSH/LPUSHX/RPUSHX (redis pushGenericCommand).
    static func push(_ context: inout CommandContext, _ reply: inout ReplyWriter, at end: ListEnd, onlyIfExists: Bool)
        throws(CommandError)
    {
        let arguments = context.arguments
        let key = context.key(1)
        let length = try context.db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
            let list: ListValue
            switch value {
            case .list(let existing)?:
                list = existing
            case nil:
                if onlyIfExists { return 0 }
                list = ListValue()
                value = .list(list)
            default:
                throw .wrongType
            }
            for index in 2..<arguments.count {
                list.push(arguments.withBytes(index) { CompactBytes($0) }, at: end)
            }
            modified = true
            return list.count
        }
        if length > 0 {
            context.notify(.list, end == .head ? "lpush" : "rpush", argument: 1)
            context.signalReady(key)
        }
        reply.integer(length)
    }

    /// LPOP/RPOP with the optional count (redis popGenericCommand): a bulk string without count, an array with
    /// it; a missing key is the null bulk without count and the null array with it.
    static func pop(_ context: inout CommandContext, _ reply: inout ReplyWriter, from end: ListEnd) throws(CommandError) {
        let arguments = context.arguments
        guard arguments.count <= 3 else { throw .wrongArity(context.spec.name) }
        let hasCount = arguments.count == 3
        let count = hasCount ? try integer(arguments, 2, in: 0...Int.max, message: notPositive.message) : 1
        var popped = false, emptied = false
        try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
            guard let stored = value else {
                if hasCount { reply.nullArray() } else { reply.null() }
                return
            }
            guard case .list(let list) = stored else { throw .wrongType }
            if !hasCount {
                writeMember(list.pop(from: end)!, &reply)
            } else {
                let taken = min(count, list.count)
                reply.arrayHeader(taken)
                if taken == 0 { return }
                for _ in 0..<taken { writeMember(list.pop(from: end)!, &reply) }
            }
            modified = true
            popped = true
            if list.count == 0 {
                value = nil
                emptied = true
            }
        }
        if popped { notifyPopped(context, argument: 1, from: end, emptied: emptied) }
    }

    /// The events of elements popped from the list at argument `index` (redis listElementsRemoved).
    static func notifyPopped(_ context: CommandContext, argument index: Int, from end: ListEnd, emptied: Bool) {
        context.notify(.list, end == .head ? "lpop" : "rpop", argument: index)
        if emptied { context.notify(.generic, "del", argument: index) }
    }

    /// Pops from the first of `keys` holding a non-empty list (redis mpopGenericCommand / the serving part of
    /// blockingPopGenericCommand). With `count` nil the reply is `[key, element]` (BLPOP); with a count it is
    /// `[key, [elements…]]` (LMPOP). Returns `false`, writing nothing, when every key is missing.
    static func popFirstNonEmpty(_ context: inout CommandContext, _ reply: inout ReplyWriter, keys: Range<Int>,
                                 from end: ListEnd, count: Int?) throws(CommandError) -> Bool
    {
        let db = context.db
        for index in keys {
            let key = context.key(index)
            guard let value = db.value(key) else { continue }
            guard case .list(let list) = value, list.count > 0 else {
                if value.type == .list { continue }
                throw .wrongType
            }
            reply.arrayHeader(2)
            writeMember(key.bytes, &reply)
            var emptied = false
            try db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
                if let count {
                    let taken = min(count, list.count)
                    reply.arrayHeader(taken)
                    for _ in 0..<taken { writeMember(list.pop(from: end)!, &reply) }
                } else {
                    writeMember(list.pop(from: end)!, &reply)
                }
                modified = true
                if list.count == 0 {
                    value = nil
                    emptied = true
                }
            }
            notifyPopped(context, argument: index, from: end, emptied: emptied)
            if context.spec.flags.contains(.blocking) {
                // Replicas get the non-blocking pop of the key that was served (redis rewrites BLPOP as LPOP).
                let name = Array((end == .head ? "LPOP" : "RPOP").utf8)
                context.propagate(count.map { [name, key.bytes.array, Array(String($0).utf8)] } ?? [name, key.bytes.array])
            }
            return true
        }
        return false
    }

    /// BLPOP/BRPOP/BLMPOP: pop now, or reply nil inside EXEC, or block on all the keys.
    static func blockingPop(_ context: inout CommandContext, _ reply: inout ReplyWriter, keys: Range<Int>,
                            from end: ListEnd, count: Int?, deadline: Int64?) throws(CommandError)
    {
        if try popFirstNonEmpty(&context, &reply, keys: keys, from: end, count: count) { return }
        if context.inTransaction {
            context.suppressPropagation()
            reply.nullArray()
            return
        }
        let keyRefs = keys.map { context.key($0) }
        context.node.blocking.block(&context, keys: keyRefs, waitingFor: .list, deadline: deadline)
    }

    /// LMPOP/BLMPOP arguments from `numkeysIndex` (redis lmpopGenericCommand), with its error texts.
    static func parseMultiPop(_ arguments: CommandArguments, numkeysIndex: Int) throws(CommandError) -> MultiPop {
        let numkeys = try integer(arguments, numkeysIndex, in: 1...Int.max, message: "numkeys should be greater than 0")
        guard numkeys < arguments.count - numkeysIndex - 1 else { throw .syntax }
        let whereIndex = numkeysIndex + numkeys + 1
        let end = try end(arguments, whereIndex)
        var count: Int?
        var index = whereIndex + 1
        while index < arguments.count {
            if count == nil && arguments.matches(index, "count") && index + 1 < arguments.count {
                count = try integer(arguments, index + 1, in: 1...Int.max, message: "count should be greater than 0")
                index += 2
            } else {
                throw .syntax
            }
        }
        return MultiPop(keys: (numkeysIndex + 1)..<whereIndex, end: end, count: count ?? 1)
    }

    // MARK: moves

    /// LMOVE/RPOPLPUSH (redis lmoveGenericCommand): null when the source is missing; WRONGTYPE, before anything
    /// moves, when either key holds another type.
    static func move(_ context: inout CommandContext, _ reply: inout ReplyWriter, from: ListEnd, to: ListEnd) throws(CommandError) {
        let db = context.db
        let source = context.key(1)
        let destination = context.key(2)
        guard let sourceValue = db.value(source) else {
            reply.null()
            return
        }
        guard sourceValue.type == .list else { throw .wrongType }
        let member: CompactBytes
        if source.bytes == destination.bytes {
            // Rotate in place: the list never becomes empty, so the key (and its TTL) stays.
            member = try db.modify(source) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> CompactBytes in
                guard case .list(let list)? = value, let member = list.pop(from: from) else { throw .wrongType }
                list.push(member, at: to)
                modified = true
                return member
            }
            context.notify(.list, to == .head ? "lpush" : "rpush", argument: 2)
            notifyPopped(context, argument: 1, from: from, emptied: false)
        } else {
            if let destinationValue = db.value(destination), destinationValue.type != .list { throw .wrongType }
            var emptied = false
            member = try db.modify(source) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> CompactBytes in
                guard case .list(let list)? = value, let member = list.pop(from: from) else { throw .wrongType }
                modified = true
                if list.count == 0 {
                    value = nil
                    emptied = true
                }
                return member
            }
            try db.modify(destination) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) in
                let list: ListValue
                if case .list(let existing)? = value {
                    list = existing
                } else {
                    list = ListValue()
                    value = .list(list)
                }
                list.push(member, at: to)
                modified = true
            }
            // redis's order: the push, then the pop and the source's deletion.
            context.notify(.list, to == .head ? "lpush" : "rpush", argument: 2)
            notifyPopped(context, argument: 1, from: from, emptied: emptied)
        }
        context.signalReady(destination)
        writeMember(member, &reply)
    }

    /// BLMOVE/BRPOPLPUSH (redis blmoveGenericCommand): move now, or reply nil inside EXEC, or block on the source.
    static func blockingMove(_ context: inout CommandContext, _ reply: inout ReplyWriter, from: ListEnd, to: ListEnd,
                             deadline: Int64?) throws(CommandError)
    {
        let source = context.key(1)
        if let value = context.db.value(source) {
            guard value.type == .list else { throw .wrongType }
            try move(&context, &reply, from: from, to: to)
            let side = { (end: ListEnd) in Array((end == .head ? "LEFT" : "RIGHT").utf8) }
            let arguments = context.arguments
            context.propagate([Array("LMOVE".utf8), arguments.bytes(1), arguments.bytes(2), side(from), side(to)])
            return
        }
        if context.inTransaction {
            context.suppressPropagation()
            reply.null()
            return
        }
        context.node.blocking.block(&context, keys: [source], waitingFor: .list, deadline: deadline)
    }

    // MARK: search

    /// LPOS (redis lposCommand).
    static func position(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        var rank = 1
        var count: Int?
        var maxLength = 0
        var index = 3
        while index < arguments.count {
            let hasValue = index + 1 < arguments.count
            if arguments.matches(index, "rank") && hasValue {
                rank = try integer(arguments, index + 1, in: -Int.max...Int.max, message: nil)
                if rank == 0 {
                    throw CommandError(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
                }
            } else if arguments.matches(index, "count") && hasValue {
                count = try integer(arguments, index + 1, in: 0...Int.max, message: "COUNT can't be negative")
            } else if arguments.matches(index, "maxlen") && hasValue {
                maxLength = try integer(arguments, index + 1, in: 0...Int.max, message: "MAXLEN can't be negative")
            } else {
                throw .syntax
            }
            index += 2
        }
        guard let list = try read(context, key: 1) else {
            if count != nil { reply.arrayHeader(0) } else { reply.null() }
            return
        }
        let element = arguments.withBytes(2) { CompactBytes($0) }
        let fromTail = rank < 0
        let skip = rank.magnitude - 1  // matches to pass over before reporting
        let wanted = count.map { $0 == 0 ? Int.max : $0 } ?? 1
        let length = list.count
        let scanned = maxLength == 0 ? length : min(maxLength, length)
        var found: [Int] = []
        var matches: UInt = 0
        for step in 0..<scanned {
            let position = fromTail ? length - 1 - step : step
            guard list.element(at: position) == element else { continue }
            matches += 1
            if matches > skip {
                found.append(position)
                if found.count >= wanted { break }
            }
        }
        if count != nil {
            reply.arrayHeader(found.count)
            for position in found { reply.integer(position) }
        } else if let first = found.first {
            reply.integer(first)
        } else {
            reply.null()
        }
    }
}
