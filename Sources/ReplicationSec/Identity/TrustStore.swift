// TrustStore: verifies peer certificates against the authority, the clock, the caller's expectations and the
// current revocation list (which the framework can replace at any time).
import Crypto
import Synchronization

/// Which peers a caller accepts.
public struct PeerExpectation: Sendable, Hashable {
    /// Accepted node ids; `nil` accepts any node id (the role check still applies).
    public var nodeIDs: Set<String>?
    /// Accepted roles.
    public var roles: Set<NodeRole>

    public init(nodeIDs: Set<String>? = nil, roles: Set<NodeRole>) {
        self.nodeIDs = nodeIDs
        self.roles = roles
    }

    /// Exactly one node with one role (what a client connecting to a known shard uses).
    public static func node(_ nodeID: String, role: NodeRole) -> Self { Self(nodeIDs: [nodeID], roles: [role]) }
}

/// Wall-clock seconds for certificate validity checks, injectable for tests.
public struct WallClock: Sendable {
    /// Current Unix time in seconds.
    public var now: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> Int64) { self.now = now }

    /// The system clock.
    public static let system = WallClock { systemUnixSeconds() }

    /// A fixed time.
    public static func fixed(_ seconds: Int64) -> Self { WallClock { seconds } }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private func systemUnixSeconds() -> Int64 { Int64(time(nil)) }

/// The authority a node trusts plus the revocation list currently installed. Thread-safe.
///
/// Established sessions (``SecureChannelHandler``s verified by this store) register here; installing a list that
/// revokes a session's peer closes that session, so a pushed list applies to new handshakes and open links alike.
public final class TrustStore: Sendable {
    /// The trusted authority.
    public let authority: AuthorityPublicKey
    private let revocations: Mutex<RevocationList>
    private let sessions = Mutex<[ObjectIdentifier: (serial: UInt64, close: @Sendable () -> Void)]>([:])

    /// Creates a store trusting `authority`, with an optional initial revocation list.
    public init(authority: AuthorityPublicKey, revocationList: RevocationList? = nil) {
        self.authority = authority
        self.revocations = Mutex(revocationList ?? .empty(authority: authority))
    }

    /// The installed revocation list.
    public var revocationList: RevocationList { revocations.withLock { $0 } }

    /// Installs a newer revocation list (pushed by the framework).
    /// - Throws: `.unknownAuthority` if another authority signed it, `.staleRevocationList` if it is not newer.
    public func install(_ list: RevocationList) throws(SecureChannelError) {
        guard list.authorityKeyID == authority.keyID else { throw .unknownAuthority }
        try revocations.withLock { current throws(SecureChannelError) in
            guard list.sequence > current.sequence else { throw .staleRevocationList }
            current = list
        }
        let revoked = sessions.withLock { sessions in
            sessions.filter { list.serials.contains($0.value.serial) }.map { ($0.key, $0.value.close) }
        }
        for (key, close) in revoked {
            _ = sessions.withLock { $0.removeValue(forKey: key) }
            close()
        }
    }

    /// How many established sessions are registered (for tests and metrics).
    public var sessionCount: Int { sessions.withLock { $0.count } }

    /// Registers an established session with a peer holding certificate `serial`; `close` ends it. Returns false (and
    /// registers nothing) if the serial is revoked already: a list installed during the handshake.
    func register(session: ObjectIdentifier, serial: UInt64, close: @escaping @Sendable () -> Void) -> Bool {
        sessions.withLock { sessions in
            guard !revocations.withLock({ $0.serials.contains(serial) }) else { return false }
            sessions[session] = (serial, close)
            return true
        }
    }

    /// Forgets a session (it ended).
    func unregister(session: ObjectIdentifier) {
        _ = sessions.withLock { $0.removeValue(forKey: session) }
    }

    /// Verifies a certificate: issuer, signature, validity window at `now`, revocation, node id and role.
    /// - Returns: the certificate, now trusted.
    public func verify(_ certificate: NodeCertificate, expecting expectation: PeerExpectation, now: Int64)
        throws(SecureChannelError) -> NodeCertificate
    {
        guard certificate.authorityKeyID == authority.keyID else { throw .unknownAuthority }
        guard authority.key.isValidSignature(certificate.signature, for: certificate.signedBytes) else {
            throw .badCertificateSignature
        }
        guard now >= certificate.notBefore else { throw .certificateNotYetValid }
        guard now <= certificate.notAfter else { throw .certificateExpired }
        guard !revocations.withLock({ $0.serials.contains(certificate.serial) }) else { throw .certificateRevoked }
        if let nodeIDs = expectation.nodeIDs, !nodeIDs.contains(certificate.nodeID) {
            throw SecureChannelError.wrongNodeID.with(message: "certificate names '\(certificate.nodeID)'")
        }
        guard expectation.roles.contains(certificate.role) else {
            throw SecureChannelError.wrongRole.with(message: "certificate role is \(certificate.role)")
        }
        return certificate
    }
}
