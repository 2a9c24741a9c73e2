// Admission checks: a cluster that fits passes; one that does not says which resource is short and by how much.

import CacheFramework
import Testing

struct AdmissionCheckTests {
    func capacity(agents: Int, cpus: Double = 4, memMB: Double, ports: UInt64 = 100) -> [Offer] {
        (0..<agents).map {
            Offer(
                id: OfferID("o\($0)"), agentID: AgentID("a\($0)"), hostname: "h\($0)",
                resources: ResourceQuantities(
                    cpus: cpus, memMB: memMB, ports: RangeSet([ValueRange(begin: 31_000, end: 31_000 + ports - 1)])
                ).resources)
        }
    }

    @Test func aClusterThatFitsPasses() {
        let spec = ClusterSpec(name: "c", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 64, cpusPerNode: 0.5)
        let report = AdmissionCheck.check(spec, capacity: capacity(agents: 2, memMB: 1000))
        #expect(report.fits)
        #expect(report.missing.isEmpty)
    }

    @Test func missingMemoryIsReportedWithTheAmount() {
        // 4 shards × 2 members × 250 MB (200 MB + 25%) = 2000 MB; 2 agents × 500 MB = 1000 MB free.
        let spec = ClusterSpec(name: "big", shardCount: 4, replicasPerShard: 1, memoryMBPerNode: 200, cpusPerNode: 0.1)
        let report = AdmissionCheck.check(spec, capacity: capacity(agents: 2, memMB: 500))
        #expect(!report.fits)
        #expect(report.unplacedMembers == 4)
        #expect(report.missing == [.init(resource: "mem MB", needed: 2000, available: 1000, shortBy: 1000)])
        #expect(report.description.contains("mem MB: needs 2000, 1000 free, short by 1000"))
    }

    @Test func tooFewAgentsForTheReplicasIsReported() {
        let spec = ClusterSpec(name: "wide", shardCount: 1, replicasPerShard: 2, memoryMBPerNode: 16, cpusPerNode: 0.1)
        let report = AdmissionCheck.check(spec, capacity: capacity(agents: 2, memMB: 1000))
        #expect(!report.fits)
        #expect(report.missing == [.init(resource: "agents", needed: 3, available: 2, shortBy: 1)])
        #expect(report.description.contains("each shard needs 3 agents (one per member), 2 exist"))
    }

    @Test func fragmentationFallsBackToThePlacementExplanation() {
        // 2 × 100 MB free in all, but each member needs 80 MB and two agents hold 60 MB and 140 MB.
        let offers = [
            Offer(id: OfferID("o0"), agentID: AgentID("a0"), hostname: "h0", resources: ResourceQuantities(cpus: 1, memMB: 60, ports: RangeSet([ValueRange(begin: 1, end: 10)])).resources),
            Offer(id: OfferID("o1"), agentID: AgentID("a1"), hostname: "h1", resources: ResourceQuantities(cpus: 1, memMB: 140, ports: RangeSet([ValueRange(begin: 11, end: 20)])).resources),
        ]
        let spec = ClusterSpec(name: "frag", shardCount: 2, replicasPerShard: 0, memoryMBPerNode: 64, cpusPerNode: 0.1)
        let report = AdmissionCheck.check(spec, capacity: offers)
        #expect(!report.fits)
        #expect(report.missing.isEmpty)
        #expect(report.firstShortfall != nil)
        #expect(report.description.contains("insufficient mem"))
    }
}
