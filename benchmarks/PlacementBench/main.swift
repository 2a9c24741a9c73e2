// Placement benchmark: time of one `Placement.place` round for 1k/10k tasks over 100/1k agents' offers, with both
// strategies, printed as a markdown table (median and min of several runs). Build in release:
// `swift run -c release placement-bench [runs]`.

import CacheFramework

/// Offers of `count` agents over three zones, each with room for at least 100 of the benchmark's tasks.
func makeOffers(agents count: Int) -> [Offer] {
    (0..<count).map { index in
        Offer(
            id: OfferID("o\(index)"), agentID: AgentID("a\(index)"), hostname: "h\(index)",
            resources: [
                .scalar("cpus", 64), .scalar("mem", 262_144), .scalar("disk", 1_000_000),
                .ranges("ports", RangeSet([ValueRange(begin: 31_000, end: 32_999)])),
            ],
            attributes: [.text("zone", "z\(index % 3)"), .text("rack", "r\(index % 20)")]
        )
    }
}

/// `count` tasks: shards of three members (one anti-affinity group each), 0.5 cpu, 1280 MB, two ports.
func makeRequests(tasks count: Int) -> [PlacementRequest] {
    (0..<count).map { index in
        PlacementRequest(
            taskID: TaskID("t\(index)"), group: "c/\(index / 3)", cpus: 0.5, memMB: 1280, portCount: 2
        )
    }
}

let runs = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 7
let clock = ContinuousClock()
print("| tasks | agents | strategy | placed | median ms | min ms |")
print("|------:|-------:|----------|-------:|----------:|-------:|")
for (tasks, agents) in [(1_000, 100), (1_000, 1_000), (10_000, 100), (10_000, 1_000)] {
    let offers = makeOffers(agents: agents)
    let requests = makeRequests(tasks: tasks)
    for strategy in PlacementStrategy.allCases {
        var placed = 0
        var times: [Double] = []
        for _ in 0...runs {  // one extra warm-up run, dropped below
            let elapsed = clock.measure {
                let result = Placement.place(requests: requests, offers: offers, strategy: strategy)
                placed = result.assignments.count
            }
            times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3)
        }
        let measured = times.dropFirst().sorted()
        let median = measured[measured.count / 2]
        let fastest = measured[0]
        print(
            "| \(tasks) | \(agents) | \(strategy.rawValue) | \(placed) | "
                + "\((median * 100).rounded() / 100) | \((fastest * 100).rounded() / 100) |"
        )
    }
}
