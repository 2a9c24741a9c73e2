// Placement: a pure function from task requests and offers to assignments.
//
// Algorithm. Offers are merged per agent (an agent's free cpus/mem/disk/ports are the sum of its offers). Agents are
// bucketed by failure domain (zone, else rack, else one "no domain" bucket), and each bucket is a binary min-heap
// ordered by a score: for `.spread` the used fraction of the agent's offered cpus and mem (least used first), for
// `.binPack` its complement (most used first); ties go to the agent that came first in the offers. For each request
// we look, in every bucket, for the best agent that fits and does not host the request's group yet (popping
// agents that do not fit this request and pushing them back afterwards). Buckets whose domain hosts no member of the
// group are preferred; only when none of them has a fitting agent do we use a domain that already has one. Agents
// that cannot fit even the smallest request leave their heap for good, which keeps rounds near O(n · d · log m)
// for n requests, d domains and m agents. Ports are taken lowest first from the agent's free ranges. A request
// pinned to an agent (`PlacementRequest.agentID`: its persistent volume is there) goes to that agent or nowhere.

/// The placement function.
public enum Placement {
    /// Places `requests` on `offers`.
    ///
    /// - Parameters:
    ///   - requests: the tasks to place, placed in this order (put the hardest first if it matters).
    ///   - offers: the offers of this round; several offers of one agent are merged.
    ///   - strategy: spread over agents or bin-pack them.
    ///   - existing: members of the requests' groups that already run, so new members avoid their agents and domains.
    /// - Returns: the assignments, the unplaced requests with the reason, and the offers used.
    public static func place(
        requests: [PlacementRequest],
        offers: [Offer],
        strategy: PlacementStrategy,
        existing: [ExistingPlacement] = []
    ) -> PlacementResult {
        var state = PlacementState(offers: offers, requests: requests, existing: existing, strategy: strategy)
        var assignments: [PlacementAssignment] = []
        assignments.reserveCapacity(requests.count)
        var unplaced: [UnplacedRequest] = []
        var usedAgents: Set<Int> = []
        for (index, request) in requests.enumerated() {
            if let assignment = state.placeOne(request, group: state.requestGroups[index]) {
                usedAgents.insert(assignment.agent)
                assignments.append(
                    PlacementAssignment(
                        request: request,
                        agentID: state.agentIDs[assignment.agent],
                        hostname: state.hostnames[assignment.agent],
                        offerIDs: state.offerIDs[assignment.agent],
                        ports: assignment.ports,
                        failureDomain: state.domainOfAgent[assignment.agent]
                    )
                )
            } else {
                unplaced.append(
                    UnplacedRequest(request: request, shortfall: state.explain(request, group: state.requestGroups[index]))
                )
            }
        }
        var used: Set<OfferID> = []
        for agent in usedAgents { used.formUnion(state.offerIDs[agent]) }
        return PlacementResult(assignments: assignments, unplaced: unplaced, usedOfferIDs: used)
    }
}

/// The mutable working state of one placement round (struct-of-arrays over agents, interned groups and domains).
struct PlacementState {
    var agentIDs: [AgentID] = []
    var agentIndex: [AgentID: Int] = [:]
    var hostnames: [String] = []
    var offerIDs: [[OfferID]] = []
    var domainOfAgent: [String?] = []
    var bucketOfAgent: [Int] = []
    var freeCpus: [Double] = []
    var freeMem: [Double] = []
    var freeDisk: [Double] = []
    var freePorts: [RangeSet] = []
    var freePortCount: [Int] = []
    var totalCpus: [Double] = []
    var totalMem: [Double] = []
    var groupsOnAgent: [[Int]] = []
    var score: [Double] = []
    var heaps: [[Int]] = []
    var positionInHeap: [Int] = []
    var domainIDs: [String: Int] = [:]
    var groupIDs: [String: Int] = [:]
    var groupDomains: [Set<Int>] = []
    var requestGroups: [Int] = []
    let strategy: PlacementStrategy
    var minimumCpus = Double.infinity
    var minimumMem = Double.infinity
    var minimumDisk = Double.infinity
    var minimumPorts = Int.max

    init(offers: [Offer], requests: [PlacementRequest], existing: [ExistingPlacement], strategy: PlacementStrategy) {
        self.strategy = strategy
        for offer in offers {
            let quantities = ResourceQuantities(offer.resources)
            if let index = agentIndex[offer.agentID] {
                offerIDs[index].append(offer.id)
                freeCpus[index] += quantities.cpus
                freeMem[index] += quantities.memMB
                freeDisk[index] += quantities.diskMB
                freePorts[index] = freePorts[index].union(quantities.ports)
                freePortCount[index] = Int(freePorts[index].count)
                totalCpus[index] += quantities.cpus
                totalMem[index] += quantities.memMB
                continue
            }
            agentIndex[offer.agentID] = agentIDs.count
            agentIDs.append(offer.agentID)
            hostnames.append(offer.hostname)
            offerIDs.append([offer.id])
            let domain = offer.failureDomain
            domainOfAgent.append(domain)
            bucketOfAgent.append(Self.intern(domain ?? "", in: &domainIDs))
            freeCpus.append(quantities.cpus)
            freeMem.append(quantities.memMB)
            freeDisk.append(quantities.diskMB)
            freePorts.append(quantities.ports)
            freePortCount.append(Int(quantities.ports.count))
            totalCpus.append(quantities.cpus)
            totalMem.append(quantities.memMB)
            groupsOnAgent.append([])
        }
        for request in requests {
            requestGroups.append(internGroup(request.group))
            minimumCpus = min(minimumCpus, request.cpus)
            minimumMem = min(minimumMem, request.memMB)
            minimumDisk = min(minimumDisk, request.diskMB)
            minimumPorts = min(minimumPorts, request.portCount)
        }
        for placement in existing {
            let group = internGroup(placement.group)
            if let agent = agentIndex[placement.agentID] { groupsOnAgent[agent].append(group) }
            if let domain = placement.failureDomain {
                groupDomains[group].insert(Self.intern(domain, in: &domainIDs))
            }
        }
        score = Array(repeating: 0, count: agentIDs.count)
        positionInHeap = Array(repeating: -1, count: agentIDs.count)
        heaps = Array(repeating: [], count: domainIDs.count)
        for agent in agentIDs.indices {
            score[agent] = computeScore(agent)
            if fitsMinimum(agent) { push(agent) }
        }
    }

    static func intern(_ key: String, in table: inout [String: Int]) -> Int {
        if let id = table[key] { return id }
        let id = table.count
        table[key] = id
        return id
    }

    mutating func internGroup(_ group: String) -> Int {
        let id = Self.intern(group, in: &groupIDs)
        if id == groupDomains.count { groupDomains.append([]) }
        return id
    }

    func computeScore(_ agent: Int) -> Double {
        let cpuUsed = totalCpus[agent] > 0 ? 1 - freeCpus[agent] / totalCpus[agent] : 1
        let memUsed = totalMem[agent] > 0 ? 1 - freeMem[agent] / totalMem[agent] : 1
        let used = (cpuUsed + memUsed) / 2
        return strategy == .spread ? used : 1 - used
    }

    func fits(_ request: PlacementRequest, on agent: Int) -> Bool {
        freeCpus[agent] >= request.cpus && freeMem[agent] >= request.memMB && freeDisk[agent] >= request.diskMB
            && freePortCount[agent] >= request.portCount
    }

    func fitsMinimum(_ agent: Int) -> Bool {
        freeCpus[agent] >= minimumCpus && freeMem[agent] >= minimumMem && freeDisk[agent] >= minimumDisk
            && freePortCount[agent] >= minimumPorts
    }

    func hosts(_ agent: Int, group: Int) -> Bool { groupsOnAgent[agent].contains(group) }

    /// Places one request; returns the chosen agent and its ports.
    mutating func placeOne(_ request: PlacementRequest, group: Int) -> (agent: Int, ports: [UInt64])? {
        if let pinned = request.agentID {
            guard let agent = agentIndex[pinned], fits(request, on: agent), !hosts(agent, group: group) else { return nil }
            return take(agent, for: request, group: group)
        }
        var bestPreferred: Int? = nil
        var bestOther: Int? = nil
        for bucket in heaps.indices where !heaps[bucket].isEmpty {
            guard let candidate = bestFitting(in: bucket, request: request, group: group) else { continue }
            let preferred = !groupDomains[group].contains(bucket) || domainIDs.count == 1
            if preferred {
                if bestPreferred == nil || isBetter(candidate, than: bestPreferred!) { bestPreferred = candidate }
            } else if bestOther == nil || isBetter(candidate, than: bestOther!) {
                bestOther = candidate
            }
        }
        guard let agent = bestPreferred ?? bestOther else { return nil }
        return take(agent, for: request, group: group)
    }

    /// Assigns `request` to `agent`: its resources and ports leave the agent, which moves in (or leaves) its heap.
    mutating func take(_ agent: Int, for request: PlacementRequest, group: Int) -> (agent: Int, ports: [UInt64]) {
        freeCpus[agent] -= request.cpus
        freeMem[agent] -= request.memMB
        freeDisk[agent] -= request.diskMB
        let ports = freePorts[agent].takeLowest(request.portCount) ?? []
        freePortCount[agent] -= request.portCount
        groupsOnAgent[agent].append(group)
        groupDomains[group].insert(bucketOfAgent[agent])
        score[agent] = computeScore(agent)
        if fitsMinimum(agent) {
            update(agent)
        } else if positionInHeap[agent] >= 0 {
            remove(agent)
        }
        return (agent, ports)
    }

    func isBetter(_ lhs: Int, than rhs: Int) -> Bool {
        score[lhs] < score[rhs] || (score[lhs] == score[rhs] && lhs < rhs)
    }

    /// The best agent of `bucket` that fits `request` and does not host `group`, leaving the heap as it was
    /// (apart from agents that can no longer fit any request, which are dropped).
    mutating func bestFitting(in bucket: Int, request: PlacementRequest, group: Int) -> Int? {
        var setAside: [Int] = []
        var found: Int? = nil
        while let top = heaps[bucket].first {
            if fits(request, on: top) && !hosts(top, group: group) {
                found = top
                break
            }
            remove(top)
            if fitsMinimum(top) { setAside.append(top) }
        }
        for agent in setAside { push(agent) }
        return found
    }

    // MARK: heap of agent indices per bucket, ordered by `isBetter`

    mutating func push(_ agent: Int) {
        let bucket = bucketOfAgent[agent]
        heaps[bucket].append(agent)
        positionInHeap[agent] = heaps[bucket].count - 1
        siftUp(bucket, heaps[bucket].count - 1)
    }

    mutating func remove(_ agent: Int) {
        let bucket = bucketOfAgent[agent]
        let position = positionInHeap[agent]
        guard position >= 0 else { return }
        let last = heaps[bucket].count - 1
        swapAt(bucket, position, last)
        heaps[bucket].removeLast()
        positionInHeap[agent] = -1
        if position < heaps[bucket].count {
            siftDown(bucket, position)
            siftUp(bucket, position)
        }
    }

    mutating func update(_ agent: Int) {
        let bucket = bucketOfAgent[agent]
        let position = positionInHeap[agent]
        guard position >= 0 else { return push(agent) }
        siftDown(bucket, position)
        siftUp(bucket, positionInHeap[agent])
    }

    mutating func swapAt(_ bucket: Int, _ i: Int, _ j: Int) {
        guard i != j else { return }
        heaps[bucket].swapAt(i, j)
        positionInHeap[heaps[bucket][i]] = i
        positionInHeap[heaps[bucket][j]] = j
    }

    mutating func siftUp(_ bucket: Int, _ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard isBetter(heaps[bucket][child], than: heaps[bucket][parent]) else { return }
            swapAt(bucket, child, parent)
            child = parent
        }
    }

    mutating func siftDown(_ bucket: Int, _ start: Int) {
        var parent = start
        let count = heaps[bucket].count
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var best = parent
            if left < count && isBetter(heaps[bucket][left], than: heaps[bucket][best]) { best = left }
            if right < count && isBetter(heaps[bucket][right], than: heaps[bucket][best]) { best = right }
            guard best != parent else { return }
            swapAt(bucket, parent, best)
            parent = best
        }
    }

    // MARK: explanations

    /// Why `request` does not fit any agent, looking at what is left after this round's earlier assignments.
    func explain(_ request: PlacementRequest, group: Int) -> PlacementShortfall {
        if let pinned = request.agentID { return .pinned(agent: pinned) }
        guard !agentIDs.isEmpty else { return .noOffers }
        let eligible = agentIDs.indices.filter { !hosts($0, group: group) }
        guard !eligible.isEmpty else { return .antiAffinity(group: request.group, agentsOffered: agentIDs.count) }
        let checks: [(ResourceKind, Double, (Int) -> Double)] = [
            (.mem, request.memMB, { freeMem[$0] }),
            (.cpus, request.cpus, { freeCpus[$0] }),
            (.disk, request.diskMB, { freeDisk[$0] }),
            (.ports, Double(request.portCount), { Double(freePortCount[$0]) }),
        ]
        for (kind, requested, free) in checks {
            let largest = eligible.map(free).max() ?? 0
            if largest < requested {
                return .insufficient(resource: kind, requested: requested, largestAvailable: largest)
            }
        }
        return .fragmented(
            requested: ResourceQuantities(cpus: request.cpus, memMB: request.memMB, diskMB: request.diskMB),
            portCount: request.portCount
        )
    }
}
