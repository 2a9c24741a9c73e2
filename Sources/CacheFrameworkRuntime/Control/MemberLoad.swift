// How loaded a cache member is, read from INFO (memory and stats sections): what the autoscaling policy of a
// cluster (`AutoscalingPolicy`) measures on each primary.

public import CacheFramework

/// One member's load figures.
public struct MemberLoad: Hashable, Sendable {
    /// `used_memory` in bytes.
    public var usedMemory: UInt64
    /// `maxmemory` in bytes (0: no limit).
    public var maxMemory: UInt64
    /// `instantaneous_ops_per_sec`.
    public var opsPerSecond: Double

    /// Creates load figures.
    public init(usedMemory: UInt64, maxMemory: UInt64, opsPerSecond: Double) {
        self.usedMemory = usedMemory
        self.maxMemory = maxMemory
        self.opsPerSecond = opsPerSecond
    }

    /// The value `metric` compares; nil for a memory share without a memory limit.
    public func value(of metric: AutoscalingPolicy.Metric) -> Double? {
        switch metric {
        case .memory: maxMemory == 0 ? nil : Double(usedMemory) / Double(maxMemory)
        case .ops: opsPerSecond
        }
    }

    /// Parses the text of `INFO memory` + `INFO stats` (redis field names); nil when `used_memory` is missing.
    public static func parse(_ text: String) -> MemberLoad? {
        var fields: [Substring: Substring] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...]
        }
        guard let used = fields["used_memory"].flatMap({ UInt64($0) }) else { return nil }
        return MemberLoad(
            usedMemory: used, maxMemory: fields["maxmemory"].flatMap { UInt64($0) } ?? 0,
            opsPerSecond: fields["instantaneous_ops_per_sec"].flatMap { Double($0) } ?? 0)
    }
}

extension CacheNodeControl {
    /// Default for controls that cannot read INFO: refuses.
    public func memberLoad(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> MemberLoad {
        throw NodeControlError(message: "\(endpoint) cannot be asked for its load by this control")
    }
}

extension RESPNodeControl {
    /// `INFO memory` and `INFO stats` in one call (`INFO` with several sections, as redis 7 accepts).
    public func memberLoad(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> MemberLoad {
        let reply = try await command(["INFO", "memory", "stats"], to: endpoint)
        guard case .bulk(let text?) = reply, let load = MemberLoad.parse(text) else {
            throw NodeControlError(message: "\(endpoint.hostname):\(endpoint.port) answered INFO memory stats with \(reply)")
        }
        return load
    }
}
