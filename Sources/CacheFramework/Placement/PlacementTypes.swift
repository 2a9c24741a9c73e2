// The inputs and outputs of `Placement.place`: what a task needs, where it went, and why a task did not fit.

/// What one task needs, and the anti-affinity group it belongs to.
public struct PlacementRequest: Hashable, Sendable {
    /// The task to place.
    public var taskID: TaskID
    /// Tasks of one group (the replicas of one shard) never share an agent, and spread over failure domains
    /// (zones, else racks) when the offers allow.
    public var group: String
    /// CPU shares.
    public var cpus: Double
    /// Memory in MB.
    public var memMB: Double
    /// Disk in MB.
    public var diskMB: Double
    /// How many ports to assign from the offers' `ports` ranges.
    public var portCount: Int
    /// The only agent the task may go to (a member whose persistent volume lives there), or `nil`: any agent.
    public var agentID: AgentID?

    /// Creates a request.
    public init(
        taskID: TaskID, group: String, cpus: Double, memMB: Double, diskMB: Double = 0, portCount: Int = 0,
        agentID: AgentID? = nil
    ) {
        self.taskID = taskID
        self.group = group
        self.cpus = cpus
        self.memMB = memMB
        self.diskMB = diskMB
        self.portCount = portCount
        self.agentID = agentID
    }
}

/// A task of a group that already runs somewhere: placement keeps new members of the group off its agent and,
/// when it can, out of its failure domain.
public struct ExistingPlacement: Hashable, Sendable {
    /// The group (shard) of the running task.
    public var group: String
    /// The agent it runs on.
    public var agentID: AgentID
    /// Its agent's failure domain (`Offer.failureDomain`), if known.
    public var failureDomain: String?

    /// Creates an existing placement.
    public init(group: String, agentID: AgentID, failureDomain: String?) {
        self.group = group
        self.agentID = agentID
        self.failureDomain = failureDomain
    }
}

/// How placement chooses among agents that fit.
public enum PlacementStrategy: String, Hashable, Codable, Sendable, CaseIterable {
    /// Least-used agent first: tasks spread over all agents.
    case spread
    /// Most-used agent that still fits first: tasks fill few agents and leave others whole.
    case binPack
}

/// Where one request was placed.
public struct PlacementAssignment: Hashable, Sendable {
    /// The request that was placed.
    public var request: PlacementRequest
    /// The agent it goes to.
    public var agentID: AgentID
    /// The agent's hostname.
    public var hostname: String
    /// All offers of that agent in this round (a Mesos ACCEPT takes every offer of one agent together).
    public var offerIDs: [OfferID]
    /// The ports assigned to the task, lowest free first.
    public var ports: [UInt64]
    /// The agent's failure domain.
    public var failureDomain: String?

    /// The Mesos resources the task's `TaskInfo` carries.
    public var resources: [Resource] {
        ResourceQuantities(
            cpus: request.cpus, memMB: request.memMB, diskMB: request.diskMB, ports: RangeSet.of(ports)
        ).resources
    }
}

/// Why a request could not be placed, in terms an operator can act on.
public enum PlacementShortfall: Hashable, Sendable, CustomStringConvertible {
    /// No agent was offered at all.
    case noOffers
    /// Every offered agent already hosts a member of the request's group.
    case antiAffinity(group: String, agentsOffered: Int)
    /// No eligible agent has enough of `resource`: the largest free amount is `largestAvailable`.
    case insufficient(resource: ResourceKind, requested: Double, largestAvailable: Double)
    /// Each resource is available somewhere, but no single eligible agent has all of them.
    case fragmented(requested: ResourceQuantities, portCount: Int)
    /// The task may only go to `agent` (its persistent volume is there), which was not offered or is too full.
    case pinned(agent: AgentID)

    /// How much more of the resource the best agent would need (0 if not a single-resource shortfall).
    public var shortBy: Double {
        if case .insufficient(_, let requested, let largest) = self { return requested - largest }
        return 0
    }

    public var description: String {
        switch self {
        case .noOffers:
            "no offers: no agent has free resources; add agents or wait for offers"
        case .antiAffinity(let group, let agents):
            "all \(agents) offered agents already host a replica of \(group); add agents or lower replicas"
        case .insufficient(let resource, let requested, let largest):
            "insufficient \(resource): needs \(requested), largest free on an eligible agent is \(largest) "
                + "(short by \(requested - largest))"
        case .fragmented(let requested, let ports):
            "no single agent has cpus \(requested.cpus), mem \(requested.memMB) MB, disk \(requested.diskMB) MB "
                + "and \(ports) ports together"
        case .pinned(let agent):
            "waits for agent \(agent.value), which holds its persistent volume, to offer enough resources"
        }
    }
}

/// A request that could not be placed, and why.
public struct UnplacedRequest: Hashable, Sendable {
    /// The request.
    public var request: PlacementRequest
    /// Why it did not fit.
    public var shortfall: PlacementShortfall
}

/// The outcome of one placement round.
public struct PlacementResult: Hashable, Sendable {
    /// The placed requests, in request order.
    public var assignments: [PlacementAssignment]
    /// The requests that did not fit, in request order.
    public var unplaced: [UnplacedRequest]
    /// Offers that carry at least one assignment; the rest should be declined.
    public var usedOfferIDs: Set<OfferID>
}
