// Parses and validates a VNF descriptor from YAML (see `samples/nfv/*.yaml` for the format). Validation stops at the
// first error and reports its line and field path; references (VDUs, links, levels, aspects) are checked after the
// structure, and instance bounds last.

import Yams

/// Builds a `VNFDescriptor` from YAML.
public enum VNFDescriptorParser {
    /// Parses and validates `text`.
    /// - Throws: `DescriptorError` naming the line, the field path and the problem.
    public static func parse(_ text: String) throws(DescriptorError) -> VNFDescriptor {
        let root = try composeYAML(text, root: "vnfd").mapping(allowed: ["vnfd"])
        return try parse(root.required("vnfd"))
    }

    static func parse(_ field: YAMLField) throws(DescriptorError) -> VNFDescriptor {
        let map = try field.mapping(allowed: [
            "id", "version", "provider", "product_name", "vdus", "connection_points", "internal_virtual_links",
            "external_virtual_links", "deployment_flavours", "monitoring_parameters", "lifecycle_hooks",
        ])
        var vdus: [VDU] = []
        var vduFields: [YAMLField] = []
        for item in try map.required("vdus").list() {
            vdus.append(try vdu(item))
            vduFields.append(item)
        }
        try unique(vdus.map(\.id), vduFields, what: "VDU")
        let vduByID = Dictionary(uniqueKeysWithValues: vdus.map { ($0.id, $0) })

        let internalLinks = try links(map.optional("internal_virtual_links"))
        let external = try links(map.optional("external_virtual_links"))
        let linkFields = (map.optional("internal_virtual_links").map { (try? $0.list()) ?? [] } ?? [])
            + (map.optional("external_virtual_links").map { (try? $0.list()) ?? [] } ?? [])
        try unique((internalLinks + external).map(\.id), linkFields, what: "virtual link")
        let linkIDs = Set((internalLinks + external).map(\.id))

        var points: [ConnectionPoint] = []
        let pointFields = try map.optional("connection_points")?.list() ?? []
        for item in pointFields {
            let point = try connectionPoint(item)
            let entry = try item.mapping(allowed: ["id", "vdu", "port", "virtual_link", "direction"])
            guard let vdu = vduByID[point.vdu] else {
                throw try entry.required("vdu").error(.unknownReference, "no VDU '\(point.vdu)' (VDUs: \(vdus.map(\.id).joined(separator: ", ")))")
            }
            if let port = point.port, !vdu.ports.contains(port) {
                throw try entry.required("port").error(.unknownReference, "VDU '\(vdu.id)' has no port '\(port)' (ports: \(vdu.ports.joined(separator: ", ")))")
            }
            if point.direction == .inbound && point.port == nil {
                throw entry.field.error(.missingField, "an inbound connection point needs 'port'")
            }
            guard linkIDs.contains(point.virtualLink) else {
                throw try entry.required("virtual_link").error(.unknownReference, "no virtual link '\(point.virtualLink)'")
            }
            points.append(point)
        }
        try unique(points.map(\.id), pointFields, what: "connection point")

        var flavours: [DeploymentFlavour] = []
        let flavourFields = try map.required("deployment_flavours").list()
        guard !flavourFields.isEmpty else {
            throw try map.required("deployment_flavours").error(.invalidValue, "at least one deployment flavour is needed")
        }
        for item in flavourFields { flavours.append(try flavour(item, vdus: vduByID)) }
        try unique(flavours.map(\.id), flavourFields, what: "deployment flavour")

        var monitoring: [MonitoringParameter] = []
        for item in try map.optional("monitoring_parameters")?.list() ?? [] {
            let parameter = try monitoringParameter(item)
            if let aspect = parameter.scalingAspect, !flavours.contains(where: { $0.aspect(aspect) != nil }) {
                throw try item.mapping(allowed: monitoringFields).required("scaling_aspect")
                    .error(.unknownReference, "no flavour has a scaling aspect '\(aspect)'")
            }
            monitoring.append(parameter)
        }

        var hooks: [LifecycleHook] = []
        for item in try map.optional("lifecycle_hooks")?.list() ?? [] {
            let entry = try item.mapping(allowed: ["event", "command"])
            let command = try entry.required("command").stringList()
            guard !command.isEmpty else { throw try entry.required("command").error(.invalidValue, "the command is empty") }
            hooks.append(LifecycleHook(event: try entry.required("event").enumValue(LifecycleEvent.self), command: command))
        }

        return VNFDescriptor(
            id: try map.required("id").identifier(),
            version: try map.required("version").string(),
            provider: try map.required("provider").string(),
            productName: try map.optional("product_name")?.string(),
            vdus: vdus, connectionPoints: points, internalVirtualLinks: internalLinks, externalVirtualLinks: external,
            deploymentFlavours: flavours, monitoringParameters: monitoring, lifecycleHooks: hooks)
    }

    // MARK: parts

    private static func vdu(_ field: YAMLField) throws(DescriptorError) -> VDU {
        let map = try field.mapping(allowed: [
            "id", "command", "args", "software_version", "cpus", "mem", "disk", "ports", "min_instances",
            "max_instances", "health_check",
        ])
        let cpus = try map.required("cpus").double()
        guard cpus > 0 else { throw try map.required("cpus").error(.invalidValue, "cpus must be greater than 0") }
        let mem = try map.required("mem").double()
        guard mem > 0 else { throw try map.required("mem").error(.invalidValue, "mem (MB) must be greater than 0") }
        let disk = try map.optional("disk")?.double() ?? 0
        guard disk >= 0 else { throw try map.required("disk").error(.invalidValue, "disk (MB) must not be negative") }
        var ports: [String] = []
        let portFields = try map.optional("ports")?.list() ?? []
        for item in portFields { ports.append(try item.identifier()) }
        try unique(ports, portFields, what: "port")
        let minimum = try map.optional("min_instances")?.int() ?? 1
        let maximum = try map.optional("max_instances")?.int() ?? max(minimum, 1)
        guard minimum >= 0 else { throw try map.required("min_instances").error(.invalidValue, "min_instances must not be negative") }
        guard maximum >= max(minimum, 1) else {
            throw try map.required("max_instances").error(
                .invalidValue, "max_instances (\(maximum)) must be at least min_instances (\(minimum)) and at least 1")
        }
        let command = try map.required("command").string()
        guard !command.isEmpty else { throw try map.required("command").error(.invalidValue, "the command is empty") }
        var check: HealthCheckSpec?
        if let health = map.optional("health_check") {
            check = try healthCheck(health, ports: ports)
        }
        return VDU(
            id: try map.required("id").identifier(), command: command,
            arguments: try map.optional("args")?.stringList() ?? [],
            softwareVersion: try map.optional("software_version")?.string(), cpus: cpus, memMB: mem, diskMB: disk,
            ports: ports, minInstances: minimum, maxInstances: maximum, healthCheck: check)
    }

    private static func healthCheck(_ field: YAMLField, ports: [String]) throws(DescriptorError) -> HealthCheckSpec {
        enum Kind: String, CaseIterable { case tcp, http, command }
        let map = try field.mapping(allowed: ["type", "port", "path", "command", "interval", "timeout", "failure_threshold"])
        let kind = try map.required("type").enumValue(Kind.self)
        func port() throws(DescriptorError) -> String {
            let name = try map.required("port").string()
            guard ports.contains(name) else {
                throw try map.required("port").error(.unknownReference, "the VDU has no port '\(name)' (ports: \(ports.joined(separator: ", ")))")
            }
            return name
        }
        let check: HealthCheck
        switch kind {
        case .tcp: check = .tcp(port: try port())
        case .http:
            let path = try map.optional("path")?.string() ?? "/"
            guard path.hasPrefix("/") else { throw try map.required("path").error(.invalidValue, "an HTTP path starts with '/'") }
            check = .http(port: try port(), path: path)
        case .command:
            let command = try map.required("command").stringList()
            guard !command.isEmpty else { throw try map.required("command").error(.invalidValue, "the command is empty") }
            check = .command(command)
        }
        let interval = try map.optional("interval")?.double() ?? 5
        let timeout = try map.optional("timeout")?.double() ?? 2
        let threshold = try map.optional("failure_threshold")?.int() ?? 3
        guard interval > 0 else { throw try map.required("interval").error(.invalidValue, "interval must be greater than 0") }
        guard timeout > 0 && timeout <= interval else {
            throw try map.required("timeout").error(.invalidValue, "timeout must be greater than 0 and at most the interval (\(interval))")
        }
        guard threshold >= 1 else { throw try map.required("failure_threshold").error(.invalidValue, "failure_threshold must be at least 1") }
        return HealthCheckSpec(check: check, intervalSeconds: interval, timeoutSeconds: timeout, failureThreshold: threshold)
    }

    private static func connectionPoint(_ field: YAMLField) throws(DescriptorError) -> ConnectionPoint {
        let map = try field.mapping(allowed: ["id", "vdu", "port", "virtual_link", "direction"])
        return ConnectionPoint(
            id: try map.required("id").identifier(), vdu: try map.required("vdu").string(),
            port: try map.optional("port")?.string(), virtualLink: try map.required("virtual_link").string(),
            direction: try map.optional("direction")?.enumValue(ConnectionPointDirection.self) ?? .inbound)
    }

    private static func links(_ field: YAMLField?) throws(DescriptorError) -> [VirtualLink] {
        var result: [VirtualLink] = []
        for item in try field?.list() ?? [] {
            let map = try item.mapping(allowed: ["id", "protocol", "secure"])
            result.append(
                VirtualLink(
                    id: try map.required("id").identifier(), protocolName: try map.optional("protocol")?.string() ?? "tcp",
                    secure: try map.optional("secure")?.bool() ?? false))
        }
        return result
    }

    private static func flavour(_ field: YAMLField, vdus: [String: VDU]) throws(DescriptorError) -> DeploymentFlavour {
        let map = try field.mapping(allowed: ["id", "instantiation_levels", "default_level", "scaling_aspects", "affinity_groups"])
        func vduReference(_ field: YAMLField) throws(DescriptorError) -> VDU {
            let id = try field.string()
            guard let vdu = vdus[id] else {
                throw field.error(.unknownReference, "no VDU '\(id)' (VDUs: \(vdus.keys.sorted().joined(separator: ", ")))")
            }
            return vdu
        }

        var levels: [InstantiationLevel] = []
        let levelFields = try map.required("instantiation_levels").list()
        guard !levelFields.isEmpty else {
            throw try map.required("instantiation_levels").error(.invalidValue, "at least one instantiation level is needed")
        }
        for item in levelFields {
            let entry = try item.mapping(allowed: ["id", "vdu_instances"])
            var counts: [String: Int] = [:]
            for (key, countField) in try entry.required("vdu_instances").freeMapping() {
                guard let vdu = vdus[key] else {
                    throw countField.error(.unknownReference, "no VDU '\(key)' (VDUs: \(vdus.keys.sorted().joined(separator: ", ")))")
                }
                let count = try countField.int()
                guard (vdu.minInstances...vdu.maxInstances).contains(count) else {
                    throw countField.error(
                        .instanceBounds, "\(count) instances of VDU '\(key)' is outside its \(vdu.minInstances)…\(vdu.maxInstances)")
                }
                counts[key] = count
            }
            levels.append(InstantiationLevel(id: try entry.required("id").identifier(), vduInstances: counts))
        }
        try unique(levels.map(\.id), levelFields, what: "instantiation level")
        let defaultLevel = try map.optional("default_level")?.string() ?? levels[0].id
        guard levels.contains(where: { $0.id == defaultLevel }) else {
            throw try map.required("default_level").error(.unknownReference, "no instantiation level '\(defaultLevel)'")
        }

        var aspects: [ScalingAspect] = []
        let aspectFields = try map.optional("scaling_aspects")?.list() ?? []
        for item in aspectFields {
            let entry = try item.mapping(allowed: ["id", "max_scale_level", "deltas"])
            let maxLevel = try entry.required("max_scale_level").int()
            guard maxLevel >= 1 else { throw try entry.required("max_scale_level").error(.invalidValue, "max_scale_level must be at least 1") }
            var deltas: [[String: Int]] = []
            let deltaFields = try entry.required("deltas").list()
            guard !deltaFields.isEmpty else { throw try entry.required("deltas").error(.invalidValue, "at least one delta is needed") }
            for deltaField in deltaFields {
                var delta: [String: Int] = [:]
                for (key, countField) in try deltaField.freeMapping() {
                    _ = try vduReference(YAMLField(node: .scalar(.init(key, .implicit, .plain, countField.node.mark)), path: countField.path))
                    let count = try countField.int()
                    guard count >= 1 else { throw countField.error(.invalidValue, "a delta adds at least 1 instance") }
                    delta[key] = count
                }
                deltas.append(delta)
            }
            let aspect = ScalingAspect(id: try entry.required("id").identifier(), maxScaleLevel: maxLevel, deltas: deltas)
            // The largest level plus the full aspect must still fit each VDU's maximum.
            for (vdu, extra) in aspect.instances(atLevel: maxLevel) {
                let base = levels.map { $0.vduInstances[vdu] ?? vdus[vdu]!.minInstances }.max() ?? 0
                if base + extra > vdus[vdu]!.maxInstances {
                    throw try entry.required("max_scale_level").error(
                        .instanceBounds,
                        "at scale level \(maxLevel) VDU '\(vdu)' would run \(base + extra) instances, above its max_instances \(vdus[vdu]!.maxInstances)")
                }
            }
            aspects.append(aspect)
        }
        try unique(aspects.map(\.id), aspectFields, what: "scaling aspect")

        var groups: [AffinityGroup] = []
        let groupFields = try map.optional("affinity_groups")?.list() ?? []
        var antiAffinityOf: [String: String] = [:]
        for item in groupFields {
            let entry = try item.mapping(allowed: ["id", "type", "scope", "members"])
            let id = try entry.required("id").identifier()
            let type = try entry.required("type").enumValue(AffinityType.self)
            var members: [String] = []
            for member in try entry.required("members").list() {
                let vdu = try vduReference(member)
                if type == .antiAffinity {
                    if let other = antiAffinityOf[vdu.id] {
                        throw member.error(.invalidValue, "VDU '\(vdu.id)' is already in anti-affinity group '\(other)'; a VDU can be in one")
                    }
                    antiAffinityOf[vdu.id] = id
                }
                members.append(vdu.id)
            }
            groups.append(
                AffinityGroup(id: id, type: type, scope: try entry.optional("scope")?.enumValue(AffinityScope.self) ?? .agent, members: members))
        }
        try unique(groups.map(\.id), groupFields, what: "affinity group")

        return DeploymentFlavour(
            id: try map.required("id").identifier(), instantiationLevels: levels, defaultLevel: defaultLevel,
            scalingAspects: aspects, affinityGroups: groups)
    }

    private static let monitoringFields = [
        "id", "metric", "collection_period", "scaling_aspect", "scale_out_threshold", "scale_in_threshold", "cooldown",
    ]

    private static func monitoringParameter(_ field: YAMLField) throws(DescriptorError) -> MonitoringParameter {
        let map = try field.mapping(allowed: monitoringFields)
        let period = try map.optional("collection_period")?.double() ?? 10
        guard period > 0 else { throw try map.required("collection_period").error(.invalidValue, "collection_period must be greater than 0") }
        let out = try map.optional("scale_out_threshold")?.double()
        let `in` = try map.optional("scale_in_threshold")?.double()
        if let out, let `in`, `in` >= out {
            throw try map.required("scale_in_threshold").error(.invalidValue, "scale_in_threshold (\(`in`)) must be below scale_out_threshold (\(out))")
        }
        return MonitoringParameter(
            id: try map.required("id").identifier(), metric: try map.required("metric").string(),
            collectionPeriodSeconds: period, scalingAspect: try map.optional("scaling_aspect")?.string(),
            scaleOutThreshold: out, scaleInThreshold: `in`, cooldownSeconds: try map.optional("cooldown")?.double() ?? 60)
    }

    /// Throws `.duplicateID` at the second entry that repeats an id.
    static func unique(_ ids: [String], _ fields: [YAMLField], what: String) throws(DescriptorError) {
        var seen: [String: Int] = [:]
        for (index, id) in ids.enumerated() {
            if let first = seen[id] {
                let field = index < fields.count ? fields[index] : YAMLField(node: .scalar(.init(id)), path: what)
                let firstLine = first < fields.count ? fields[first].line : 0
                throw field.error(.duplicateID, "\(what) id '\(id)' is already used on line \(firstLine)")
            }
            seen[id] = index
        }
    }
}
