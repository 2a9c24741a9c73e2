// Replication as part of the node's ServiceGroup: starts the link to the primary named by `--replicaof` once the
// node listens, stops it on graceful shutdown, and builds the secure replication listener (`--replication-port`):
// a second RESP listener whose connections first run ReplicationSec's handshake (mutual authentication, peer role
// cache-node) and then the ordinary RESP pipeline.
import Logging
import NIOCore
import RESPServer
import ReplicationSec
import ServiceLifecycle
import Synchronization

/// Runs the replica link for the lifetime of the node.
struct ReplicationService: Service {
    let node: NodeState
    let replicaOf: ReplicaOfTarget?

    func run() async throws {
        if let replicaOf {
            // The listening port (REPLCONF listening-port) is known once the client listener bound.
            while node.boundPort.load(ordering: .relaxed) == 0 && !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .milliseconds(5))
            }
            if let refusal = node.replication.replicaRefusal() {
                node.replication.logger.error("Cannot replicate from \(replicaOf.host):\(replicaOf.port): \(refusal.message)")
            } else {
                node.replication.becomeReplica(of: replicaOf.host, port: replicaOf.port, node: node)
            }
        }
        await withGracefulShutdownHandler {
            try? await gracefulShutdown()
        } onGracefulShutdown: {}
        node.replication.shutdown()
    }

    /// Loads `--node-identity` / `--cluster-authority` (nil without an identity).
    static func loadSecurity(_ configuration: NodeConfiguration) throws(ConfigurationError) -> NodeSecurity? {
        guard let identity = configuration.nodeIdentity, let authority = configuration.clusterAuthority else { return nil }
        return try NodeSecurity.load(identityPath: identity, authorityPath: authority, revocationListPath: configuration.revocationList)
    }

    /// The secure replication listener.
    static func secureListener(
        node: NodeState, security: NodeSecurity, configuration: NodeConfiguration, group: any EventLoopGroup, logger: Logger
    ) -> RESPListener<NodeDispatcher> {
        let channelConfiguration = security.serverConfiguration(logger: logger)
        let admission = HandshakeAdmission()
        let limits = RESPCommandDecoder.Limits(maximumBulkLength: configuration.protoMaxBulkLength)
        return RESPListener(
            configuration: .init(hosts: configuration.bind, port: configuration.replicationPort ?? 0, backlog: configuration.tcpBacklog, limits: limits),
            dispatcher: NodeDispatcher(node: node), group: group, logger: logger,
            onBound: { ports in
                let port = ports.first ?? 0
                node.replication.securePort.store(port, ordering: .relaxed)
                logger.notice("Secure replication listening on port \(port) (node id \(security.nodeID))")
            },
            prepareChannel: { channel in
                try SecureChannel.addHandlers(
                    to: channel.pipeline.syncOperations, role: .server(admission: admission), configuration: channelConfiguration,
                    eventLoop: channel.eventLoop)
            })
    }
}
