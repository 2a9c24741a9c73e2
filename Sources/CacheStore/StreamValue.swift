// The stream type (redis t_stream.c): entries ordered by ID, each a list of field/value pairs, plus consumer
// groups with their pending-entries lists. Entries are kept in one ordered deque; the listpack "nodes" redis
// packs them into are modelled only by their counts (live entries, slots, bytes), because approximate trimming
// (`MAXLEN ~`, `MINID ~`) removes whole nodes and clients see the result: a trimmed length of 600 rather than
// 555 is redis's documented behaviour, so it is reproduced rather than improved on.
public import DequeModule

/// A stream entry ID: milliseconds and a sequence number, ordered as a pair.
public struct StreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// `0-0`.
    public static let zero = StreamID(milliseconds: 0, sequence: 0)
    /// The largest ID.
    public static let max = StreamID(milliseconds: .max, sequence: .max)

    public static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        lhs.milliseconds != rhs.milliseconds ? lhs.milliseconds < rhs.milliseconds : lhs.sequence < rhs.sequence
    }

    /// The next ID, or `nil` after ``max``.
    public var successor: StreamID? {
        if sequence < .max { return StreamID(milliseconds: milliseconds, sequence: sequence + 1) }
        if milliseconds < .max { return StreamID(milliseconds: milliseconds + 1, sequence: 0) }
        return nil
    }

    /// The previous ID, or `nil` before ``zero``.
    public var predecessor: StreamID? {
        if sequence > 0 { return StreamID(milliseconds: milliseconds, sequence: sequence - 1) }
        if milliseconds > 0 { return StreamID(milliseconds: milliseconds - 1, sequence: .max) }
        return nil
    }

    /// `ms-seq`, as replies show it.
    public var description: String { "\(milliseconds)-\(sequence)" }
}

/// One stream entry.
public struct StreamEntry: Sendable {
    public let id: StreamID
    /// Field, value, field, value…
    public let fieldsAndValues: [CompactBytes]

    public init(id: StreamID, fieldsAndValues: [CompactBytes]) {
        self.id = id
        self.fieldsAndValues = fieldsAndValues
    }

    /// Bytes this entry occupies in redis's listpack terms (its node-size accounting) and in our estimate.
    var encodedSize: Int { fieldsAndValues.reduce(8) { $0 + $1.count + 2 } }
}

/// A set of IDs kept in order (pending-entries lists), cheap to extend at either end.
public struct OrderedStreamIDs: Sendable {
    public private(set) var ids = Deque<StreamID>()

    public init() {}

    public var count: Int { ids.count }
    public var isEmpty: Bool { ids.isEmpty }

    /// The position of the first ID not less than `id`.
    public func lowerBound(_ id: StreamID) -> Int {
        var low = 0
        var high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < id { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public func contains(_ id: StreamID) -> Bool {
        let index = lowerBound(id)
        return index < ids.count && ids[index] == id
    }

    /// Adds `id`; returns whether it was new.
    @discardableResult
    public mutating func insert(_ id: StreamID) -> Bool {
        if let last = ids.last, last < id {
            ids.append(id)
            return true
        }
        let index = lowerBound(id)
        if index < ids.count && ids[index] == id { return false }
        ids.insert(id, at: index)
        return true
    }

    /// Removes `id`; returns whether it was there.
    @discardableResult
    public mutating func remove(_ id: StreamID) -> Bool {
        if ids.first == id {
            ids.removeFirst()
            return true
        }
        let index = lowerBound(id)
        guard index < ids.count && ids[index] == id else { return false }
        ids.remove(at: index)
        return true
    }
}

/// A consumer of a group.
public final class StreamConsumer {
    public let name: CompactBytes
    /// When the consumer last tried an interaction (XREADGROUP, XCLAIM, XAUTOCLAIM), unix ms.
    public var seenTime: Int64
    /// When the consumer last had a successful interaction (read or claimed entries), or -1 if never.
    public var activeTime: Int64
    /// The IDs pending for this consumer.
    public var pending = OrderedStreamIDs()

    public init(name: CompactBytes, seenTime: Int64, activeTime: Int64 = -1) {
        self.name = name
        self.seenTime = seenTime
        self.activeTime = activeTime
    }
}

/// A delivered but not yet acknowledged entry.
public final class PendingEntry {
    public var consumer: StreamConsumer
    /// Last delivery, unix ms.
    public var deliveryTime: Int64
    public var deliveryCount: Int

    public init(consumer: StreamConsumer, deliveryTime: Int64, deliveryCount: Int) {
        self.consumer = consumer
        self.deliveryTime = deliveryTime
        self.deliveryCount = deliveryCount
    }
}

/// A consumer group.
public final class StreamConsumerGroup {
    /// The last ID delivered to any consumer of the group (`>` reads after it).
    public var lastDeliveredID: StreamID
    /// The logical read counter (entries delivered since the stream's first ever entry), or -1 when unknown.
    public var entriesRead: Int64
    /// The pending-entries list, in ID order, and each pending entry's state.
    public var pendingIDs = OrderedStreamIDs()
    public var pending: [StreamID: PendingEntry] = [:]
    /// Consumers by name.
    public var consumers: [CompactBytes: StreamConsumer] = [:]

    public init(lastDeliveredID: StreamID, entriesRead: Int64) {
        self.lastDeliveredID = lastDeliveredID
        self.entriesRead = entriesRead
    }

    /// The consumer named `name`, created when missing (`created` says so), marked as seen at `now` (XREADGROUP,
    /// XCLAIM, XAUTOCLAIM: redis's seen-time is the last attempted interaction).
    public func seenConsumer(_ name: CompactBytes, at now: Int64) -> (consumer: StreamConsumer, created: Bool) {
        if let existing = consumers[name] {
            existing.seenTime = now
            return (existing, false)
        }
        let consumer = StreamConsumer(name: name, seenTime: now)
        consumers[name] = consumer
        return (consumer, true)
    }

    /// Consumers in name order (redis keeps them in a radix tree).
    public var consumersByName: [StreamConsumer] {
        consumers.values.sorted { CompactBytes.lexicographicallyPrecedes($0.name, $1.name) }
    }

    /// Adds a pending entry for `consumer` (replacing any owner it had).
    public func addPending(_ id: StreamID, consumer: StreamConsumer, deliveryTime: Int64, deliveryCount: Int) {
        if let existing = pending[id] {
            if existing.consumer !== consumer {
                existing.consumer.pending.remove(id)
                consumer.pending.insert(id)
                existing.consumer = consumer
            }
            existing.deliveryTime = deliveryTime
            existing.deliveryCount = deliveryCount
            return
        }
        pending[id] = PendingEntry(consumer: consumer, deliveryTime: deliveryTime, deliveryCount: deliveryCount)
        pendingIDs.insert(id)
        consumer.pending.insert(id)
    }

    /// Acknowledges `id`; returns whether it was pending.
    @discardableResult
    public func acknowledge(_ id: StreamID) -> Bool {
        guard let entry = pending.removeValue(forKey: id) else { return false }
        pendingIDs.remove(id)
        entry.consumer.pending.remove(id)
        return true
    }

    /// Removes a consumer and its pending entries; returns how many were pending.
    public func removeConsumer(_ name: CompactBytes) -> Int? {
        guard let consumer = consumers.removeValue(forKey: name) else { return nil }
        let count = consumer.pending.count
        for id in consumer.pending.ids {
            pending.removeValue(forKey: id)
            pendingIDs.remove(id)
        }
        return count
    }

    func duplicate() -> StreamConsumerGroup {
        let copy = StreamConsumerGroup(lastDeliveredID: lastDeliveredID, entriesRead: entriesRead)
        for (name, consumer) in consumers {
            copy.consumers[name] = StreamConsumer(name: name, seenTime: consumer.seenTime, activeTime: consumer.activeTime)
        }
        for id in pendingIDs.ids {
            guard let entry = pending[id], let owner = copy.consumers[entry.consumer.name] else { continue }
            copy.addPending(id, consumer: owner, deliveryTime: entry.deliveryTime, deliveryCount: entry.deliveryCount)
        }
        return copy
    }
}

/// How a trim is bounded.
public enum StreamTrimStrategy: Sendable, Equatable {
    /// Keep at most this many entries.
    case maximumLength(Int)
    /// Drop entries with smaller IDs.
    case minimumID(StreamID)
}

/// A stream.
public final class StreamValue {
    /// The entries, in ID order.
    public private(set) var entries = Deque<StreamEntry>()
    /// The listpack nodes redis would hold these entries in, oldest first.
    private var nodes = Deque<Node>()
    /// The largest ID ever added (or set by XSETID).
    public var lastID = StreamID.zero
    /// The largest ID ever deleted by XDEL (or set by XSETID).
    public var maximumDeletedID = StreamID.zero
    /// How many entries were ever added.
    public var entriesAdded: UInt64 = 0
    /// Consumer groups by name.
    public var groups: [CompactBytes: StreamConsumerGroup] = [:]
    /// Running estimate of heap bytes held by entries.
    private var entryBytes = 0

    private struct Node {
        var live: Int
        var slots: Int
        var bytes: Int
        var lastID: StreamID
    }

    public init() {}

    /// The number of entries.
    public var count: Int { entries.count }

    /// The first entry's ID, or 0-0 when empty (redis `first_id`).
    public var firstID: StreamID { entries.first?.id ?? .zero }

    /// The number of listpack nodes (XINFO `radix-tree-keys`).
    public var nodeCount: Int { nodes.count }

    /// Heap bytes held (estimate).
    public var memoryUsage: Int {
        var total = 96 + entryBytes + nodes.count * 32
        for group in groups.values {
            total += 96 + group.pending.count * 80 + group.consumers.count * 96
        }
        return total
    }

    /// Groups in name order.
    public var groupsByName: [(name: CompactBytes, group: StreamConsumerGroup)] {
        groups.sorted { CompactBytes.lexicographicallyPrecedes($0.key, $1.key) }.map { ($0.key, $0.value) }
    }

    // MARK: adding and removing

    /// Appends an entry whose ID is greater than ``lastID``, packing it into nodes of at most `nodeMaxEntries`
    /// entries and `nodeMaxBytes` bytes (0 = unlimited), as redis's streamAppendItem does.
    public func append(_ entry: StreamEntry, nodeMaxEntries: Int, nodeMaxBytes: Int) {
        precondition(entry.id > lastID, "stream IDs must grow")
        pack(entry, nodeMaxEntries: nodeMaxEntries, nodeMaxBytes: nodeMaxBytes)
        lastID = entry.id
        entriesAdded += 1
    }

    /// Restores an entry from a snapshot: IDs must grow; ``lastID`` and ``entriesAdded`` are restored separately.
    public func restore(_ entry: StreamEntry, nodeMaxEntries: Int = 100, nodeMaxBytes: Int = 4096) {
        precondition(entries.last.map { $0.id < entry.id } ?? true, "stream IDs must grow")
        pack(entry, nodeMaxEntries: nodeMaxEntries, nodeMaxBytes: nodeMaxBytes)
    }

    private func pack(_ entry: StreamEntry, nodeMaxEntries: Int, nodeMaxBytes: Int) {
        let size = entry.encodedSize
        if var last = nodes.last,
            (nodeMaxBytes == 0 || last.bytes + size < nodeMaxBytes),
            (nodeMaxEntries == 0 || last.slots < nodeMaxEntries)
        {
            last.live += 1
            last.slots += 1
            last.bytes += size
            last.lastID = entry.id
            nodes[nodes.count - 1] = last
        } else {
            nodes.append(Node(live: 1, slots: 1, bytes: size, lastID: entry.id))
        }
        entries.append(entry)
        entryBytes += entryCost(entry)
    }

    private func entryCost(_ entry: StreamEntry) -> Int {
        entry.fieldsAndValues.reduce(40) { $0 + MemoryLayout<CompactBytes>.stride + $1.heapSize }
    }

    /// The position of the first entry with an ID not less than `id`.
    public func lowerBound(_ id: StreamID) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The entry with `id`, if present.
    public func entry(_ id: StreamID) -> StreamEntry? {
        let index = lowerBound(id)
        return index < entries.count && entries[index].id == id ? entries[index] : nil
    }

    /// Deletes the entry with `id` (XDEL); returns whether it existed.
    public func delete(_ id: StreamID) -> Bool {
        let index = lowerBound(id)
        guard index < entries.count, entries[index].id == id else { return false }
        entryBytes -= entryCost(entries[index])
        entries.remove(at: index)
        // The node holding it: the first whose last ID is not less than `id`.
        var low = 0
        var high = nodes.count
        while low < high {
            let middle = (low + high) / 2
            if nodes[middle].lastID < id { low = middle + 1 } else { high = middle }
        }
        if low < nodes.count {
            nodes[low].live -= 1
            if nodes[low].live == 0 { nodes.remove(at: low) }
        }
        if id > maximumDeletedID { maximumDeletedID = id }
        return true
    }

    /// Trims as redis's streamTrim does: whole nodes first; with `approximate` it stops at the first node it
    /// cannot drop whole, otherwise it removes single entries from it. `limit` (0 = none) bounds the entries
    /// removed. Returns how many entries were removed.
    public func trim(_ strategy: StreamTrimStrategy, approximate: Bool, limit: Int) -> Int {
        var deleted = 0
        while let node = nodes.first {
            if case .maximumLength(let maximum) = strategy, entries.count <= maximum { break }
            if limit > 0 && deleted + node.live > limit { break }
            let removeNode: Bool
            switch strategy {
            case .maximumLength(let maximum): removeNode = entries.count - node.live >= maximum
            case .minimumID(let minimum): removeNode = node.lastID < minimum
            }
            if removeNode {
                for _ in 0..<node.live { entryBytes -= entryCost(entries.removeFirst()) }
                nodes.removeFirst()
                deleted += node.live
                continue
            }
            if approximate { break }
            // Remove single entries from the front of this node.
            while nodes[0].live > 0, let first = entries.first {
                switch strategy {
                case .maximumLength(let maximum): if entries.count <= maximum { return deleted }
                case .minimumID(let minimum): if first.id >= minimum { return deleted }
                }
                entryBytes -= entryCost(entries.removeFirst())
                nodes[0].live -= 1
                deleted += 1
            }
            if nodes[0].live == 0 { nodes.removeFirst() }
            break
        }
        return deleted
    }

    // MARK: consumer groups and counters

    /// The ID's logical read counter (redis streamEstimateDistanceFromFirstEverEntry), or -1 when unknown.
    public func estimatedDistanceFromFirstEverEntry(_ id: StreamID) -> Int64 {
        if entriesAdded == 0 { return 0 }
        if entries.isEmpty && id <= lastID { return Int64(entriesAdded) }
        if id == lastID { return Int64(entriesAdded) }
        if id > lastID { return -1 }
        if maximumDeletedID == .zero || maximumDeletedID < firstID {
            if id < firstID { return Int64(entriesAdded) - Int64(entries.count) }
            if id == firstID { return Int64(entriesAdded) - Int64(entries.count) + 1 }
        }
        return -1
    }

    /// Whether a tombstone (an XDEL'd ID) may lie in `start...end` (redis streamRangeHasTombstones).
    public func rangeHasTombstones(from start: StreamID, to end: StreamID = .max) -> Bool {
        if entries.isEmpty || maximumDeletedID == .zero { return false }
        if firstID > maximumDeletedID { return false }
        return start <= maximumDeletedID && maximumDeletedID <= end
    }

    /// A group's lag (entries not yet delivered), or `nil` when it cannot be known.
    public func lag(of group: StreamConsumerGroup) -> Int64? {
        if entriesAdded == 0 { return 0 }
        if group.entriesRead != -1 && !rangeHasTombstones(from: group.lastDeliveredID) {
            return Int64(entriesAdded) - group.entriesRead
        }
        let read = estimatedDistanceFromFirstEverEntry(group.lastDeliveredID)
        return read == -1 ? nil : Int64(entriesAdded) - read
    }

    /// A deep copy (COPY).
    public func duplicate() -> StreamValue {
        let copy = StreamValue()
        copy.entries = entries
        copy.nodes = nodes
        copy.lastID = lastID
        copy.maximumDeletedID = maximumDeletedID
        copy.entriesAdded = entriesAdded
        copy.entryBytes = entryBytes
        for (name, group) in groups { copy.groups[name] = group.duplicate() }
        return copy
    }
}
