// Auto-scaling on a VNFD's monitoring parameters as a pure value: which parameters to collect when (each one's
// collection period), and per sample whether to scale its aspect out (the mean over the aspect's VNFCs above
// `scale_out_threshold`) or in (below `scale_in_threshold`), one step at a time, never outside the aspect's levels
// 0…max_scale_level and never twice within `cooldown` (counted from when the parameter was first watched too).
// The runtime (`NFVMetricsCollector`) reads the metric from each VNFC's `metrics` port and submits the decisions.

public import CacheFramework

/// One monitoring parameter of one instance to collect now.
public struct MetricCollection: Hashable, Sendable {
    /// The instance.
    public var instanceID: String
    /// The parameter.
    public var parameter: MonitoringParameter
    /// `host:port` of the `metrics` port of each running VNFC of the aspect's VDUs, by VNFC id.
    public var endpoints: [String: String]
}

/// An auto-scaling decision.
public struct NFVScaleDecision: Hashable, Sendable {
    /// The instance.
    public var instanceID: String
    /// The aspect.
    public var aspect: String
    /// Out or in (one step).
    public var type: ScaleType
    /// Why, recorded as the occurrence's cause.
    public var reason: String
}

/// Auto-scaling memory per instance and monitoring parameter.
public struct NFVAutoScaler: Sendable {
    /// The VDU port name a VNFC serves its metrics on (`GET /metrics`, lines of `name value`).
    public static let metricsPort = "metrics"

    struct Key: Hashable, Sendable {
        var instanceID: String
        var parameterID: String
    }

    private var lastCollected: [Key: SchedulerTime] = [:]
    private var lastAction: [Key: SchedulerTime] = [:]

    /// A scaler that has watched nothing yet.
    public init() {}

    /// The auto-scaling parameters due for collection at `now` (instantiated, started instances only).
    public mutating func due(_ instances: [VNFInstance], now: SchedulerTime) -> [MetricCollection] {
        var result: [MetricCollection] = []
        for instance in instances.sorted(by: { $0.id < $1.id }) where instance.instantiationState == .instantiated && instance.operationalState == .started {
            for parameter in instance.vnfd.monitoringParameters {
                guard let aspectID = parameter.scalingAspect, let aspect = instance.flavour.aspect(aspectID) else { continue }
                let key = Key(instanceID: instance.id, parameterID: parameter.id)
                if let last = lastCollected[key], now.seconds - last.seconds < parameter.collectionPeriodSeconds { continue }
                lastCollected[key] = now
                if lastAction[key] == nil { lastAction[key] = now }
                let vdus = Set(aspect.deltas.flatMap(\.keys))
                var endpoints: [String: String] = [:]
                for vnfc in instance.vnfcs.values where vnfc.isRunning && vnfc.replaces == nil && vdus.contains(vnfc.vdu) {
                    if let endpoint = vnfc.endpoint(Self.metricsPort) { endpoints[vnfc.id] = endpoint }
                }
                result.append(MetricCollection(instanceID: instance.id, parameter: parameter, endpoints: endpoints))
            }
        }
        let live = Set(instances.map(\.id))
        lastCollected = lastCollected.filter { live.contains($0.key.instanceID) }
        lastAction = lastAction.filter { live.contains($0.key.instanceID) }
        return result
    }

    /// Feeds one collection: `values` are the metric per VNFC (those that could not be read left out); `busy` while
    /// another operation runs on the instance (nothing is decided then). Returns a one-step scale, or nil.
    public mutating func observe(
        _ instance: VNFInstance, parameter: MonitoringParameter, values: [Double], busy: Bool, now: SchedulerTime
    ) -> NFVScaleDecision? {
        guard !busy, !values.isEmpty, let aspectID = parameter.scalingAspect, let aspect = instance.flavour.aspect(aspectID) else {
            return nil
        }
        let key = Key(instanceID: instance.id, parameterID: parameter.id)
        let since = lastAction[key] ?? now
        if lastAction[key] == nil { lastAction[key] = now }
        guard now.seconds - since.seconds >= parameter.cooldownSeconds else { return nil }
        let mean = values.reduce(0, +) / Double(values.count)
        let level = instance.scaleLevels[aspectID] ?? 0
        let measured = "\(parameter.metric) mean \(Self.format(mean)) over \(values.count) VNFCs"
        var decision: NFVScaleDecision?
        if let out = parameter.scaleOutThreshold, mean > out, level < aspect.maxScaleLevel {
            decision = NFVScaleDecision(
                instanceID: instance.id, aspect: aspectID, type: .scaleOut, reason: "\(measured) above \(Self.format(out))")
        } else if let inThreshold = parameter.scaleInThreshold, mean < inThreshold, level > 0 {
            decision = NFVScaleDecision(
                instanceID: instance.id, aspect: aspectID, type: .scaleIn, reason: "\(measured) below \(Self.format(inThreshold))")
        }
        if decision != nil { lastAction[key] = now }
        return decision
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
