// The network service descriptor (NSD): which VNFs make up a service and the forwarding graph that chains them
// (traffic enters the first VNF's ingress link, leaves each VNF through its egress link into the next one, and the
// last VNF's egress goes to the service's external endpoint). VNFDs are referenced by file, relative to the NSD.

/// One VNF of a network service.
public struct NSVNFProfile: Hashable, Codable, Sendable {
    /// The VNF's id in the service.
    public var id: String
    /// Where its VNFD is (relative to the NSD's directory).
    public var vnfdPath: String
    /// The descriptor, once resolved.
    public var vnfd: VNFDescriptor
    /// The flavour to instantiate.
    public var flavour: String
    /// The instantiation level (the flavour's default when absent).
    public var level: String?
}

/// The forwarding graph: an ordered chain of VNFs.
public struct ForwardingGraph: Hashable, Codable, Sendable {
    /// VNF ids in traffic order.
    public var chain: [String]
    /// The external link of each VNF traffic enters through.
    public var ingressLink: String
    /// The external link of each VNF traffic leaves through.
    public var egressLink: String
    /// `plaintext_links: true` opts out of the secure channel on the links between the chain's VNFs (nil or false:
    /// every link between two VNFs is carried by the secure channel).
    public var plaintextLinks: Bool? = nil
}

/// A validated network service descriptor.
public struct NSDescriptor: Hashable, Codable, Sendable {
    /// The id.
    public var id: String
    /// The version.
    public var version: String
    /// The provider.
    public var provider: String
    /// The VNFs.
    public var vnfs: [NSVNFProfile]
    /// The chain.
    public var forwardingGraph: ForwardingGraph

    /// The VNF profile `id`.
    public func vnf(_ id: String) -> NSVNFProfile? { vnfs.first { $0.id == id } }
}

/// Builds an `NSDescriptor` from YAML.
public enum NSDescriptorParser {
    /// Parses and validates `text`; `loadVNFD` returns the YAML of a referenced VNFD (a path relative to the NSD).
    /// - Throws: `DescriptorError` (a VNFD's own errors have their path prefixed with the referencing field).
    public static func parse(_ text: String, loadVNFD: (String) throws -> String) throws(DescriptorError) -> NSDescriptor {
        let root = try composeYAML(text, root: "nsd").mapping(allowed: ["nsd"])
        let map = try root.required("nsd").mapping(allowed: ["id", "version", "provider", "vnfs", "forwarding_graph"])
        var vnfs: [NSVNFProfile] = []
        let vnfFields = try map.required("vnfs").list()
        for item in vnfFields {
            let entry = try item.mapping(allowed: ["id", "vnfd", "flavour", "level"])
            let pathField = try entry.required("vnfd")
            let path = try pathField.string()
            let text: String
            do { text = try loadVNFD(path) } catch {
                throw pathField.error(.unknownReference, "cannot read VNFD '\(path)': \(error)")
            }
            let vnfd: VNFDescriptor
            do { vnfd = try VNFDescriptorParser.parse(text) } catch {
                var nested = error
                nested.path = "\(pathField.path)(\(path)):\(error.path)"
                throw nested
            }
            let flavourField = entry.optional("flavour")
            let flavourID = try flavourField?.string() ?? vnfd.deploymentFlavours[0].id
            guard let flavour = vnfd.flavour(flavourID) else {
                throw (flavourField ?? item).error(.unknownReference, "VNFD '\(vnfd.id)' has no flavour '\(flavourID)'")
            }
            let level = try entry.optional("level")?.string()
            if let level, flavour.level(level) == nil {
                throw try entry.required("level").error(.unknownReference, "flavour '\(flavourID)' has no instantiation level '\(level)'")
            }
            vnfs.append(NSVNFProfile(id: try entry.required("id").identifier(), vnfdPath: path, vnfd: vnfd, flavour: flavourID, level: level))
        }
        try VNFDescriptorParser.unique(vnfs.map(\.id), vnfFields, what: "VNF")

        let graphField = try map.required("forwarding_graph")
        let graph = try graphField.mapping(allowed: ["chain", "ingress_link", "egress_link", "plaintext_links"])
        let ingress = try graph.optional("ingress_link")?.string() ?? "ingress"
        let egress = try graph.optional("egress_link")?.string() ?? "egress"
        var chain: [String] = []
        let chainFields = try graph.required("chain").list()
        guard !chainFields.isEmpty else { throw try graph.required("chain").error(.invalidValue, "the chain is empty") }
        for item in chainFields {
            let id = try item.string()
            guard let profile = vnfs.first(where: { $0.id == id }) else {
                throw item.error(.unknownReference, "no VNF '\(id)' in vnfs (\(vnfs.map(\.id).joined(separator: ", ")))")
            }
            guard !chain.contains(id) else { throw item.error(.duplicateID, "VNF '\(id)' is in the chain twice") }
            let links = Set(profile.vnfd.externalVirtualLinks.map(\.id))
            for link in [ingress, egress] where !links.contains(link) {
                throw item.error(.unknownReference, "VNFD '\(profile.vnfd.id)' has no external virtual link '\(link)' for the chain")
            }
            guard !profile.vnfd.inboundPoints(onExternalLink: ingress).isEmpty else {
                throw item.error(.unknownReference, "VNFD '\(profile.vnfd.id)' has no inbound connection point on '\(ingress)'")
            }
            chain.append(id)
        }
        return NSDescriptor(
            id: try map.required("id").identifier(), version: try map.required("version").string(),
            provider: try map.required("provider").string(), vnfs: vnfs,
            forwardingGraph: ForwardingGraph(
                chain: chain, ingressLink: ingress, egressLink: egress, plaintextLinks: try graph.optional("plaintext_links")?.bool()))
    }
}
