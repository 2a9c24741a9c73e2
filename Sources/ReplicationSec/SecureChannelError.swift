// SecureChannelError: the one typed error of ReplicationSec; every member says what failed and what to do.

/// An error raised by the secure channel: a record, handshake, identity or limit check that failed.
///
/// Compare against the static members (`error == .badRecordTag`); `message` carries detail for logs only.
public struct SecureChannelError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable identity of the failure, used for equality.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case badRecordTag, replayedRecord, recordOutOfOrder, staleEpoch, unknownEpoch
            case malformedFrame, frameTooLarge, unexpectedFrame, truncatedSession, sessionClosed
            case keyUsageLimitExceeded, keyExpired, counterExhausted
            case malformedHandshake, handshakeAuthenticationFailed, handshakeCookieInvalid, handshakeTimeout
            case tooManyPendingHandshakes, versionMismatch, noCommonOptions, weakPublicKey
            case unknownAuthority, badCertificateSignature, certificateExpired, certificateNotYetValid
            case certificateRevoked, wrongNodeID, wrongRole, malformedCertificate, staleRevocationList
            case malformedKeyFile
        }
        fileprivate let base: Base
        public var description: String { base.rawValue }
    }

    /// What failed.
    public let code: Code
    /// Free-form detail for logs; not part of equality.
    public var message: String

    private init(_ base: Code.Base, _ message: String = "") {
        self.code = Code(base: base)
        self.message = message
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        message.isEmpty ? "SecureChannelError.\(code)" : "SecureChannelError.\(code): \(message)"
    }

    /// Returns the same error with `message` attached.
    public func with(message: String) -> Self {
        var copy = self
        copy.message = message
        return copy
    }

    // MARK: records
    /// A record's HMAC tag did not verify: the frame was altered, spliced from another session or epoch, or forged.
    public static let badRecordTag = Self(.badRecordTag, "record tag does not verify; the connection must be dropped")
    /// A record counter was already received (or fell behind the replay window).
    public static let replayedRecord = Self(.replayedRecord, "record counter already seen or older than the replay window")
    /// A stream-mode record did not carry the next expected counter.
    public static let recordOutOfOrder = Self(.recordOutOfOrder, "stream transport requires strictly consecutive counters")
    /// A record used a key epoch that has already been replaced.
    public static let staleEpoch = Self(.staleEpoch, "record under an already-retired key epoch")
    /// A record used a key epoch more than one step ahead.
    public static let unknownEpoch = Self(.unknownEpoch, "record under a key epoch that was never announced")
    /// A frame's length or layout is invalid.
    public static let malformedFrame = Self(.malformedFrame, "frame layout is invalid")
    /// A frame announced a length above the configured maximum.
    public static let frameTooLarge = Self(.frameTooLarge, "frame length above the configured maximum")
    /// A frame type arrived that is not allowed in the current state.
    public static let unexpectedFrame = Self(.unexpectedFrame, "frame type not allowed in this state")
    /// The transport closed without an authenticated close record: data may have been cut off.
    public static let truncatedSession = Self(.truncatedSession, "transport closed without an authenticated close record")
    /// The peer sent an authenticated close; no more records are accepted.
    public static let sessionClosed = Self(.sessionClosed, "session already closed")

    // MARK: lifetime
    /// The peer kept using one key past the hard message limit.
    public static let keyUsageLimitExceeded = Self(.keyUsageLimitExceeded, "too many records under one key; reconnect")
    /// The peer kept using one key past the hard time limit.
    public static let keyExpired = Self(.keyExpired, "key older than the reject-after time; reconnect")
    /// The 64-bit record counter is exhausted; a new handshake is needed.
    public static let counterExhausted = Self(.counterExhausted, "record counter exhausted; reconnect")

    // MARK: handshake
    /// A handshake message could not be parsed.
    public static let malformedHandshake = Self(.malformedHandshake, "handshake message layout is invalid")
    /// A handshake tag or transcript signature did not verify (tampering, MITM, or a key that did not sign).
    public static let handshakeAuthenticationFailed = Self(.handshakeAuthenticationFailed, "handshake transcript authentication failed")
    /// The cheap pre-ECC check (cluster cookie MAC) on the first handshake message failed.
    public static let handshakeCookieInvalid = Self(.handshakeCookieInvalid, "first handshake message lacks a valid cluster cookie")
    /// The handshake did not complete in time.
    public static let handshakeTimeout = Self(.handshakeTimeout, "handshake did not complete in time")
    /// The server already has the maximum number of half-open handshakes.
    public static let tooManyPendingHandshakes = Self(.tooManyPendingHandshakes, "too many half-open handshakes; retry later")
    /// No protocol version is shared, or the peer chose one that was not offered.
    public static let versionMismatch = Self(.versionMismatch, "no common protocol version")
    /// No cipher suite / transport mode is shared, or the peer chose one that was not offered.
    public static let noCommonOptions = Self(.noCommonOptions, "no common cipher suite or transport mode")
    /// An X25519 public key is all-zero or of low order, or the shared secret is all-zero.
    public static let weakPublicKey = Self(.weakPublicKey, "X25519 public key is zero or of low order")

    // MARK: identity
    /// The certificate was not issued by the configured authority.
    public static let unknownAuthority = Self(.unknownAuthority, "certificate issued by another authority")
    /// The certificate's authority signature does not verify.
    public static let badCertificateSignature = Self(.badCertificateSignature, "certificate signature does not verify")
    /// The certificate's validity period ended.
    public static let certificateExpired = Self(.certificateExpired, "certificate expired; issue a new one")
    /// The certificate's validity period has not started.
    public static let certificateNotYetValid = Self(.certificateNotYetValid, "certificate not yet valid; check clocks")
    /// The certificate serial is on the authority's revocation list.
    public static let certificateRevoked = Self(.certificateRevoked, "certificate revoked")
    /// The certificate names another node than the caller expected.
    public static let wrongNodeID = Self(.wrongNodeID, "certificate names another node id")
    /// The certificate's role is not among the roles the caller allows.
    public static let wrongRole = Self(.wrongRole, "certificate role not allowed here")
    /// The certificate bytes could not be parsed.
    public static let malformedCertificate = Self(.malformedCertificate, "certificate layout is invalid")
    /// A pushed revocation list is older than the one installed.
    public static let staleRevocationList = Self(.staleRevocationList, "revocation list older than the installed one")
    /// A key, identity or revocation file could not be parsed.
    public static let malformedKeyFile = Self(.malformedKeyFile, "key file is invalid")
}
