// SORT and SORT_RO (redis sort.c): the elements of a list, set or sorted set, sorted numerically or (ALPHA) by bytes,
// by their own value or by keys a BY pattern names (`weight_*`, `hash_*->field`), optionally not sorted at all (a BY
// pattern without `*`), cut by LIMIT, mapped through GET patterns (`#` is the element itself), and returned or
// stored as a list (STORE). BY and GET read keys the command line does not name, so SORT locks the whole keyspace
// (as KEYS does); redis refuses those patterns in cluster mode, and so does cache-node.
import CacheStore
import Foundation
import RESPServer

extension CommandTable {
    static let sortCommands: [CommandSpec] = [
        // SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA]
        //   [STORE destination]
        CommandSpec("sort", arity: -2, flags: [.write, .denyOOM, .wholeKeyspace], keys: .custom(SortFamily.keyPositions),
                    group: .generic, summary: "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.") {
            context, reply throws(CommandError) in
            try SortFamily.sort(&context, &reply, readOnly: false)
        },
        // SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA]
        CommandSpec("sort_ro", arity: -2, flags: [.readonly, .wholeKeyspace], keys: .first, group: .generic,
                    summary: "Returns the sorted elements of a list, a set, or a sorted set.", since: "7.0.0") {
            context, reply throws(CommandError) in
            try SortFamily.sort(&context, &reply, readOnly: true)
        },
    ]
}

/// SORT's implementation.
enum SortFamily {
    /// The source key, and the STORE destination if there is one: the last STORE's, the one SORT uses (for cluster
    /// routing and COMMAND GETKEYS).
    @Sendable static func keyPositions(_ arguments: CommandArguments) -> [Int] {
        var positions = arguments.count > 1 ? [1] : []
        var store: Int?
        var index = 2
        while index < arguments.count {
            if arguments.matches(index, "store") && index + 1 < arguments.count {
                store = index + 1
                index += 2
            } else if arguments.matches(index, "limit") {
                index += 3
            } else if arguments.matches(index, "by") || arguments.matches(index, "get") {
                index += 2
            } else {
                index += 1
            }
        }
        if let store { positions.append(store) }
        return positions
    }

    private struct Item {
        var element: CompactBytes
        var score = 0.0
        /// ALPHA BY: the weight key's value (`nil` when it is missing, which sorts first).
        var weight: CompactBytes?
    }

    static func sort(_ context: inout CommandContext, _ reply: inout ReplyWriter, readOnly: Bool) throws(CommandError) {
        let arguments = context.arguments
        var descending = false, alpha = false, dontSort = false
        var limitStart = 0, limitCount = -1
        var sortBy: CompactBytes?
        var store: KeyRef?
        var storeIndex = 0
        var getPatterns: [CompactBytes] = []
        let clustered = context.node.cluster != nil
        var index = 2
        while index < arguments.count {
            let remaining = arguments.count - index - 1
            if arguments.matches(index, "asc") {
                descending = false
            } else if arguments.matches(index, "desc") {
                descending = true
            } else if arguments.matches(index, "alpha") {
                alpha = true
            } else if arguments.matches(index, "limit") && remaining >= 2 {
                guard let start = arguments.integer(index + 1), let count = arguments.integer(index + 2) else { throw .notInteger }
                (limitStart, limitCount) = (start, count)
                index += 2
            } else if !readOnly && arguments.matches(index, "store") && remaining >= 1 {
                store = context.key(index + 1)
                storeIndex = index + 1
                index += 1
            } else if arguments.matches(index, "by") && remaining >= 1 {
                let pattern = context.bytes(index + 1)
                sortBy = pattern
                if !pattern.withBytes({ $0.contains(UInt8(ascii: "*")) }) {
                    dontSort = true
                } else if clustered {
                    throw CommandError("BY option of SORT denied in Cluster mode.")
                }
                index += 1
            } else if arguments.matches(index, "get") && remaining >= 1 {
                if clustered { throw CommandError("GET option of SORT denied in Cluster mode.") }
                getPatterns.append(context.bytes(index + 1))
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        let db = context.db
        let source = db.value(context.key(1))
        if let source, source.type != .list && source.type != .set && source.type != .zset { throw .wrongType }
        // A set has no order of its own: when its elements are stored (and so replicated) or go to a script, sort them
        // anyway (redis sortCommandGeneric).
        if dontSort, case .set? = source, store != nil || context.fromScript {
            dontSort = false
            alpha = true
            sortBy = nil
        }
        let length: Int
        switch source {
        case .list(let list)?: length = list.count
        case .set(let set)?: length = set.count
        case .sortedSet(let zset)?: length = zset.count
        default: length = 0
        }
        // LIMIT, clamped as redis clamps it.
        var start = min(max(limitStart, 0), length)
        let count = min(max(limitCount, -1), length)
        var end = count < 0 ? length - 1 : start + count - 1
        if start >= length {
            start = length - 1
            end = length - 2
        }
        if end >= length { end = length - 1 }

        var items: [Item] = []
        switch source {
        case .list(let list)? where dontSort:
            if end >= start {
                for offset in 0...(end - start) {
                    items.append(Item(element: list.element(at: descending ? length - 1 - start - offset : start + offset)))
                }
                (start, end) = (0, end - start)
            }
        case .list(let list)?:
            items = (0..<length).map { Item(element: list.element(at: $0)) }
        case .set(let set)?:
            items = set.members.map { Item(element: $0) }
        case .sortedSet(let zset)? where dontSort:
            if end >= start {
                items = SortedSetFamily.rankRange(zset, start, end, reverse: descending).map { Item(element: $0.member) }
                (start, end) = (0, end - start)
            }
        case .sortedSet(let zset)?:
            items = SortedSetFamily.rankRange(zset, 0, length - 1, reverse: false).map { Item(element: $0.member) }
        default:
            break
        }

        if !dontSort {
            var conversionFailed = false
            for position in items.indices {
                let weight: CompactBytes
                if let sortBy {
                    guard let found = lookup(sortBy, element: items[position].element, db: db) else { continue }
                    weight = found
                } else {
                    weight = items[position].element
                }
                if alpha {
                    if sortBy != nil { items[position].weight = weight }
                } else if let score = parseScore(weight) {
                    items[position].score = score
                } else {
                    conversionFailed = true
                }
            }
            if conversionFailed { throw CommandError("One or more scores can't be converted into double") }
            let byPattern = sortBy != nil
            items.sort { a, b in
                var order: Int
                if !alpha {
                    order = a.score < b.score ? -1 : a.score > b.score ? 1 : compare(a.element, b.element)
                } else if byPattern {
                    switch (a.weight, b.weight) {
                    case (nil, nil): order = 0
                    case (nil, _): order = -1
                    case (_, nil): order = 1
                    case (let x?, let y?): order = compare(x, y)
                    }
                } else {
                    order = compare(a.element, b.element)
                }
                if descending { order = -order }
                return order < 0
            }
        }

        let selected = end >= start ? Array(items[start...end]) : []
        if let store {
            var stored: [CompactBytes] = []
            for item in selected {
                if getPatterns.isEmpty {
                    stored.append(item.element)
                } else {
                    for pattern in getPatterns { stored.append(lookup(pattern, element: item.element, db: db) ?? CompactBytes(bytes: [UInt8]())) }
                }
            }
            if stored.isEmpty {
                if db.delete(store) { context.notify(.generic, "del", argument: storeIndex) }
            } else {
                let list = ListValue()
                for element in stored { list.push(element, at: .tail) }
                db.set(store, .list(list))
                context.notify(.list, "sortstore", argument: storeIndex)
                context.signalReady(store)
            }
            reply.integer(stored.count)
            return
        }
        reply.arrayHeader(getPatterns.isEmpty ? selected.count : selected.count * getPatterns.count)
        for item in selected {
            if getPatterns.isEmpty {
                item.element.withBytes { reply.bulk($0) }
                continue
            }
            for pattern in getPatterns {
                if let value = lookup(pattern, element: item.element, db: db) {
                    value.withBytes { reply.bulk($0) }
                } else {
                    reply.null()
                }
            }
        }
    }

    private static func compare(_ a: CompactBytes, _ b: CompactBytes) -> Int {
        a.withBytes { x in b.withBytes { y in ByteOrder.compare(x, y) } }
    }

    /// A weight as redis reads it (`strtod` over the whole value; out of range or NaN refused).
    private static func parseScore(_ bytes: CompactBytes) -> Double? {
        var text = bytes.withBytes { Array($0) }
        guard !text.contains(0) else { return nil }
        text.append(0)
        return text.withUnsafeBufferPointer { buffer -> Double? in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            let value = strtod(base, &end)
            guard let end, end.pointee == 0, errno != ERANGE, !value.isNaN else { return nil }
            return value
        }
    }

    /// The value a BY or GET pattern names for `element` (redis lookupKeyByPattern): `#` is the element; the first
    /// `*` is replaced by it to name a string key, or a hash's field after `->`; `nil` when there is no `*`, the key
    /// is missing, or it holds another type.
    private static func lookup(_ pattern: CompactBytes, element: CompactBytes, db: Database) -> CompactBytes? {
        let patternBytes = pattern.withBytes { Array($0) }
        if patternBytes == [UInt8(ascii: "#")] { return element }
        guard let star = patternBytes.firstIndex(of: UInt8(ascii: "*")) else { return nil }
        var field: [UInt8]?
        var keyEnd = patternBytes.count
        if let arrow = findArrow(patternBytes, after: star), arrow + 2 < patternBytes.count {
            field = Array(patternBytes[(arrow + 2)...])
            keyEnd = arrow
        }
        let key = Array(patternBytes[..<star]) + element.withBytes { Array($0) } + Array(patternBytes[(star + 1)..<keyEnd])
        guard let value = key.withUnsafeBytes({ db.value(KeyRef($0)) }) else { return nil }
        if let field {
            guard case .hash(let hash) = value else { return nil }
            return hash.value(forField: CompactBytes(bytes: field))
        }
        return value.withStringBytes { CompactBytes($0) }
    }

    private static func findArrow(_ bytes: [UInt8], after star: Int) -> Int? {
        var index = star + 1
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "-") && bytes[index + 1] == UInt8(ascii: ">") { return index }
            index += 1
        }
        return nil
    }
}
