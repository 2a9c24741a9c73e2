// Slot split, spec validation and the heal decision.

import CacheFramework
import Testing

struct ClusterPlanTests {
    @Test(arguments: [1, 3, 7, 16, 100])
    func slotsCoverAllHashSlotsEvenly(shards: Int) {
        let ranges = (0..<shards).map { ClusterPlan.slots(shard: $0, of: shards) }
        #expect(ranges.first?.first == 0)
        #expect(ranges.last?.last == 16383)
        for (left, right) in zip(ranges, ranges.dropFirst()) { #expect(left.last + 1 == right.first) }
        let sizes = ranges.map { $0.last - $0.first + 1 }
        #expect(sizes.max()! - sizes.min()! <= 1)
    }

    @Test func oneSplitEverywhereAsRedisCliAssignsIt() {
        #expect(ClusterPlan.slotRanges(shardCount: 3).map(\.description) == ["0-5460", "5461-10922", "10923-16383"])
        for shards in [1, 2, 3, 5, 6, 7, 16, 100, 1000, 16384] {
            #expect(ClusterPlan.slotRanges(shardCount: shards).map(\.closedRange) == SlotTopology.evenSlotRanges(shardCount: shards))
            // redis-cli's loop, accumulated as it does it.
            let perShard = Double(16384) / Double(shards)
            var first = 0
            var cursor = 0.0
            var expected: [ClosedRange<Int>] = []
            for index in 0..<shards {
                var last = Int((cursor + perShard - 1).rounded())
                if last > 16383 || index == shards - 1 { last = 16383 }
                if last < first { last = first }
                expected.append(first...last)
                first = last + 1
                cursor += perShard
            }
            #expect(SlotTopology.evenSlotRanges(shardCount: shards) == expected, "\(shards) shards")
        }
    }

    @Test func specValidationSaysWhatToChange() {
        #expect(throws: ClusterSpecError.invalidName("a b")) {
            try ClusterSpec(name: "a b", shardCount: 1, replicasPerShard: 0, memoryMBPerNode: 64).validate()
        }
        #expect(throws: ClusterSpecError.secureReplicationUnsupported(.redisServer)) {
            try ClusterSpec(name: "r", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 64, engine: .redisServer)
                .validate()
        }
        let spec = ClusterSpec(name: "ok", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 64)
        #expect(spec.secureReplication)
        #expect(ClusterPlan.memberSlots(of: spec).count == 6)
    }

    @Test func healPromotesTheHighestOffsetAndPrefersReplicasThatAnswered() {
        let decision = HealDecision.decide(
            lostWasPrimary: true,
            survivingReplicas: [(TaskID("a"), offset: 10), (TaskID("b"), offset: nil), (TaskID("c"), offset: 42)]
        )
        #expect(decision == .promote(newPrimary: TaskID("c"), repoint: [TaskID("a"), TaskID("b")]))
        #expect(HealDecision.decide(lostWasPrimary: false, survivingReplicas: [(TaskID("a"), offset: 1)]) == .replace)
        #expect(HealDecision.decide(lostWasPrimary: true, survivingReplicas: []) == .replace)
    }
}
