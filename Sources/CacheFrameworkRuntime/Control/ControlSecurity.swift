// The framework's side of the secure control channel: its own identity (role framework, issued by its cluster
// authority, see `FrameworkAuthority.frameworkIdentity()`) and the trust store members are checked against. With it
// `RESPNodeControl` reaches a member whose endpoint has a `securePort` through ReplicationSec, expecting the member's
// node id (= task id) and role cache-node, and then speaks the same RESP inside.

import CacheFramework
import NIOCore
public import ReplicationSec

/// The framework's identity and trust for control connections through the secure channel.
public struct ControlSecurity: Sendable {
    /// The framework's key and certificate (role framework).
    public var identity: NodeIdentity
    /// The authority (and current revocation list) members are verified against.
    public var trustStore: TrustStore

    /// Creates the settings.
    public init(identity: NodeIdentity, trustStore: TrustStore) {
        self.identity = identity
        self.trustStore = trustStore
    }

    /// The client configuration for reaching the member of `endpoint`: its node id is the task id, its role cache-node.
    func configuration(for endpoint: TaskEndpoint, handshakeTimeout: Duration) -> SecureChannelConfiguration {
        SecureChannelConfiguration(
            handshake: HandshakeConfiguration(
                identity: identity, trustStore: trustStore,
                peerExpectation: .node(endpoint.taskID.value, role: .cacheNode)),
            handshakeTimeout: .nanoseconds(
                handshakeTimeout.components.seconds * 1_000_000_000 + handshakeTimeout.components.attoseconds / 1_000_000_000))
    }
}
