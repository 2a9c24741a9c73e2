// Cluster mode with real cache-node processes and real cluster clients: a 3-primary/3-replica cluster whose
// topology the test pushes (as the scheduler framework does), checked by `redis-cli --cluster check/info`, used
// through `redis-cli -c` and redis-py's RedisCluster; a live reshard of a third of the slots to a new primary with
// `redis-cli --cluster reshard` while a client writes and reads; MIGRATE to a target that dies mid-transfer.
import Foundation
import Testing

/// A set of cluster-mode nodes started for one test, and the topology pushed to them.
final class ClusterHarness {
    let nodes: [CacheNodeProcess]
    let ids: [String]
    private(set) var epoch = 0

    init(count: Int) throws {
        var started: [CacheNodeProcess] = []
        for _ in 0..<count {
            started.append(try CacheNodeProcess(arguments: ["--cluster-enabled", "yes", "--cluster-config-file", "", "--replication-plaintext", "yes"]))
        }
        nodes = started
        ids = try started.map { try redisCLI($0.port, ["CLUSTER", "MYID"]) }
    }

    func stop() { for node in nodes { node.stop() } }

    /// One CLUSTER NODES line for node `index`.
    func line(_ index: Int, primary: Int? = nil, slots: [ClosedRange<Int>] = []) -> String {
        let port = nodes[index].port
        let role = primary == nil ? "master" : "slave"
        let ranges = slots.map { $0.count == 1 ? " \($0.lowerBound)" : " \($0.lowerBound)-\($0.upperBound)" }.joined()
        return "\(ids[index]) 127.0.0.1:\(port)@\(port + 10000) \(role) \(primary.map { ids[$0] } ?? "-") 0 0 \(index + 1) connected\(ranges)"
    }

    /// Pushes `lines` to every node with the next epoch (CLUSTER TOPOLOGY SET).
    func push(_ lines: [String]) throws {
        epoch += 1
        let payload = lines.joined(separator: "\n")
        for node in nodes {
            let answer = try redisCLI(node.port, ["CLUSTER", "TOPOLOGY", "SET", String(epoch), payload])
            guard answer == "OK" else { throw HarnessError(description: "topology push to \(node.port) failed: \(answer)") }
        }
    }

    /// Three primaries (nodes 0-2) with one replica each (nodes 3-5), plus any further nodes as empty primaries.
    func pushThreeByThree() throws {
        var lines = [
            line(0, slots: [0...5460]), line(1, slots: [5461...10922]), line(2, slots: [10923...16383]),
            line(3, primary: 0), line(4, primary: 1), line(5, primary: 2),
        ]
        for extra in 6..<nodes.count { lines.append(line(extra)) }
        try push(lines)
    }
}

@Suite(.serialized)
struct ClusterTests {
    @Test func redisCliChecksAndFollowsAThreeByThreeCluster() throws {
        let cluster = try ClusterHarness(count: 6)
        defer { cluster.stop() }
        try cluster.pushThreeByThree()
        let port = cluster.nodes[0].port

        let check = try runProgram("/usr/bin/redis-cli", ["--cluster", "check", "127.0.0.1:\(port)"])
        #expect(check.status == 0, "cluster check failed:\n\(check.output)")
        #expect(check.output.contains("[OK] All nodes agree about slots configuration."))
        #expect(check.output.contains("[OK] All 16384 slots covered."))
        // Every node, asked directly, agrees.
        for node in cluster.nodes {
            let other = try runProgram("/usr/bin/redis-cli", ["--cluster", "check", "127.0.0.1:\(node.port)"])
            #expect(other.output.contains("[OK] All 16384 slots covered."), "check via \(node.port):\n\(other.output)")
        }
        let info = try runProgram("/usr/bin/redis-cli", ["--cluster", "info", "127.0.0.1:\(port)"])
        #expect(info.status == 0)
        #expect(info.output.contains("5461 slots | 1 slaves."))
        #expect(info.output.contains("5462 slots | 1 slaves."))

        // redis-cli -c follows MOVED from any node.
        #expect(try redisCLI(port, ["SET", "foo", "bar"], extra: ["-c"]) == "OK")  // slot 12182: node 2
        #expect(try redisCLI(cluster.nodes[1].port, ["GET", "foo"], extra: ["-c"]) == "bar")
        #expect(try redisCLI(port, ["GET", "foo"]) == "MOVED 12182 127.0.0.1:\(cluster.nodes[2].port)")
        #expect(try redisCLI(port, ["MSET", "a", "1", "b", "2"]) == "CROSSSLOT Keys in request don't hash to the same slot")
        #expect(try redisCLI(port, ["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        #expect(try redisCLI(port, ["INFO", "cluster"]).contains("cluster_enabled:1"))
        // A replica redirects reads until READONLY.
        #expect(try redisCLI(cluster.nodes[5].port, ["GET", "foo"]) == "MOVED 12182 127.0.0.1:\(cluster.nodes[2].port)")
    }

    @Test func redisPyClusterWritesAndReadsAHundredThousandKeys() throws {
        let cluster = try ClusterHarness(count: 6)
        defer { cluster.stop() }
        try cluster.pushThreeByThree()
        let result = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("cluster_client.py"), "fill",
                                                     String(cluster.nodes[0].port), "100000"], timeout: 300)
        #expect(result.status == 0, "RedisCluster failed:\n\(result.output)")
        #expect(result.output.contains("filled 100000"))
        var total = 0
        for index in 0..<3 {
            let keys = Int(try redisCLI(cluster.nodes[index].port, ["DBSIZE"])) ?? -1
            #expect(keys > 30000, "primary \(index) holds \(keys) keys")
            total += keys
        }
        #expect(total == 100_000)
    }

    @Test func liveReshardOfAThirdOfTheSlotsLosesNothing() throws {
        let cluster = try ClusterHarness(count: 7)
        defer { cluster.stop() }
        try cluster.pushThreeByThree()
        let port = cluster.nodes[0].port
        let script = PackagePaths.clientScript("cluster_client.py")
        let filled = try runProgram("/usr/bin/env", ["python3", script, "fill", String(port), "30000"], timeout: 300)
        #expect(filled.status == 0, "\(filled.output)")

        // A client writes and reads continuously during the reshard.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stopFile = directory.appendingPathComponent("stop").path
        let outFile = directory.appendingPathComponent("churn.json").path
        let churn = Process()
        churn.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        churn.arguments = ["python3", script, "churn", String(port), stopFile, outFile]
        churn.standardOutput = FileHandle.nullDevice
        churn.standardError = FileHandle.nullDevice
        try churn.run()
        usleep(500_000)

        // Move node 0's slots (a third of all) to node 6 the way operators do.
        let reshard = try runProgram("/usr/bin/redis-cli", [
            "--cluster", "reshard", "127.0.0.1:\(port)", "--cluster-from", cluster.ids[0], "--cluster-to", cluster.ids[6],
            "--cluster-slots", "5461", "--cluster-yes", "--cluster-pipeline", "200",
        ], timeout: 600)
        #expect(reshard.status == 0, "reshard failed:\n\(reshard.output.suffix(3000))")
        usleep(300_000)
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        churn.waitUntilExit()

        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: outFile))) as? [String: Any]
        let acked = report?["acked"] as? Int ?? 0
        let errors = report?["errors"] as? [String] ?? ["no report"]
        #expect(errors.isEmpty, "the client saw errors other than redirects: \(errors)")
        #expect(acked > 0)

        // The topology source records the result and pushes it; the cluster agrees and covers every slot.
        try cluster.push([
            cluster.line(0), cluster.line(1, slots: [5461...10922]), cluster.line(2, slots: [10923...16383]),
            cluster.line(3, primary: 0), cluster.line(4, primary: 1), cluster.line(5, primary: 2),
            cluster.line(6, slots: [0...5460]),
        ])
        let check = try runProgram("/usr/bin/redis-cli", ["--cluster", "check", "127.0.0.1:\(cluster.nodes[6].port)"])
        #expect(check.output.contains("[OK] All 16384 slots covered."), "\(check.output)")

        // Nothing stranded on the old owner; every acknowledged key present exactly once.
        #expect(try redisCLI(port, ["DBSIZE"]) == "0")
        var total = 0
        for index in [1, 2, 6] { total += Int(try redisCLI(cluster.nodes[index].port, ["DBSIZE"])) ?? 0 }
        #expect(total == 30000 + acked)
        let verifyFill = try runProgram("/usr/bin/env", ["python3", script, "verify", String(port), "key:", "30000"], timeout: 300)
        #expect(verifyFill.output.contains("verified 30000"), "\(verifyFill.output)")
        let verifyChurn = try runProgram("/usr/bin/env", ["python3", script, "verify", String(port), "churn:", String(acked)], timeout: 300)
        #expect(verifyChurn.output.contains("verified \(acked)"), "\(verifyChurn.output)")
    }

    @Test func migrateToATargetThatDiesMidTransferKeepsTheKey() throws {
        let source = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes"])
        defer { source.stop() }
        let target = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes"])
        defer { target.stop() }
        // A 1 MiB value, built on the server (too long for one command-line argument).
        #expect(try redisCLI(source.port, ["SETRANGE", "big", String((1 << 20) - 1), "x"]) == String(1 << 20))
        #expect(try redisCLI(source.port, ["SET", "small", "1"]) == "OK")
        // A working transfer first: the key moves and leaves the source.
        #expect(try redisCLI(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "small", "0", "1000"]) == "OK")
        #expect(try redisCLI(source.port, ["EXISTS", "small"]) == "0")
        #expect(try redisCLI(target.port, ["GET", "small"]) == "1")
        // The target stops answering mid-transfer, then is killed: the key stays on the source.
        kill(target.process.processIdentifier, SIGSTOP)
        let stalled = try redisCLI(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "big", "0", "500"])
        #expect(stalled.hasPrefix("IOERR"), "\(stalled)")
        kill(target.process.processIdentifier, SIGKILL)
        target.process.waitUntilExit()
        #expect(try redisCLI(source.port, ["STRLEN", "big"]) == String(1 << 20))
        let dead = try redisCLI(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "big", "0", "500"])
        #expect(dead.hasPrefix("IOERR"), "\(dead)")
        #expect(try redisCLI(source.port, ["STRLEN", "big"]) == String(1 << 20))
        #expect(try redisCLI(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "nokey", "0", "500"]) == "NOKEY")
    }
}
