// MIGRATE between real cache-node processes with identities (their topology pushed as the framework does, through
// the secure port; a push on the plain client port is refused): the keys travel through ReplicationSec to the
// target's secure port (proved by a recording relay in front of that port: none of the moved bytes appear in what
// it carried), a target without a secure port or a node without identity/opt-in is refused with a clear error, and
// the replicas of both sides follow a MIGRATE (the source's replicas drop the moved keys, the target's get them).
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The bound secure port of a node started with `--replication-port 0`.
private func securePort(_ node: CacheNodeProcess) throws -> Int {
    let answer = try redisCLI(node.port, ["CONFIG", "GET", "replication-port"]).split(whereSeparator: \.isNewline)
    guard answer.count == 2, let port = Int(answer[1]), port > 0 else {
        throw HarnessError(description: "no secure port reported: \(answer)")
    }
    return port
}

@Suite(.serialized)
struct SecureMigrateTests {
    @Test func migrateBetweenSecureNodesTravelsOnlyThroughTheSecureChannel() throws {
        let ids = try TestIdentities(nodes: ["src", "dst"])
        defer { ids.remove() }
        let cluster = ["--cluster-enabled", "yes", "--cluster-config-file", ""]
        let source = try CacheNodeProcess(arguments: cluster + ids.flags("src", replicationPort: 0))
        defer { source.stop() }
        let target = try CacheNodeProcess(arguments: cluster + ids.flags("dst", replicationPort: 0))
        defer { target.stop() }
        let targetSecure = try securePort(target)

        // A relay that records every byte in front of the target's secure port; the topology names it as the
        // target's bus port, which is where secure peers send MIGRATE.
        let record = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString).bin").path
        defer { try? FileManager.default.removeItem(atPath: record) }
        let relay = try BackgroundProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("recording_relay.py"), String(targetSecure), record])
        defer { relay.stop() }
        var relayPort = 0
        try eventually("the relay listens", seconds: 20) {
            relayPort = Int(relay.output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
            return relayPort > 0
        }

        let sourceID = try redisCLI(source.port, ["CLUSTER", "MYID"])
        let targetID = try redisCLI(target.port, ["CLUSTER", "MYID"])
        let payload = """
            \(sourceID) 127.0.0.1:\(source.port)@\(try securePort(source)) master - 0 0 1 connected 0-8191
            \(targetID) 127.0.0.1:\(target.port)@\(relayPort) master - 0 0 2 connected 8192-16383
            """
        // Nodes with identities take topology pushes only from the framework through the secure channel.
        let refused = try redisCLI(source.port, ["CLUSTER", "TOPOLOGY", "SET", "1", payload])
        #expect(refused.contains("NOPERM topology pushes are accepted only from the framework through the secure channel"), "\(refused)")
        #expect(try ids.pushTopology(epoch: 1, payload, securePort: try securePort(source), nodeID: "src") == "OK")
        // Straight to the target's secure port, not through the relay (whose record must hold MIGRATE traffic only).
        #expect(try ids.pushTopology(epoch: 1, payload, securePort: targetSecure, nodeID: "dst") == "OK")
        // Slot 5061 ({bar}) moves from source to target.
        let secret = "never-in-plaintext-\(UUID().uuidString)"
        for index in 0..<20 { #expect(try redisCLI(source.port, ["SET", "{bar}\(index)", "\(secret)-\(index)"]) == "OK") }
        #expect(try redisCLI(source.port, ["EXPIRE", "{bar}0", "1000"]) == "1")
        #expect(try redisCLI(target.port, ["CLUSTER", "SETSLOT", "5061", "IMPORTING", sourceID]) == "OK")
        #expect(try redisCLI(source.port, ["CLUSTER", "SETSLOT", "5061", "MIGRATING", targetID]) == "OK")
        let keys = (0..<20).map { "{bar}\($0)" }
        #expect(try redisCLI(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS"] + keys) == "OK")
        #expect(try redisCLI(source.port, ["CLUSTER", "COUNTKEYSINSLOT", "5061"]) == "0")
        for node in [target, source] {
            #expect(try redisCLI(node.port, ["CLUSTER", "SETSLOT", "5061", "NODE", targetID]) == "OK")
        }
        #expect(try redisCLI(target.port, ["GET", "{bar}7"]) == "\(secret)-7")
        #expect(try redisCLI(target.port, ["DBSIZE"]) == "20")
        let ttl = Int(try redisCLI(target.port, ["TTL", "{bar}0"])) ?? -1
        #expect(ttl > 900 && ttl <= 1000)

        // What crossed the relay: the handshake and records, none of the keys, values or commands.
        let carried = try Data(contentsOf: URL(fileURLWithPath: record))
        #expect(carried.count > 1000, "the relay carried \(carried.count) bytes")
        for plaintext in [secret, "{bar}7", "RESTORE", "MYID"] {
            #expect(carried.range(of: Data(plaintext.utf8)) == nil, "\(plaintext) crossed in plaintext")
        }
    }

    @Test func plaintextTargetsAndNodesWithoutTheOptInAreRefused() throws {
        let ids = try TestIdentities(nodes: ["src"])
        defer { ids.remove() }
        let source = try CacheNodeProcess(arguments: ids.flags("src", replicationPort: 0))
        defer { source.stop() }
        let plaintextTarget = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes"])
        defer { plaintextTarget.stop() }
        #expect(try redisCLI(source.port, ["SET", "k", "v"]) == "OK")
        let refused = try redisCLI(source.port, ["MIGRATE", "127.0.0.1", String(plaintextTarget.port), "k", "0", "2000"])
        #expect(refused.contains("has no secure replication port") && refused.contains("never in plaintext"), "\(refused)")
        #expect(try redisCLI(source.port, ["GET", "k"]) == "v")
        #expect(try redisCLI(plaintextTarget.port, ["DBSIZE"]) == "0")

        // Without an identity and without --replication-plaintext yes, a node does not migrate in plaintext.
        let plain = try CacheNodeProcess()
        defer { plain.stop() }
        #expect(try redisCLI(plain.port, ["SET", "k", "v"]) == "OK")
        let disabled = try redisCLI(plain.port, ["MIGRATE", "127.0.0.1", String(plaintextTarget.port), "k", "0", "2000"])
        #expect(disabled.contains("plaintext node-to-node traffic is disabled"), "\(disabled)")
        #expect(try redisCLI(plain.port, ["GET", "k"]) == "v")
        // With the opt-in on both, plaintext MIGRATE works as in redis.
        let optedIn = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes"])
        defer { optedIn.stop() }
        #expect(try redisCLI(optedIn.port, ["SET", "k", "v"]) == "OK")
        #expect(try redisCLI(optedIn.port, ["MIGRATE", "127.0.0.1", String(plaintextTarget.port), "k", "0", "2000"]) == "OK")
        #expect(try redisCLI(plaintextTarget.port, ["GET", "k"]) == "v")
    }

    @Test func replicasOfBothSidesFollowAMigrate() throws {
        let ids = try TestIdentities(nodes: ["a", "a1", "b", "b1"])
        defer { ids.remove() }
        let primaryA = try CacheNodeProcess(arguments: ids.flags("a", replicationPort: 0))
        defer { primaryA.stop() }
        let primaryB = try CacheNodeProcess(arguments: ids.flags("b", replicationPort: 0))
        defer { primaryB.stop() }
        let replicaA = try CacheNodeProcess(arguments: ids.flags("a1", replicationPort: 0) + ["--replicaof", "127.0.0.1", String(try securePort(primaryA))])
        defer { replicaA.stop() }
        let replicaB = try CacheNodeProcess(arguments: ids.flags("b1", replicationPort: 0) + ["--replicaof", "127.0.0.1", String(try securePort(primaryB))])
        defer { replicaB.stop() }
        for index in 0..<10 { #expect(try redisCLI(primaryA.port, ["SET", "k\(index)", "v\(index)"]) == "OK") }
        #expect(try redisCLI(primaryA.port, ["RPUSH", "list", "x", "y"]) == "2")
        #expect(try redisCLI(primaryA.port, ["SET", "ttl", "t", "EX", "1000"]) == "OK")
        #expect(try redisCLI(primaryA.port, ["SET", "stays", "here"]) == "OK")
        try waitForSync(primary: primaryA.port, replicas: [replicaA.port])
        try waitForSync(primary: primaryB.port, replicas: [replicaB.port])
        #expect(try redisCLI(replicaA.port, ["DBSIZE"]) == "13")

        let moved = (0..<10).map { "k\($0)" } + ["list", "ttl"]
        #expect(try redisCLI(primaryA.port, ["MIGRATE", "127.0.0.1", String(primaryB.port), "", "0", "5000", "KEYS"] + moved) == "OK")
        // COPY leaves the key on the source, and on its replica.
        #expect(try redisCLI(primaryA.port, ["MIGRATE", "127.0.0.1", String(primaryB.port), "stays", "0", "5000", "COPY"]) == "OK")
        try waitForSync(primary: primaryA.port, replicas: [replicaA.port])
        try waitForSync(primary: primaryB.port, replicas: [replicaB.port])

        // The source's replica dropped the moved keys (the primary propagated DEL), kept the copied one.
        #expect(try redisCLI(replicaA.port, ["DBSIZE"]) == "1")
        #expect(try redisCLI(replicaA.port, ["GET", "stays"]) == "here")
        // The target's replica has every key, with the expiry.
        #expect(try redisCLI(replicaB.port, ["DBSIZE"]) == "13")
        #expect(try redisCLI(replicaB.port, ["GET", "k3"]) == "v3")
        #expect(try redisCLI(replicaB.port, ["LRANGE", "list", "0", "-1"]) == "x\ny")
        let ttl = Int(try redisCLI(replicaB.port, ["TTL", "ttl"])) ?? -1
        #expect(ttl > 900 && ttl <= 1000, "replica TTL \(ttl)")
        let comparison = try compareNodes([primaryB.port, replicaB.port])
        #expect(comparison.hasPrefix("identical"), "\(comparison)")
    }
}
