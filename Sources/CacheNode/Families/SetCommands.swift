// The set family (redis t_set.c): unordered unique members stored in a `SetValue`. Writers share `setForWriting`,
// readers `readSet`; SINTER/SINTERCARD/SINTERSTORE share `intersection`, SUNION/SDIFF and their STORE forms share
// `unionOrDifference`, and every *STORE writes its result through `store` (empty results delete the destination).
import CacheStore
import RESPServer

extension CommandTable {
    static let setCommands: [CommandSpec] = [
        // SADD key member [member ...]
        CommandSpec("sadd", arity: -3, flags: [.write, .denyOOM, .fast], keys: .first, group: .set,
                    summary: "Adds one or more members to a set. Creates the key if it doesn't exist.") { context, reply throws(CommandError) in
            let arguments = context.arguments
            let added = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                let set = try SetFamily.setForWriting(&value)
                var added = 0
                for index in 2..<arguments.count where set.add(arguments.withBytes(index) { CompactBytes($0) }) {
                    added += 1
                }
                if added > 0 { modified = true }
                return added
            }
            if added > 0 { context.notify(.set, "sadd", argument: 1) }
            reply.integer(added)
        },
        // SREM key member [member ...]
        CommandSpec("srem", arity: -3, flags: [.write, .fast], keys: .first, group: .set,
                    summary: "Removes one or more members from a set. Deletes the set if the last member was removed.") {
            context, reply throws(CommandError) in
            let arguments = context.arguments
            var emptied = false
            let removed = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                guard let current = value else { return 0 }
                guard case .set(let set) = current else { throw .wrongType }
                var removed = 0
                for index in 2..<arguments.count where arguments.withBytes(index, { set.remove(CompactBytes($0)) }) {
                    removed += 1
                    if set.count == 0 {
                        value = nil
                        emptied = true
                        break
                    }
                }
                if removed > 0 { modified = true }
                return removed
            }
            if removed > 0 { context.notify(.set, "srem", argument: 1) }
            if emptied { context.notify(.generic, "del", argument: 1) }
            reply.integer(removed)
        },
        // SMEMBERS key
        CommandSpec("smembers", arity: 2, flags: [.readonly], keys: .first, group: .set,
                    summary: "Returns all members of a set.") { context, reply throws(CommandError) in
            guard let set = try SetFamily.readSet(context, 1) else {
                reply.setHeader(0)
                return
            }
            reply.setHeader(set.count)
            for member in set.members { member.withBytes { reply.bulk($0) } }
        },
        // SISMEMBER key member
        CommandSpec("sismember", arity: 3, flags: [.readonly, .fast], keys: .first, group: .set,
                    summary: "Determines whether a member belongs to a set.") { context, reply throws(CommandError) in
            let set = try SetFamily.readSet(context, 1)
            let isMember = set.map { set in context.arguments.withBytes(2) { set.contains(CompactBytes($0)) } } ?? false
            reply.integer(isMember ? 1 : 0)
        },
        // SMISMEMBER key member [member ...]
        CommandSpec("smismember", arity: -3, flags: [.readonly, .fast], keys: .first, group: .set,
                    summary: "Determines whether multiple members belong to a set.", since: "6.2.0") { context, reply throws(CommandError) in
            let set = try SetFamily.readSet(context, 1)
            let arguments = context.arguments
            reply.arrayHeader(arguments.count - 2)
            for index in 2..<arguments.count {
                let isMember = set.map { set in arguments.withBytes(index) { set.contains(CompactBytes($0)) } } ?? false
                reply.integer(isMember ? 1 : 0)
            }
        },
        // SCARD key
        CommandSpec("scard", arity: 2, flags: [.readonly, .fast], keys: .first, group: .set,
                    summary: "Returns the number of members in a set.") { context, reply throws(CommandError) in
            reply.integer(try SetFamily.readSet(context, 1)?.count ?? 0)
        },
        // SPOP key [count]
        CommandSpec("spop", arity: -2, flags: [.write, .fast], keys: .first, group: .set,
                    summary: "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.") {
            context, reply throws(CommandError) in
            try SetFamily.pop(&context, &reply)
        },
        // SRANDMEMBER key [count]
        CommandSpec("srandmember", arity: -2, flags: [.readonly], keys: .first, group: .set,
                    summary: "Get one or multiple random members from a set") { context, reply throws(CommandError) in
            try SetFamily.randomMembers(context, &reply)
        },
        // SMOVE source destination member
        CommandSpec("smove", arity: 4, flags: [.write, .fast], keys: .range(first: 1, last: 2, step: 1), group: .set,
                    summary: "Moves a member from one set to another.") { context, reply throws(CommandError) in
            reply.integer(try SetFamily.move(context) ? 1 : 0)
        },
        // SINTER key [key ...]
        CommandSpec("sinter", arity: -2, flags: [.readonly], keys: .range(first: 1, last: -1, step: 1), group: .set,
                    summary: "Returns the intersect of multiple sets.") { context, reply throws(CommandError) in
            let sets = try SetFamily.readSets(context, 1..<context.arguments.count)
            var members: [CompactBytes] = []
            SetFamily.intersection(sets, limit: 0) { members.append($0) }
            SetFamily.replySet(members, &reply)
        },
        // SINTERCARD numkeys key [key ...] [LIMIT limit]
        CommandSpec("sintercard", arity: -3, flags: [.readonly], keys: .counted(destination: nil, countIndex: 1), group: .set,
                    summary: "Returns the number of members of the intersect of multiple sets.", since: "7.0.0") { context, reply throws(CommandError) in
            let arguments = context.arguments
            guard let keyCount = arguments.integer(1), keyCount > 0 else {
                throw CommandError("numkeys should be greater than 0")
            }
            guard keyCount <= arguments.count - 2 else {
                throw CommandError("Number of keys can't be greater than number of args")
            }
            var limit = 0
            var index = 2 + keyCount
            while index < arguments.count {
                guard arguments.matches(index, "limit"), index + 1 < arguments.count else { throw .syntax }
                guard let value = arguments.integer(index + 1), value >= 0 else { throw CommandError("LIMIT can't be negative") }
                limit = value
                index += 2
            }
            let sets = try SetFamily.readSets(context, 2..<(2 + keyCount))
            var cardinality = 0
            SetFamily.intersection(sets, limit: limit) { _ in cardinality += 1 }
            reply.integer(cardinality)
        },
        // SINTERSTORE destination key [key ...]
        CommandSpec("sinterstore", arity: -3, flags: [.write, .denyOOM], keys: .range(first: 1, last: -1, step: 1), group: .set,
                    summary: "Stores the intersect of multiple sets in a key.") { context, reply throws(CommandError) in
            let sets = try SetFamily.readSets(context, 2..<context.arguments.count)
            var result: [CompactBytes] = []
            SetFamily.intersection(sets, limit: 0) { result.append($0) }
            reply.integer(SetFamily.store(result, context, event: "sinterstore"))
        },
        // SUNION key [key ...]
        CommandSpec("sunion", arity: -2, flags: [.readonly], keys: .range(first: 1, last: -1, step: 1), group: .set,
                    summary: "Returns the union of multiple sets.") { context, reply throws(CommandError) in
            let sets = try SetFamily.readSets(context, 1..<context.arguments.count)
            SetFamily.replySet(SetFamily.unionOrDifference(sets, difference: false), &reply)
        },
        // SUNIONSTORE destination key [key ...]
        CommandSpec("sunionstore", arity: -3, flags: [.write, .denyOOM], keys: .range(first: 1, last: -1, step: 1), group: .set,
                    summary: "Stores the union of multiple sets in a key.") { context, reply throws(CommandError) in
            let sets = try SetFamily.readSets(context, 2..<context.arguments.count)
            reply.integer(SetFamily.store(SetFamily.unionOrDifference(sets, difference: false), context, event: "sunionstore"))
        },
        // SDIFF key [key ...]
        CommandSpec("sdiff", arity: -2, flags: [.readonly], keys: .range(first: 1, last: -1, step: 1), group: .set,
                    summary: "Returns the difference of multiple sets.") { context, reply throws(CommandError) in
            let sets = try SetFamily.readSets(context, 1..<context.arguments.count)
            SetFamily.replySet(SetFamily.unionOrDifference(sets, difference: true), &reply)
        },
        // SDIFFSTORE destination key [key ...]
        CommandSpec("sdiffstore", arity: -3, flags: [.write, .denyOOM], keys: .range(first: 1, last: -1, step: 1), group: .set,
                    summary: "Stores the difference of multiple sets in a key.") { context, reply throws(CommandError) in
            let sets = try SetFamily.readSets(context, 2..<context.arguments.count)
            reply.integer(SetFamily.store(SetFamily.unionOrDifference(sets, difference: true), context, event: "sdiffstore"))
        },
        // SSCAN key cursor [MATCH pattern] [COUNT count]
        CommandSpec("sscan", arity: -3, flags: [.readonly], keys: .first, group: .set,
                    summary: "Iterates over members of a set.", since: "2.8.0") { context, reply throws(CommandError) in
            let scan = try ScanOptions.parse(context.arguments, cursorIndex: 2, allowType: false)
            var found: [CompactBytes] = []
            var next: UInt64 = 0
            if let set = try SetFamily.readSet(context, 1) {
                next = set.scan(cursor: scan.cursor, count: scan.count) { member in
                    if scan.matches(member) { found.append(member) }
                }
            }
            reply.arrayHeader(2)
            reply.bulk(String(next))
            reply.arrayHeader(found.count)
            for member in found { member.withBytes { reply.bulk($0) } }
        },
    ]
}

/// Shared implementations of the set commands.
enum SetFamily {
    /// The set in `value`, created (and stored into `value`) when the key is missing; WRONGTYPE for other types.
    @inline(__always)
    static func setForWriting(_ value: inout StoredValue?) throws(CommandError) -> SetValue {
        switch value {
        case nil:
            let set = SetValue()
            value = .set(set)
            return set
        case .set(let set)?:
            return set
        default:
            throw .wrongType
        }
    }

    /// Reads the set at argument `index` (counting a keyspace hit or miss): `nil` if missing, WRONGTYPE otherwise.
    @inline(__always)
    static func readSet(_ context: CommandContext, _ index: Int) throws(CommandError) -> SetValue? {
        let value = context.db.value(context.key(index))
        context.recordLookup(found: value != nil, argument: index)
        switch value {
        case nil: return nil
        case .set(let set)?: return set
        default: throw .wrongType
        }
    }

    /// Reads the sets at `positions`; missing keys are `nil` (empty sets). Every key is type-checked, as redis does
    /// before it looks at the contents.
    static func readSets(_ context: CommandContext, _ positions: Range<Int>) throws(CommandError) -> [SetValue?] {
        var sets: [SetValue?] = []
        sets.reserveCapacity(positions.count)
        for index in positions { sets.append(try readSet(context, index)) }
        return sets
    }

    /// A count argument accepted in -LONG_MAX...LONG_MAX (SRANDMEMBER, HRANDFIELD).
    static func rangedCount(_ arguments: CommandArguments, _ index: Int) throws(CommandError) -> Int {
        guard let count = arguments.integer(index) else { throw .notInteger }
        guard count != Int.min else {
            throw CommandError("value is out of range, value must between \(-Int.max) and \(Int.max)")
        }
        return count
    }

    /// Calls `body` with each member of the intersection, stopping after `limit` members (0: no limit). Any missing
    /// set makes the intersection empty. The smallest set is walked and probed against the others.
    static func intersection(_ sets: [SetValue?], limit: Int, _ body: (CompactBytes) -> Void) {
        var present: [SetValue] = []
        present.reserveCapacity(sets.count)
        for set in sets {
            guard let set else { return }
            present.append(set)
        }
        present.sort { $0.count < $1.count }
        let smallest = present[0]
        var emitted = 0
        outer: for member in smallest.members {
            for other in present.dropFirst() where other !== smallest {
                if !other.contains(member) { continue outer }
            }
            body(member)
            emitted += 1
            if limit > 0 && emitted >= limit { return }
        }
    }

    /// SUNION (all members of every set) or SDIFF (members of the first set in none of the others), without
    /// repetitions.
    static func unionOrDifference(_ sets: [SetValue?], difference: Bool) -> [CompactBytes] {
        if difference {
            guard let first = sets[0] else { return [] }
            let others = sets.dropFirst().compactMap { $0 }
            if others.contains(where: { $0 === first }) { return [] }
            return first.members.filter { member in !others.contains { $0.contains(member) } }
        }
        let present = sets.compactMap { $0 }
        guard let largest = present.max(by: { $0.count < $1.count }) else { return [] }
        if present.allSatisfy({ $0 === largest }) { return Array(largest.members) }
        var result = Set(largest.members)
        for set in present where set !== largest { result.formUnion(set.members) }
        return Array(result)
    }

    /// Replies with `members` as a set (RESP3 `~`, RESP2 an array).
    static func replySet<S: Collection>(_ members: S, _ reply: inout ReplyWriter) where S.Element == CompactBytes {
        reply.setHeader(members.count)
        for member in members { member.withBytes { reply.bulk($0) } }
    }

    /// Stores `members` (distinct) at argument 1, replacing any value and TTL, or deletes it when empty; returns the
    /// size. Publishes `event`, or `del` when an empty result deleted the destination.
    static func store(_ members: [CompactBytes], _ context: CommandContext, event: StaticString) -> Int {
        let destination = context.key(1)
        if members.isEmpty {
            if context.db.delete(destination) { context.notify(.generic, "del", argument: 1) }
        } else {
            context.db.set(destination, .set(SetValue.make(distinct: members)))
            context.notify(.set, event, argument: 1)
        }
        return members.count
    }

    /// SPOP key [count] (redis 7.2 spopCommand / spopWithCountCommand). Positions are removed from the highest
    /// down, so swap-removal never moves a member that is still to be popped.
    static func pop(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        if arguments.count > 3 { throw .syntax }
        let key = context.key(1)
        let db = context.db
        guard arguments.count == 3 else {
            var emptied = false
            let popped = try db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> CompactBytes? in
                guard let current = value else { return nil }
                guard case .set(let set) = current else { throw .wrongType }
                let position = db.withRandomGenerator(for: key) { Int.random(in: 0..<set.count, using: &$0) }
                let member = set.remove(at: position)
                if set.count == 0 {
                    value = nil
                    emptied = true
                }
                modified = true
                return member
            }
            if popped != nil { notifyPopped(context, emptied: emptied) }
            if let popped { popped.withBytes { reply.bulk($0) } } else { reply.null() }
            // Replicas remove the member drawn here rather than draw their own (redis propagates SPOP as SREM).
            if let popped { context.propagate([Array("SREM".utf8), key.bytes.array, popped.array]) } else { context.suppressPropagation() }
            return
        }
        guard let count = arguments.integer(2) else { throw .notInteger }
        guard count >= 0 else { throw CommandError("value is out of range, must be positive") }
        var emptied = false
        let popped = try db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> [CompactBytes] in
            guard let current = value else { return [] }
            guard case .set(let set) = current else { throw .wrongType }
            if count == 0 { return [] }
            modified = true
            if count >= set.count {
                value = nil
                emptied = true
                return Array(set.members)
            }
            var positions = db.withRandomGenerator(for: key) {
                CollectionSampling.distinctPositions(count: count, size: set.count, using: &$0)
            }
            positions.sort(by: >)
            return positions.map { set.remove(at: $0) }
        }
        replySet(popped, &reply)
        if !popped.isEmpty { notifyPopped(context, emptied: emptied) }
        if popped.isEmpty {
            context.suppressPropagation()
        } else {
            context.propagate([Array("SREM".utf8), key.bytes.array] + popped.map(\.array))
        }
    }

    /// The events of SPOP: `spop`, and `del` when it took the last member.
    private static func notifyPopped(_ context: CommandContext, emptied: Bool) {
        context.notify(.set, "spop", argument: 1)
        if emptied { context.notify(.generic, "del", argument: 1) }
    }

    /// SRANDMEMBER key [count] (redis 7.2 srandmemberCommand / srandmemberWithCountCommand): one random member as a
    /// bulk string; with a count, an array of distinct members (positive) or independent draws (negative).
    static func randomMembers(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        if arguments.count > 3 { throw .syntax }
        let key = context.key(1)
        guard arguments.count == 3 else {
            guard let set = try readSet(context, 1) else {
                reply.null()
                return
            }
            let position = context.db.withRandomGenerator(for: key) { Int.random(in: 0..<set.count, using: &$0) }
            set.member(at: position).withBytes { reply.bulk($0) }
            return
        }
        let requested = try rangedCount(arguments, 2)
        guard let set = try readSet(context, 1), requested != 0 else {
            reply.arrayHeader(0)
            return
        }
        let size = set.count
        if requested >= size {
            replyArray(set.members, &reply)
            return
        }
        context.db.withRandomGenerator(for: key) { random in
            if requested < 0 {
                reply.arrayHeader(-requested)
                for _ in 0..<(-requested) { set.member(at: Int.random(in: 0..<size, using: &random)).withBytes { reply.bulk($0) } }
            } else {
                reply.arrayHeader(requested)
                for position in CollectionSampling.distinctPositions(count: requested, size: size, using: &random) {
                    set.member(at: position).withBytes { reply.bulk($0) }
                }
            }
        }
    }

    /// Replies with `members` as an array.
    static func replyArray<S: Collection>(_ members: S, _ reply: inout ReplyWriter) where S.Element == CompactBytes {
        reply.arrayHeader(members.count)
        for member in members { member.withBytes { reply.bulk($0) } }
    }

    /// SMOVE source destination member. Returns whether the member was moved (or, for source == destination,
    /// whether it is a member).
    static func move(_ context: CommandContext) throws(CommandError) -> Bool {
        let db = context.db
        let source = context.key(1)
        let destination = context.key(2)
        guard let sourceValue = db.peek(source) else { return false }
        guard case .set(let sourceSet) = sourceValue else { throw .wrongType }
        if let destinationValue = db.peek(destination), destinationValue.type != .set { throw .wrongType }
        let member = context.bytes(3)
        if source.bytes == destination.bytes { return sourceSet.contains(member) }
        var emptied = false
        let removed = db.modify(source) { (value: inout StoredValue?, modified: inout Bool) -> Bool in
            guard case .set(let set)? = value, set.remove(member) else { return false }
            if set.count == 0 {
                value = nil
                emptied = true
            }
            modified = true
            return true
        }
        guard removed else { return false }
        context.notify(.set, "srem", argument: 1)
        if emptied { context.notify(.generic, "del", argument: 1) }
        let added = try db.modify(destination) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Bool in
            guard try setForWriting(&value).add(member) else { return false }
            modified = true
            return true
        }
        if added { context.notify(.set, "sadd", argument: 2) }
        return true
    }
}
