// End to end through `cachectl serve` with real cache-node members: a 3 × (1 + 1) cluster created by the framework is
// a serving Redis Cluster (`redis-cli --cluster check`, redis-py RedisCluster) whose replicas replicate over the
// secure channel with identities the framework issued, and whose topology the framework pushed through the secure
// channel (a push on a member's client port is refused); keys written with WAIT 1, then kill -9 of a primary: the
// framework promotes its replica, pushes a new topology and attaches a replacement replica, and every
// WAIT-acknowledged key is still there. The time from the kill to the shard serving again is printed (the
// benchmark, `provision-bench --failover`, measures it properly); the test only bounds it by a generous deadline.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct FrameworkHealTests {
    func ctl(_ arguments: [String], _ dataDirectory: String) throws -> ProgramResult {
        try runProgram(CachectlFrameworkTests.cachectl, arguments + ["--data-dir", dataDirectory], timeout: 90)
    }

    func status(_ dataDirectory: String) throws -> [String: Any] {
        let result = try ctl(["cluster", "status", "heal", "--json"], dataDirectory)
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        else { throw HarnessError(description: "cluster status failed: \(result.output)") }
        return object
    }

    func members(_ status: [String: Any]) -> [[String: Any]] { status["members"] as? [[String: Any]] ?? [] }

    /// An identifier from JSON (`{"value": "…"}`, as TaskID encodes).
    func id(_ value: Any?) -> String? { (value as? [String: Any])?["value"] as? String ?? value as? String }

    func port(_ member: [String: Any]) -> Int { Int((member["endpoint"] as? String)?.split(separator: ":").last ?? "") ?? 0 }

    /// A key whose slot is in `first...last`, found with CLUSTER KEYSLOT.
    func key(inSlots first: Int, _ last: Int, asking port: Int) throws -> String {
        for index in 0..<10_000 {
            let slot = Int(try redisCLI(port, ["CLUSTER", "KEYSLOT", "probe:\(index)"])) ?? -1
            if (first...last).contains(slot) { return "probe:\(index)" }
        }
        throw HarnessError(description: "no key found in slots \(first)-\(last)")
    }

    @Test func frameworkClusterServesReplicatesSecurelyAndHealsAKilledPrimary() async throws {
        let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("heal-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let serve = try CachectlFrameworkTests.Serve(dataDirectory: dataDirectory, firstPort: Int.random(in: 110..<200) * 100)
        defer { serve.terminate() }

        // Create: returns once every member runs and acknowledged the topology.
        let created = try ctl(["cluster", "create", "heal", "--shards", "3", "--replicas", "1", "--memory-mb", "32", "--json"], dataDirectory)
        #expect(created.status == 0, "\(created.output)")
        var current = try status(dataDirectory)
        #expect(current["ready"] as? Bool == true)
        #expect(current["serving"] as? Bool == true)
        #expect((current["shards"] as? [[String: Any]])?.map { ($0["slots"] as? [String]) ?? [] } == [["0-5460"], ["5461-10922"], ["10923-16383"]])
        let seedPort = port(members(current)[0])

        // The framework pushed that topology through the secure channel (its members have identities and refuse a push
        // on their client port): a plain client cannot rewrite the slot map.
        let epoch = try #require(current["topologyEpoch"] as? Int)
        let hijack = "\(String(repeating: "f", count: 40)) 127.0.0.1:1@2 master - 0 0 1 connected 0-16383"
        for member in members(current) {
            let refused = try redisCLI(port(member), ["CLUSTER", "TOPOLOGY", "SET", String(epoch + 1), hijack])
            #expect(refused.contains("NOPERM topology pushes are accepted only from the framework through the secure channel"), "\(refused)")
            #expect(try redisCLI(port(member), ["CLUSTER", "TOPOLOGY", "GET"]).split(separator: "\n").first == "\(epoch)")
        }

        // A real Redis Cluster: redis-cli's check and redis-py's RedisCluster.
        let check = try runProgram("/usr/bin/redis-cli", ["--cluster", "check", "127.0.0.1:\(seedPort)"])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("[OK] All 16384 slots covered."))
        #expect(check.output.contains("[OK] All nodes agree about slots configuration."))
        let filled = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("cluster_client.py"), "fill", String(seedPort), "3000"], timeout: 120)
        #expect(filled.output.contains("filled 3000"), "\(filled.output)")

        // Replication runs over the secure channel, to each primary's replication port.
        for replica in members(current) where replica["role"] as? String == "replica" {
            let fields = try info(port(replica), "replication")
            #expect(fields["role"] == "slave")
            #expect(fields["master_link_status"] == "up", "\(fields)")
            #expect(fields["master_link_secure"] == "1", "replica \(port(replica)) links securely: \(fields)")
        }

        // Keys acknowledged by WAIT 1 on every primary.
        let ackedFile = dataDirectory + "/acked.json"
        let acked = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("heal_client.py"), "acked", String(seedPort), "3000", ackedFile], timeout: 120)
        #expect(acked.output.hasPrefix("acked 3000 of 3000"), "\(acked.output)")

        // kill -9 the primary of shard 1.
        let victim = try #require(members(current).first { $0["shard"] as? Int == 1 && $0["role"] as? String == "primary" })
        let victimTask = try #require(id(victim["taskID"]))
        let survivor = try #require(members(current).first { $0["shard"] as? Int == 1 && $0["role"] as? String == "replica" })
        let survivorTask = try #require(id(survivor["taskID"]))
        let otherPort = port(try #require(members(current).first { $0["shard"] as? Int == 0 }))
        let probe = try key(inSlots: 5461, 10922, asking: otherPort)
        let tasks = try JSONSerialization.jsonObject(with: Data(try ctl(["tasks", "--json"], dataDirectory).output.utf8)) as? [[String: Any]] ?? []
        let pid = try #require((tasks.first { id($0["taskID"]) == victimTask }?["pid"] as? NSNumber)?.int32Value)
        let survivorKeys = try redisCLI(port(survivor), ["DBSIZE"])
        let killedAt = Date()
        kill(pid, SIGKILL)

        // The shard serves again: a write to one of its slots through another node succeeds.
        var servedAfter: Double?
        while Date().timeIntervalSince(killedAt) < 30 {
            if (try? redisCLI(otherPort, ["SET", probe, "after"], extra: ["-c"])) == "OK" {
                servedAfter = Date().timeIntervalSince(killedAt)
                break
            }
            usleep(20_000)
        }
        let served = try #require(servedAfter, "shard 1 serves again within 30 s of its primary's death")
        print("FrameworkHealTests: shard served again \(String(format: "%.3f", served)) s after kill -9 of its primary")

        // Healed: the replica is primary, a replacement replica runs, is attached securely, and the topology agrees.
        try eventually("the cluster is ready again with a replacement replica", seconds: 60) {
            current = try status(dataDirectory)
            let shard = members(current).filter { $0["shard"] as? Int == 1 }
            return current["ready"] as? Bool == true && !shard.contains { id($0["taskID"]) == victimTask }
        }
        let shard = members(current).filter { $0["shard"] as? Int == 1 }
        let promoted = try #require(shard.first { $0["role"] as? String == "primary" })
        #expect(id(promoted["taskID"]) == survivorTask)
        let replacement = try #require(shard.first { $0["role"] as? String == "replica" })
        try eventually("the replacement replica's secure link is up", seconds: 30) {
            let fields = try info(port(replacement), "replication")
            return fields["master_link_status"] == "up" && fields["master_link_secure"] == "1"
        }
        #expect(try info(port(promoted), "replication")["role"] == "master")
        let heals = current["heals"] as? [[String: Any]] ?? []
        // Under load a replacement that misses its readiness deadline is itself replaced (a later heal), so look for
        // the victim's heal rather than the last one.
        let victimHeal = heals.first { id($0["lostTask"]) == victimTask }
        #expect(victimHeal != nil, "a heal for the killed primary: \(heals)")
        #expect(id(victimHeal?["promoted"]) == survivorTask, "\(heals)")
        #expect((current["topologyEpoch"] as? Int ?? 0) >= 3, "initial push, promotion, replacement")

        let checkAfter = try runProgram("/usr/bin/redis-cli", ["--cluster", "check", "127.0.0.1:\(port(promoted))"])
        #expect(checkAfter.status == 0, "\(checkAfter.output)")
        #expect(checkAfter.output.contains("[OK] All 16384 slots covered."))
        let verified = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("heal_client.py"), "verify", String(port(promoted)), ackedFile], timeout: 120)
        #expect(verified.status == 0, "every WAIT-acknowledged key survived: \(verified.output)")
        if verified.status != 0 {
            let url = try CachectlFrameworkTests().apiURL(dataDirectory)
            let events = try runProgram("/usr/bin/curl", ["-s", "-H", "Authorization: Bearer e2e-token", url + "/api/v1/events"])
            print("DIAG survivor keys before kill \(survivorKeys); promoted now \(try redisCLI(port(promoted), ["DBSIZE"]))")
            print("DIAG events: \(events.output)")
            for task in [survivorTask, victimTask] {
                for file in ["stdout", "stderr"] {
                    let text = (try? String(contentsOfFile: "\(dataDirectory)/sandboxes/\(task)/\(file)", encoding: .utf8)) ?? ""
                    print("DIAG \(task) \(file): \(text.suffix(3000))")
                }
            }
            print("DIAG promoted stats: \(try info(port(promoted), "stats"))")
        }
        #expect(verified.output.hasPrefix("verified 3000 missing 0"))
        #expect(try redisCLI(port(promoted), ["GET", probe], extra: ["-c"]) == "after")
    }
}
