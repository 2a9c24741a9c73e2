// The framework authority's identities and revocation list: VNF identities carry role vnf and node id = task id, the
// list starts signed and empty, each revocation raises its sequence by one, the list verifies against the authority
// key and survives a restart (reloaded from the data directory), and revoking twice or an unknown node changes nothing.
import CacheFramework
import CacheFrameworkRuntime
import Foundation
import ReplicationSec
import Testing

struct FrameworkAuthorityTests {
    private func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("authority-\(UUID().uuidString.prefix(8))").path
    }

    private func loadList(_ authority: FrameworkAuthority) throws -> RevocationList {
        let key = try KeyFiles.decodeAuthorityPublicKey(try String(contentsOfFile: authority.authorityPublicKeyPath, encoding: .utf8))
        return try KeyFiles.decodeRevocationList(try String(contentsOfFile: authority.revocationListPath, encoding: .utf8), authority: key)
    }

    @Test func vnfIdentitiesAreRevokedInASignedPersistedListWhoseSequenceGrows() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try FrameworkAuthority(directory: directory)
        let initial = try loadList(authority)
        #expect(initial.sequence == 1)
        #expect(initial.serials.isEmpty)

        let fw = TaskID("vnf.sample-firewall-1.fw.0.3")
        let credentials = try authority.issueVNF(taskID: fw)
        let identity = try KeyFiles.decodeIdentity(try String(contentsOfFile: credentials.identityPath, encoding: .utf8))
        #expect(identity.certificate.nodeID == fw.value)
        #expect(identity.certificate.role == .vnf)
        let member = TaskID("cache.c1.0.0.1")
        try authority.issue(taskID: member, credentials: MemberCredentials.under(directory, taskID: member))
        #expect(authority.issuedNodeIDs == [fw.value, member.value])

        // Revoking the VNF: sequence 2, its serial listed, the file verifies against the authority key.
        let second = try #require(try authority.revoke(nodeID: fw.value))
        #expect(second.sequence == 2)
        #expect(second.serials == [identity.certificate.serial])
        #expect(try loadList(authority) == second)
        // A trust store with the list refuses the identity; one without still accepts it.
        let key = try KeyFiles.decodeAuthorityPublicKey(try String(contentsOfFile: authority.authorityPublicKeyPath, encoding: .utf8))
        let now = Int64(Date().timeIntervalSince1970)
        #expect(throws: SecureChannelError.certificateRevoked) {
            try TrustStore(authority: key, revocationList: second).verify(identity.certificate, expecting: PeerExpectation(roles: [.vnf]), now: now)
        }
        _ = try TrustStore(authority: key).verify(identity.certificate, expecting: PeerExpectation(roles: [.vnf]), now: now)

        // Nothing new to revoke: no new list.
        #expect(try authority.revoke(nodeID: fw.value) == nil)
        #expect(try authority.revoke(nodeID: "never-issued") == nil)
        #expect(try loadList(authority).sequence == 2)

        // After a restart the authority continues from the persisted list and issued serials.
        let restarted = try FrameworkAuthority(directory: directory)
        #expect(restarted.revocationList == second)
        #expect(restarted.issuedNodeIDs == [fw.value, member.value])
        let memberPath = try #require(try restarted.revoke(taskID: member))
        #expect(memberPath == restarted.revocationListPath)
        let third = try loadList(restarted)
        #expect(third.sequence == 3)
        #expect(third.serials.count == 2)
        #expect(third.serials.contains(identity.certificate.serial))
    }
}
