// The scheduler revokes what it replaces: a secure member killed with SIGKILL has its identity put on the authority's
// revocation list, the re-signed list is pushed to the members still running, and the replacement starts with the
// current list on its command line, so no member ever accepts the lost identity again.

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import ReplicationSec
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct MemberRevocationTests {
    let control = RESPNodeControl(timeout: .seconds(2))

    func configValue(_ endpoint: TaskEndpoint, _ name: String) async throws -> String? {
        guard case .array(let pair?) = try await control.command(["CONFIG", "GET", name], to: endpoint), pair.count == 2,
            case .bulk(let value) = pair[1]
        else { return nil }
        return value
    }

    @Test func aLostMemberIsRevokedEverywhereAndItsReplacementStartsWithTheList() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let framework = try FrameworkFixture(directory: directory, agents: 2, firstPort: FrameworkFixture.portBase())
        let authorityDirectory = directory + "/authority"
        try await framework.driver.createCluster(ClusterSpec(
            name: "rv", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, secureReplication: true))
        try await FrameworkFixture.waitUntil("both members run", seconds: 60) { framework.driver.clusterStatus("rv")?.ready == true }
        let records = framework.driver.taskRecords()
        let primary = try #require(records.first { $0.role == .primary })
        let lost = try #require(records.first { $0.role == .replica })
        let lostIdentity = try KeyFiles.decodeIdentity(
            try String(contentsOfFile: MemberCredentials.under(authorityDirectory, taskID: lost.taskID).identityPath, encoding: .utf8))
        let listPath = authorityDirectory + "/revoked.list"
        #expect(try await configValue(primary.endpoint, "revocation-list") == listPath, "members start with the list")
        // The pushed topology announces each member's secure port as its bus port (where peers MIGRATE to).
        guard case .bulk(let nodes?) = try await control.command(["CLUSTER", "NODES"], to: primary.endpoint) else {
            Issue.record("no CLUSTER NODES")
            return
        }
        for member in records {
            #expect(nodes.contains("\(member.hostname):\(member.ports[0])@\(member.ports[1]) "), "\(nodes)")
        }

        let pid = try #require(await framework.backend.taskViews().first { $0.taskID == lost.taskID }?.pid)
        kill(pid, SIGKILL)
        try await FrameworkFixture.waitUntil("the lost replica is replaced and linked", seconds: 60) {
            guard framework.driver.clusterStatus("rv")?.ready == true,
                let replacement = framework.driver.taskRecords().first(where: { $0.role == .replica }), replacement.taskID != lost.taskID
            else { return false }
            return (try? await control.replicationInfo(replacement.endpoint).linkUp) == true
        }
        #expect(framework.driver.events().contains { $0.kind == "revoke" && $0.message.contains(lost.taskID.value) })

        // The authority's list names the lost identity's serial and verifies against the authority key.
        let authorityKey = try KeyFiles.decodeAuthorityPublicKey(
            try String(contentsOfFile: authorityDirectory + "/authority.pub", encoding: .utf8))
        let list = try KeyFiles.decodeRevocationList(try String(contentsOfFile: listPath, encoding: .utf8), authority: authorityKey)
        #expect(list.serials.contains(lostIdentity.certificate.serial))
        #expect(list.sequence >= 2)
        #expect(throws: SecureChannelError.certificateRevoked) {
            try TrustStore(authority: authorityKey, revocationList: list).verify(
                lostIdentity.certificate, expecting: PeerExpectation(roles: [.cacheNode]), now: Int64(Date().timeIntervalSince1970))
        }
        // The replacement was launched with the current list; the primary holds it too (loaded again on the push).
        let replacement = try #require(framework.driver.taskRecords().first { $0.role == .replica })
        #expect(try await configValue(replacement.endpoint, "revocation-list") == listPath)
        #expect(try await configValue(primary.endpoint, "revocation-list") == listPath)
        let replacementIdentity = try KeyFiles.decodeIdentity(
            try String(contentsOfFile: MemberCredentials.under(authorityDirectory, taskID: replacement.taskID).identityPath, encoding: .utf8))
        #expect(!list.serials.contains(replacementIdentity.certificate.serial), "the replacement's own identity is not revoked")
        await framework.stop()
    }
}
