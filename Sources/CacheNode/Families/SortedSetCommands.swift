// The sorted-set family (redis t_zset.c). ZADD/ZINCRBY share `addGeneric`; every range read (ZRANGE and its legacy
// variants, ZRANGESTORE) goes through `rangeGeneric`; ZUNION/ZINTER/ZDIFF(STORE)/ZINTERCARD share `setOperation`;
// ZPOPMIN/ZPOPMAX/ZMPOP share `popGeneric`. Replies follow redis 7.2: scores are doubles, and WITHSCORES results are
// [member, score] pairs under RESP3 and flat arrays under RESP2.
import CacheStore
import RESPServer

extension CommandTable {
    static let sortedSetCommands: [CommandSpec] = [
        // ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
        CommandSpec("zadd", arity: -4, flags: [.write, .denyOOM, .fast], keys: .first, group: .sortedSet,
                    summary: "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
                    since: "1.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.addGeneric(&context, &reply, incrementOnly: false)
        },
        // ZINCRBY key increment member
        CommandSpec("zincrby", arity: 4, flags: [.write, .denyOOM, .fast], keys: .first, group: .sortedSet,
                    summary: "Increments the score of a member in a sorted set.", since: "1.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.addGeneric(&context, &reply, incrementOnly: true)
        },
        // ZSCORE key member
        CommandSpec("zscore", arity: 3, flags: [.readonly, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the score of a member in a sorted set.", since: "1.2.0") { context, reply throws(CommandError) in
            let zset = try SortedSetFamily.read(context, 1)
            if let score = zset?.score(of: context.bytes(2)) { reply.double(score) } else { reply.null() }
        },
        // ZMSCORE key member [member ...]
        CommandSpec("zmscore", arity: -3, flags: [.readonly, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the score of one or more members in a sorted set.", since: "6.2.0") { context, reply throws(CommandError) in
            let zset = try SortedSetFamily.read(context, 1)
            reply.arrayHeader(context.arguments.count - 2)
            for index in 2..<context.arguments.count {
                if let score = zset?.score(of: context.bytes(index)) { reply.double(score) } else { reply.null() }
            }
        },
        // ZCARD key
        CommandSpec("zcard", arity: 2, flags: [.readonly, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the number of members in a sorted set.", since: "1.2.0") { context, reply throws(CommandError) in
            reply.integer(try SortedSetFamily.read(context, 1)?.count ?? 0)
        },
        // ZCOUNT key min max
        CommandSpec("zcount", arity: 4, flags: [.readonly, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the count of members in a sorted set that have scores within a range.", since: "2.0.0") {
            context, reply throws(CommandError) in
            let range = try SortedSetFamily.scoreRange(context.arguments, 2, 3)
            reply.integer(try SortedSetFamily.read(context, 1)?.count(in: range) ?? 0)
        },
        // ZLEXCOUNT key min max
        CommandSpec("zlexcount", arity: 4, flags: [.readonly, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the number of members in a sorted set within a lexicographical range.", since: "2.8.9") {
            context, reply throws(CommandError) in
            let range = try SortedSetFamily.lexRange(context.arguments, 2, 3)
            reply.integer(try SortedSetFamily.read(context, 1)?.count(in: range) ?? 0)
        },
        // ZRANK key member [WITHSCORE]
        CommandSpec("zrank", arity: -3, flags: [.readonly, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the index of a member in a sorted set ordered by ascending scores.", since: "2.0.0") {
            context, reply throws(CommandError) in
            try SortedSetFamily.rankGeneric(&context, &reply, reverse: false)
        },
        // ZREVRANK key member [WITHSCORE]
        CommandSpec("zrevrank", arity: -3, flags: [.readonly, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the index of a member in a sorted set ordered by descending scores.", since: "2.0.0") {
            context, reply throws(CommandError) in
            try SortedSetFamily.rankGeneric(&context, &reply, reverse: true)
        },
        // ZREM key member [member ...]
        CommandSpec("zrem", arity: -3, flags: [.write, .fast], keys: .first, group: .sortedSet,
                    summary: "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
                    since: "1.2.0") { context, reply throws(CommandError) in
            let arguments = context.arguments
            var emptied = false
            let removed = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
                guard let current = value else { return 0 }
                guard case .sortedSet(let zset) = current else { throw .wrongType }
                var removed = 0
                for index in 2..<arguments.count where zset.remove(arguments.withBytes(index) { CompactBytes($0) }) != nil {
                    removed += 1
                }
                if removed > 0 { modified = true }
                if zset.isEmpty {
                    value = nil
                    emptied = true
                }
                return removed
            }
            if removed > 0 { context.notify(.sortedSet, "zrem", argument: 1) }
            if emptied { context.notify(.generic, "del", argument: 1) }
            reply.integer(removed)
        },
        // ZREMRANGEBYRANK key start stop
        CommandSpec("zremrangebyrank", arity: 4, flags: [.write], keys: .first, group: .sortedSet,
                    summary: "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
                    since: "2.0.0") { context, reply throws(CommandError) in
            let start = try context.integer(2)
            let stop = try context.integer(3)
            try SortedSetFamily.removeRangeGeneric(&context, &reply, event: "zremrangebyrank") { zset in
                guard let (first, last) = SortedSetFamily.clampRanks(start, stop, count: zset.count) else { return 0 }
                return zset.removeRange(ranks: first, last)
            }
        },
        // ZREMRANGEBYSCORE key min max
        CommandSpec("zremrangebyscore", arity: 4, flags: [.write], keys: .first, group: .sortedSet,
                    summary: "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
                    since: "1.2.0") { context, reply throws(CommandError) in
            let range = try SortedSetFamily.scoreRange(context.arguments, 2, 3)
            try SortedSetFamily.removeRangeGeneric(&context, &reply, event: "zremrangebyscore") { zset in
                guard let first = zset.firstNode(in: range), let last = zset.lastNode(in: range) else { return 0 }
                return zset.removeRange(ranks: first.rank, last.rank)
            }
        },
        // ZREMRANGEBYLEX key min max
        CommandSpec("zremrangebylex", arity: 4, flags: [.write], keys: .first, group: .sortedSet,
                    summary: "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
                    since: "2.8.9") { context, reply throws(CommandError) in
            let range = try SortedSetFamily.lexRange(context.arguments, 2, 3)
            try SortedSetFamily.removeRangeGeneric(&context, &reply, event: "zremrangebylex") { zset in
                guard let first = zset.firstNode(in: range), let last = zset.lastNode(in: range) else { return 0 }
                return zset.removeRange(ranks: first.rank, last.rank)
            }
        },
        // ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
        CommandSpec("zrange", arity: -4, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Returns members in a sorted set within a range of indexes.", since: "1.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.rangeGeneric(&context, &reply, source: 1, kind: nil, reverse: nil, destination: nil)
        },
        // ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]
        CommandSpec("zrangestore", arity: -5, flags: [.write, .denyOOM], keys: .range(first: 1, last: 2, step: 1), group: .sortedSet,
                    summary: "Stores a range of members from sorted set in a key.", since: "6.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.rangeGeneric(&context, &reply, source: 2, kind: nil, reverse: nil, destination: 1)
        },
        // ZREVRANGE key start stop [WITHSCORES]
        CommandSpec("zrevrange", arity: -4, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Returns members in a sorted set within a range of indexes in reverse order.", since: "1.2.0") {
            context, reply throws(CommandError) in
            try SortedSetFamily.rangeGeneric(&context, &reply, source: 1, kind: .rank, reverse: true, destination: nil)
        },
        // ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
        CommandSpec("zrangebyscore", arity: -4, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Returns members in a sorted set within a range of scores.", since: "1.0.5") { context, reply throws(CommandError) in
            try SortedSetFamily.rangeGeneric(&context, &reply, source: 1, kind: .score, reverse: false, destination: nil)
        },
        // ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
        CommandSpec("zrevrangebyscore", arity: -4, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Returns members in a sorted set within a range of scores in reverse order.", since: "2.2.0") {
            context, reply throws(CommandError) in
            try SortedSetFamily.rangeGeneric(&context, &reply, source: 1, kind: .score, reverse: true, destination: nil)
        },
        // ZRANGEBYLEX key min max [LIMIT offset count]
        CommandSpec("zrangebylex", arity: -4, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Returns members in a sorted set within a lexicographical range.", since: "2.8.9") { context, reply throws(CommandError) in
            try SortedSetFamily.rangeGeneric(&context, &reply, source: 1, kind: .lex, reverse: false, destination: nil)
        },
        // ZREVRANGEBYLEX key max min [LIMIT offset count]
        CommandSpec("zrevrangebylex", arity: -4, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Returns members in a sorted set within a lexicographical range in reverse order.", since: "2.8.9") {
            context, reply throws(CommandError) in
            try SortedSetFamily.rangeGeneric(&context, &reply, source: 1, kind: .lex, reverse: true, destination: nil)
        },
        // ZPOPMIN key [count]
        CommandSpec("zpopmin", arity: -2, flags: [.write, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            try SortedSetFamily.popCommand(&context, &reply, fromMax: false)
        },
        // ZPOPMAX key [count]
        CommandSpec("zpopmax", arity: -2, flags: [.write, .fast], keys: .first, group: .sortedSet,
                    summary: "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            try SortedSetFamily.popCommand(&context, &reply, fromMax: true)
        },
        // ZMPOP numkeys key [key ...] <MIN | MAX> [COUNT count]
        CommandSpec("zmpop", arity: -4, flags: [.write], keys: .counted(destination: nil, countIndex: 1), group: .sortedSet,
                    summary: "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.",
                    since: "7.0.0") { context, reply throws(CommandError) in
            try SortedSetFamily.multiPop(&context, &reply)
        },
        // BZPOPMIN key [key ...] timeout
        CommandSpec("bzpopmin", arity: -3, flags: [.write, .fast, .blocking], keys: .range(first: 1, last: -2, step: 1),
                    group: .sortedSet,
                    summary: "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            let last = context.arguments.count - 1
            let deadline = try BlockingTimeout.deadline(context, argument: last)
            try SortedSetFamily.blockingPop(&context, &reply, keys: 1..<last, fromMax: false, count: nil, deadline: deadline)
        },
        // BZPOPMAX key [key ...] timeout
        CommandSpec("bzpopmax", arity: -3, flags: [.write, .fast, .blocking], keys: .range(first: 1, last: -2, step: 1),
                    group: .sortedSet,
                    summary: "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
                    since: "5.0.0") { context, reply throws(CommandError) in
            let last = context.arguments.count - 1
            let deadline = try BlockingTimeout.deadline(context, argument: last)
            try SortedSetFamily.blockingPop(&context, &reply, keys: 1..<last, fromMax: true, count: nil, deadline: deadline)
        },
        // BZMPOP timeout numkeys key [key ...] <MIN | MAX> [COUNT count]
        CommandSpec("bzmpop", arity: -5, flags: [.write, .blocking], keys: .counted(destination: nil, countIndex: 2), group: .sortedSet,
                    summary: "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
                    since: "7.0.0") { context, reply throws(CommandError) in
            // redis checks numkeys, MIN/MAX and COUNT before the timeout.
            let request = try SortedSetFamily.parseMultiPop(context.arguments, numkeysIndex: 2)
            let deadline = try BlockingTimeout.deadline(context, argument: 1)
            try SortedSetFamily.blockingPop(
                &context, &reply, keys: request.keys, fromMax: request.fromMax, count: request.count, deadline: deadline)
        },
        // ZRANDMEMBER key [count [WITHSCORES]]
        CommandSpec("zrandmember", arity: -2, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Returns one or more random members from a sorted set.", since: "6.2.0") { context, reply throws(CommandError) in
            var generator = SystemRandomNumberGenerator()
            try SortedSetFamily.randomMembers(&context, &reply, using: &generator)
        },
        // ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]
        CommandSpec("zunion", arity: -3, flags: [.readonly], keys: .counted(destination: nil, countIndex: 1), group: .sortedSet,
                    summary: "Returns the union of multiple sorted sets.", since: "6.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.setOperation(&context, &reply, .union, name: "zunion", destination: nil)
        },
        // ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]
        CommandSpec("zinter", arity: -3, flags: [.readonly], keys: .counted(destination: nil, countIndex: 1), group: .sortedSet,
                    summary: "Returns the intersect of multiple sorted sets.", since: "6.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.setOperation(&context, &reply, .intersection, name: "zinter", destination: nil)
        },
        // ZDIFF numkeys key [key ...] [WITHSCORES]
        CommandSpec("zdiff", arity: -3, flags: [.readonly], keys: .counted(destination: nil, countIndex: 1), group: .sortedSet,
                    summary: "Returns the difference between multiple sorted sets.", since: "6.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.setOperation(&context, &reply, .difference, name: "zdiff", destination: nil)
        },
        // ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>]
        CommandSpec("zunionstore", arity: -4, flags: [.write, .denyOOM], keys: .counted(destination: 1, countIndex: 2), group: .sortedSet,
                    summary: "Stores the union of multiple sorted sets in a key.", since: "2.0.0") { context, reply throws(CommandError) in
            try SortedSetFamily.setOperation(&context, &reply, .union, name: "zunionstore", destination: 1)
        },
        // ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>]
        CommandSpec("zinterstore", arity: -4, flags: [.write, .denyOOM], keys: .counted(destination: 1, countIndex: 2), group: .sortedSet,
                    summary: "Stores the intersect of multiple sorted sets in a key.", since: "2.0.0") { context, reply throws(CommandError) in
            try SortedSetFamily.setOperation(&context, &reply, .intersection, name: "zinterstore", destination: 1)
        },
        // ZDIFFSTORE destination numkeys key [key ...]
        CommandSpec("zdiffstore", arity: -4, flags: [.write, .denyOOM], keys: .counted(destination: 1, countIndex: 2), group: .sortedSet,
                    summary: "Stores the difference of multiple sorted sets in a key.", since: "6.2.0") { context, reply throws(CommandError) in
            try SortedSetFamily.setOperation(&context, &reply, .difference, name: "zdiffstore", destination: 1)
        },
        // ZINTERCARD numkeys key [key ...] [LIMIT limit]
        CommandSpec("zintercard", arity: -3, flags: [.readonly], keys: .counted(destination: nil, countIndex: 1), group: .sortedSet,
                    summary: "Returns the number of members of the intersect of multiple sorted sets.", since: "7.0.0") {
            context, reply throws(CommandError) in
            try SortedSetFamily.setOperation(&context, &reply, .intersectionCardinality, name: "zintercard", destination: nil)
        },
        // ZSCAN key cursor [MATCH pattern] [COUNT count]
        CommandSpec("zscan", arity: -3, flags: [.readonly], keys: .first, group: .sortedSet,
                    summary: "Iterates over members and scores of a sorted set.", since: "2.8.0") { context, reply throws(CommandError) in
            try SortedSetFamily.scan(&context, &reply)
        },
    ]
}

/// Shared implementations of the sorted-set commands.
enum SortedSetFamily {
    typealias Element = (member: CompactBytes, score: Double)

    static let notFloatRange = CommandError("min or max is not a float")
    static let notLexRange = CommandError("min or max not valid string range item")
    static let nanScore = CommandError("resulting score is not a number (NaN)")

    /// The sorted set at argument `index` for reading (nil if missing; WRONGTYPE for other types).
    static func read(_ context: CommandContext, _ index: Int) throws(CommandError) -> SortedSetValue? {
        guard let value = context.db.value(context.key(index)) else { return nil }
        guard case .sortedSet(let zset) = value else { throw .wrongType }
        return zset
    }

    /// Parses `min max` score bounds.
    static func scoreRange(_ arguments: CommandArguments, _ minIndex: Int, _ maxIndex: Int) throws(CommandError) -> SortedSetScoreRange {
        guard let min = arguments.withBytes(minIndex, { SortedSetScoreRange.parseBound($0) }),
              let max = arguments.withBytes(maxIndex, { SortedSetScoreRange.parseBound($0) }) else { throw notFloatRange }
        return SortedSetScoreRange(min: min.value, max: max.value, minExclusive: min.exclusive, maxExclusive: max.exclusive)
    }

    /// Parses `min max` lexicographic bounds.
    static func lexRange(_ arguments: CommandArguments, _ minIndex: Int, _ maxIndex: Int) throws(CommandError) -> SortedSetLexRange {
        guard let min = arguments.withBytes(minIndex, { SortedSetLexBound.parse($0) }),
              let max = arguments.withBytes(maxIndex, { SortedSetLexBound.parse($0) }) else { throw notLexRange }
        return SortedSetLexRange(min: min, max: max)
    }

    /// Redis's rank sanitizing: negative ranks count from the end; nil when the range is empty.
    static func clampRanks(_ start: Int, _ stop: Int, count: Int) -> (Int, Int)? {
        var start = start < 0 ? start &+ count : start
        var stop = stop < 0 ? stop &+ count : stop
        if start < 0 { start = 0 }
        guard start <= stop && start < count else { return nil }
        if stop >= count { stop = count - 1 }
        return (start, stop)
    }

    /// Writes elements: scores as doubles, RESP3 pairs when `nested`, else a flat array.
    static func writeElements(_ elements: [Element], withScores: Bool, nested: Bool, _ reply: inout ReplyWriter) {
        guard withScores else {
            reply.arrayHeader(elements.count)
            for element in elements { element.member.withBytes { reply.bulk($0) } }
            return
        }
        if nested {
            reply.arrayHeader(elements.count)
            for element in elements {
                reply.arrayHeader(2)
                element.member.withBytes { reply.bulk($0) }
                reply.double(element.score)
            }
        } else {
            reply.arrayHeader(elements.count * 2)
            for element in elements {
                element.member.withBytes { reply.bulk($0) }
                reply.double(element.score)
            }
        }
    }

    /// Replaces `destination` with a sorted set of `elements` (deletes it when empty); returns the stored count
    /// (ZRANGESTORE).
    static func store(_ elements: [Element], at destination: Int, _ context: inout CommandContext) -> Int {
        let zset = SortedSetValue()
        for element in elements { zset.add(element.member, score: element.score) }
        store(zset, at: destination, &context, event: "zrangestore")
        return zset.count
    }

    /// Replaces `destination` with `zset`, or deletes it when `zset` is empty; publishes `event`, or `del` when the
    /// destination was deleted.
    static func store(_ zset: SortedSetValue, at destination: Int, _ context: inout CommandContext, event: StaticString) {
        let key = context.key(destination)
        if zset.isEmpty {
            if context.db.delete(key) { context.notify(.generic, "del", argument: destination) }
        } else {
            context.db.set(key, .sortedSet(zset))
            context.notify(.sortedSet, event, argument: destination)
            context.signalReady(key)
        }
    }

    // MARK: ZADD / ZINCRBY

    static func addGeneric(_ context: inout CommandContext, _ reply: inout ReplyWriter, incrementOnly: Bool) throws(CommandError) {
        let arguments = context.arguments
        var ifMissing = false, ifExists = false, greater = false, less = false, changed = false, increment = incrementOnly
        var index = 2
        if !incrementOnly {
            while index < arguments.count {
                if arguments.matches(index, "nx") { ifMissing = true }
                else if arguments.matches(index, "xx") { ifExists = true }
                else if arguments.matches(index, "gt") { greater = true }
                else if arguments.matches(index, "lt") { less = true }
                else if arguments.matches(index, "ch") { changed = true }
                else if arguments.matches(index, "incr") { increment = true }
                else { break }
                index += 1
            }
        }
        let pairs = arguments.count - index
        guard pairs > 0 && pairs % 2 == 0 else { throw .syntax }
        if ifMissing && ifExists { throw CommandError("XX and NX options at the same time are not compatible") }
        if (greater && ifMissing) || (less && ifMissing) || (greater && less) {
            throw CommandError("GT, LT, and/or NX options at the same time are not compatible")
        }
        if increment && pairs > 2 { throw CommandError("INCR option supports a single increment-element pair") }
        var scores: [Double] = []
        scores.reserveCapacity(pairs / 2)
        for scoreIndex in stride(from: index, to: arguments.count, by: 2) {
            guard let score = arguments.withBytes(scoreIndex, { SortedSetScoreRange.parseScore($0) }) else { throw .notFloat }
            scores.append(score)
        }
        let first = index
        let key = context.key(1)
        let outcome = try context.db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> (added: Int, updated: Int, processed: Int, score: Double) in
            let zset: SortedSetValue
            switch value {
            case nil:
                if ifExists { return (0, 0, 0, 0) }
                zset = SortedSetValue()
            case .sortedSet(let existing)?:
                zset = existing
            default:
                throw .wrongType
            }
            var added = 0, updated = 0, processed = 0
            var lastScore = 0.0
            defer {
                if zset.isEmpty { if value != nil { value = nil; modified = true } }
                else if value == nil { value = .sortedSet(zset) }
                if added + updated > 0 { modified = true }
            }
            for (offset, score) in scores.enumerated() {
                let member = arguments.withBytes(first + offset * 2 + 1) { CompactBytes($0) }
                if let current = zset.score(of: member) {
                    if ifMissing { continue }
                    var newScore = score
                    if increment {
                        newScore = current + score
                        if newScore.isNaN { throw nanScore }
                    }
                    if (less && newScore >= current) || (greater && newScore <= current) { continue }
                    processed += 1
                    lastScore = newScore
                    if newScore != current {
                        zset.add(member, score: newScore)
                        updated += 1
                    }
                } else {
                    if ifExists { continue }
                    zset.add(member, score: score)
                    added += 1
                    processed += 1
                    lastScore = score
                }
            }
            return (added, updated, processed, lastScore)
        }
        if outcome.added + outcome.updated > 0 { context.notify(.sortedSet, increment ? "zincr" : "zadd", argument: 1) }
        if outcome.added > 0 { context.signalReady(key) }
        if increment {
            if outcome.processed > 0 { reply.double(outcome.score) } else { reply.null() }
        } else {
            reply.integer(changed ? outcome.added + outcome.updated : outcome.added)
        }
    }

    // MARK: ZRANK

    static func rankGeneric(_ context: inout CommandContext, _ reply: inout ReplyWriter, reverse: Bool) throws(CommandError) {
        let arguments = context.arguments
        guard arguments.count <= 4 else { throw .wrongArity(reverse ? "zrevrank" : "zrank") }
        let withScore = arguments.count == 4
        if withScore && !arguments.matches(3, "withscore") { throw .syntax }
        let member = context.bytes(2)
        guard let zset = try read(context, 1), let rank = zset.rank(of: member, reverse: reverse) else {
            if withScore { reply.nullArray() } else { reply.null() }
            return
        }
        if withScore {
            reply.arrayHeader(2)
            reply.integer(rank)
            reply.double(zset.score(of: member) ?? 0)
        } else {
            reply.integer(rank)
        }
    }

    // MARK: ZREMRANGEBY*

    static func removeRangeGeneric(
        _ context: inout CommandContext, _ reply: inout ReplyWriter, event: StaticString, _ body: (SortedSetValue) -> Int
    ) throws(CommandError) {
        var emptied = false
        let removed = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Int in
            guard let current = value else { return 0 }
            guard case .sortedSet(let zset) = current else { throw .wrongType }
            let removed = body(zset)
            if removed > 0 { modified = true }
            if zset.isEmpty {
                value = nil
                emptied = true
            }
            return removed
        }
        if removed > 0 { context.notify(.sortedSet, event, argument: 1) }
        if emptied { context.notify(.generic, "del", argument: 1) }
        reply.integer(removed)
    }

    // MARK: ZRANGE and variants

    enum RangeKind { case rank, score, lex }

    /// redis zrangeGenericCommand: `kind`/`reverse` nil when the command (ZRANGE, ZRANGESTORE) takes them as options.
    static func rangeGeneric(
        _ context: inout CommandContext, _ reply: inout ReplyWriter, source: Int, kind fixedKind: RangeKind?, reverse fixedReverse: Bool?,
        destination: Int?
    ) throws(CommandError) {
        let arguments = context.arguments
        var kind = fixedKind
        var reverse = fixedReverse
        var withScores = false
        var offset = 0
        var limit = -1
        var index = source + 3
        while index < arguments.count {
            let remaining = arguments.count - index - 1
            if destination == nil && arguments.matches(index, "withscores") {
                withScores = true
            } else if arguments.matches(index, "limit") && remaining >= 2 {
                offset = try context.integer(index + 1)
                limit = try context.integer(index + 2)
                index += 2
            } else if reverse == nil && arguments.matches(index, "rev") {
                reverse = true
            } else if kind == nil && arguments.matches(index, "bylex") {
                kind = .lex
            } else if kind == nil && arguments.matches(index, "byscore") {
                kind = .score
            } else {
                throw .syntax
            }
            index += 1
        }
        let rangeKind = kind ?? .rank
        let descending = reverse ?? false
        if limit != -1 && rangeKind == .rank {
            throw CommandError("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        }
        if withScores && rangeKind == .lex {
            throw CommandError("syntax error, WITHSCORES not supported in combination with BYLEX")
        }
        var minIndex = source + 1
        var maxIndex = source + 2
        if descending && rangeKind != .rank { swap(&minIndex, &maxIndex) }
        var elements: [Element] = []
        switch rangeKind {
        case .rank:
            let start = try context.integer(minIndex)
            let stop = try context.integer(maxIndex)
            if let zset = try read(context, source) {
                elements = rankRange(zset, start, stop, reverse: descending)
            }
        case .score:
            let range = try scoreRange(arguments, minIndex, maxIndex)
            if let zset = try read(context, source) {
                let start = descending ? zset.lastNode(in: range)?.node : zset.firstNode(in: range)?.node
                elements = walk(from: start, reverse: descending, offset: offset, limit: limit, count: zset.count) { node in
                    descending ? range.isAboveMin(node.score) : range.isBelowMax(node.score)
                }
            }
        case .lex:
            let range = try lexRange(arguments, minIndex, maxIndex)
            if let zset = try read(context, source) {
                let start = descending ? zset.lastNode(in: range)?.node : zset.firstNode(in: range)?.node
                elements = walk(from: start, reverse: descending, offset: offset, limit: limit, count: zset.count) { node in
                    descending ? range.isAboveMin(node.member) : range.isBelowMax(node.member)
                }
            }
        }
        if let destination {
            reply.integer(store(elements, at: destination, &context))
        } else {
            writeElements(elements, withScores: withScores, nested: reply.protocolVersion == .v3, &reply)
        }
    }

    static func rankRange(_ zset: SortedSetValue, _ start: Int, _ stop: Int, reverse: Bool) -> [Element] {
        guard let (first, last) = clampRanks(start, stop, count: zset.count) else { return [] }
        let length = last - first + 1
        var elements: [Element] = []
        elements.reserveCapacity(length)
        var node = zset.node(atRank: reverse ? zset.count - 1 - first : first)
        while let current = node, elements.count < length {
            elements.append((current.member, current.score))
            node = reverse ? current.backward : current.next
        }
        return elements
    }

    /// Walks from `start` while `inRange` holds, skipping `offset` and taking up to `limit` (negative: all).
    static func walk(
        from start: SortedSetNode?, reverse: Bool, offset: Int, limit: Int, count: Int, inRange: (SortedSetNode) -> Bool
    ) -> [Element] {
        guard offset >= 0, offset < count || offset == 0, limit != 0 else { return [] }
        var node = start
        var skip = offset
        while skip > 0, let current = node {
            node = reverse ? current.backward : current.next
            skip -= 1
        }
        var elements: [Element] = []
        while let current = node, inRange(current), limit < 0 || elements.count < limit {
            elements.append((current.member, current.score))
            node = reverse ? current.backward : current.next
        }
        return elements
    }

    // MARK: ZPOPMIN / ZPOPMAX / ZMPOP

    /// Removes up to `count` members from one end of the sorted set at `key`.
    static func pop(_ context: inout CommandContext, key: KeyRef, count: Int, fromMax: Bool) throws(CommandError) -> [Element]? {
        var emptied = false
        let popped = try context.db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> [Element]? in
            guard let current = value else { return nil }
            guard case .sortedSet(let zset) = current else { throw .wrongType }
            var popped: [Element] = []
            popped.reserveCapacity(min(count, zset.count))
            while popped.count < count, let node = fromMax ? zset.order.tail : zset.order.first {
                popped.append((node.member, node.score))
                zset.remove(node.member)
            }
            if !popped.isEmpty { modified = true }
            if zset.isEmpty {
                value = nil
                emptied = true
            }
            return popped
        }
        if let popped, !popped.isEmpty {
            context.notify(.sortedSet, fromMax ? "zpopmax" : "zpopmin", key: key.bytes)
            if emptied { context.notify(.generic, "del", key: key.bytes) }
        }
        return popped
    }

    static func popCommand(_ context: inout CommandContext, _ reply: inout ReplyWriter, fromMax: Bool) throws(CommandError) {
        let arguments = context.arguments
        guard arguments.count <= 3 else { throw .syntax }
        var count = 1
        let hasCount = arguments.count == 3
        if hasCount {
            guard let parsed = arguments.integer(2), parsed >= 0 else {
                throw CommandError("value is out of range, must be positive")
            }
            count = parsed
        }
        let popped = count == 0 ? [] : (try pop(&context, key: context.key(1), count: count, fromMax: fromMax) ?? [])
        if count == 0, let value = context.db.peek(context.key(1)), value.type != .zset { throw .wrongType }
        writeElements(popped, withScores: true, nested: hasCount && reply.protocolVersion == .v3, &reply)
    }

    /// ZMPOP/BZMPOP arguments from `numkeysIndex`: the key positions, MIN or MAX, COUNT (1 if not given).
    static func parseMultiPop(
        _ arguments: CommandArguments, numkeysIndex: Int
    ) throws(CommandError) -> (keys: Range<Int>, fromMax: Bool, count: Int) {
        guard let keyCount = arguments.integer(numkeysIndex), keyCount > 0 else {
            throw CommandError("numkeys should be greater than 0")
        }
        guard keyCount < arguments.count - numkeysIndex - 1 else { throw .syntax }
        let whereIndex = numkeysIndex + 1 + keyCount
        let fromMax: Bool
        if arguments.matches(whereIndex, "min") { fromMax = false }
        else if arguments.matches(whereIndex, "max") { fromMax = true }
        else { throw .syntax }
        var count = 1
        var index = whereIndex + 1
        var countSeen = false
        while index < arguments.count {
            guard !countSeen, arguments.matches(index, "count"), index + 1 < arguments.count else { throw .syntax }
            guard let parsed = arguments.integer(index + 1), parsed > 0 else { throw CommandError("count should be greater than 0") }
            count = parsed
            countSeen = true
            index += 2
        }
        return ((numkeysIndex + 1)..<whereIndex, fromMax, count)
    }

    static func multiPop(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let request = try parseMultiPop(context.arguments, numkeysIndex: 1)
        if try !popFirstNonEmpty(&context, &reply, keys: request.keys, fromMax: request.fromMax, count: request.count) {
            reply.nullArray()
        }
    }

    /// Pops from the first of `keys` holding a sorted set: ZMPOP's reply (`[key, [[member, score], ...]]`) with a
    /// `count`, BZPOPMIN/BZPOPMAX's (`[key, member, score]`) without. Blocking forms reach replicas as the
    /// non-blocking pop of the key served (redis rewrites them so).
    static func popFirstNonEmpty(
        _ context: inout CommandContext, _ reply: inout ReplyWriter, keys: Range<Int>, fromMax: Bool, count: Int?
    ) throws(CommandError) -> Bool {
        for keyIndex in keys {
            let key = context.key(keyIndex)
            guard let popped = try pop(&context, key: key, count: count ?? 1, fromMax: fromMax), let first = popped.first else {
                continue
            }
            let blocking = context.spec.flags.contains(.blocking)
            if let count {
                reply.arrayHeader(2)
                key.bytes.withBytes { reply.bulk($0) }
                writeElements(popped, withScores: true, nested: true, &reply)
                if blocking {
                    context.propagate([Array("ZMPOP".utf8), Array("1".utf8), key.bytes.array,
                                       Array((fromMax ? "MAX" : "MIN").utf8), Array("COUNT".utf8), Array(String(count).utf8)])
                }
            } else {
                reply.arrayHeader(3)
                key.bytes.withBytes { reply.bulk($0) }
                first.member.withBytes { reply.bulk($0) }
                reply.double(first.score)
                if blocking { context.propagate([Array((fromMax ? "ZPOPMAX" : "ZPOPMIN").utf8), key.bytes.array]) }
            }
            return true
        }
        return false
    }

    /// BZPOPMIN/BZPOPMAX/BZMPOP: pop now, or reply nil inside EXEC, or block on all the keys.
    static func blockingPop(
        _ context: inout CommandContext, _ reply: inout ReplyWriter, keys: Range<Int>, fromMax: Bool, count: Int?,
        deadline: Int64?
    ) throws(CommandError) {
        if try popFirstNonEmpty(&context, &reply, keys: keys, fromMax: fromMax, count: count) { return }
        if context.inTransaction {
            context.suppressPropagation()
            reply.nullArray()
            return
        }
        let keyRefs = keys.map { context.key($0) }
        context.node.blocking.block(&context, keys: keyRefs, waitingFor: .zset, deadline: deadline)
    }

    // MARK: ZRANDMEMBER

    static func randomMembers<Generator: RandomNumberGenerator>(
        _ context: inout CommandContext, _ reply: inout ReplyWriter, using generator: inout Generator
    ) throws(CommandError) {
        let arguments = context.arguments
        guard arguments.count > 2 else {
            guard let zset = try read(context, 1), !zset.isEmpty,
                  let node = zset.node(atRank: Int.random(in: 0..<zset.count, using: &generator)) else {
                reply.null()
                return
            }
            node.member.withBytes { reply.bulk($0) }
            return
        }
        guard arguments.count <= 4 else { throw .syntax }
        let withScores = arguments.count == 4
        if withScores && !arguments.matches(3, "withscores") { throw .syntax }
        let requested = try context.integer(2)
        guard requested >= -Int.max else {
            throw CommandError("value is out of range, must be between \(-Int.max) and \(Int.max)")
        }
        if withScores && (requested < -Int.max / 2 || requested > Int.max / 2) { throw CommandError("value is out of range") }
        let nested = withScores && reply.protocolVersion == .v3
        guard let zset = try read(context, 1), requested != 0 else {
            reply.arrayHeader(0)
            return
        }
        var elements: [Element] = []
        if requested < 0 {
            let wanted = -requested
            elements.reserveCapacity(min(wanted, 1 << 20))
            for _ in 0..<wanted {
                if let node = zset.node(atRank: Int.random(in: 0..<zset.count, using: &generator)) {
                    elements.append((node.member, node.score))
                }
            }
        } else if requested >= zset.count {
            elements = rankRange(zset, 0, -1, reverse: false)
        } else if requested * 3 > zset.count {
            var all = rankRange(zset, 0, -1, reverse: false)
            all.shuffle(using: &generator)
            elements = Array(all.prefix(requested))
        } else {
            var chosen = Set<Int>()
            while chosen.count < requested { chosen.insert(Int.random(in: 0..<zset.count, using: &generator)) }
            for rank in chosen {
                if let node = zset.node(atRank: rank) { elements.append((node.member, node.score)) }
            }
        }
        writeElements(elements, withScores: withScores, nested: nested, &reply)
    }

    // MARK: ZUNION / ZINTER / ZDIFF / ZINTERCARD

    enum SetOperation { case union, intersection, difference, intersectionCardinality }
    enum Aggregate { case sum, min, max }

    /// One input of a set operation: a sorted set, a plain set (scores 1) or a missing key (empty).
    enum Input {
        case sorted(SortedSetValue)
        case plain(SetValue)
        case empty

        var count: Int {
            switch self {
            case .sorted(let zset): return zset.count
            case .plain(let set): return set.members.count
            case .empty: return 0
            }
        }

        func score(of member: CompactBytes) -> Double? {
            switch self {
            case .sorted(let zset): return zset.score(of: member)
            case .plain(let set): return set.members.contains(member) ? 1 : nil
            case .empty: return nil
            }
        }

        func forEach(_ body: (CompactBytes, Double) -> Void) {
            switch self {
            case .sorted(let zset):
                var node = zset.order.first
                while let current = node {
                    body(current.member, current.score)
                    node = current.next
                }
            case .plain(let set):
                for member in set.members { body(member, 1) }
            case .empty:
                break
            }
        }
    }

    @inline(__always)
    static func weighted(_ score: Double, _ weight: Double) -> Double {
        let value = score * weight
        return value.isNaN ? 0 : value
    }

    @inline(__always)
    static func combine(_ a: Double, _ b: Double, _ aggregate: Aggregate) -> Double {
        switch aggregate {
        case .sum:
            let value = a + b
            return value.isNaN ? 0 : value
        case .min: return Swift.min(a, b)
        case .max: return Swift.max(a, b)
        }
    }

    static func setOperation(
        _ context: inout CommandContext, _ reply: inout ReplyWriter, _ operation: SetOperation, name: String, destination: Int?
    ) throws(CommandError) {
        let arguments = context.arguments
        let countIndex = destination == nil ? 1 : 2
        let keyCount = try context.integer(countIndex)
        guard keyCount >= 1 else { throw CommandError("at least 1 input key is needed for '\(name)' command") }
        guard keyCount <= arguments.count - countIndex - 1 else { throw .syntax }
        var inputs: [Input] = []
        inputs.reserveCapacity(keyCount)
        for keyIndex in (countIndex + 1)...(countIndex + keyCount) {
            switch context.db.value(context.key(keyIndex)) {
            case nil: inputs.append(.empty)
            case .sortedSet(let zset)?: inputs.append(.sorted(zset))
            case .set(let set)?: inputs.append(.plain(set))
            default: throw .wrongType
            }
        }
        var weights = [Double](repeating: 1, count: keyCount)
        var aggregate = Aggregate.sum
        var withScores = false
        var limit = 0
        var index = countIndex + keyCount + 1
        while index < arguments.count {
            let remaining = arguments.count - index - 1
            let setAlgebra = operation == .union || operation == .intersection
            if setAlgebra && arguments.matches(index, "weights") && remaining >= keyCount {
                for offset in 0..<keyCount {
                    guard let weight = arguments.withBytes(index + 1 + offset, { SortedSetScoreRange.parseScore($0) }) else {
                        throw CommandError("weight value is not a float")
                    }
                    weights[offset] = weight
                }
                index += keyCount
            } else if setAlgebra && arguments.matches(index, "aggregate") && remaining >= 1 {
                if arguments.matches(index + 1, "sum") { aggregate = .sum }
                else if arguments.matches(index + 1, "min") { aggregate = .min }
                else if arguments.matches(index + 1, "max") { aggregate = .max }
                else { throw .syntax }
                index += 1
            } else if operation == .intersectionCardinality && arguments.matches(index, "limit") && remaining >= 1 {
                guard let parsed = arguments.integer(index + 1), parsed >= 0 else { throw CommandError("LIMIT can't be negative") }
                limit = parsed
                index += 1
            } else if destination == nil && operation != .intersectionCardinality && arguments.matches(index, "withscores") {
                withScores = true
            } else {
                throw .syntax
            }
            index += 1
        }

        // Smallest inputs first, as redis does (weights travel with their inputs).
        var order = Array(0..<keyCount)
        if operation != .difference {
            order.sort { inputs[$0].count < inputs[$1].count || (inputs[$0].count == inputs[$1].count && $0 < $1) }
        }
        var result: [CompactBytes: Double] = [:]
        switch operation {
        case .union:
            for position in order {
                let weight = weights[position]
                inputs[position].forEach { member, score in
                    let value = weighted(score, weight)
                    if let existing = result[member] {
                        result[member] = combine(existing, value, aggregate)
                    } else {
                        result[member] = value
                    }
                }
            }
        case .intersection, .intersectionCardinality:
            let smallest = order[0]
            var cardinality = 0
            var done = false
            inputs[smallest].forEach { member, score in
                guard !done else { return }
                var value = weighted(score, weights[smallest])
                for position in order.dropFirst() {
                    guard let other = inputs[position].score(of: member) else { return }
                    value = combine(value, weighted(other, weights[position]), aggregate)
                }
                if operation == .intersectionCardinality {
                    cardinality += 1
                    if limit > 0 && cardinality >= limit { done = true }
                } else {
                    result[member] = value
                }
            }
            if operation == .intersectionCardinality {
                reply.integer(cardinality)
                return
            }
        case .difference:
            inputs[0].forEach { member, score in
                for position in 1..<keyCount where inputs[position].score(of: member) != nil { return }
                result[member] = score
            }
        }
        let zset = SortedSetValue()
        for (member, score) in result { zset.add(member, score: score) }
        if let destination {
            let event: StaticString = switch operation {
            case .union: "zunionstore"
            case .intersection, .intersectionCardinality: "zinterstore"
            case .difference: "zdiffstore"
            }
            store(zset, at: destination, &context, event: event)
            reply.integer(zset.count)
        } else {
            writeElements(rankRange(zset, 0, -1, reverse: false), withScores: withScores,
                          nested: reply.protocolVersion == .v3, &reply)
        }
    }

    // MARK: ZSCAN

    /// An order-preserving map of scores to integers (negative scores have all bits flipped, others the sign bit).
    static func cursorKey(of score: Double) -> UInt64 {
        let bits = score.bitPattern
        return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
    }

    /// The inverse of ``cursorKey(of:)``.
    static func scoreFromCursorKey(_ key: UInt64) -> Double {
        Double(bitPattern: key & (1 << 63) != 0 ? key & ~(1 << 63) : ~key)
    }

    /// ZSCAN. Small sets (≤ 128 members, redis's listpack size) come back whole with cursor 0. Larger ones are walked
    /// in (score, member) order; the cursor is the order-preserving bit pattern of the last score returned, plus 1,
    /// and a page never ends inside a run of equal scores, so the next page starts at the first higher score. Every
    /// member present for the whole scan with an unchanged score is returned; a member whose score drops below the
    /// cursor mid-scan may be missed (redis's hash-table cursor has no such case).
    static func scan(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let options = try ScanOptions.parse(context.arguments, cursorIndex: 2, allowType: false)
        var found: [Element] = []
        var next: UInt64 = 0
        if let zset = try read(context, 1) {
            let small = zset.count <= 128
            var node: SortedSetNode?
            if small || options.cursor == 0 {
                node = zset.order.first
            } else {
                let last = scoreFromCursorKey(options.cursor - 1)
                node = zset.order.firstNode(where: { $0.score > last })?.node
            }
            var visited = 0
            var lastScore = 0.0
            while let current = node {
                if !small && visited >= options.count && current.score != lastScore { break }
                if options.matches(current.member) { found.append((current.member, current.score)) }
                lastScore = current.score
                visited += 1
                node = current.next
            }
            if node != nil { next = cursorKey(of: lastScore) + 1 }
        }
        reply.arrayHeader(2)
        reply.bulk(String(next))
        reply.arrayHeader(found.count * 2)
        for element in found {
            element.member.withBytes { reply.bulk($0) }
            reply.bulk(RESPNumberFormat.double(element.score))
        }
    }
}
