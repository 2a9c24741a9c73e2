// Placement of VNFCs through the scheduler core's `Placement.place`, on the same offers as cache members, with the
// VNFD's placement rules mapped onto it:
// - anti-affinity (agent): the VDUs of the group share one placement group, so no two VNFCs share an agent;
// - anti-affinity (zone): the same, and an assignment into a domain that already hosts the group is dropped;
// - affinity (agent|zone): once a member is placed (the anchor), the others go to offers of the anchor's agent or
//   zone; without an anchor, one member is placed this round and the rest follow in the next;
// - heal in place: a VNFC whose task ended goes back to its agent and ports (upstream VNFs keep their next hop) if
//   that agent offers them, and waits `pinWaitSeconds` for them before moving elsewhere.
// Assignments of a pass are subtracted from the offers before the next pass, so resources are never used twice.

public import CacheFramework

/// A VNFC waiting for a task.
public struct PendingVNFC: Hashable, Sendable {
    /// Its instance.
    public var instanceID: String
    /// The VNFC.
    public var vnfc: VNFCRecord
}

/// Where a pending VNFC goes.
public struct VNFCAssignment: Hashable, Sendable {
    /// The VNFC.
    public var pending: PendingVNFC
    /// The agent.
    public var agentID: AgentID
    /// Its hostname.
    public var hostname: String
    /// Its failure domain.
    public var failureDomain: String?
    /// The offers of that agent this round.
    public var offerIDs: [OfferID]
    /// Assigned ports in the VDU's port order.
    public var ports: [UInt64]
}

/// The result of a VNFC placement round.
public struct VNFPlacementResult: Sendable {
    /// Placed VNFCs.
    public var assignments: [VNFCAssignment]
    /// Why the others were not placed (VNFC id → reason).
    public var shortfalls: [String: String]
    /// The offers the assignments use (the others stay for the cache scheduler).
    public var usedOfferIDs: Set<OfferID>
}

/// VNFC placement over `Placement.place`.
public enum VNFPlacement {
    /// Places `pending` VNFCs of `instances` on `offers`.
    public static func place(
        _ pending: [PendingVNFC], instances: [String: VNFInstance], offers: [Offer], strategy: PlacementStrategy,
        now: SchedulerTime, pinWaitSeconds: Double
    ) -> VNFPlacementResult {
        var offers = offers
        var result = VNFPlacementResult(assignments: [], shortfalls: [:], usedOfferIDs: [])
        var rest: [PendingVNFC] = []

        // Pass 1: heal in place.
        for item in pending {
            guard let agent = item.vnfc.agentID, !item.vnfc.ports.isEmpty, let vdu = instances[item.instanceID]?.vnfd.vdu(item.vnfc.vdu)
            else { rest.append(item); continue }
            let wanted = vdu.ports.compactMap { item.vnfc.ports[$0] }
            if let index = offers.firstIndex(where: { offer in
                offer.agentID == agent && fits(vdu, ports: wanted, in: offer)
            }) {
                let offer = offers[index]
                let assignment = VNFCAssignment(
                    pending: item, agentID: agent, hostname: offer.hostname, failureDomain: offer.failureDomain,
                    offerIDs: offers.filter { $0.agentID == agent }.map(\.id), ports: wanted)
                offers[index] = subtract(vdu, ports: wanted, from: offer)
                result.assignments.append(assignment)
            } else if let ended = item.vnfc.endedAt, now.seconds - ended.seconds < pinWaitSeconds {
                result.shortfalls[key(item)] = "waiting for agent \(agent) to offer ports \(wanted) again (heal in place)"
            } else {
                var moved = item
                moved.vnfc.ports = [:]
                rest.append(moved)
            }
        }

        // Pass 2: affinity groups with an anchor, on the anchor's agent or zone.
        var free: [PendingVNFC] = []
        var deferredAffinity: Set<String> = []
        for item in rest {
            guard let instance = instances[item.instanceID],
                  let group = instance.flavour.affinityGroups.first(where: { $0.type == .affinity && $0.members.contains(item.vnfc.vdu) })
            else { free.append(item); continue }
            let placed = result.assignments.filter { $0.pending.instanceID == item.instanceID && group.members.contains($0.pending.vnfc.vdu) }
            let anchor = instance.vnfcs.values.first { group.members.contains($0.vdu) && $0.taskID != nil && $0.agentID != nil }
            let anchorAgent = anchor?.agentID ?? placed.first?.agentID
            let anchorDomain = anchor?.failureDomain ?? placed.first?.failureDomain
            guard let anchorAgent else {
                let groupKey = "\(item.instanceID)/\(group.id)"
                if deferredAffinity.contains(groupKey) {
                    result.shortfalls[key(item)] = "waits for the first member of affinity group \(group.id) to be placed"
                } else {
                    deferredAffinity.insert(groupKey)
                    free.append(item)
                }
                continue
            }
            let allowed = offers.filter { group.scope == .agent ? $0.agentID == anchorAgent : $0.failureDomain == anchorDomain }
            let round = placeFree([item], instances: instances, offers: allowed, existing: [], strategy: strategy)
            for assignment in round.assignments {
                offers = offers.map { $0.agentID == assignment.agentID ? subtract(instance.vnfd.vdu(item.vnfc.vdu)!, ports: assignment.ports, from: $0) : $0 }
                result.assignments.append(assignment)
            }
            for (id, reason) in round.shortfalls { result.shortfalls[id] = "affinity group \(group.id) (\(group.scope.rawValue)): \(reason)" }
        }

        // Pass 3: everything else in one call, anti-affinity as placement groups.
        let round = placeFree(free, instances: instances, offers: offers, existing: result.assignments, strategy: strategy)
        result.assignments += round.assignments
        result.shortfalls.merge(round.shortfalls) { a, _ in a }
        for assignment in result.assignments { result.usedOfferIDs.formUnion(assignment.offerIDs) }
        return result
    }

    static func key(_ item: PendingVNFC) -> String { "\(item.instanceID)/\(item.vnfc.id)" }

    /// The placement group of a VNFC: its anti-affinity group, else itself (no constraint).
    static func group(of item: PendingVNFC, in instance: VNFInstance) -> (name: String, scope: AffinityScope?) {
        if let group = instance.flavour.affinityGroups.first(where: { $0.type == .antiAffinity && $0.members.contains(item.vnfc.vdu) }) {
            return ("\(item.instanceID)/aa/\(group.id)", group.scope)
        }
        return ("\(item.instanceID)/\(item.vnfc.id)", nil)
    }

    private static func placeFree(
        _ items: [PendingVNFC], instances: [String: VNFInstance], offers: [Offer], existing assignedThisRound: [VNFCAssignment],
        strategy: PlacementStrategy
    ) -> VNFPlacementResult {
        var result = VNFPlacementResult(assignments: [], shortfalls: [:], usedOfferIDs: [])
        guard !items.isEmpty else { return result }
        var requests: [PlacementRequest] = []
        var byTask: [TaskID: (PendingVNFC, String, AffinityScope?)] = [:]
        var existing: [ExistingPlacement] = []
        var domainsOfGroup: [String: Set<String>] = [:]
        var seenInstances: Set<String> = []
        for item in items {
            let instance = instances[item.instanceID]!
            let vdu = instance.vnfd.vdu(item.vnfc.vdu)!
            let (group, scope) = group(of: item, in: instance)
            let taskID = TaskID(key(item))
            byTask[taskID] = (item, group, scope)
            requests.append(
                PlacementRequest(taskID: taskID, group: group, cpus: vdu.cpus, memMB: vdu.memMB, diskMB: vdu.diskMB, portCount: vdu.ports.count))
            guard seenInstances.insert(item.instanceID).inserted else { continue }
            for vnfc in instance.vnfcs.values where vnfc.taskID != nil {
                guard let agent = vnfc.agentID else { continue }
                let member = PendingVNFC(instanceID: instance.id, vnfc: vnfc)
                let memberGroup = self.group(of: member, in: instance).name
                existing.append(ExistingPlacement(group: memberGroup, agentID: agent, failureDomain: vnfc.failureDomain))
                if let domain = vnfc.failureDomain { domainsOfGroup[memberGroup, default: []].insert(domain) }
            }
        }
        for assignment in assignedThisRound {
            guard let instance = instances[assignment.pending.instanceID] else { continue }
            let memberGroup = group(of: assignment.pending, in: instance).name
            existing.append(ExistingPlacement(group: memberGroup, agentID: assignment.agentID, failureDomain: assignment.failureDomain))
            if let domain = assignment.failureDomain { domainsOfGroup[memberGroup, default: []].insert(domain) }
        }
        let placed = Placement.place(requests: requests, offers: offers, strategy: strategy, existing: existing)
        for assignment in placed.assignments {
            let (item, group, scope) = byTask[assignment.request.taskID]!
            if scope == .zone, let domain = assignment.failureDomain {
                if domainsOfGroup[group, default: []].contains(domain) {
                    result.shortfalls[key(item)] = "anti-affinity (zone): every offered zone already hosts a member of \(group)"
                    continue
                }
                domainsOfGroup[group, default: []].insert(domain)
            }
            result.assignments.append(
                VNFCAssignment(
                    pending: item, agentID: assignment.agentID, hostname: assignment.hostname,
                    failureDomain: assignment.failureDomain, offerIDs: assignment.offerIDs, ports: assignment.ports))
        }
        for unplaced in placed.unplaced {
            result.shortfalls[key(byTask[unplaced.request.taskID]!.0)] = unplaced.shortfall.description
        }
        return result
    }

    private static func fits(_ vdu: VDU, ports: [UInt64], in offer: Offer) -> Bool {
        let free = ResourceQuantities(offer.resources)
        return free.cpus >= vdu.cpus && free.memMB >= vdu.memMB && free.diskMB >= vdu.diskMB
            && free.ports.contains(RangeSet.of(ports))
    }

    /// `offer` less what a VNFC of `vdu` on `ports` takes.
    static func subtract(_ vdu: VDU, ports: [UInt64], from offer: Offer) -> Offer {
        var free = ResourceQuantities(offer.resources)
        free.cpus = max(0, free.cpus - vdu.cpus)
        free.memMB = max(0, free.memMB - vdu.memMB)
        free.diskMB = max(0, free.diskMB - vdu.diskMB)
        free.ports = free.ports.subtracting(RangeSet.of(ports))
        var result = offer
        result.resources = free.resources
        return result
    }
}
