// NodeCertificate: the compact signed record binding a node id, role and validity period to an Ed25519 key.
// The byte layout is documented in CertificateFormat.md; parsing is strict and canonical (no trailing bytes).
public import Crypto
import Foundation

/// What a node is allowed to be in the cluster.
public enum NodeRole: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case cacheNode = 1
    case framework = 2
    case vnf = 3

    /// The name used on the command line and in files: `cache-node`, `framework`, `vnf`.
    public var description: String {
        switch self {
        case .cacheNode: "cache-node"
        case .framework: "framework"
        case .vnf: "vnf"
        }
    }

    /// Parses `cache-node`, `framework` or `vnf`.
    public init?(name: String) {
        guard let role = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = role
    }
}

/// A certificate issued by the cluster authority to one node.
public struct NodeCertificate: Sendable, Hashable {
    static let magic: [UInt8] = Array("RSC1".utf8)
    static let signatureContext: [UInt8] = Array("rsec1 certificate".utf8) + [0]
    static let formatVersion: UInt8 = 1
    static let ed25519: UInt8 = 1

    /// Unique serial, used by revocation lists.
    public let serial: UInt64
    /// The node id the certificate is issued to (1–255 UTF-8 bytes).
    public let nodeID: String
    /// The node's role.
    public let role: NodeRole
    /// First valid second (Unix time, inclusive).
    public let notBefore: Int64
    /// Last valid second (Unix time, inclusive).
    public let notAfter: Int64
    /// SHA-256 of the issuing authority's raw public key.
    public let authorityKeyID: [UInt8]
    /// The node's Ed25519 public key (raw, 32 bytes).
    public let publicKey: Curve25519.Signing.PublicKey
    /// The authority's Ed25519 signature over the context string and every preceding byte.
    public let signature: [UInt8]
    /// The exact encoded bytes.
    public let encoded: [UInt8]

    /// Signs a new certificate with the authority key.
    init(
        serial: UInt64, nodeID: String, role: NodeRole, notBefore: Int64, notAfter: Int64,
        publicKey: Curve25519.Signing.PublicKey, authority: Curve25519.Signing.PrivateKey
    ) throws(SecureChannelError) {
        let idBytes = Array(nodeID.utf8)
        guard (1...255).contains(idBytes.count), notBefore <= notAfter else { throw .malformedCertificate }
        let keyID = AuthorityPublicKey(authority.publicKey).keyID
        var body = Self.magic
        body.append(Self.formatVersion)
        body.append(role.rawValue)
        body.append(Self.ed25519)
        body.append(0)
        body.appendBigEndian(serial)
        body.appendBigEndian(notBefore)
        body.appendBigEndian(notAfter)
        body += keyID
        body.appendBigEndian(UInt16(idBytes.count))
        body += idBytes
        body += publicKey.rawRepresentation
        let signature: [UInt8]
        do { signature = Array(try authority.signature(for: Self.signatureContext + body)) } catch {
            throw SecureChannelError.badCertificateSignature.with(message: "signing failed: \(error)")
        }
        try self.init(encoded: body + signature)
    }

    /// Parses encoded certificate bytes (does not verify the signature; see ``TrustStore``).
    public init(encoded bytes: [UInt8]) throws(SecureChannelError) {
        var reader = ByteReader(bytes)
        guard let magic = reader.read(4), magic == Self.magic,
            reader.readByte() == Self.formatVersion,
            let roleByte = reader.readByte(), let role = NodeRole(rawValue: roleByte),
            reader.readByte() == Self.ed25519, reader.readByte() == 0,
            let serial = reader.readInteger(UInt64.self),
            let notBefore = reader.readInteger(Int64.self), let notAfter = reader.readInteger(Int64.self),
            let keyID = reader.read(32),
            let idLength = reader.readInteger(UInt16.self), (1...255).contains(idLength),
            let idBytes = reader.read(Int(idLength)), let nodeID = String(validating: idBytes, as: UTF8.self),
            let rawKey = reader.read(32), let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: rawKey),
            let signature = reader.read(64), reader.isAtEnd, notBefore <= notAfter
        else { throw .malformedCertificate }
        self.serial = serial
        self.nodeID = nodeID
        self.role = role
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.authorityKeyID = keyID
        self.publicKey = publicKey
        self.signature = signature
        self.encoded = bytes
    }

    /// The bytes the authority signed (context string + body).
    var signedBytes: [UInt8] { Self.signatureContext + encoded.dropLast(64) }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.encoded == rhs.encoded }
    public func hash(into hasher: inout Hasher) { hasher.combine(encoded) }
}

/// A sequential reader over bytes that returns nil instead of reading past the end.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func read(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func readByte() -> UInt8? { read(1)?.first }

    mutating func readInteger<I: FixedWidthInteger>(_: I.Type) -> I? {
        guard let raw = read(I.bitWidth / 8) else { return nil }
        return raw.readBigEndian(I.self, at: 0)
    }

    /// Reads a u16-length-prefixed field.
    mutating func readLengthPrefixed() -> [UInt8]? {
        guard let length = readInteger(UInt16.self) else { return nil }
        return read(Int(length))
    }
}

extension [UInt8] {
    mutating func appendLengthPrefixed(_ field: [UInt8]) {
        appendBigEndian(UInt16(field.count))
        append(contentsOf: field)
    }
}
