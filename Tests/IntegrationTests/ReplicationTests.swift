// Replication between real cache-node processes over ReplicationSec: identities issued with the cachectl binary,
// a primary and two replicas syncing under a running writer, failover by hand with partial resync, WAIT-acknowledged
// writes surviving the primary's death, a tampered byte on the link (through a flipping proxy), and the refusal to
// mix plaintext and secure replication. Waits poll INFO with deadlines; nothing here asserts on timing.
import Foundation
import LoopbackTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A cluster authority and node identities made with `cachectl identity init|issue`.
struct TestIdentities {
    let directory: String

    init(nodes: [String]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cachectl = PackagePaths.root.appendingPathComponent(".build/debug/cachectl").path
        let initialized = try runProgram(cachectl, ["identity", "init", "--directory", directory])
        guard initialized.status == 0 else { throw HarnessError(description: "cachectl identity init failed: \(initialized.output)") }
        for node in nodes {
            let issued = try runProgram(cachectl, [
                "identity", "issue", "--authority-key", "\(directory)/authority.key", "--node-id", node, "--role", "cache-node",
                "--out", "\(directory)/\(node).identity",
            ])
            guard issued.status == 0 else { throw HarnessError(description: "cachectl identity issue failed: \(issued.output)") }
        }
    }

    /// The flags that give node `id` its identity and a secure replication port.
    func flags(_ id: String, replicationPort: Int) -> [String] {
        ["--node-identity", "\(directory)/\(id).identity", "--cluster-authority", "\(directory)/authority.pub",
         "--replication-port", String(replicationPort)]
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// INFO `section` as a dictionary.
func info(_ port: Int, _ section: String) throws -> [String: String] {
    var fields: [String: String] = [:]
    for line in try redisCLI(port, ["INFO", section]).split(whereSeparator: \.isNewline) {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]).trimmingCharacters(in: .whitespaces) }
    }
    return fields
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(50_000)
    }
    throw HarnessError(description: "timed out waiting until \(what)")
}

/// Waits until every replica's link is up and its offset equals the primary's.
func waitForSync(primary: Int, replicas: [Int]) throws {
    try eventually("replicas caught up with the primary") {
        let offset = try info(primary, "replication")["master_repl_offset"]
        for replica in replicas {
            let fields = try info(replica, "replication")
            guard fields["master_link_status"] == "up", fields["slave_repl_offset"] == offset else { return false }
        }
        return true
    }
}

/// Compares every key of the nodes with redis-py; returns the tool's one-line verdict.
func compareNodes(_ ports: [Int]) throws -> String {
    let result = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("replication_tool.py"), "compare"] + ports.map(String.init))
    return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Starts a program in the background with its output in a temporary file.
final class BackgroundProgram {
    let process = Process()
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("bg-\(UUID().uuidString).out").path

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    func wait() { process.waitUntilExit() }

    func stop() {
        if process.isRunning {
            // SIGKILL: a child of Foundation.Process may inherit SIGTERM blocked (see ServerProcess.swift).
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: outputPath)
    }

    deinit { stop() }
}

@Suite(.serialized)
struct ReplicationTests {
    @Test func secureReplicasConvergeUnderAWriteLoadAndARestartedReplicaResyncs() throws {
        let ids = try TestIdentities(nodes: ["p", "r1", "r2"])
        defer { ids.remove() }
        let primaryReplication = try LoopbackSocket.freeLoopbackPort()
        let primary = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: primaryReplication))
        defer { primary.stop() }
        // Data of every type before the replicas exist (it reaches them through the snapshot).
        for command in [["RPUSH", "list", "a", "b", "c"], ["HSET", "hash", "f", "v", "g", "w"], ["SADD", "set", "x", "y", "z"],
                        ["ZADD", "zset", "1", "one", "2.5", "two"], ["SET", "ttl", "v", "EX", "1000"], ["SELECT", "0"]] {
            _ = try redisCLI(primary.port, command)
        }
        _ = try redisCLI(primary.port, ["-n", "5", "SET", "in5", "yes"])
        // 100k writes while the replicas connect and sync.
        let writer = try BackgroundProgram("/usr/bin/redis-benchmark", [
            "-h", "127.0.0.1", "-p", String(primary.port), "-t", "set", "-n", "100000", "-r", "100000", "-d", "16", "-P", "16", "-c", "4", "-q",
        ])
        defer { writer.stop() }
        usleep(100_000)
        let replicaOf = ["--replicaof", "127.0.0.1", String(primaryReplication)]
        let first = try CacheNodeProcess(arguments: ids.flags("r1", replicationPort: try LoopbackSocket.freeLoopbackPort()) + replicaOf)
        defer { first.stop() }
        let second = try CacheNodeProcess(arguments: ids.flags("r2", replicationPort: try LoopbackSocket.freeLoopbackPort()) + replicaOf)
        defer { second.stop() }
        writer.wait()
        #expect(writer.process.terminationStatus == 0, "writer: \(writer.output)")
        // Writes whose results replicas must not recompute.
        for command in [["INCRBYFLOAT", "float", "1.25"], ["SADD", "pop", "m1", "m2", "m3"], ["SPOP", "pop"], ["LPUSH", "bl", "q"],
                        ["BLPOP", "bl", "1"], ["SET", "rel", "v", "PX", "600000"]] {
            _ = try redisCLI(primary.port, command)
        }
        try waitForSync(primary: primary.port, replicas: [first.port, second.port])
        let verdict = try compareNodes([primary.port, first.port, second.port])
        #expect(verdict.hasPrefix("identical"), "\(verdict)")
        #expect((Int(verdict.split(separator: " ").last ?? "") ?? 0) > 60_000)
        let primaryInfo = try info(primary.port, "replication")
        #expect(primaryInfo["connected_slaves"] == "2")
        #expect(primaryInfo["slave0"]?.contains("state=online") == true)
        #expect(try info(first.port, "replication")["master_link_secure"] == "1")
        #expect(try info(primary.port, "stats")["sync_full"] == "2")
        #expect(try redisCLI(first.port, ["SET", "x", "1"]).contains("READONLY"))
        #expect(try redisCLI(second.port, ["ROLE"]).contains("connected"))

        // kill -9 a replica and start it again: it has no data on disk (no snapshot is saved in this test), so it
        // takes a new full copy and ends identical.
        second.kill9()
        let restarted = try CacheNodeProcess(arguments: ids.flags("r2", replicationPort: try LoopbackSocket.freeLoopbackPort()) + replicaOf)
        defer { restarted.stop() }
        _ = try redisCLI(primary.port, ["SET", "after-restart", "1"])
        try waitForSync(primary: primary.port, replicas: [first.port, restarted.port])
        #expect(try compareNodes([primary.port, first.port, restarted.port]).hasPrefix("identical"))
        #expect(try info(primary.port, "stats")["sync_full"] == "3")
    }

    @Test func aReplicaKilledAndRestartedFromItsSnapshotResumesByPartialResync() throws {
        let ids = try TestIdentities(nodes: ["p", "r1"])
        defer { ids.remove() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("replica-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let primaryReplication = try LoopbackSocket.freeLoopbackPort()
        let primary = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: primaryReplication) + ["--repl-backlog-size", "64mb"])
        defer { primary.stop() }
        let replicaFlags = ids.flags("r1", replicationPort: try LoopbackSocket.freeLoopbackPort())
            + ["--dir", directory, "--replicaof", "127.0.0.1", String(primaryReplication)]
        var replica = try CacheNodeProcess(arguments: replicaFlags)
        defer { replica.stop() }
        try waitForSync(primary: primary.port, replicas: [replica.port])
        // Transactions and other non-idempotent writes run throughout: a snapshot whose offset were one command
        // (or half a transaction) off the data would leave the restarted replica's counters different.
        let stopFile = directory + "/stop-writer"
        let writer = try BackgroundProgram("/usr/bin/env", [
            "python3", PackagePaths.clientScript("replication_tool.py"), "txn-writer", String(primary.port), stopFile,
        ])
        defer { writer.stop() }
        for round in 1...3 {
            try eventually("the writer made progress") { (Int(try redisCLI(replica.port, ["GET", "plain:counter"])) ?? 0) > round * 200 }
            #expect(try redisCLI(replica.port, ["BGSAVE"]).contains("Background saving started"))
            try eventually("the replica's background save finished") {
                let persistence = try info(replica.port, "persistence")
                return persistence["rdb_bgsave_in_progress"] == "0" && persistence["rdb_last_bgsave_status"] == "ok"
                    && persistence["rdb_saves"] == "1"
            }
            // More writes reach the primary's backlog after the snapshot; then the replica dies without saving.
            usleep(200_000)
            replica.kill9()
            replica = try CacheNodeProcess(arguments: replicaFlags)
            try eventually("the restarted replica's link is up") { try info(replica.port, "replication")["master_link_status"] == "up" }
            #expect(replica.log.contains("asking the primary for a partial resync"), "\(replica.log.suffix(2000))")
            let stats = try info(primary.port, "stats")
            #expect(stats["sync_full"] == "1", "round \(round): the restarted replica took a full copy")
            #expect(stats["sync_partial_ok"] == String(round))
        }
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        writer.wait()
        #expect(writer.process.terminationStatus == 0, "writer: \(writer.output)")
        try waitForSync(primary: primary.port, replicas: [replica.port])
        #expect(try compareNodes([primary.port, replica.port]).hasPrefix("identical"))
        #expect(try redisCLI(replica.port, ["GET", "txn:counter"]) == (try redisCLI(primary.port, ["GET", "txn:counter"])))
        #expect(try redisCLI(replica.port, ["LLEN", "txn:log"]) == (try redisCLI(primary.port, ["GET", "txn:counter"])))
    }

    @Test func failoverPromotesTheMostAdvancedReplicaAndTheOtherContinuesByPartialResync() throws {
        let ids = try TestIdentities(nodes: ["p", "r1", "r2"])
        defer { ids.remove() }
        let ports = (try LoopbackSocket.freeLoopbackPort(), try LoopbackSocket.freeLoopbackPort(), try LoopbackSocket.freeLoopbackPort())
        let primary = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: ports.0))
        defer { primary.stop() }
        let replicaOf = ["--replicaof", "127.0.0.1", String(ports.0)]
        let first = try CacheNodeProcess(arguments: ids.flags("r1", replicationPort: ports.1) + replicaOf)
        defer { first.stop() }
        let second = try CacheNodeProcess(arguments: ids.flags("r2", replicationPort: ports.2) + replicaOf)
        defer { second.stop() }
        try waitForSync(primary: primary.port, replicas: [first.port, second.port])
        let writes = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("replication_tool.py"), "acked-writes", String(primary.port), "3000"])
        let acked = Int(writes.output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        #expect(acked >= 2899, "\(writes.output)")
        primary.kill9()

        let offsets = try [first, second].map { Int(try info($0.port, "replication")["slave_repl_offset"] ?? "") ?? -1 }
        let (promoted, other, promotedReplicationPort) = offsets[0] >= offsets[1] ? (first, second, ports.1) : (second, first, ports.2)
        let promotion = try redisCLI(promoted.port, ["REPLICAOF", "NO", "ONE"])
        #expect(promotion == "OK", "\(promotion)")
        let repointed = try redisCLI(other.port, ["REPLICAOF", "127.0.0.1", String(promotedReplicationPort)])
        #expect(repointed == "OK", "\(repointed); log: \(other.log.suffix(1500))")
        try waitForSync(primary: promoted.port, replicas: [other.port])
        let stats = try info(promoted.port, "stats")
        #expect(stats["sync_partial_ok"] == "1")
        #expect(stats["sync_full"] == "0")
        let promotedInfo = try info(promoted.port, "replication")
        #expect(promotedInfo["role"] == "master")
        #expect(promotedInfo["master_replid2"] != String(repeating: "0", count: 40))
        // Every write WAIT reported as replicated is on the promoted node.
        for index in stride(from: 0, through: max(acked, 0), by: 97) {
            #expect(try redisCLI(promoted.port, ["GET", "ack:\(index)"]) == String(index))
        }
        #expect(try redisCLI(promoted.port, ["GET", "ack:\(acked)"]) == String(acked))
        _ = try redisCLI(promoted.port, ["SET", "after-failover", "1"])
        try waitForSync(primary: promoted.port, replicas: [other.port])
        #expect(try compareNodes([promoted.port, other.port]).hasPrefix("identical"))
        #expect(try redisCLI(other.port, ["GET", "after-failover"]) == "1")
    }

    @Test func aTamperedByteBreaksTheLinkAndTheReplicaResumesCorrectly() throws {
        let ids = try TestIdentities(nodes: ["p", "r1"])
        defer { ids.remove() }
        let primaryReplication = try LoopbackSocket.freeLoopbackPort()
        // A backlog large enough that the reconnect after the tamper is always within it.
        let primary = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: primaryReplication) + ["--repl-backlog-size", "64mb"])
        defer { primary.stop() }
        let proxyPort = try LoopbackSocket.freeLoopbackPort()
        // Flip a byte well after the handshake and the (small) snapshot: inside the command stream.
        let proxy = try BackgroundProgram("/usr/bin/env", ["python3", 
            PackagePaths.clientScript("flip_proxy.py"), String(proxyPort), String(primaryReplication), "150000",
        ])
        defer { proxy.stop() }
        try eventually("the proxy listens") { proxy.output.contains("listening") }
        let replica = try CacheNodeProcess(arguments: ids.flags("r1", replicationPort: try LoopbackSocket.freeLoopbackPort())
            + ["--replicaof", "127.0.0.1", String(proxyPort)])
        defer { replica.stop() }
        try waitForSync(primary: primary.port, replicas: [replica.port])
        let writer = try runProgram("/usr/bin/redis-benchmark", [
            "-h", "127.0.0.1", "-p", String(primary.port), "-t", "set", "-n", "20000", "-r", "5000", "-d", "64", "-P", "16", "-q",
        ])
        #expect(writer.status == 0)
        try eventually("the proxy flipped a byte") { proxy.output.contains("flipped") }
        try waitForSync(primary: primary.port, replicas: [replica.port])
        #expect(try compareNodes([primary.port, replica.port]).hasPrefix("identical"))
        // The replica noticed, dropped the link and continued from its offset (no second full copy).
        #expect(replica.log.contains("Replication link error"), "\(replica.log.suffix(2000))")
        let stats = try info(primary.port, "stats")
        #expect(stats["sync_full"] == "1")
        #expect((Int(stats["sync_partial_ok"] ?? "") ?? 0) >= 1)
    }

    @Test func plaintextAndSecureReplicationRefuseToMix() throws {
        let ids = try TestIdentities(nodes: ["p"])
        defer { ids.remove() }
        let primary = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: try LoopbackSocket.freeLoopbackPort()))
        defer { primary.stop() }
        // A plaintext replica pointed at the secure node's client port is refused, and says why.
        let replica = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes", "--replicaof", "127.0.0.1", String(primary.port)])
        defer { replica.stop() }
        try eventually("the replica reports the refusal") {
            (try info(replica.port, "replication")["master_link_down_reason"] ?? "").contains("secure replication required")
        }
        #expect(try info(primary.port, "replication")["connected_slaves"] == "0")
        #expect(try redisCLI(primary.port, ["PSYNC", "?", "-1"]).contains("secure replication required"))
        // A node without identity and without the opt-in refuses to replicate in plaintext.
        let plain = try CacheNodeProcess()
        defer { plain.stop() }
        #expect(try redisCLI(plain.port, ["REPLICAOF", "127.0.0.1", String(primary.port)]).contains("plaintext replication is disabled"))
        // Both at once is a start-up error.
        #expect(throws: HarnessError.self) {
            _ = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: 0) + ["--replication-plaintext", "yes"])
        }
    }

    @Test func aFullSyncStreamsBetweenEndMarksToReplicasThatAskAndSendsOneBulkToOthers() throws {
        let primary = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes"])
        defer { primary.stop() }
        // ~100k keys of 64 bytes: a snapshot of many chunks.
        let filled = try runProgram("/usr/bin/redis-benchmark", [
            "-h", "127.0.0.1", "-p", String(primary.port), "-t", "set", "-n", "100000", "-r", "100000000", "-d", "64",
            "-P", "64", "-c", "2", "-q",
        ])
        #expect(filled.status == 0, "\(filled.output)")
        let keys = Int(try redisCLI(primary.port, ["DBSIZE"])) ?? 0
        #expect(keys > 90_000)

        func rawReplica(_ mode: String, slowMilliseconds: Int, marker: String) throws -> [String: Any] {
            let replica = try BackgroundProgram("/usr/bin/env", [
                "python3", PackagePaths.clientScript("raw_replica.py"), String(primary.port), mode, String(slowMilliseconds), marker,
            ])
            defer { replica.stop() }
            try eventually("the \(mode) replica read its snapshot") { replica.output.contains("waiting_for_marker") }
            // A write after the snapshot reaches the replica in the stream that follows it.
            _ = try redisCLI(primary.port, ["SET", marker, "after-the-snapshot"])
            replica.wait()
            let lines = replica.output.split(separator: "\n")
            let last = try #require(lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] },
                "raw replica output: \(replica.output)")
            return last
        }
        // A replica that announces `capa eof` gets the snapshot streamed, even when it reads slowly.
        let streamed = try rawReplica("eof", slowMilliseconds: 2, marker: "marker-eof")
        #expect(streamed["framing"] as? String == "eof")
        #expect(streamed["marker_seen"] as? Bool == true, "the stream follows the end mark")
        let streamedBytes = try #require(streamed["snapshot_bytes"] as? Int)
        #expect(streamedBytes > keys * 64, "the whole image: \(streamedBytes) bytes for \(keys) keys")
        // One without the capability gets a single `$<length>` bulk of the same image.
        let bulk = try rawReplica("bulk", slowMilliseconds: 0, marker: "marker-bulk")
        #expect(bulk["framing"] as? String == "bulk")
        #expect(bulk["marker_seen"] as? Bool == true)
        let bulkBytes = try #require(bulk["snapshot_bytes"] as? Int)
        #expect(abs(bulkBytes - streamedBytes) < 1_000, "same keyspace, same image size (\(bulkBytes) vs \(streamedBytes))")
        // A cache-node replica (which announces `capa eof`) loads the streamed image and ends identical.
        let replica = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes", "--replicaof", "127.0.0.1", String(primary.port)])
        defer { replica.stop() }
        try waitForSync(primary: primary.port, replicas: [replica.port])
        // The whole keyspace compared by its digest (a per-key comparison of 100k keys is slow in a debug build).
        let digest = try redisCLI(primary.port, ["DEBUG", "DIGEST"])
        #expect(digest.count == 40 && digest != String(repeating: "0", count: 40))
        #expect(try redisCLI(replica.port, ["DEBUG", "DIGEST"]) == digest)
        #expect(try redisCLI(replica.port, ["DBSIZE"]) == String(keys + 2), "every key plus the two markers")
        #expect(try info(primary.port, "stats")["sync_full"] == "3")
    }
}
