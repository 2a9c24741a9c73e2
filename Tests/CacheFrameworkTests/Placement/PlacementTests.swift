// Properties of `Placement.place`: anti-affinity by agent and by failure domain, no over-commit, port assignment,
// spread versus bin-pack, and explanations for requests that do not fit.

import CacheFramework
import Testing

func makeOffer(
    _ index: Int,
    cpus: Double = 8,
    memMB: Double = 16_384,
    ports: ClosedRange<UInt64> = 31_000...31_099,
    zone: String? = nil,
    rack: String? = nil
) -> Offer {
    var attributes: [Attribute] = []
    if let zone { attributes.append(.text("zone", zone)) }
    if let rack { attributes.append(.text("rack", rack)) }
    return Offer(
        id: OfferID("offer-\(index)"),
        agentID: AgentID("agent-\(index)"),
        hostname: "host-\(index)",
        resources: [
            .scalar("cpus", cpus), .scalar("mem", memMB), .scalar("disk", 10_000),
            .ranges("ports", RangeSet([ValueRange(begin: ports.lowerBound, end: ports.upperBound)])),
        ],
        attributes: attributes
    )
}

func shardRequests(shards: Int, replicas: Int, memMB: Double = 1024, cpus: Double = 1) -> [PlacementRequest] {
    (0..<shards).flatMap { shard in
        (0..<replicas).map { replica in
            PlacementRequest(
                taskID: TaskID("c.s\(shard).r\(replica)"), group: "c/\(shard)", cpus: cpus, memMB: memMB, portCount: 2
            )
        }
    }
}

struct PlacementTests {
    @Test(arguments: PlacementStrategy.allCases)
    func replicasOfAShardNeverShareAnAgent(strategy: PlacementStrategy) {
        let offers = (0..<5).map { makeOffer($0) }
        let result = Placement.place(requests: shardRequests(shards: 8, replicas: 3), offers: offers, strategy: strategy)
        #expect(result.unplaced.isEmpty)
        #expect(result.assignments.count == 24)
        for (_, members) in Dictionary(grouping: result.assignments, by: \.request.group) {
            #expect(Set(members.map(\.agentID)).count == members.count)
        }
    }

    @Test func replicasGoToDifferentZonesWhenPossible() {
        let offers = (0..<9).map { makeOffer($0, zone: "z\($0 % 3)") }
        let result = Placement.place(requests: shardRequests(shards: 6, replicas: 3), offers: offers, strategy: .binPack)
        #expect(result.unplaced.isEmpty)
        for (_, members) in Dictionary(grouping: result.assignments, by: \.request.group) {
            #expect(Set(members.compactMap(\.failureDomain)).count == 3)
        }
    }

    @Test func fallsBackToASharedZoneWhenZonesRunOut() {
        let offers = (0..<4).map { makeOffer($0, zone: "z\($0 % 2)") }
        let result = Placement.place(requests: shardRequests(shards: 1, replicas: 3), offers: offers, strategy: .spread)
        #expect(result.unplaced.isEmpty)
        #expect(Set(result.assignments.map(\.agentID)).count == 3)
        #expect(Set(result.assignments.compactMap(\.failureDomain)).count == 2)
    }

    @Test func newReplicaAvoidsTheAgentAndZoneOfExistingMembers() {
        let offers = (0..<4).map { makeOffer($0, zone: "z\($0 % 2)") }
        let request = PlacementRequest(taskID: TaskID("new"), group: "c/0", cpus: 1, memMB: 512)
        let result = Placement.place(
            requests: [request], offers: offers, strategy: .spread,
            existing: [ExistingPlacement(group: "c/0", agentID: AgentID("agent-0"), failureDomain: "zone:z0")]
        )
        #expect(result.assignments.first?.failureDomain == "zone:z1")
    }

    @Test(arguments: PlacementStrategy.allCases)
    func neverOvercommitsCpusMemOrPorts(strategy: PlacementStrategy) {
        let offers = (0..<10).map { makeOffer($0, cpus: 3, memMB: 4096, ports: 31_000...31_004) }
        let requests = (0..<200).map {
            PlacementRequest(taskID: TaskID("t\($0)"), group: "g\($0)", cpus: 0.5, memMB: 1000, portCount: 2)
        }
        let result = Placement.place(requests: requests, offers: offers, strategy: strategy)
        #expect(result.assignments.count == 20)  // ports (5 per agent) allow 2 tasks per agent
        for (agent, tasks) in Dictionary(grouping: result.assignments, by: \.agentID) {
            #expect(tasks.reduce(0) { $0 + $1.request.cpus } <= 3, "cpus on \(agent)")
            #expect(tasks.reduce(0) { $0 + $1.request.memMB } <= 4096, "mem on \(agent)")
            let ports = tasks.flatMap(\.ports)
            #expect(Set(ports).count == ports.count)
            #expect(ports.allSatisfy { (31_000...31_004).contains($0) })
        }
        #expect(result.unplaced.allSatisfy { $0.shortfall == .insufficient(resource: .ports, requested: 2, largestAvailable: 1) })
    }

    @Test func spreadUsesEveryAgentAndBinPackFillsFew() {
        let offers = (0..<10).map { makeOffer($0, cpus: 8, memMB: 8192) }
        let requests = (0..<10).map { PlacementRequest(taskID: TaskID("t\($0)"), group: "g\($0)", cpus: 1, memMB: 1024) }
        let spread = Placement.place(requests: requests, offers: offers, strategy: .spread)
        let packed = Placement.place(requests: requests, offers: offers, strategy: .binPack)
        #expect(Set(spread.assignments.map(\.agentID)).count == 10)
        #expect(Set(packed.assignments.map(\.agentID)).count == 2)
        #expect(packed.usedOfferIDs.count == 2)
    }

    @Test func insufficientMemoryNamesTheResourceAndTheShortfall() {
        let offers = [makeOffer(0, memMB: 2048), makeOffer(1, memMB: 3072)]
        let request = PlacementRequest(taskID: TaskID("big"), group: "g", cpus: 1, memMB: 4096)
        let result = Placement.place(requests: [request], offers: offers, strategy: .spread)
        let shortfall = try! #require(result.unplaced.first?.shortfall)
        #expect(shortfall == .insufficient(resource: .mem, requested: 4096, largestAvailable: 3072))
        #expect(shortfall.shortBy == 1024)
        #expect(shortfall.description.contains("mem"))
    }

    @Test func tooFewAgentsForReplicasIsAnAntiAffinityShortfall() {
        let offers = [makeOffer(0), makeOffer(1)]
        let result = Placement.place(requests: shardRequests(shards: 1, replicas: 3), offers: offers, strategy: .spread)
        #expect(result.assignments.count == 2)
        #expect(result.unplaced.map(\.shortfall) == [.antiAffinity(group: "c/0", agentsOffered: 2)])
    }

    @Test func noOffersIsExplained() {
        let result = Placement.place(requests: shardRequests(shards: 1, replicas: 1), offers: [], strategy: .spread)
        #expect(result.unplaced.map(\.shortfall) == [.noOffers])
    }

    @Test func offersOfOneAgentAreMerged() {
        var second = makeOffer(0, cpus: 2, memMB: 2048, ports: 32_000...32_000)
        second.id = OfferID("offer-0b")
        let offers = [makeOffer(0, cpus: 2, memMB: 2048, ports: 31_000...31_000), second]
        let request = PlacementRequest(taskID: TaskID("t"), group: "g", cpus: 3, memMB: 3000, portCount: 2)
        let result = Placement.place(requests: [request], offers: offers, strategy: .spread)
        #expect(result.assignments.first?.ports == [31_000, 32_000])
        #expect(result.usedOfferIDs == [OfferID("offer-0"), OfferID("offer-0b")])
    }
}
