// RevocationList: the authority-signed, sequenced list of revoked certificate serials the framework pushes.
import Crypto
import Foundation

/// A signed list of revoked serials. A newer `sequence` replaces an older list.
public struct RevocationList: Sendable, Hashable {
    static let magic: [UInt8] = Array("RSL1".utf8)
    static let signatureContext: [UInt8] = Array("rsec1 revocation".utf8) + [0]
    static let maximumEntries = 1 << 20

    /// Monotonic sequence number; nodes refuse lists older than the installed one.
    public let sequence: UInt64
    /// When the list was signed (Unix seconds).
    public let issuedAt: Int64
    /// Revoked serials.
    public let serials: Set<UInt64>
    /// SHA-256 of the authority public key that signed the list.
    public let authorityKeyID: [UInt8]
    /// The exact encoded bytes.
    public let encoded: [UInt8]

    /// The empty list with sequence 0 that a trust store starts with.
    public static func empty(authority: AuthorityPublicKey) -> Self {
        Self(sequence: 0, issuedAt: 0, serials: [], authorityKeyID: authority.keyID, encoded: [])
    }

    private init(sequence: UInt64, issuedAt: Int64, serials: Set<UInt64>, authorityKeyID: [UInt8], encoded: [UInt8]) {
        self.sequence = sequence
        self.issuedAt = issuedAt
        self.serials = serials
        self.authorityKeyID = authorityKeyID
        self.encoded = encoded
    }

    init(sequence: UInt64, issuedAt: Int64, serials: Set<UInt64>, authority: Curve25519.Signing.PrivateKey)
        throws(SecureChannelError)
    {
        var body = Self.magic
        body += [1, 0, 0, 0]
        body += AuthorityPublicKey(authority.publicKey).keyID
        body.appendBigEndian(sequence)
        body.appendBigEndian(issuedAt)
        body.appendBigEndian(UInt32(serials.count))
        for serial in serials.sorted() { body.appendBigEndian(serial) }
        let signature: [UInt8]
        do { signature = Array(try authority.signature(for: Self.signatureContext + body)) } catch {
            throw SecureChannelError.malformedKeyFile.with(message: "signing failed: \(error)")
        }
        try self.init(encoded: body + signature, verifiedBy: AuthorityPublicKey(authority.publicKey))
    }

    /// Parses and verifies an encoded list against the authority.
    public init(encoded bytes: [UInt8], verifiedBy authority: AuthorityPublicKey) throws(SecureChannelError) {
        var reader = ByteReader(bytes)
        guard let magic = reader.read(4), magic == Self.magic, reader.read(4) == [1, 0, 0, 0],
            let keyID = reader.read(32),
            let sequence = reader.readInteger(UInt64.self), let issuedAt = reader.readInteger(Int64.self),
            let count = reader.readInteger(UInt32.self), count <= Self.maximumEntries
        else { throw .malformedKeyFile }
        var serials = Set<UInt64>()
        var previous: UInt64?
        for _ in 0..<count {
            guard let serial = reader.readInteger(UInt64.self), previous.map({ $0 < serial }) ?? true else {
                throw .malformedKeyFile
            }
            serials.insert(serial)
            previous = serial
        }
        guard let signature = reader.read(64), reader.isAtEnd else { throw .malformedKeyFile }
        guard keyID == authority.keyID else { throw .unknownAuthority }
        guard authority.key.isValidSignature(signature, for: Self.signatureContext + bytes.dropLast(64)) else {
            throw .badCertificateSignature
        }
        self.init(sequence: sequence, issuedAt: issuedAt, serials: serials, authorityKeyID: keyID, encoded: bytes)
    }
}
