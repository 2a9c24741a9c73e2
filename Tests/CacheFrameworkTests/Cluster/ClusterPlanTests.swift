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
