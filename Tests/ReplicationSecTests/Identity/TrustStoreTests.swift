// TrustStoreTests: certificate verification — authority, signature, validity window, revocation, node id, role —
// and certificate/revocation-list encoding.
import Crypto
import Testing
@testable import ReplicationSec

struct TrustStoreTests {
    let store = Fixtures.trustStore()
    let expectation = PeerExpectation.node("shard-a", role: .cacheNode)

    @Test func acceptsAValidCertificate() throws {
        let certificate = try store.verify(Fixtures.shardA.certificate, expecting: expectation, now: Fixtures.now)
        #expect(certificate.nodeID == "shard-a")
        #expect(certificate.role == .cacheNode)
    }

    @Test func rejectsUnknownAuthority() {
        let foreign = Fixtures.identity("shard-a", authority: Fixtures.otherAuthority)
        #expect(throws: SecureChannelError.unknownAuthority) {
            try store.verify(foreign.certificate, expecting: expectation, now: Fixtures.now)
        }
    }

    @Test func rejectsCertificateWithForgedIssuerID() throws {
        // Another authority signs a certificate but claims our authority's key id.
        var bytes = Fixtures.identity("shard-a", authority: Fixtures.otherAuthority).certificate.encoded
        bytes.replaceSubrange(32..<64, with: Fixtures.authority.publicKey.keyID)
        let forged = try NodeCertificate(encoded: bytes)
        #expect(throws: SecureChannelError.badCertificateSignature) {
            try store.verify(forged, expecting: expectation, now: Fixtures.now)
        }
    }

    @Test func rejectsEveryAlteredByte() throws {
        let bytes = Fixtures.shardA.certificate.encoded
        for index in bytes.indices {
            var altered = bytes
            altered[index] ^= 0x01
            guard let certificate = try? NodeCertificate(encoded: altered) else { continue }
            #expect(throws: SecureChannelError.self) { try store.verify(certificate, expecting: expectation, now: Fixtures.now) }
        }
    }

    @Test func rejectsExpiredAndNotYetValid() {
        let certificate = Fixtures.shardA.certificate
        #expect(throws: SecureChannelError.certificateExpired) {
            try store.verify(certificate, expecting: expectation, now: certificate.notAfter + 1)
        }
        #expect(throws: SecureChannelError.certificateNotYetValid) {
            try store.verify(certificate, expecting: expectation, now: certificate.notBefore - 1)
        }
        #expect((try? store.verify(certificate, expecting: expectation, now: certificate.notAfter)) != nil)
    }

    @Test func rejectsWrongNodeIDAndWrongRole() {
        #expect(throws: SecureChannelError.wrongNodeID) {
            try store.verify(Fixtures.shardB.certificate, expecting: expectation, now: Fixtures.now)
        }
        let framework = Fixtures.identity("shard-a", role: .framework, seed: 12, serial: 7)
        #expect(throws: SecureChannelError.wrongRole) {
            try store.verify(framework.certificate, expecting: expectation, now: Fixtures.now)
        }
        let anyCacheNode = PeerExpectation(roles: [.cacheNode])
        #expect((try? store.verify(Fixtures.shardB.certificate, expecting: anyCacheNode, now: Fixtures.now)) != nil)
    }

    @Test func revocationListPushedByTheFrameworkTakesEffect() throws {
        let list = try Fixtures.authority.revocationList(sequence: 1, issuedAt: Fixtures.now, serials: [100])
        try store.install(list)
        #expect(throws: SecureChannelError.certificateRevoked) {
            try store.verify(Fixtures.shardA.certificate, expecting: expectation, now: Fixtures.now)
        }
        #expect(throws: SecureChannelError.staleRevocationList) { try store.install(list) }
        let foreign = try Fixtures.otherAuthority.revocationList(sequence: 5, issuedAt: Fixtures.now, serials: [])
        #expect(throws: SecureChannelError.unknownAuthority) { try store.install(foreign) }
    }

    @Test func revocationListRejectsTamperingAndForeignSigner() throws {
        let list = try Fixtures.authority.revocationList(sequence: 3, issuedAt: Fixtures.now, serials: [5, 1, 9])
        let decoded = try RevocationList(encoded: list.encoded, verifiedBy: Fixtures.authority.publicKey)
        #expect(decoded.serials == [1, 5, 9])
        var altered = list.encoded
        altered[altered.count - 70] ^= 1  // inside the last serial
        #expect(throws: SecureChannelError.badCertificateSignature) {
            try RevocationList(encoded: altered, verifiedBy: Fixtures.authority.publicKey)
        }
        #expect(throws: SecureChannelError.unknownAuthority) {
            try RevocationList(encoded: list.encoded, verifiedBy: Fixtures.otherAuthority.publicKey)
        }
    }

    @Test func certificateEncodingIsCanonical() throws {
        let bytes = Fixtures.shardA.certificate.encoded
        #expect(try NodeCertificate(encoded: bytes) == Fixtures.shardA.certificate)
        #expect(throws: SecureChannelError.malformedCertificate) { try NodeCertificate(encoded: bytes + [0]) }
        #expect(throws: SecureChannelError.malformedCertificate) { try NodeCertificate(encoded: Array(bytes.dropLast())) }
        #expect(bytes.count == 4 + 4 + 8 + 8 + 8 + 32 + 2 + 7 + 32 + 64)
    }

    @Test func keyFilesRoundTrip() throws {
        let authorityText = KeyFiles.encodeAuthority(Fixtures.authority)
        #expect(authorityText.hasPrefix("-----BEGIN RSEC AUTHORITY PRIVATE KEY-----\n"))
        #expect(try KeyFiles.decodeAuthority(authorityText).publicKey == Fixtures.authority.publicKey)
        let publicText = KeyFiles.encodeAuthorityPublicKey(Fixtures.authority.publicKey)
        #expect(try KeyFiles.decodeAuthorityPublicKey(publicText) == Fixtures.authority.publicKey)
        let identity = try KeyFiles.decodeIdentity(KeyFiles.encodeIdentity(Fixtures.shardA))
        #expect(identity.certificate == Fixtures.shardA.certificate)
        #expect(identity.signingKey.rawRepresentation == Fixtures.shardA.signingKey.rawRepresentation)
        let list = try Fixtures.authority.revocationList(sequence: 2, issuedAt: 0, serials: [3])
        let decodedList = try KeyFiles.decodeRevocationList(KeyFiles.encodeRevocationList(list), authority: Fixtures.authority.publicKey)
        #expect(decodedList == list)
    }

    @Test func identityFileWithMismatchedKeyIsRejected() {
        let text = KeyFiles.encode([
            ("RSEC NODE PRIVATE KEY", Array(Fixtures.key(99).rawRepresentation)),
            ("RSEC NODE CERTIFICATE", Fixtures.shardA.certificate.encoded),
        ])
        #expect(throws: SecureChannelError.malformedKeyFile) { try KeyFiles.decodeIdentity(text) }
        #expect(throws: SecureChannelError.malformedKeyFile) { try KeyFiles.decodeIdentity("garbage") }
    }
}
