// Randomized (seeded, reproducible) checks of placement invariants over many generated offer/request sets.

import CacheFramework
import Testing

/// SplitMix64: a small seeded generator so failures reproduce from the seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct PlacementPropertyTests {
    @Test(arguments: Array(UInt64(1)...UInt64(40)))
    func invariantsHoldForRandomInputs(seed: UInt64) {
        var random = SeededGenerator(state: seed)
        let zones = Int.random(in: 0...4, using: &random)
        let agentCount = Int.random(in: 1...30, using: &random)
        let offers = (0..<agentCount).map { index -> Offer in
            let firstPort = UInt64.random(in: 30_000...31_000, using: &random)
            return Offer(
                id: OfferID("o\(index)"), agentID: AgentID("a\(index)"), hostname: "h\(index)",
                resources: [
                    .scalar("cpus", Double(Int.random(in: 1...16, using: &random))),
                    .scalar("mem", Double(Int.random(in: 1...32, using: &random) * 1024)),
                    .ranges("ports", RangeSet([ValueRange(begin: firstPort, end: firstPort + UInt64.random(in: 0...20, using: &random))])),
                ],
                attributes: zones > 0 ? [.text("zone", "z\(index % zones)")] : []
            )
        }
        let replicas = Int.random(in: 1...4, using: &random)
        let requests = (0..<Int.random(in: 1...200, using: &random)).map { index in
            PlacementRequest(
                taskID: TaskID("t\(index)"), group: "g\(index / replicas)",
                cpus: Double(Int.random(in: 1...4, using: &random)) / 2,
                memMB: Double(Int.random(in: 1...8, using: &random) * 512), portCount: Int.random(in: 0...3, using: &random)
            )
        }
        for strategy in PlacementStrategy.allCases {
            let result = Placement.place(requests: requests, offers: offers, strategy: strategy)
            #expect(result.assignments.count + result.unplaced.count == requests.count)
            let offerByAgent = Dictionary(uniqueKeysWithValues: offers.map { ($0.agentID, ResourceQuantities($0.resources)) })
            for (agent, tasks) in Dictionary(grouping: result.assignments, by: \.agentID) {
                let offered = offerByAgent[agent]!
                #expect(tasks.reduce(0) { $0 + $1.request.cpus } <= offered.cpus)
                #expect(tasks.reduce(0) { $0 + $1.request.memMB } <= offered.memMB)
                let ports = tasks.flatMap(\.ports)
                #expect(Set(ports).count == ports.count, "a port assigned twice on \(agent)")
                #expect(offered.ports.contains(RangeSet.of(ports)))
                #expect(tasks.allSatisfy { $0.ports.count == $0.request.portCount })
                #expect(Set(tasks.map(\.request.group)).count == tasks.count, "two members of a group on \(agent)")
            }
            // An unplaced request really fits no agent that lacks its group, given what was placed before it.
            for unplaced in result.unplaced {
                if case .insufficient(let resource, let requested, let largest) = unplaced.shortfall {
                    #expect(largest < requested, "\(resource) shortfall with enough free")
                }
            }
        }
    }

    @Test func groupsSpreadOverZonesWhenCapacityIsAmple() {
        var random = SeededGenerator(state: 99)
        let offers = (0..<12).map { makeOffer($0, cpus: 64, memMB: 262_144, ports: 31_000...31_999, zone: "z\($0 % 3)") }
        let requests = (0..<300).map { index in
            PlacementRequest(
                taskID: TaskID("t\(index)"), group: "g\(index / 3)", cpus: 0.5,
                memMB: Double(Int.random(in: 1...4, using: &random) * 256), portCount: 2
            )
        }
        for strategy in PlacementStrategy.allCases {
            let result = Placement.place(requests: requests, offers: offers, strategy: strategy)
            #expect(result.unplaced.isEmpty)
            for (group, members) in Dictionary(grouping: result.assignments, by: \.request.group) {
                #expect(Set(members.compactMap(\.failureDomain)).count == 3, "\(group) with \(strategy)")
            }
        }
    }
}
