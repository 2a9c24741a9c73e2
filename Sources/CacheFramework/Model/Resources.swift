// Mesos resources: `Resource` in the proto's JSON shape (SCALAR, RANGES, SET), range arithmetic for port ranges,
// and `ResourceQuantities`, the flat form placement works on.

/// The value type of a resource (`Value.Type` in mesos.proto).
public enum ResourceValueType: String, Codable, Sendable {
    case scalar = "SCALAR"
    case ranges = "RANGES"
    case set = "SET"
    case text = "TEXT"
}

/// A scalar value (`Value.Scalar`).
public struct ScalarValue: Hashable, Codable, Sendable {
    /// The amount.
    public var value: Double
    /// Creates a scalar.
    public init(value: Double) { self.value = value }
}

/// An inclusive range of integers (`Value.Range`), such as ports 31000–31999.
public struct ValueRange: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The first value, inclusive.
    public var begin: UInt64
    /// The last value, inclusive.
    public var end: UInt64
    /// Creates the range `begin...end`; `begin` must not exceed `end`.
    public init(begin: UInt64, end: UInt64) {
        precondition(begin <= end, "a range's begin (\(begin)) must not exceed its end (\(end))")
        self.begin = begin
        self.end = end
    }
    /// How many values the range holds.
    public var count: UInt64 { end - begin + 1 }
    public var description: String { "[\(begin)-\(end)]" }
}

/// A set of disjoint, sorted, non-adjacent ranges (`Value.Ranges`) with the arithmetic port assignment needs.
///
/// Encodes as `{"range": [{"begin": …, "end": …}]}` like the proto.
public struct RangeSet: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The normalized ranges: sorted by `begin`, disjoint and not adjacent.
    public private(set) var ranges: [ValueRange]

    enum CodingKeys: String, CodingKey { case ranges = "range" }

    /// Creates a normalized set from any ranges (overlapping or adjacent ranges are merged).
    public init(_ ranges: [ValueRange] = []) {
        self.ranges = RangeSet.normalize(ranges)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(try container.decodeIfPresent([ValueRange].self, forKey: .ranges) ?? [])
    }

    /// How many values the set holds.
    public var count: UInt64 { ranges.reduce(0) { $0 + $1.count } }
    /// Whether the set holds no value.
    public var isEmpty: Bool { ranges.isEmpty }

    /// Whether `value` is in the set.
    public func contains(_ value: UInt64) -> Bool {
        ranges.contains { $0.begin <= value && value <= $0.end }
    }

    /// Whether every value of `other` is in this set.
    public func contains(_ other: RangeSet) -> Bool {
        other.subtracting(self).isEmpty
    }

    /// The values of this set that are not in `other`.
    public func subtracting(_ other: RangeSet) -> RangeSet {
        var result: [ValueRange] = []
        var otherIndex = 0
        for range in ranges {
            var begin = range.begin
            var exhausted = false
            while otherIndex < other.ranges.count && other.ranges[otherIndex].end < begin { otherIndex += 1 }
            var index = otherIndex
            while index < other.ranges.count && other.ranges[index].begin <= range.end {
                let cut = other.ranges[index]
                if cut.begin > begin { result.append(ValueRange(begin: begin, end: cut.begin - 1)) }
                if cut.end >= range.end {
                    exhausted = true
                    break
                }
                begin = max(begin, cut.end + 1)
                index += 1
            }
            if !exhausted { result.append(ValueRange(begin: begin, end: range.end)) }
        }
        var set = RangeSet()
        set.ranges = result
        return set
    }

    /// The union of this set and `other`.
    public func union(_ other: RangeSet) -> RangeSet { RangeSet(ranges + other.ranges) }

    /// Removes and returns the `count` lowest values, or returns `nil` (and changes nothing) if the set is smaller.
    public mutating func takeLowest(_ count: Int) -> [UInt64]? {
        guard count > 0 else { return [] }
        var taken: [UInt64] = []
        taken.reserveCapacity(count)
        var remaining = UInt64(count)
        var index = 0
        while remaining > 0 && index < ranges.count {
            let range = ranges[index]
            let take = min(remaining, range.count)
            for value in range.begin..<(range.begin + take) { taken.append(value) }
            remaining -= take
            index += 1
        }
        guard remaining == 0 else { return nil }
        var rest = Array(ranges[(index - 1)...])
        let lastTaken = taken[taken.count - 1]
        if lastTaken == rest[0].end {
            rest.removeFirst()
        } else {
            rest[0].begin = lastTaken + 1
        }
        ranges = rest
        return taken
    }

    /// The set holding exactly `values`.
    public static func of(_ values: [UInt64]) -> RangeSet {
        RangeSet(values.map { ValueRange(begin: $0, end: $0) })
    }

    public var description: String { ranges.map(\.description).joined(separator: ",") }

    private static func normalize(_ input: [ValueRange]) -> [ValueRange] {
        guard input.count > 1 else { return input }
        let sorted = input.sorted { $0.begin < $1.begin }
        var merged: [ValueRange] = [sorted[0]]
        for range in sorted.dropFirst() {
            let last = merged[merged.count - 1]
            if last.end == UInt64.max || range.begin <= last.end + 1 {
                merged[merged.count - 1].end = max(last.end, range.end)
            } else {
                merged.append(range)
            }
        }
        return merged
    }
}

/// A set of strings (`Value.Set`).
public struct SetValue: Hashable, Codable, Sendable {
    /// The members.
    public var item: [String]
    /// Creates a set value.
    public init(item: [String]) { self.item = item }
}

/// One resource of an offer or a task (`Resource` in mesos.proto), such as `cpus`, `mem` (MB), `disk` (MB) or
/// `ports` (a RANGES resource).
public struct Resource: Hashable, Codable, Sendable {
    /// The resource name: `cpus`, `mem`, `disk`, `ports`, …
    public var name: String
    /// Which of the value fields is set.
    public var type: ResourceValueType
    /// The amount of a SCALAR resource.
    public var scalar: ScalarValue?
    /// The ranges of a RANGES resource.
    public var ranges: RangeSet?
    /// The members of a SET resource.
    public var set: SetValue?
    /// The role the resource is reserved for (`*` or absent: unreserved). Kept for the Mesos backend.
    public var role: String?

    /// A SCALAR resource.
    public static func scalar(_ name: String, _ value: Double, role: String? = nil) -> Resource {
        Resource(name: name, type: .scalar, scalar: ScalarValue(value: value), ranges: nil, set: nil, role: role)
    }

    /// A RANGES resource.
    public static func ranges(_ name: String, _ ranges: RangeSet, role: String? = nil) -> Resource {
        Resource(name: name, type: .ranges, scalar: nil, ranges: ranges, set: nil, role: role)
    }
}

/// The well-known resource kinds placement reasons about.
public enum ResourceKind: String, Hashable, Codable, Sendable, CustomStringConvertible {
    case cpus
    case mem
    case disk
    case ports
    public var description: String { rawValue }
}

/// The flat quantities of the resources a task needs or an offer holds: what placement does arithmetic on.
public struct ResourceQuantities: Hashable, Codable, Sendable {
    /// CPU shares.
    public var cpus: Double
    /// Memory in MB (Mesos' unit for `mem`).
    public var memMB: Double
    /// Disk in MB.
    public var diskMB: Double
    /// Port ranges (in an offer) — for a request, see `PlacementRequest.portCount`.
    public var ports: RangeSet

    /// Creates quantities.
    public init(cpus: Double = 0, memMB: Double = 0, diskMB: Double = 0, ports: RangeSet = RangeSet()) {
        self.cpus = cpus
        self.memMB = memMB
        self.diskMB = diskMB
        self.ports = ports
    }

    /// Sums the `cpus`, `mem`, `disk` and `ports` entries of Mesos resources; other names are ignored.
    public init(_ resources: [Resource]) {
        self.init()
        for resource in resources {
            switch resource.name {
            case "cpus": cpus += resource.scalar?.value ?? 0
            case "mem": memMB += resource.scalar?.value ?? 0
            case "disk": diskMB += resource.scalar?.value ?? 0
            case "ports": ports = ports.union(resource.ranges ?? RangeSet())
            default: break
            }
        }
    }

    /// These quantities as Mesos resources (zero scalars and empty ranges are left out).
    public var resources: [Resource] {
        var result: [Resource] = []
        if cpus > 0 { result.append(.scalar("cpus", cpus)) }
        if memMB > 0 { result.append(.scalar("mem", memMB)) }
        if diskMB > 0 { result.append(.scalar("disk", diskMB)) }
        if !ports.isEmpty { result.append(.ranges("ports", ports)) }
        return result
    }
}
