// KeyFiles: the PEM-like text files for the authority key, the authority public key, node identities and
// revocation lists (format in CertificateFormat.md), so cachectl and cache-node flags can load them.
import Crypto
import Foundation

/// Reading and writing ReplicationSec key files.
public enum KeyFiles {
    static let authorityPrivateKey = "RSEC AUTHORITY PRIVATE KEY"
    static let authorityPublicKey = "RSEC AUTHORITY PUBLIC KEY"
    static let nodePrivateKey = "RSEC NODE PRIVATE KEY"
    static let nodeCertificate = "RSEC NODE CERTIFICATE"
    static let revocationList = "RSEC REVOCATION LIST"

    /// Encodes blocks as `-----BEGIN LABEL-----`, base64 in 64-column lines, `-----END LABEL-----`.
    public static func encode(_ blocks: [(label: String, bytes: [UInt8])]) -> String {
        blocks.map { block in
            let base64 = Data(block.bytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            return "-----BEGIN \(block.label)-----\n\(base64)\n-----END \(block.label)-----\n"
        }.joined()
    }

    /// Decodes every block of a file, keyed by label.
    public static func decode(_ text: String) throws(SecureChannelError) -> [String: [UInt8]] {
        var blocks = [String: [UInt8]]()
        var label: String?
        var body = ""
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----"), label == nil {
                label = String(line.dropFirst(11).dropLast(5))
                body = ""
            } else if line.hasPrefix("-----END "), let current = label {
                guard line == "-----END \(current)-----", let bytes = Data(base64Encoded: body) else {
                    throw .malformedKeyFile
                }
                guard blocks[current] == nil else { throw .malformedKeyFile }
                blocks[current] = Array(bytes)
                label = nil
            } else if label != nil {
                body += line
            } else if !line.isEmpty {
                throw .malformedKeyFile
            }
        }
        guard label == nil else { throw .malformedKeyFile }
        return blocks
    }

    private static func block(_ label: String, in text: String) throws(SecureChannelError) -> [UInt8] {
        guard let bytes = try decode(text)[label] else {
            throw SecureChannelError.malformedKeyFile.with(message: "missing \(label) block")
        }
        return bytes
    }

    // MARK: authority

    /// The authority private key file (keep it with the framework only).
    public static func encodeAuthority(_ authority: ClusterAuthority) -> String {
        encode([(authorityPrivateKey, Array(authority.signingKey.rawRepresentation))])
    }

    public static func decodeAuthority(_ text: String) throws(SecureChannelError) -> ClusterAuthority {
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: try block(authorityPrivateKey, in: text)) else {
            throw .malformedKeyFile
        }
        return ClusterAuthority(signingKey: key)
    }

    /// The authority public key file every node trusts.
    public static func encodeAuthorityPublicKey(_ key: AuthorityPublicKey) -> String {
        encode([(authorityPublicKey, Array(key.key.rawRepresentation))])
    }

    public static func decodeAuthorityPublicKey(_ text: String) throws(SecureChannelError) -> AuthorityPublicKey {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: try block(authorityPublicKey, in: text)) else {
            throw .malformedKeyFile
        }
        return AuthorityPublicKey(key)
    }

    // MARK: node identity

    /// A node identity file: private key block then certificate block.
    public static func encodeIdentity(_ identity: NodeIdentity) -> String {
        encode([
            (nodePrivateKey, Array(identity.signingKey.rawRepresentation)),
            (nodeCertificate, identity.certificate.encoded),
        ])
    }

    /// Decodes an identity file; checks the private key matches the certificate.
    public static func decodeIdentity(_ text: String) throws(SecureChannelError) -> NodeIdentity {
        let blocks = try decode(text)
        guard let keyBytes = blocks[nodePrivateKey], let certificateBytes = blocks[nodeCertificate],
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: keyBytes)
        else { throw .malformedKeyFile }
        let certificate = try NodeCertificate(encoded: certificateBytes)
        guard certificate.publicKey.rawRepresentation == key.publicKey.rawRepresentation else {
            throw SecureChannelError.malformedKeyFile.with(message: "private key does not match the certificate")
        }
        return NodeIdentity(signingKey: key, certificate: certificate)
    }

    // MARK: revocation list

    public static func encodeRevocationList(_ list: RevocationList) -> String {
        encode([(revocationList, list.encoded)])
    }

    public static func decodeRevocationList(_ text: String, authority: AuthorityPublicKey) throws(SecureChannelError)
        -> RevocationList
    {
        try RevocationList(encoded: try block(revocationList, in: text), verifiedBy: authority)
    }
}
