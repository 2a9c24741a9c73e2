// SecureChannelOptions: the identity/authority flags shared by the tunnel commands, turned into a configuration.
import ArgumentParser
import Foundation
import Logging
import ReplicationSec

/// Flags naming this node's identity, the trusted authority, the revocation list and the expected peer.
struct SecureChannelOptions: ParsableArguments {
    @Option(name: .customLong("identity"), help: "This node's identity file (from `cachectl identity issue`).")
    var identityPath: String

    @Option(name: .customLong("authority"), help: "The cluster authority public key file (authority.pub).")
    var authorityPath: String

    @Option(name: .customLong("revocation-list"), help: "A revocation list file to enforce.")
    var revocationListPath: String?

    @Option(name: .customLong("peer-node-id"), help: "Accept only this peer node id (repeatable; default: any).")
    var peerNodeIDs: [String] = []

    @Option(name: .customLong("peer-role"), help: "Accepted peer role: cache-node, framework or vnf (repeatable).")
    var peerRoles: [String] = ["cache-node"]

    func validate() throws {
        for role in peerRoles where NodeRole(name: role) == nil {
            throw ValidationError("unknown role '\(role)'; use cache-node, framework or vnf")
        }
    }

    /// This node's identity and the trust store of the authority (with the revocation list, if given).
    func identityAndTrust() throws -> (NodeIdentity, TrustStore) {
        let identity = try KeyFiles.decodeIdentity(try String(contentsOfFile: identityPath, encoding: .utf8))
        let authority = try KeyFiles.decodeAuthorityPublicKey(try String(contentsOfFile: authorityPath, encoding: .utf8))
        let revocations = try revocationListPath.map {
            try KeyFiles.decodeRevocationList(try String(contentsOfFile: $0, encoding: .utf8), authority: authority)
        }
        return (identity, TrustStore(authority: authority, revocationList: revocations))
    }

    func configuration(logger: Logger) throws -> SecureChannelConfiguration {
        let (identity, trustStore) = try identityAndTrust()
        let expectation = PeerExpectation(
            nodeIDs: peerNodeIDs.isEmpty ? nil : Set(peerNodeIDs), roles: Set(peerRoles.compactMap(NodeRole.init(name:))))
        return SecureChannelConfiguration(
            handshake: HandshakeConfiguration(identity: identity, trustStore: trustStore, peerExpectation: expectation),
            logger: logger)
    }
}
