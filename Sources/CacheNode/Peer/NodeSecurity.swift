// This node's ReplicationSec identity and trust (from `--node-identity` and `--cluster-authority`), turned into
// secure channel configurations for the replication listener (server side) and for links to peers (client side).
import Foundation
public import Logging
public import ReplicationSec

/// A node's identity, the authority it trusts and, optionally, a revocation list.
public struct NodeSecurity: Sendable {
    /// This node's key and certificate.
    public let identity: NodeIdentity
    /// The authority and revocation list peers are checked against.
    public let trustStore: TrustStore

    /// Creates the security settings from already-loaded keys.
    public init(identity: NodeIdentity, trustStore: TrustStore) {
        self.identity = identity
        self.trustStore = trustStore
    }

    /// This node's id as its certificate states it.
    public var nodeID: String { identity.certificate.nodeID }

    /// Loads the files named by `--node-identity` (an identity file from `cachectl identity issue`, or a directory
    /// holding exactly one `*.identity`), `--cluster-authority` (`authority.pub`, or a directory holding it) and an
    /// optional revocation list.
    public static func load(identityPath: String, authorityPath: String, revocationListPath: String? = nil)
        throws(ConfigurationError) -> NodeSecurity
    {
        let identityFile = try resolve(identityPath, directoryEntry: { $0.hasSuffix(".identity") }, what: "node identity")
        let authorityFile = try resolve(authorityPath, directoryEntry: { $0 == "authority.pub" }, what: "cluster authority")
        do {
            let identity = try KeyFiles.decodeIdentity(try String(contentsOfFile: identityFile, encoding: .utf8))
            let authority = try KeyFiles.decodeAuthorityPublicKey(try String(contentsOfFile: authorityFile, encoding: .utf8))
            let revocations = try revocationListPath.map {
                try KeyFiles.decodeRevocationList(try String(contentsOfFile: $0, encoding: .utf8), authority: authority)
            }
            guard identity.certificate.role == .cacheNode else {
                throw ConfigurationError(
                    "the node identity \(identityFile) has role \(identity.certificate.role); a cache node needs role cache-node")
            }
            return NodeSecurity(identity: identity, trustStore: TrustStore(authority: authority, revocationList: revocations))
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("cannot load the node identity \(identityFile) / authority \(authorityFile): \(error)")
        }
    }

    private static func resolve(_ path: String, directoryEntry: (String) -> Bool, what: String) throws(ConfigurationError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError("the \(what) file \(path) does not exist")
        }
        guard isDirectory.boolValue else { return path }
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter(directoryEntry).sorted()
        guard entries.count == 1 else {
            throw ConfigurationError(
                "the directory \(path) must hold exactly one \(what) file (found \(entries.isEmpty ? "none" : entries.joined(separator: ", ")))")
        }
        return (path as NSString).appendingPathComponent(entries[0])
    }

    /// The configuration for connecting to a peer cache node, optionally only the one with `expectedNodeID`.
    public func clientConfiguration(expectedNodeID: String? = nil, role: NodeRole = .cacheNode, logger: Logger) -> SecureChannelConfiguration {
        SecureChannelConfiguration(
            handshake: HandshakeConfiguration(
                identity: identity, trustStore: trustStore,
                peerExpectation: PeerExpectation(nodeIDs: expectedNodeID.map { [$0] }, roles: [role])),
            logger: logger)
    }

    /// The configuration for accepting peers of `roles` on the replication listener.
    public func serverConfiguration(roles: Set<NodeRole> = [.cacheNode], logger: Logger) -> SecureChannelConfiguration {
        SecureChannelConfiguration(
            handshake: HandshakeConfiguration(
                identity: identity, trustStore: trustStore, peerExpectation: PeerExpectation(nodeIDs: nil, roles: roles)),
            logger: logger)
    }
}
