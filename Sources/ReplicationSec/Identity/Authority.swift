// Authority: the cluster authority key pair that issues node certificates and signs revocation lists.
public import Crypto
import Foundation

/// The public half of the cluster authority, which every node trusts.
public struct AuthorityPublicKey: Sendable, Hashable {
    /// The Ed25519 verification key.
    public let key: Curve25519.Signing.PublicKey

    public init(_ key: Curve25519.Signing.PublicKey) { self.key = key }

    /// SHA-256 of the raw public key; certificates name their issuer with it.
    public var keyID: [UInt8] { Array(SHA256.hash(data: key.rawRepresentation)) }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.key.rawRepresentation == rhs.key.rawRepresentation }
    public func hash(into hasher: inout Hasher) { hasher.combine(key.rawRepresentation) }
}

/// The cluster authority (owned by the framework): issues certificates and revocation lists.
public struct ClusterAuthority: Sendable {
    /// The authority's Ed25519 signing key.
    public let signingKey: Curve25519.Signing.PrivateKey

    /// Creates an authority from an existing key, or a fresh one.
    public init(signingKey: Curve25519.Signing.PrivateKey = .init()) { self.signingKey = signingKey }

    /// The public key nodes must trust.
    public var publicKey: AuthorityPublicKey { AuthorityPublicKey(signingKey.publicKey) }

    /// Issues a certificate for `publicKey`.
    /// - Parameters:
    ///   - nodeID: the node id to bind (1–255 UTF-8 bytes).
    ///   - role: the node's role.
    ///   - publicKey: the node's Ed25519 public key.
    ///   - notBefore: first valid Unix second.
    ///   - notAfter: last valid Unix second.
    ///   - serial: a unique serial; random by default.
    public func issue(
        nodeID: String, role: NodeRole, publicKey: Curve25519.Signing.PublicKey,
        notBefore: Int64, notAfter: Int64, serial: UInt64 = .random(in: 1...UInt64.max)
    ) throws(SecureChannelError) -> NodeCertificate {
        try NodeCertificate(
            serial: serial, nodeID: nodeID, role: role, notBefore: notBefore, notAfter: notAfter,
            publicKey: publicKey, authority: signingKey
        )
    }

    /// Creates a node key pair and its certificate in one step.
    public func issueIdentity(
        nodeID: String, role: NodeRole, notBefore: Int64, notAfter: Int64,
        signingKey: Curve25519.Signing.PrivateKey = .init(), serial: UInt64 = .random(in: 1...UInt64.max)
    ) throws(SecureChannelError) -> NodeIdentity {
        let certificate = try issue(
            nodeID: nodeID, role: role, publicKey: signingKey.publicKey,
            notBefore: notBefore, notAfter: notAfter, serial: serial
        )
        return NodeIdentity(signingKey: signingKey, certificate: certificate)
    }

    /// Signs a revocation list containing `serials`.
    public func revocationList(sequence: UInt64, issuedAt: Int64, serials: Set<UInt64>) throws(SecureChannelError)
        -> RevocationList
    {
        try RevocationList(sequence: sequence, issuedAt: issuedAt, serials: serials, authority: signingKey)
    }
}

/// A node's long-term identity: its Ed25519 signing key and the certificate the authority issued for it.
public struct NodeIdentity: Sendable {
    /// The node's signing key (signs handshake transcripts).
    public let signingKey: Curve25519.Signing.PrivateKey
    /// The node's certificate.
    public let certificate: NodeCertificate

    public init(signingKey: Curve25519.Signing.PrivateKey, certificate: NodeCertificate) {
        self.signingKey = signingKey
        self.certificate = certificate
    }
}
