// The autoscaling policy as a pure value on an injected timeline: sustained load scales out by one shard, a single
// spike does not, the cooldown holds off a second action, low load scales in, the bounds hold, busy clusters and
// unreadable samples restart the sustain periods; and the spec refuses policies that cannot work.

import CacheFramework
import Testing

struct AutoscalingTests {
    let policy = AutoscalingPolicy(
        metric: .memory, scaleOutAbove: 0.75, scaleInBelow: 0.25, sustainSeconds: 30, cooldownSeconds: 120,
        minShards: 2, maxShards: 4)

    func t(_ seconds: Double) -> SchedulerTime { SchedulerTime(seconds: seconds) }

    /// Feeds `mean` every 10 s from `from` through `to` and returns the decisions with their times.
    func feed(
        _ autoscaler: inout ClusterAutoscaler, mean: Double?, from: Double, to: Double, shards: Int, busy: Bool = false
    ) -> [(Double, AutoscalingDecision)] {
        var decisions: [(Double, AutoscalingDecision)] = []
        for second in stride(from: from, through: to, by: 10) {
            if let decision = autoscaler.observe(mean: mean, shardCount: shards, busy: busy, policy: policy, now: t(second)) {
                decisions.append((second, decision))
            }
        }
        return decisions
    }

    @Test func sustainedLoadScalesOutOnceAfterTheCooldownAndTheSustainPeriod() {
        var autoscaler = ClusterAutoscaler(now: t(0))
        // Above the threshold from t=0: the creation's cooldown (120 s) holds it off until t=120.
        let decisions = feed(&autoscaler, mean: 0.9, from: 0, to: 130, shards: 2)
        #expect(decisions.count == 1)
        #expect(decisions.first?.0 == 120)
        guard case .scale(let shards, let reason)? = decisions.first?.1 else {
            Issue.record("no decision")
            return
        }
        #expect(shards == 3)
        #expect(reason.contains("memory mean 0.9 above 0.75"))
    }

    @Test func aSpikeShorterThanTheSustainPeriodDoesNothing() {
        var autoscaler = ClusterAutoscaler(now: t(-1000))
        #expect(feed(&autoscaler, mean: 0.9, from: 0, to: 20, shards: 2).isEmpty, "20 s above is not 30 s")
        #expect(feed(&autoscaler, mean: 0.5, from: 30, to: 30, shards: 2).isEmpty)
        // The period restarts: 30 more seconds above are needed.
        #expect(feed(&autoscaler, mean: 0.9, from: 40, to: 60, shards: 2).isEmpty)
        let decisions = feed(&autoscaler, mean: 0.9, from: 70, to: 70, shards: 2)
        #expect(decisions.map(\.0) == [70])
    }

    @Test func theCooldownHoldsOffTheNextActionAndTheBoundsHold() {
        var autoscaler = ClusterAutoscaler(now: t(-1000))
        #expect(feed(&autoscaler, mean: 0.9, from: 0, to: 30, shards: 2).map(\.0) == [30])
        // Still loaded on 3 shards: nothing until 120 s after the last action, then one more shard.
        let next = feed(&autoscaler, mean: 0.9, from: 40, to: 200, shards: 3)
        #expect(next.map(\.0) == [150])
        #expect(next.first?.1 == .scale(toShards: 4, reason: "memory mean 0.9 above 0.75 for 110 s"))
        // At the maximum: no further scale-out however long the load lasts.
        #expect(feed(&autoscaler, mean: 0.99, from: 210, to: 1000, shards: 4).isEmpty)
    }

    @Test func lowLoadScalesInDownToTheMinimum() {
        var autoscaler = ClusterAutoscaler(now: t(-1000))
        #expect(feed(&autoscaler, mean: 0.1, from: 0, to: 30, shards: 3).first?.1 == .scale(toShards: 2, reason: "memory mean 0.1 below 0.25 for 30 s"))
        #expect(feed(&autoscaler, mean: 0.1, from: 40, to: 1000, shards: 2).isEmpty, "2 is the minimum")
        // Between the thresholds nothing happens either way.
        var calm = ClusterAutoscaler(now: t(-1000))
        #expect(feed(&calm, mean: 0.5, from: 0, to: 1000, shards: 3).isEmpty)
    }

    @Test func busyClustersAndUnreadableSamplesRestartTheSustainPeriod() {
        var autoscaler = ClusterAutoscaler(now: t(-1000))
        #expect(feed(&autoscaler, mean: 0.9, from: 0, to: 20, shards: 2).isEmpty)
        // Resharding or healing at t=30: ignored, and the 20 s seen so far no longer count.
        #expect(feed(&autoscaler, mean: 0.9, from: 30, to: 30, shards: 2, busy: true).isEmpty)
        #expect(feed(&autoscaler, mean: 0.9, from: 40, to: 60, shards: 2).isEmpty)
        #expect(feed(&autoscaler, mean: nil, from: 70, to: 70, shards: 2).isEmpty, "a primary could not be read")
        #expect(feed(&autoscaler, mean: 0.9, from: 80, to: 110, shards: 2).map(\.0) == [110])
    }

    @Test func theSpecRefusesPoliciesThatCannotWork() {
        func spec(_ policy: AutoscalingPolicy, shards: Int = 2, engine: CacheEngine = .cacheNode) -> ClusterSpec {
            ClusterSpec(
                name: "a", shardCount: shards, replicasPerShard: 1, memoryMBPerNode: 64, engine: engine,
                secureReplication: false, autoscaling: policy)
        }
        #expect(throws: Never.self) { try spec(policy).validate() }
        var inverted = policy
        inverted.scaleInBelow = 0.8
        #expect(throws: ClusterSpecError.self) { try spec(inverted).validate() }
        var bounds = policy
        bounds.minShards = 5
        #expect(throws: ClusterSpecError.self) { try spec(bounds).validate() }
        #expect(throws: ClusterSpecError.invalidAutoscaling("the cluster's 8 shards lie outside the policy's bounds 2…4")) {
            try spec(policy, shards: 8).validate()
        }
        #expect(throws: ClusterSpecError.self) { try spec(policy, engine: .redisServer).validate() }
        var negative = policy
        negative.cooldownSeconds = -1
        #expect(throws: ClusterSpecError.self) { try spec(negative).validate() }
    }
}
