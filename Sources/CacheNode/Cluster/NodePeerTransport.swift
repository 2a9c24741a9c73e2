// How this node reaches other nodes for MIGRATE and CLUSTER MEET, by policy (issue 3: every byte between shards
// inside ReplicationSec):
// - a node with an identity (`--node-identity`/`--cluster-authority`) connects only to the peer's secure
//   (replication) port, through the secure channel: mutual authentication against the cluster authority, peer role
//   cache-node, and, when the topology knows the peer, its cluster node id checked over the authenticated link;
// - a node without an identity connects in plaintext only with `--replication-plaintext yes`, and refuses otherwise.
//
// Where a peer's secure port is (the documented rule, see the "Cluster topology" article): a node with a secure
// listener announces that port as its cluster bus port (`ip:port@cport` in CLUSTER NODES, in pushed topologies and
// in what MEET learns). For a target the topology does not know (or whose announced port refuses the connection),
// the node asks the target's client port `CONFIG GET replication-port`: a lookup that carries no key data, and whose
// answer is only a port to run the authenticated handshake against. A target without a secure port is refused.
public import Logging
public import NIOCore
public import NIOPosix
import ReplicationSec

/// Where a peer's secure listener is, as the topology states it.
public struct PeerSecureAddress: Sendable, Hashable {
    /// The secure (replication) port.
    public var port: Int
    /// The peer's cluster node id, checked with `CLUSTER MYID` over the secure link; `nil` when unknown.
    public var clusterNodeID: String?

    public init(port: Int, clusterNodeID: String?) {
        self.port = port
        self.clusterNodeID = clusterNodeID
    }
}

/// The node's transport for MIGRATE and MEET: secure, plaintext by opt-in, or refused (see the file comment).
public struct NodePeerTransport: ClusterPeerTransport {
    /// What the node may do.
    public enum Policy: Sendable {
        /// Only through the secure channel with this node's identity.
        case secure(NodeSecurity)
        /// Plaintext (`replication-plaintext yes`).
        case plaintext
        /// Neither an identity nor the plaintext opt-in.
        case refused
    }

    let policy: Policy
    let logger: Logger
    let group: any EventLoopGroup
    /// The topology's view of a peer at `host:port` (client port), or `nil` when unknown.
    let lookup: @Sendable (String, Int) -> PeerSecureAddress?

    /// - Parameters:
    ///   - policy: secure, plaintext or refused.
    ///   - logger: where connection failures are reported.
    ///   - group: where links run; must not be the group of the listener whose handlers call this.
    ///   - lookup: the topology's view of a peer's secure port and id (cluster mode), or `{ _, _ in nil }`.
    public init(
        policy: Policy, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        lookup: @escaping @Sendable (String, Int) -> PeerSecureAddress? = { _, _ in nil }
    ) {
        self.policy = policy
        self.logger = logger
        self.group = group
        self.lookup = lookup
    }

    /// The policy for `configuration` with `security` loaded (nil without an identity).
    public static func policy(for configuration: NodeConfiguration, security: NodeSecurity?) -> Policy {
        if let security { return .secure(security) }
        return configuration.replicationPlaintext ? .plaintext : .refused
    }

    public func connect(host: String, port: Int, timeout: Int) throws(ClusterPeerError) -> any ClusterPeerConnection {
        switch policy {
        case .refused:
            throw ClusterPeerError(
                "plaintext node-to-node traffic is disabled: give this node and the target --node-identity and --cluster-authority (MIGRATE then goes through the secure channel), or start both with --replication-plaintext yes",
                isRefusal: true)
        case .plaintext:
            return try PeerLinkTransport(group: group).connect(host: host, port: port, timeout: timeout)
        case .secure(let security):
            return try connectSecurely(host: host, port: port, timeout: timeout, security: security)
        }
    }

    private func connectSecurely(host: String, port: Int, timeout: Int, security: NodeSecurity) throws(ClusterPeerError)
        -> any ClusterPeerConnection
    {
        let configuration = security.clientConfiguration(logger: logger)
        let secure = PeerLinkTransport(security: configuration, group: group)
        var known = lookup(host, port)
        var connection: (any ClusterPeerConnection)?
        if let address = known {
            do {
                connection = try secure.connect(host: host, port: address.port, timeout: timeout)
            } catch where !error.isTimeout {
                // A stale or conventional (port + 10000) bus port: ask the target where its secure port is. Safe:
                // whatever the answer, the link is only used after an authenticated handshake.
                logger.notice("The topology's secure port \(address.port) for \(host):\(port) failed (\(error.message)); asking the node")
                known = PeerSecureAddress(port: try discoverSecurePort(host: host, port: port, timeout: timeout), clusterNodeID: address.clusterNodeID)
            }
        } else {
            known = PeerSecureAddress(port: try discoverSecurePort(host: host, port: port, timeout: timeout), clusterNodeID: nil)
        }
        let link: any ClusterPeerConnection
        if let connection {
            link = connection
        } else {
            link = try secure.connect(host: host, port: known!.port, timeout: timeout)
        }
        guard let expected = known?.clusterNodeID else { return link }
        // The peer authenticated as a cache node of our authority; check it is the node the topology names.
        let replies: [PeerReply]
        do {
            replies = try link.exchange([[Array("CLUSTER".utf8), Array("MYID".utf8)]], timeout: timeout)
        } catch {
            link.close()
            throw error
        }
        guard replies.first?.string == expected else {
            link.close()
            throw ClusterPeerError(
                "the node on the secure port \(known!.port) of \(host):\(port) is \(replies.first?.description ?? "nothing"), but the cluster topology names \(expected) there",
                isRefusal: true)
        }
        return link
    }

    /// Asks the target's client port for its secure port (`CONFIG GET replication-port`; no key data crosses).
    private func discoverSecurePort(host: String, port: Int, timeout: Int) throws(ClusterPeerError) -> Int {
        let plain = try PeerLinkTransport(group: group).connect(host: host, port: port, timeout: timeout)
        defer { plain.close() }
        let replies = try plain.exchange([["CONFIG", "GET", "replication-port"].map { Array($0.utf8) }], timeout: timeout)
        var securePort: Int?
        if case .array(let items)? = replies.first, items.count == 2, let value = items[1].string { securePort = Int(value) }
        if case .map(let items)? = replies.first, items.count == 2, let value = items[1].string { securePort = Int(value) }
        guard let securePort, securePort > 0 else {
            let detail = replies.first.map { $0.isError ? " (it replied \($0))" : "" } ?? ""
            throw ClusterPeerError(
                "the target \(host):\(port) has no secure replication port\(detail): this node has an identity and migrates only through the secure channel, never in plaintext; start the target with --node-identity, --cluster-authority and --replication-port",
                isRefusal: true)
        }
        return securePort
    }
}
