// Admission: before a cluster is accepted, check that the agents' free resources could hold all of its members,
// and if not, say which resource is missing and by how much (the error `cachectl cluster create` prints).

/// The outcome of checking a cluster spec against what the agents have free.
public struct AdmissionReport: Hashable, Sendable, CustomStringConvertible {
    /// One resource the cluster lacks.
    public struct Missing: Hashable, Codable, Sendable {
        /// The resource: `cpus`, `mem` (MB), `ports` or `agents`.
        public var resource: String
        /// How much the cluster needs in all.
        public var needed: Double
        /// How much is free in all.
        public var available: Double
        /// `needed - available` (for `agents` and fragmentation: what more is needed).
        public var shortBy: Double

        /// Creates an entry.
        public init(resource: String, needed: Double, available: Double, shortBy: Double) {
            self.resource = resource
            self.needed = needed
            self.available = available
            self.shortBy = shortBy
        }
    }

    /// The cluster checked.
    public var cluster: String
    /// The members that would not be placed.
    public var unplacedMembers: Int
    /// Totals that do not suffice; empty if the totals fit but the members still do not (fragmentation).
    public var missing: [Missing]
    /// The placement explanation of the first member that did not fit.
    public var firstShortfall: PlacementShortfall?

    /// Whether every member fits.
    public var fits: Bool { unplacedMembers == 0 }

    public var description: String {
        guard !fits else { return "cluster '\(cluster)' fits" }
        var parts = missing.map { missing in
            missing.resource == "agents"
                ? "agents: each shard needs \(Int(missing.needed)) agents (one per member), \(Int(missing.available)) exist"
                : "\(missing.resource): needs \(format(missing.needed)), \(format(missing.available)) free, "
                    + "short by \(format(missing.shortBy))"
        }
        if parts.isEmpty, let first = firstShortfall { parts.append(first.description) }
        return "not enough resources for cluster '\(cluster)' (\(unplacedMembers) members do not fit): "
            + parts.joined(separator: "; ")
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String((value * 100).rounded() / 100)
    }
}

/// Checks cluster specs against free capacity.
public enum AdmissionCheck {
    /// Places every member of `spec` on `capacity` (one offer per agent holding its free resources) and reports
    /// what does not fit.
    public static func check(
        _ spec: ClusterSpec, capacity: [Offer], strategy: PlacementStrategy = .spread
    ) -> AdmissionReport {
        let slots = ClusterPlan.memberSlots(of: spec)
        let requests = slots.map {
            PlacementRequest(
                taskID: TaskID($0.description), group: $0.group, cpus: spec.cpusPerNode, memMB: spec.taskMemoryMB,
                portCount: spec.engine.portCount)
        }
        let result = Placement.place(requests: requests, offers: capacity, strategy: strategy)
        var report = AdmissionReport(
            cluster: spec.name, unplacedMembers: result.unplaced.count, missing: [],
            firstShortfall: result.unplaced.first?.shortfall)
        guard !result.unplaced.isEmpty else { return report }
        let free = capacity.reduce(into: ResourceQuantities()) { total, offer in
            let quantities = ResourceQuantities(offer.resources)
            total.cpus += quantities.cpus
            total.memMB += quantities.memMB
            total.ports = total.ports.union(quantities.ports)
        }
        let members = Double(slots.count)
        let needs: [(String, Double, Double)] = [
            ("cpus", members * spec.cpusPerNode, free.cpus),
            ("mem MB", members * spec.taskMemoryMB, free.memMB),
            ("ports", members * Double(spec.engine.portCount), Double(free.ports.count)),
        ]
        for (name, needed, available) in needs where needed > available + 1e-9 {
            report.missing.append(.init(resource: name, needed: needed, available: available, shortBy: needed - available))
        }
        let agents = Set(capacity.map(\.agentID)).count
        if spec.membersPerShard > agents {
            report.missing.append(
                .init(resource: "agents", needed: Double(spec.membersPerShard), available: Double(agents),
                      shortBy: Double(spec.membersPerShard - agents)))
        }
        return report
    }
}
