// Who may push a topology (`CLUSTER TOPOLOGY SET`), which rewrites the node's whole slot map: on a node with an
// identity, only the framework, authenticated through the secure channel on the replication port with a certificate
// of role framework. A plain client-port connection is refused, and so is a cache-node peer on the secure port (the
// replicas and MIGRATE peers that share that listener never push topologies). A node without an identity accepts
// pushes on its client port, as before.
import NIOCore
import RESPServer
import ReplicationSec
import Synchronization

extension ReplicationState {
    /// Why `connection` may not push a topology, or `nil` when it may. Called on the connection's event loop (the
    /// dispatcher's), where the secure channel handler in front of its RESP handler can be asked for the peer.
    func topologyPushRefusal(for connection: ClientConnection) -> CommandError? {
        guard hasIdentity else { return nil }
        let port = securePort.load(ordering: .relaxed)
        func refusal(_ detail: String) -> CommandError {
            CommandError(
                code: "NOPERM",
                "topology pushes are accepted only from the framework through the secure channel (replication port \(port)); \(detail)")
        }
        guard isSecureConnection(connection) else {
            return refusal("this connection is plaintext on the client port")
        }
        let channel = connection.underlyingChannel
        guard channel.eventLoop.inEventLoop,
            let handler = try? channel.pipeline.syncOperations.handler(type: SecureChannelHandler.self),
            let peer = handler.authenticatedPeer
        else {
            return refusal("the peer of this connection is not authenticated")
        }
        guard peer.role == .framework else {
            return refusal("the peer '\(peer.nodeID)' authenticated with role \(peer.role), not framework")
        }
        return nil
    }
}
