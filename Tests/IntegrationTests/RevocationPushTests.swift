// A revocation list pushed to running cache-node processes (`CONFIG SET revocation-list <path>`, as the framework does
// when it revokes a lost member): the primary drops the open secure replication link of the revoked replica and
// refuses its new handshakes, while a replica that is not revoked stays connected. A list signed by another authority
// is refused with an error and changes nothing.
import Foundation
import LoopbackTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct RevocationPushTests {
    @Test func pushedRevocationListDropsAndRefusesTheRevokedReplica() throws {
        let ids = try TestIdentities(nodes: ["p", "r1", "r2"])
        defer { ids.remove() }
        let cachectl = PackagePaths.root.appendingPathComponent(".build/debug/cachectl").path
        let primaryReplication = try LoopbackSocket.freeLoopbackPort()
        let primary = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: primaryReplication))
        defer { primary.stop() }
        _ = try redisCLI(primary.port, ["SET", "before", "1"])
        let replicaOf = ["--replicaof", "127.0.0.1", String(primaryReplication)]
        let revoked = try CacheNodeProcess(arguments: ids.flags("r1", replicationPort: try LoopbackSocket.freeLoopbackPort()) + replicaOf)
        defer { revoked.stop() }
        let kept = try CacheNodeProcess(arguments: ids.flags("r2", replicationPort: try LoopbackSocket.freeLoopbackPort()) + replicaOf)
        defer { kept.stop() }
        try waitForSync(primary: primary.port, replicas: [revoked.port, kept.port])
        #expect(try info(primary.port, "replication")["connected_slaves"] == "2")

        // A list from another authority is refused and leaves both links up.
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("other-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: other) }
        #expect(try runProgram(cachectl, ["identity", "init", "--directory", other]).status == 0)
        let foreign = "\(other)/revoked.list"
        #expect(try runProgram(cachectl, [
            "identity", "revoke", "--authority-key", "\(other)/authority.key", "--revocation-list", foreign, "--serial", "7",
        ]).status == 0)
        #expect(try redisCLI(primary.port, ["CONFIG", "SET", "revocation-list", foreign]).contains("ERR"))
        #expect(try redisCLI(primary.port, ["CONFIG", "SET", "revocation-list", "\(other)/missing.list"]).contains("ERR"))

        // Revoke r1 and push the list to the primary: r1's link drops and stays down; r2 keeps replicating.
        let list = "\(ids.directory)/revoked.list"
        let revoke = try runProgram(cachectl, [
            "identity", "revoke", "--authority-key", "\(ids.directory)/authority.key", "--revocation-list", list,
            "--identity", "\(ids.directory)/r1.identity",
        ])
        #expect(revoke.status == 0, "\(revoke.output)")
        #expect(try redisCLI(primary.port, ["CONFIG", "SET", "revocation-list", list]) == "OK")
        #expect(try redisCLI(primary.port, ["CONFIG", "GET", "revocation-list"]).contains(list))
        try eventually("the primary dropped the revoked replica") {
            try info(primary.port, "replication")["connected_slaves"] == "1"
                && (try info(revoked.port, "replication")["master_link_status"]) == "down"
        }
        _ = try redisCLI(primary.port, ["SET", "after", "2"])
        try eventually("the kept replica has the new write") { try redisCLI(kept.port, ["GET", "after"]) == "2" }
        // r1 keeps retrying its handshake; every attempt is refused, so it never gets the write.
        usleep(1_500_000)
        #expect(try info(revoked.port, "replication")["master_link_status"] == "down")
        #expect(try redisCLI(revoked.port, ["GET", "after"]) == "")
        #expect(try info(primary.port, "replication")["connected_slaves"] == "1")
    }
}
