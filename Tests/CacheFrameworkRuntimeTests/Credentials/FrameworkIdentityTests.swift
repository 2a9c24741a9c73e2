// The framework's own identity: issued with the authority (node id framework, role framework, signed by it), kept
// across restarts, re-issued when revoked or near its expiry, not listed among member identities; and its control
// security verifies members against the authority's current revocation list.
import CacheFramework
import CacheFrameworkRuntime
import Foundation
import ReplicationSec
import Testing

struct FrameworkIdentityTests {
    private func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("fw-identity-\(UUID().uuidString.prefix(8))").path
    }

    @Test func theFrameworkIdentityIsKeptAcrossRestartsAndReissuedWhenRevokedOrExpiring() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try FrameworkAuthority(directory: directory)
        let identity = try authority.frameworkIdentity()
        #expect(identity.certificate.nodeID == FrameworkAuthority.frameworkNodeID)
        #expect(identity.certificate.role == .framework)
        let key = try KeyFiles.decodeAuthorityPublicKey(try String(contentsOfFile: authority.authorityPublicKeyPath, encoding: .utf8))
        let now = Int64(Date().timeIntervalSince1970)
        _ = try TrustStore(authority: key).verify(identity.certificate, expecting: PeerExpectation(roles: [.framework]), now: now)
        let onDisk = try KeyFiles.decodeIdentity(try String(contentsOfFile: authority.frameworkIdentityPath, encoding: .utf8))
        #expect(onDisk.certificate == identity.certificate)
        #expect(authority.issuedNodeIDs.isEmpty)

        // A restart keeps it.
        let restarted = try FrameworkAuthority(directory: directory)
        #expect(try restarted.frameworkIdentity().certificate == identity.certificate)

        // Revoked (by serial, e.g. with cachectl identity revoke): the next load issues a new one.
        let authorityKey = try KeyFiles.decodeAuthority(try String(contentsOfFile: directory + "/authority.key", encoding: .utf8))
        let list = try authorityKey.revocationList(sequence: 2, issuedAt: now, serials: [identity.certificate.serial])
        try KeyFiles.encodeRevocationList(list).write(toFile: authority.revocationListPath, atomically: true, encoding: .utf8)
        let afterRevocation = try FrameworkAuthority(directory: directory)
        let renewed = try afterRevocation.frameworkIdentity()
        #expect(renewed.certificate.serial != identity.certificate.serial)
        #expect(renewed.certificate.role == .framework)

        // Within the renewal margin of its expiry (validity of 10 days: margin 5 days): re-issued on load.
        let expiring = try authorityKey.issueIdentity(
            nodeID: FrameworkAuthority.frameworkNodeID, role: .framework, notBefore: now - 60, notAfter: now + 86_400)
        try KeyFiles.encodeIdentity(expiring).write(toFile: authority.frameworkIdentityPath, atomically: true, encoding: .utf8)
        let reloaded = try FrameworkAuthority(directory: directory, validityDays: 10)
        let fresh = try reloaded.frameworkIdentity()
        #expect(fresh.certificate.serial != expiring.certificate.serial)
        #expect(fresh.certificate.notAfter > now + 9 * 86_400)
    }

    @Test func controlSecurityFollowsTheAuthoritysRevocations() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try FrameworkAuthority(directory: directory)
        let security = try #require(try authority.controlSecurity())
        #expect(security.identity.certificate.role == .framework)
        let member = TaskID("cache.c1.0.0.1")
        let credentials = MemberCredentials.under(directory, taskID: member)
        try authority.issue(taskID: member, credentials: credentials)
        let certificate = try KeyFiles.decodeIdentity(try String(contentsOfFile: credentials.identityPath, encoding: .utf8)).certificate
        let now = Int64(Date().timeIntervalSince1970)
        _ = try security.trustStore.verify(certificate, expecting: .node(member.value, role: .cacheNode), now: now)
        _ = try authority.revoke(taskID: member)
        #expect(throws: SecureChannelError.certificateRevoked) {
            try security.trustStore.verify(certificate, expecting: .node(member.value, role: .cacheNode), now: now)
        }
    }
}
