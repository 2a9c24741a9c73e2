// The scheduler's slot map: redis-cli's even split, the consistency checks nodes would otherwise refuse a push
// for, and the CLUSTER TOPOLOGY SET wire form.
import CacheFramework
import Testing

struct SlotTopologyTests {
    @Test func evenSplitMatchesRedisCliCreate() {
        #expect(SlotTopology.evenSlotRanges(shardCount: 3) == [0...5460, 5461...10922, 10923...16383])
        #expect(SlotTopology.evenSlotRanges(shardCount: 1) == [0...16383])
        let ranges = SlotTopology.evenSlotRanges(shardCount: 7)
        #expect(ranges.reduce(0) { $0 + $1.count } == 16384)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound + 1 == $1.lowerBound })
    }

    @Test func payloadIsClusterNodesLinesAndProblemsAreFound() {
        let a = SlotTopology.Member(nodeID: String(repeating: "a", count: 40), host: "10.0.0.1", port: 7000)
        let b = SlotTopology.Member(nodeID: String(repeating: "b", count: 40), host: "10.0.0.2", port: 7001)
        let r = SlotTopology.Member(nodeID: String(repeating: "c", count: 40), host: "10.0.0.3", port: 7002, busPort: 7102)
        var topology = SlotTopology(epoch: 4, shards: [
            .init(primary: a, replicas: [r], slots: [0...8191]), .init(primary: b, slots: [8192...16382, 16383...16383]),
        ])
        #expect(topology.problems.isEmpty)
        #expect(topology.payload == """
            \(a.nodeID) 10.0.0.1:7000@17000 master - 0 0 1 connected 0-8191
            \(r.nodeID) 10.0.0.3:7002@7102 slave \(a.nodeID) 0 0 1 connected
            \(b.nodeID) 10.0.0.2:7001@17001 master - 0 0 2 connected 8192-16382 16383
            """)
        #expect(topology.command.prefix(4) == ["CLUSTER", "TOPOLOGY", "SET", "4"])
        topology.shards[1].slots = [8000...16383]
        #expect(topology.problems.contains("slot 8000 is served by shards 0 and 1"))
        topology.shards[1].slots = [9000...16383]
        #expect(topology.problems == ["808 slots are not served by any shard"])
    }
}
