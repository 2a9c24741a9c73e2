// The VNF descriptor (VNFD) model, after ETSI SOL001/SOL006 as OpenStack Tacker uses them: VDUs (what runs, with
// which resources and health check), connection points, internal and external virtual links, deployment flavours
// with instantiation levels, scaling aspects with per-step deltas, affinity/anti-affinity groups, monitoring
// parameters and lifecycle hooks. `VNFDescriptorParser` builds and validates it from YAML.

/// How a VNFC (an instance of a VDU) is checked for health.
public enum HealthCheck: Hashable, Codable, Sendable {
    /// Connects to the named port.
    case tcp(port: String)
    /// GETs `path` on the named port; 2xx/3xx is healthy.
    case http(port: String, path: String)
    /// Runs a command; exit status 0 is healthy.
    case command([String])

    /// The port the check connects to, if it connects to one.
    public var portName: String? {
        switch self {
        case .tcp(let port), .http(let port, _): port
        case .command: nil
        }
    }
}

/// The health check with its timing.
public struct HealthCheckSpec: Hashable, Codable, Sendable {
    /// What is checked.
    public var check: HealthCheck
    /// Seconds between checks.
    public var intervalSeconds: Double
    /// Seconds one check may take.
    public var timeoutSeconds: Double
    /// Consecutive failures that make a VNFC unhealthy (auto-heal replaces it).
    public var failureThreshold: Int
}

/// A virtual deployment unit: one kind of process of the VNF.
public struct VDU: Hashable, Codable, Sendable {
    /// The VDU's id, unique in the VNFD.
    public var id: String
    /// The executable to run (searched in the agent's executable paths, then PATH).
    public var command: String
    /// Its arguments; `${port:NAME}`, `${host}`, `${ext:LINK}`, `${vl:LINK}` and `${instance}` are substituted at launch.
    public var arguments: [String]
    /// Version of the software the VDU runs (shown in queries).
    public var softwareVersion: String?
    /// CPU shares per VNFC.
    public var cpus: Double
    /// Memory per VNFC in MB.
    public var memMB: Double
    /// Disk per VNFC in MB.
    public var diskMB: Double
    /// Named ports each VNFC listens on; the scheduler assigns them from the offers.
    public var ports: [String]
    /// Fewest VNFCs of this VDU an instantiated VNF runs.
    public var minInstances: Int
    /// Most VNFCs of this VDU.
    public var maxInstances: Int
    /// The health check, if any (without one a VNFC is healthy once its process runs).
    public var healthCheck: HealthCheckSpec?
}

/// Whether a connection point accepts traffic (a VDU port) or originates it (the VDU connects out through it).
public enum ConnectionPointDirection: String, Hashable, Codable, Sendable, CaseIterable {
    case inbound
    case outbound
}

/// A connection point: where a VDU attaches to a virtual link.
public struct ConnectionPoint: Hashable, Codable, Sendable {
    /// The id, unique in the VNFD.
    public var id: String
    /// The VDU it belongs to.
    public var vdu: String
    /// The VDU port it exposes (inbound points).
    public var port: String?
    /// The virtual link (internal or external) it attaches to.
    public var virtualLink: String
    /// Inbound or outbound.
    public var direction: ConnectionPointDirection
}

/// A virtual link: internal ones join VDUs of this VNF; external ones are bound at instantiation to endpoints
/// outside it (the next VNF of a chain, a target service).
public struct VirtualLink: Hashable, Codable, Sendable {
    /// The id, unique among the VNFD's links.
    public var id: String
    /// What the link carries (free text, e.g. `tcp`).
    public var protocolName: String
    /// Whether the link is secured by the framework's secure channel tunnel (identities per VNF instance).
    public var secure: Bool
}

/// One instantiation level: how many VNFCs of each VDU.
public struct InstantiationLevel: Hashable, Codable, Sendable {
    /// The id, unique in the flavour.
    public var id: String
    /// VNFCs per VDU id (VDUs not listed run their `minInstances`).
    public var vduInstances: [String: Int]
}

/// A scaling aspect: steps that each add (or, scaling in, remove) a number of VNFCs per VDU.
public struct ScalingAspect: Hashable, Codable, Sendable {
    /// The id, unique in the flavour.
    public var id: String
    /// The highest scale level.
    public var maxScaleLevel: Int
    /// The VNFCs each step adds, per VDU; step `i` uses `deltas[min(i, deltas.count - 1)]` (SOL001's uniform delta
    /// is a single entry).
    public var deltas: [[String: Int]]

    /// The VNFCs the aspect adds at `level`, per VDU.
    public func instances(atLevel level: Int) -> [String: Int] {
        var total: [String: Int] = [:]
        guard !deltas.isEmpty else { return total }
        for step in 0..<max(0, level) {
            for (vdu, count) in deltas[min(step, deltas.count - 1)] { total[vdu, default: 0] += count }
        }
        return total
    }
}

/// Whether members of a placement group are kept together or apart.
public enum AffinityType: String, Hashable, Codable, Sendable, CaseIterable {
    case affinity
    case antiAffinity = "anti-affinity"
}

/// The failure domain a placement group is about.
public enum AffinityScope: String, Hashable, Codable, Sendable, CaseIterable {
    /// One agent (machine).
    case agent
    /// One zone (agents' `zone` attribute, else `rack`).
    case zone
}

/// An affinity or anti-affinity group of VDUs.
public struct AffinityGroup: Hashable, Codable, Sendable {
    /// The id, unique in the flavour.
    public var id: String
    /// Together or apart.
    public var type: AffinityType
    /// Agent or zone.
    public var scope: AffinityScope
    /// The VDUs whose VNFCs the rule applies to.
    public var members: [String]
}

/// A deployment flavour: instantiation levels, scaling aspects and placement rules.
public struct DeploymentFlavour: Hashable, Codable, Sendable {
    /// The id, unique in the VNFD.
    public var id: String
    /// The levels.
    public var instantiationLevels: [InstantiationLevel]
    /// The level used when instantiation names none.
    public var defaultLevel: String
    /// The scaling aspects.
    public var scalingAspects: [ScalingAspect]
    /// Affinity and anti-affinity groups.
    public var affinityGroups: [AffinityGroup]

    /// The level `id`.
    public func level(_ id: String) -> InstantiationLevel? { instantiationLevels.first { $0.id == id } }
    /// The aspect `id`.
    public func aspect(_ id: String) -> ScalingAspect? { scalingAspects.first { $0.id == id } }
}

/// A monitoring parameter: a metric collected from the VNF, optionally driving auto-scaling.
public struct MonitoringParameter: Hashable, Codable, Sendable {
    /// The id.
    public var id: String
    /// The metric name (e.g. `connections_active`).
    public var metric: String
    /// Seconds between collections.
    public var collectionPeriodSeconds: Double
    /// Auto-scale: the aspect to scale out when the metric exceeds `scaleOutThreshold`, in below `scaleInThreshold`.
    public var scalingAspect: String?
    /// Threshold above which the aspect scales out.
    public var scaleOutThreshold: Double?
    /// Threshold below which it scales in.
    public var scaleInThreshold: Double?
    /// Seconds after an auto-scale before the next.
    public var cooldownSeconds: Double
}

/// The lifecycle events hooks may run at.
public enum LifecycleEvent: String, Hashable, Codable, Sendable, CaseIterable {
    case instantiateStart = "instantiate_start"
    case instantiateEnd = "instantiate_end"
    case scaleStart = "scale_start"
    case scaleEnd = "scale_end"
    case healStart = "heal_start"
    case healEnd = "heal_end"
    case terminateStart = "terminate_start"
    case terminateEnd = "terminate_end"
}

/// A command run at a lifecycle event.
public struct LifecycleHook: Hashable, Codable, Sendable {
    /// When.
    public var event: LifecycleEvent
    /// The command line.
    public var command: [String]
}

/// A validated VNF descriptor.
public struct VNFDescriptor: Hashable, Codable, Sendable {
    /// The descriptor id.
    public var id: String
    /// The descriptor version.
    public var version: String
    /// Who provides the VNF.
    public var provider: String
    /// A product name.
    public var productName: String?
    /// The VDUs.
    public var vdus: [VDU]
    /// The connection points.
    public var connectionPoints: [ConnectionPoint]
    /// Links between the VNF's own VDUs.
    public var internalVirtualLinks: [VirtualLink]
    /// Links bound at instantiation to endpoints outside the VNF.
    public var externalVirtualLinks: [VirtualLink]
    /// The flavours.
    public var deploymentFlavours: [DeploymentFlavour]
    /// Monitoring parameters.
    public var monitoringParameters: [MonitoringParameter]
    /// Lifecycle hooks.
    public var lifecycleHooks: [LifecycleHook]

    /// The VDU `id`.
    public func vdu(_ id: String) -> VDU? { vdus.first { $0.id == id } }
    /// The flavour `id`.
    public func flavour(_ id: String) -> DeploymentFlavour? { deploymentFlavours.first { $0.id == id } }

    /// The inbound connection points on the external link `link`.
    public func inboundPoints(onExternalLink link: String) -> [ConnectionPoint] {
        connectionPoints.filter { $0.virtualLink == link && $0.direction == .inbound }
    }

    /// VNFCs per VDU at `level` of `flavour` with aspects at `scaleLevels`, bounded by each VDU's min/max.
    public func vnfcCounts(flavour: DeploymentFlavour, level: InstantiationLevel, scaleLevels: [String: Int]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for vdu in vdus { counts[vdu.id] = level.vduInstances[vdu.id] ?? vdu.minInstances }
        for aspect in flavour.scalingAspects {
            for (vdu, extra) in aspect.instances(atLevel: scaleLevels[aspect.id] ?? 0) { counts[vdu, default: 0] += extra }
        }
        for vdu in vdus { counts[vdu.id] = min(max(counts[vdu.id] ?? 0, vdu.minInstances), vdu.maxInstances) }
        return counts
    }
}
