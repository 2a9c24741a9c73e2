// Replication as part of the node's ServiceGroup: starts the link to the primary named by `--replicaof` once the
// node listens, stops it on graceful shutdown, and builds the secure replication listener (`--replication-port`):
// a second RESP listener whose connections first run ReplicationSec's handshake (mutual authentication, peer role
// cache-node — replicas, MIGRATE and MEET peers — or framework, whose control commands and topology pushes come this
// way) and then the ordinary RESP pipeline.
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

    /// Installs the transport for node-to-node requests (MIGRATE, CLUSTER MEET): the secure channel with an
    /// identity, plaintext only with `replication-plaintext yes`, refused otherwise (``NodePeerTransport``).
    static func installPeerTransport(node: NodeState, configuration: NodeConfiguration, security: NodeSecurity?, logger: Logger) {
        let policy = NodePeerTransport.policy(for: configuration, security: security)
        node.replication.usePeerTransport(NodePeerTransport(policy: policy, logger: logger))
        if let cluster = node.cluster {
            cluster.usePeerTransport(NodePeerTransport(policy: policy, logger: logger) { [weak cluster] host, port in
                cluster?.secureAddress(host: host, port: port)
            })
        }
    }

    /// The secure replication listener.
    static func secureListener(
        node: NodeState, security: NodeSecurity, configuration: NodeConfiguration, group: any EventLoopGroup, logger: Logger
    ) -> RESPListener<NodeDispatcher> {
        // Framework peers too: a topology push is accepted only from one (TopologyPushAuthorization.swift).
        let channelConfiguration = security.serverConfiguration(roles: [.cacheNode, .framework], logger: logger)
        let admission = HandshakeAdmission()
        return RESPListener(
            configuration: .init(
                hosts: configuration.bind, port: configuration.replicationPort ?? 0, backlog: configuration.tcpBacklog,
                limits: node.inputLimits),
            dispatcher: NodeDispatcher(node: node), group: group, logger: logger,
            onBound: { ports in
                let port = ports.first ?? 0
                node.replication.securePort.store(port, ordering: .relaxed)
                // CONFIG GET replication-port names the bound port (peers without a topology ask it; see
                // NodePeerTransport), and cluster mode announces it as the bus port.
                try? node.updateConfiguration { $0.replicationPort = port }
                node.cluster?.secureListenerBound(port: port)
                logger.notice("Secure replication listening on port \(port) (node id \(security.nodeID))")
            },
            prepareChannel: { channel in
                try SecureChannel.addHandlers(
                    to: channel.pipeline.syncOperations, role: .server(admission: admission), configuration: channelConfiguration,
                    eventLoop: channel.eventLoop)
            })
    }
}
