// Pub/sub channels and patterns shared by all connections (skeleton: the pub/sub family fills it in).
public import CacheStore
public import Synchronization

/// Who is subscribed to what.
public final class PubSubHub: Sendable {
    init() {}

    /// Channels with at least one subscriber (INFO `pubsub_channels`).
    public var channelCount: Int { 0 }
    /// Patterns with at least one subscriber (INFO `pubsub_patterns`).
    public var patternCount: Int { 0 }

    /// Drops every subscription of a closing client.
    func unsubscribeAll(_ session: ClientSession) {}
}
