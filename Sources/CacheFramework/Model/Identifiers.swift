// Identifiers of the Mesos v1 model (`OfferID`, `AgentID`, `TaskID`, `FrameworkID`), encoded as the proto's JSON
// (`{"value": "…"}`) so the Mesos HTTP backend can reuse them unchanged.

/// The identifier of one resource offer.
public struct OfferID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    /// The opaque identifier text.
    public var value: String
    /// Creates an identifier from its text.
    public init(_ value: String) { self.value = value }
    public var description: String { value }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}

/// The identifier of one agent (a machine that runs tasks).
public struct AgentID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    /// The opaque identifier text.
    public var value: String
    /// Creates an identifier from its text.
    public init(_ value: String) { self.value = value }
    public var description: String { value }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}

/// The identifier of one task, chosen by the scheduler.
public struct TaskID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    /// The opaque identifier text.
    public var value: String
    /// Creates an identifier from its text.
    public init(_ value: String) { self.value = value }
    public var description: String { value }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}

/// The identifier the master gives this framework when it first subscribes.
public struct FrameworkID: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The opaque identifier text.
    public var value: String
    /// Creates an identifier from its text.
    public init(_ value: String) { self.value = value }
    public var description: String { value }
}

/// A point in scheduler time, in seconds since an arbitrary epoch (Mesos timestamps are seconds as doubles).
///
/// The scheduler never reads a clock: every event that needs time carries a `SchedulerTime`, so tests inject it.
public struct SchedulerTime: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    /// Seconds since the epoch.
    public var seconds: Double
    /// Creates a time from seconds since the epoch.
    public init(seconds: Double) { self.seconds = seconds }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.seconds < rhs.seconds }
    /// The time `interval` seconds later.
    public func adding(seconds interval: Double) -> SchedulerTime { SchedulerTime(seconds: seconds + interval) }
    public var description: String { "t=\(seconds)s" }
}
