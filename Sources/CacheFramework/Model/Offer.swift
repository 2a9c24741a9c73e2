// Offers and agent attributes in the shape of mesos.proto's `Offer` and `Attribute`, and the refuse `Filters`.

/// An agent attribute (`Attribute` in mesos.proto), such as `rack:r1` or `zone:eu-1a`.
public struct Attribute: Hashable, Codable, Sendable {
    /// The attribute name.
    public var name: String
    /// The value type (TEXT for rack and zone names).
    public var type: ResourceValueType
    /// The value of a TEXT attribute.
    public var text: TextValue?
    /// The value of a SCALAR attribute.
    public var scalar: ScalarValue?

    /// The value of a TEXT attribute (`Value.Text`).
    public struct TextValue: Hashable, Codable, Sendable {
        /// The text.
        public var value: String
        /// Creates a text value.
        public init(value: String) { self.value = value }
    }

    /// A TEXT attribute.
    public static func text(_ name: String, _ value: String) -> Attribute {
        Attribute(name: name, type: .text, text: TextValue(value: value), scalar: nil)
    }
}

/// The attribute names placement uses as failure domains.
public enum FailureDomainAttribute {
    /// The zone attribute name; zones are the wider domain.
    public static let zone = "zone"
    /// The rack attribute name; used when an agent has no zone.
    public static let rack = "rack"
}

/// Resources on one agent that the master offers to this framework (`Offer` in mesos.proto).
public struct Offer: Hashable, Codable, Sendable {
    /// The offer's identifier; accept or decline it with this.
    public var id: OfferID
    /// The framework the offer is for.
    public var frameworkID: FrameworkID?
    /// The agent whose resources are offered.
    public var agentID: AgentID
    /// The agent's hostname (tasks are reached at hostname:port).
    public var hostname: String
    /// The offered resources.
    public var resources: [Resource]
    /// The agent's attributes (rack, zone, …).
    public var attributes: [Attribute]

    enum CodingKeys: String, CodingKey {
        case id
        case frameworkID = "framework_id"
        case agentID = "agent_id"
        case hostname
        case resources
        case attributes
    }

    /// Creates an offer.
    public init(
        id: OfferID,
        frameworkID: FrameworkID? = nil,
        agentID: AgentID,
        hostname: String,
        resources: [Resource],
        attributes: [Attribute] = []
    ) {
        self.id = id
        self.frameworkID = frameworkID
        self.agentID = agentID
        self.hostname = hostname
        self.resources = resources
        self.attributes = attributes
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(OfferID.self, forKey: .id)
        frameworkID = try container.decodeIfPresent(FrameworkID.self, forKey: .frameworkID)
        agentID = try container.decode(AgentID.self, forKey: .agentID)
        hostname = try container.decode(String.self, forKey: .hostname)
        resources = try container.decodeIfPresent([Resource].self, forKey: .resources) ?? []
        attributes = try container.decodeIfPresent([Attribute].self, forKey: .attributes) ?? []
    }

    /// The text value of the attribute `name`, if the agent has it.
    public func textAttribute(_ name: String) -> String? {
        attributes.first { $0.name == name }?.text?.value
    }

    /// The agent's failure domain: `zone:<z>` if it has a zone, else `rack:<r>`, else `nil`.
    public var failureDomain: String? {
        if let zone = textAttribute(FailureDomainAttribute.zone) { return "zone:\(zone)" }
        if let rack = textAttribute(FailureDomainAttribute.rack) { return "rack:\(rack)" }
        return nil
    }
}

/// Filters sent with ACCEPT and DECLINE (`Filters` in mesos.proto): how long the master should not re-offer the
/// declined resources.
public struct Filters: Hashable, Codable, Sendable {
    /// Seconds during which the declined resources are not offered again (Mesos' default is 5).
    public var refuseSeconds: Double

    enum CodingKeys: String, CodingKey { case refuseSeconds = "refuse_seconds" }

    /// Creates filters.
    public init(refuseSeconds: Double) { self.refuseSeconds = refuseSeconds }
}
