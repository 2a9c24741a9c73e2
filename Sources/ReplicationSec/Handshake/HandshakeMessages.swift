// HandshakeMessages: wire layout of the three handshake messages and the cheap checks done before any ECC work.
//
// All integers big-endian; every message is a frame `type u8 | length u32 | body`.
//   ClientHello  (0x01): versionCount u8, versions u8…, suiteCount u8, suites u16…, orderingCount u8, orderings u8…,
//                        e_i [32], cookie [16] = HMAC-SHA256(SHA256("rsec1 cookie" || authority key), frame before
//                        cookie)[0..<16]
//   ServerHello  (0x02): version u8, suite u16, ordering u8, e_r [32], ciphertext, tag [32]
//   ClientFinish (0x03): ciphertext, tag [32]
// The encrypted payloads are `certificateLength u16 | certificate | Ed25519 signature [64]`.
import Crypto

/// Protocol constants.
public enum HandshakeProtocol {
    /// The only protocol version so far.
    public static let version1: UInt8 = 1
    /// X25519 + Ed25519 + AES-256-CTR + HMAC-SHA256 + HKDF-SHA256.
    public static let suiteX25519Ed25519AES256CTRHMACSHA256: UInt16 = 1
    /// Length of the cluster cookie on a ClientHello.
    public static let cookieLength = 16
    /// The prologue hashed first into every transcript.
    static let prologue: [UInt8] = Array("rsec1 handshake".utf8)
    static let responderSignatureContext: [UInt8] = Array("rsec1 responder signature".utf8) + [0]
    static let initiatorSignatureContext: [UInt8] = Array("rsec1 initiator signature".utf8) + [0]

    /// The cookie key every cluster member can derive from the authority public key.
    static func cookieKey(authority: AuthorityPublicKey) -> SymmetricKey {
        SymmetricKey(data: Array(SHA256.hash(data: Array("rsec1 cookie".utf8) + authority.key.rawRepresentation)))
    }

    /// Computes the cookie for a ClientHello whose bytes before the cookie are `prefix`.
    static func cookie(prefix: [UInt8], authority: AuthorityPublicKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: prefix, using: cookieKey(authority: authority)).prefix(cookieLength))
    }

    /// The X25519 public keys of small order (after clearing bit 255, which X25519 ignores), plus p-1, p, p+1.
    static let lowOrderPoints: [[UInt8]] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ].map { hex in
        stride(from: 0, to: hex.count, by: 2).map { offset in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
    }

    /// Whether an X25519 public key is all-zero or of low order (checked before any scalar multiplication).
    public static func isWeakX25519PublicKey(_ raw: [UInt8]) -> Bool {
        guard raw.count == 32 else { return true }
        var masked = raw
        masked[31] &= 0x7f
        return lowOrderPoints.contains { constantTimeEquals($0, masked) }
    }

    /// X25519 with the weak-key and all-zero-secret checks swift-crypto leaves to the caller.
    static func agree(_ privateKey: Curve25519.KeyAgreement.PrivateKey, peer raw: [UInt8]) throws(SecureChannelError)
        -> [UInt8]
    {
        guard !isWeakX25519PublicKey(raw),
            let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw),
            let secret = try? privateKey.sharedSecretFromKeyAgreement(with: peer)
        else { throw .weakPublicKey }
        let bytes = secret.withUnsafeBytes { Array($0) }
        guard !constantTimeEquals(bytes, [UInt8](repeating: 0, count: bytes.count)) else { throw .weakPublicKey }
        return bytes
    }
}

/// The parsed ClientHello.
struct ClientHello: Hashable {
    var versions: [UInt8]
    var suites: [UInt16]
    var orderings: [UInt8]
    var ephemeralKey: [UInt8]
    var cookie: [UInt8]

    /// The frame with the cookie computed for `authority`.
    static func encode(
        versions: [UInt8], suites: [UInt16], orderings: [UInt8], ephemeralKey: [UInt8], authority: AuthorityPublicKey
    ) -> [UInt8] {
        var body = [UInt8]()
        body.append(UInt8(versions.count))
        body += versions
        body.append(UInt8(suites.count))
        for suite in suites { body.appendBigEndian(suite) }
        body.append(UInt8(orderings.count))
        body += orderings
        body += ephemeralKey
        var frame = [FrameType.clientHello.rawValue]
        frame.appendBigEndian(UInt32(body.count + HandshakeProtocol.cookieLength))
        frame += body
        return frame + HandshakeProtocol.cookie(prefix: frame, authority: authority)
    }

    /// Parses a ClientHello frame and checks its cookie (no ECC work).
    static func parse(_ frame: [UInt8], authority: AuthorityPublicKey) throws(SecureChannelError) -> ClientHello {
        var reader = ByteReader(frame)
        guard reader.readByte() == FrameType.clientHello.rawValue,
            let length = reader.readInteger(UInt32.self), Int(length) == reader.remaining,
            let versionCount = reader.readByte(), versionCount > 0, let versions = reader.read(Int(versionCount)),
            let suiteCount = reader.readByte(), suiteCount > 0
        else { throw .malformedHandshake }
        var suites = [UInt16]()
        for _ in 0..<suiteCount {
            guard let suite = reader.readInteger(UInt16.self) else { throw .malformedHandshake }
            suites.append(suite)
        }
        guard let orderingCount = reader.readByte(), orderingCount > 0,
            let orderings = reader.read(Int(orderingCount)),
            let ephemeralKey = reader.read(32), let cookie = reader.read(HandshakeProtocol.cookieLength), reader.isAtEnd
        else { throw .malformedHandshake }
        let expected = HandshakeProtocol.cookie(prefix: Array(frame.dropLast(HandshakeProtocol.cookieLength)), authority: authority)
        guard constantTimeEquals(expected, cookie) else { throw .handshakeCookieInvalid }
        return ClientHello(versions: versions, suites: suites, orderings: orderings, ephemeralKey: ephemeralKey, cookie: cookie)
    }
}

/// Builds and parses the encrypted identity payload `certificateLength u16 | certificate | signature [64]`.
enum IdentityPayload {
    static func encode(certificate: NodeCertificate, signature: [UInt8]) -> [UInt8] {
        var payload = [UInt8]()
        payload.appendLengthPrefixed(certificate.encoded)
        return payload + signature
    }

    static func parse(_ payload: [UInt8]) throws(SecureChannelError) -> (NodeCertificate, [UInt8]) {
        var reader = ByteReader(payload)
        guard let certificateBytes = reader.readLengthPrefixed(), let signature = reader.read(64), reader.isAtEnd else {
            throw .malformedHandshake
        }
        return (try NodeCertificate(encoded: certificateBytes), signature)
    }
}
