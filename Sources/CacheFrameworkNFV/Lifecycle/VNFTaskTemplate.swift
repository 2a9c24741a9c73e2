// How a VNFC becomes a Mesos `TaskInfo`: the VDU's command with its placeholders substituted, its resources and
// ports, and labels that say which instance/VDU it is and how to check its health.

public import CacheFramework

/// Builds the `TaskInfo` of a VNFC.
public enum VNFTaskTemplate {
    /// Label keys on VNF tasks.
    public enum Label {
        /// The VNF instance id.
        public static let instance = "nfv.instance"
        /// The VDU id.
        public static let vdu = "nfv.vdu"
        /// The VNFC id.
        public static let vnfc = "nfv.vnfc"
        /// The health check: `tcp HOST:PORT`, `http HOST:PORT PATH` or `command ARG…` (arguments tab-separated).
        public static let health = "nfv.health"
    }

    /// Task ids of VNFCs start with this, which is how VNF tasks are told from cache members.
    public static let taskPrefix = "vnf."

    /// Environment variables a VNFC's process gets for its secured links (read by `vnf-sample`).
    public enum Environment {
        /// Comma-separated node id prefixes accepted on inbound connections (set: inbound is secure).
        public static let ingressPeers = "VNF_SECURE_INGRESS_PEERS"
        /// Comma-separated node id prefixes outbound connections must reach (set: outbound is secure).
        public static let egressPeers = "VNF_SECURE_EGRESS_PEERS"
        /// The VNFC's identity file (added by the framework's authority at launch).
        public static let identity = "VNF_IDENTITY"
        /// The authority public key file.
        public static let authority = "VNF_AUTHORITY"
        /// The signed revocation list the process watches (the framework rewrites it when it revokes).
        public static let revocationList = "VNF_REVOCATION_LIST"
        /// A directory holding one file per external virtual link of the instance, and per internal one its VNFCs
        /// reach (named after the link, its endpoints comma-separated), which the framework rewrites when a rolling
        /// update moves the VNFC the link leads to or a network service binds the link (added by the runtime when it
        /// keeps such files; `vnf-sample --next-link LINK` follows one).
        public static let linksDirectory = "VNF_LINKS_DIR"
    }

    /// The task of `vnfc` of `instance` on `hostname`.
    ///
    /// Placeholders in the VDU's arguments: `${host}`, `${port:NAME}`, `${ext:LINK}` (the endpoints bound to an
    /// external link, comma-separated), `${vl:LINK}` (inbound endpoints of the instance's VNFCs on an internal link),
    /// `${instance}` and `${vnfc}`.
    public static func taskInfo(for vnfc: VNFCRecord, of instance: VNFInstance, taskID: TaskID, agentID: AgentID, hostname: String) -> TaskInfo {
        let vdu = instance.vnfd.vdu(vnfc.vdu)!
        let arguments = vdu.arguments.map { substitute($0, vnfc: vnfc, instance: instance, hostname: hostname) }
        var labels = [Label.instance: instance.id, Label.vdu: vdu.id, Label.vnfc: vnfc.id]
        if let check = vdu.healthCheck?.check { labels[Label.health] = healthLabel(check, vnfc: vnfc, hostname: hostname) }
        let ports = vdu.ports.compactMap { vnfc.ports[$0] }
        var environment: [String: String] = [:]
        if let peers = instance.linkSecurity?.ingressPeers { environment[Environment.ingressPeers] = peers.joined(separator: ",") }
        if let peers = instance.linkSecurity?.egressPeers { environment[Environment.egressPeers] = peers.joined(separator: ",") }
        return TaskInfo(
            name: "\(instance.name).\(vnfc.id)", taskID: taskID, agentID: agentID,
            resources: ResourceQuantities(cpus: vdu.cpus, memMB: vdu.memMB, diskMB: vdu.diskMB, ports: RangeSet.of(ports)).resources,
            command: CommandInfo(value: vdu.command, arguments: arguments, environment: environment), labels: labels)
    }

    /// The health check of `vnfc` on `hostname` as a label (`NFVHealth.check` runs it): `tcp HOST:PORT`,
    /// `http HOST:PORT PATH` or `command ARG…` (arguments tab-separated).
    public static func healthLabel(_ check: HealthCheck, vnfc: VNFCRecord, hostname: String) -> String {
        switch check {
        case .tcp(let port): "tcp \(hostname):\(vnfc.ports[port] ?? 0)"
        case .http(let port, let path): "http \(hostname):\(vnfc.ports[port] ?? 0) \(path)"
        case .command(let command): "command " + command.joined(separator: "\t")
        }
    }

    static func substitute(_ argument: String, vnfc: VNFCRecord, instance: VNFInstance, hostname: String) -> String {
        guard argument.contains("${") else { return argument }
        var result = ""
        var rest = Substring(argument)
        while let dollar = rest.indices.first(where: { rest[$0] == "$" && rest.index(after: $0) < rest.endIndex && rest[rest.index(after: $0)] == "{" }) {
            result += rest[..<dollar]
            let open = rest.index(dollar, offsetBy: 2)
            guard let end = rest[open...].firstIndex(of: "}") else {
                result += rest[dollar...]
                return result
            }
            let name = rest[open..<end]
            let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
            switch (parts.first ?? "", parts.count == 2 ? parts[1] : "") {
            case ("host", _): result += hostname
            case ("instance", _): result += instance.id
            case ("vnfc", _): result += vnfc.id
            case ("port", let port): result += vnfc.ports[port].map(String.init) ?? ""
            case ("ext", let link): result += (instance.extLinks[link] ?? []).joined(separator: ",")
            case ("vl", let link): result += instance.endpoints(onLink: link).joined(separator: ",")
            default: result += "${\(name)}"
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }
}
