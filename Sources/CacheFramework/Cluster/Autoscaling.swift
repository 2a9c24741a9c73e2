// The optional autoscaling policy of a cache cluster and the pure decision it drives: add a shard when the
// primaries' mean used memory (share of maxmemory) or ops/s stays above a threshold for a sustain period, remove one
// when it stays below a lower threshold, never outside [minShards, maxShards] and never twice within a cooldown.
// The driver samples the members and feeds `ClusterAutoscaler`; the resharding itself is the ordinary scale path.

/// When a cluster adds or removes shards on its own.
public struct AutoscalingPolicy: Hashable, Codable, Sendable {
    /// What is measured on each primary; the policy compares the mean over the cluster's primaries.
    public enum Metric: String, Hashable, Codable, Sendable, CaseIterable {
        /// `used_memory / maxmemory` (0…1, can exceed 1 just before eviction).
        case memory
        /// `instantaneous_ops_per_sec`.
        case ops
    }

    /// The measured metric.
    public var metric: Metric
    /// Scale out when the mean stays above this (memory: a fraction such as 0.75; ops: operations per second).
    public var scaleOutAbove: Double
    /// Scale in when the mean stays below this (must be below `scaleOutAbove`; 0 never scales in).
    public var scaleInBelow: Double
    /// How long the mean must stay across a threshold before anything happens (one sample is not a trend).
    public var sustainSeconds: Double
    /// After a scaling action (or the cluster's creation) nothing else happens for this long.
    public var cooldownSeconds: Double
    /// The fewest shards the policy scales in to.
    public var minShards: Int
    /// The most shards the policy scales out to.
    public var maxShards: Int

    /// Creates a policy.
    public init(
        metric: Metric, scaleOutAbove: Double, scaleInBelow: Double, sustainSeconds: Double = 60,
        cooldownSeconds: Double = 300, minShards: Int = 1, maxShards: Int
    ) {
        self.metric = metric
        self.scaleOutAbove = scaleOutAbove
        self.scaleInBelow = scaleInBelow
        self.sustainSeconds = sustainSeconds
        self.cooldownSeconds = cooldownSeconds
        self.minShards = minShards
        self.maxShards = maxShards
    }

    /// Checks the policy against the cluster's current shard count.
    public func validate(shardCount: Int) throws(ClusterSpecError) {
        guard scaleOutAbove > 0, scaleInBelow >= 0, scaleInBelow < scaleOutAbove else {
            throw .invalidAutoscaling("scale-in threshold \(scaleInBelow) must be ≥ 0 and below the scale-out threshold \(scaleOutAbove)")
        }
        guard sustainSeconds >= 0, cooldownSeconds >= 0 else {
            throw .invalidAutoscaling("sustain (\(sustainSeconds) s) and cooldown (\(cooldownSeconds) s) cannot be negative")
        }
        guard minShards >= 1, minShards <= maxShards, maxShards <= ClusterPlan.slotCount else {
            throw .invalidAutoscaling("shard bounds \(minShards)…\(maxShards) must satisfy 1 ≤ min ≤ max ≤ \(ClusterPlan.slotCount)")
        }
        guard (minShards...maxShards).contains(shardCount) else {
            throw .invalidAutoscaling("the cluster's \(shardCount) shards lie outside the policy's bounds \(minShards)…\(maxShards)")
        }
    }
}

/// What a policy decided for one sample.
public enum AutoscalingDecision: Hashable, Sendable {
    /// Reshard to this many shards.
    case scale(toShards: Int, reason: String)
}

/// One cluster's autoscaling memory: since when the mean has been above or below its thresholds, and when the
/// last action happened. A pure value; the driver keeps one per cluster.
public struct ClusterAutoscaler: Hashable, Sendable {
    /// Since when every sample was above `scaleOutAbove` (nil: the last one was not).
    public private(set) var aboveSince: SchedulerTime?
    /// Since when every sample was below `scaleInBelow`.
    public private(set) var belowSince: SchedulerTime?
    /// When the policy last scaled, or when it started watching (the cooldown also covers a fresh cluster).
    public private(set) var lastActionAt: SchedulerTime

    /// Starts watching at `now`.
    public init(now: SchedulerTime) { lastActionAt = now }

    /// Feeds one sample: `mean` is the metric's mean over the primaries (nil when they could not all be read, which
    /// restarts the sustain periods), `shardCount` the cluster's current count; `busy` is true while the cluster is
    /// resharding or healing (samples are ignored then, and the sustain periods restart afterwards).
    public mutating func observe(
        mean: Double?, shardCount: Int, busy: Bool, policy: AutoscalingPolicy, now: SchedulerTime
    ) -> AutoscalingDecision? {
        guard !busy, let mean else {
            aboveSince = nil
            belowSince = nil
            return nil
        }
        if mean > policy.scaleOutAbove {
            aboveSince = aboveSince ?? now
            belowSince = nil
        } else if mean < policy.scaleInBelow {
            belowSince = belowSince ?? now
            aboveSince = nil
        } else {
            aboveSince = nil
            belowSince = nil
        }
        guard now.seconds - lastActionAt.seconds >= policy.cooldownSeconds else { return nil }
        let measured = "\(policy.metric.rawValue) mean \(Self.format(mean))"
        if let since = aboveSince, now.seconds - since.seconds >= policy.sustainSeconds, shardCount < policy.maxShards {
            return act(now, .scale(
                toShards: shardCount + 1,
                reason: "\(measured) above \(Self.format(policy.scaleOutAbove)) for \(Self.format(now.seconds - since.seconds)) s"))
        }
        if let since = belowSince, now.seconds - since.seconds >= policy.sustainSeconds, shardCount > policy.minShards {
            return act(now, .scale(
                toShards: shardCount - 1,
                reason: "\(measured) below \(Self.format(policy.scaleInBelow)) for \(Self.format(now.seconds - since.seconds)) s"))
        }
        return nil
    }

    private mutating func act(_ now: SchedulerTime, _ decision: AutoscalingDecision) -> AutoscalingDecision {
        lastActionAt = now
        aboveSince = nil
        belowSince = nil
        return decision
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
