// The list operations (redis t_list.c listType*): pushes and pops at either end, ranges, positional access,
// insertion, removal and trimming. Every operation keeps `memoryUsage` right by accounting each element it adds
// or removes, so writers never need an O(n) recount.
import DequeModule

/// One end of a list: LEFT (head) or RIGHT (tail).
public enum ListEnd: Sendable, Hashable {
    case head
    case tail
}

extension ListValue {
    /// The number of elements.
    public var count: Int { items.count }

    /// The element at `position` (0 is the head; the position must be valid).
    public func element(at position: Int) -> CompactBytes { items[position] }

    /// Adds `member` at `end`.
    public func push(_ member: CompactBytes, at end: ListEnd) {
        switch end {
        case .head: items.prepend(member)
        case .tail: items.append(member)
        }
        account(member, sign: 1)
    }

    /// Removes and returns the element at `end`, or `nil` when empty.
    public func pop(from end: ListEnd) -> CompactBytes? {
        guard !items.isEmpty else { return nil }
        let member: CompactBytes
        switch end {
        case .head: member = items.removeFirst()
        case .tail: member = items.removeLast()
        }
        account(member, sign: -1)
        return member
    }

    /// Removes up to `count` elements from `end`, in the order they were popped.
    public func pop(_ count: Int, from end: ListEnd) -> [CompactBytes] {
        let taken = min(count, items.count)
        var result: [CompactBytes] = []
        result.reserveCapacity(taken)
        for _ in 0..<taken {
            guard let member = pop(from: end) else { break }
            result.append(member)
        }
        return result
    }

    /// The position of redis index `index` (negative counts from the tail), or `nil` when out of range.
    public func position(ofIndex index: Int) -> Int? {
        let position = index < 0 ? items.count + index : index
        return position >= 0 && position < items.count ? position : nil
    }

    /// Replaces the element at `position`.
    public func replace(at position: Int, with member: CompactBytes) {
        account(items[position], sign: -1)
        items[position] = member
        account(member, sign: 1)
    }

    /// Inserts `member` before or after the first element equal to `pivot`. Returns whether the pivot was found.
    public func insert(_ member: CompactBytes, after: Bool, pivot: CompactBytes) -> Bool {
        guard let position = items.firstIndex(of: pivot) else { return false }
        items.insert(member, at: after ? position + 1 : position)
        account(member, sign: 1)
        return true
    }

    /// Removes elements equal to `member`: the first `limit` from the head (`fromTail` false) or from the tail;
    /// a `limit` of 0 removes them all. Returns how many were removed.
    public func remove(_ member: CompactBytes, limit: Int, fromTail: Bool) -> Int {
        var matches = 0
        for element in items where element == member { matches += 1 }
        if matches == 0 { return 0 }
        let toRemove = limit == 0 ? matches : min(limit, matches)
        // Which matches (counted from the head) go: the first `toRemove`, or the last ones when from the tail.
        let firstRemoved = fromTail ? matches - toRemove : 0
        let lastRemoved = firstRemoved + toRemove
        var kept = Deque<CompactBytes>()
        kept.reserveCapacity(items.count - toRemove)
        var seen = 0
        for element in items {
            if element == member {
                defer { seen += 1 }
                if seen >= firstRemoved && seen < lastRemoved {
                    account(element, sign: -1)
                    continue
                }
            }
            kept.append(element)
        }
        items = kept
        return toRemove
    }

    /// Removes `head` elements from the head and `tail` elements from the tail.
    public func trim(head: Int, tail: Int) {
        let head = min(head, items.count)
        for _ in 0..<head { account(items.removeFirst(), sign: -1) }
        let tail = min(tail, items.count)
        for _ in 0..<tail { account(items.removeLast(), sign: -1) }
    }

    /// The positions a redis `start…stop` range covers (negative indices count from the tail, clamped as LRANGE
    /// does), or `nil` when the range is empty.
    public func range(start: Int, stop: Int) -> Range<Int>? {
        let length = items.count
        var start = start
        var stop = stop
        if start < 0 { start = length &+ start }
        if stop < 0 { stop = length &+ stop }
        if start < 0 { start = 0 }
        if start > stop || start >= length { return nil }
        if stop >= length { stop = length - 1 }
        return start..<(stop + 1)
    }
}
