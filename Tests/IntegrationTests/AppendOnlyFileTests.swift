// The append-only file with real processes: kill -9 under a transactional writer with `appendfsync always` loses no
// acknowledged write and no transaction is half applied; BGREWRITEAOF under writes keeps every write and removes the
// old files; enabling the AOF at run time captures the data already there; a command cut by a crash is repaired and
// damage elsewhere refuses the start with a message naming the file.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct AppendOnlyFileTests {
    /// A redis-py writer: MULTI INCR counter, RPUSH log, EXEC until the connection breaks; prints the last counter
    /// value it saw acknowledged.
    static let transactionalWriter = """
        import redis, sys
        r = redis.Redis(port=int(sys.argv[1]), socket_timeout=5)
        last = 0
        try:
            while True:
                p = r.pipeline(transaction=True)
                p.incr("counter")
                p.rpush("log", "x")
                last = p.execute()[0]
                print(last, flush=True)
        except Exception:
            pass
        """

    func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "cache-node-aof-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func files(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/appendonlydir")) ?? []).sorted()
    }

    @Test func killedWithSIGKILLItRestartsWithEveryAcknowledgedWriteAndWholeTransactions() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let flags = ["--dir", directory, "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        let node = try CacheNodeProcess(arguments: flags)
        _ = try redisCLI(node.port, ["-n", "2", "SET", "in-db-2", "yes"])
        _ = try redisCLI(node.port, ["SET", "with-ttl", "v", "EX", "1000"])
        _ = try redisCLI(node.port, ["INCRBYFLOAT", "float", "1.5"])
        let writer = try BackgroundProgram("/usr/bin/env", ["python3", "-c", Self.transactionalWriter, String(node.port)])
        defer { writer.stop() }
        try eventually("the writer made progress") { writer.output.split(separator: "\n").count > 200 }
        node.kill9()
        writer.wait()
        let acknowledged = Int(writer.output.split(separator: "\n").last ?? "") ?? 0
        #expect(acknowledged > 200)

        let restarted = try CacheNodeProcess(arguments: flags)
        defer { restarted.stop() }
        let counter = Int(try redisCLI(restarted.port, ["GET", "counter"])) ?? -1
        #expect(counter >= acknowledged, "every acknowledged transaction is back (\(counter) vs \(acknowledged))")
        #expect(counter <= acknowledged + 1, "at most the one in flight")
        #expect(try redisCLI(restarted.port, ["LLEN", "log"]) == String(counter), "no transaction half applied")
        #expect(try redisCLI(restarted.port, ["-n", "2", "GET", "in-db-2"]) == "yes")
        #expect(try redisCLI(restarted.port, ["GET", "float"]) == "1.5")
        let ttl = Int(try redisCLI(restarted.port, ["TTL", "with-ttl"])) ?? -1
        #expect(ttl > 900 && ttl <= 1000, "the expiry is absolute, not restarted: \(ttl)")
        #expect(try info(restarted.port, "persistence")["aof_enabled"] == "1")
    }

    @Test func aRewriteUnderWritesKeepsEveryWriteAndReplacesTheOldFiles() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let flags = ["--dir", directory, "--appendonly", "yes", "--save", ""]
        let node = try CacheNodeProcess(arguments: flags)
        let filled = try runProgram("/usr/bin/redis-benchmark", [
            "-h", "127.0.0.1", "-p", String(node.port), "-t", "set", "-n", "20000", "-r", "5000", "-d", "32", "-P", "16", "-q",
        ])
        #expect(filled.status == 0)
        let before = files(directory)
        #expect(before.contains("appendonly.aof.1.base.snap") && before.contains("appendonly.aof.1.incr.aof"), "\(before)")
        let writer = try BackgroundProgram("/usr/bin/env", ["python3", "-c", Self.transactionalWriter, String(node.port)])
        defer { writer.stop() }
        try eventually("the writer made progress") { writer.output.split(separator: "\n").count > 50 }
        #expect(try redisCLI(node.port, ["BGREWRITEAOF"]) == "Background append only file rewriting started")
        try eventually("the rewrite finished") {
            let fields = try info(node.port, "persistence")
            return fields["aof_rewrite_in_progress"] == "0" && fields["aof_rewrites"] == "2"
        }
        #expect(try info(node.port, "persistence")["aof_last_bgrewrite_status"] == "ok")
        try eventually("more writes after the rewrite") { writer.output.split(separator: "\n").count > 150 }
        let after = files(directory)
        #expect(after == ["appendonly.aof.2.base.snap", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"], "\(after)")
        let digest = try redisCLI(node.port, ["DEBUG", "DIGEST"])
        writer.stop()
        // SHUTDOWN NOSAVE still writes out the AOF: the restart has everything, including the writes made during the
        // rewrite (they went to the new incremental file from the snapshot's instant on).
        let counterBefore = try redisCLI(node.port, ["GET", "counter"])
        let digestAtStop = try redisCLI(node.port, ["DEBUG", "DIGEST"])
        _ = try redisCLI(node.port, ["SHUTDOWN", "NOSAVE"])
        node.process.waitUntilExit()
        #expect(digest.count == 40)
        let restarted = try CacheNodeProcess(arguments: flags)
        defer { restarted.stop() }
        #expect(try redisCLI(restarted.port, ["DEBUG", "DIGEST"]) == digestAtStop)
        #expect(try redisCLI(restarted.port, ["GET", "counter"]) == counterBefore)
        #expect(try redisCLI(restarted.port, ["LLEN", "log"]) == counterBefore)
    }

    @Test func enablingItAtRunTimeCapturesTheDataAlreadyThere() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let node = try CacheNodeProcess(arguments: ["--dir", directory, "--save", ""])
        _ = try redisCLI(node.port, ["HSET", "before", "f", "v"])
        #expect(try info(node.port, "persistence")["aof_enabled"] == "0")
        #expect(files(directory).isEmpty)
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "appendonly", "yes"]) == "OK")
        try eventually("the AOF was created") { try info(node.port, "persistence")["aof_enabled"] == "1" }
        _ = try redisCLI(node.port, ["SADD", "after", "m"])
        node.kill9()
        let restarted = try CacheNodeProcess(arguments: ["--dir", directory, "--save", "", "--appendonly", "yes"])
        defer { restarted.stop() }
        #expect(try redisCLI(restarted.port, ["HGET", "before", "f"]) == "v")
        #expect(try redisCLI(restarted.port, ["SISMEMBER", "after", "m"]) == "1")
        // Turning it off stops appending (the files stay, as redis leaves them).
        #expect(try redisCLI(restarted.port, ["CONFIG", "SET", "appendonly", "no"]) == "OK")
        #expect(try info(restarted.port, "persistence")["aof_enabled"] == "0")
    }

    @Test func aCommandCutByACrashIsRepairedAndDamageElsewhereRefusesTheStart() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let flags = ["--dir", directory, "--appendonly", "yes", "--save", ""]
        let node = try CacheNodeProcess(arguments: flags)
        _ = try redisCLI(node.port, ["SET", "kept", "1"])
        _ = try redisCLI(node.port, ["SHUTDOWN", "NOSAVE"])
        node.process.waitUntilExit()
        let incremental = directory + "/appendonlydir/appendonly.aof.1.incr.aof"
        let complete = try #require(FileManager.default.contents(atPath: incremental))
        // A crash in the middle of a write: the last command is cut.
        let handle = try #require(FileHandle(forWritingAtPath: incremental))
        handle.seekToEndOfFile()
        handle.write(Data("*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1".utf8))
        handle.closeFile()
        let repaired = try CacheNodeProcess(arguments: flags)
        #expect(try redisCLI(repaired.port, ["GET", "kept"]) == "1")
        #expect(try redisCLI(repaired.port, ["EXISTS", "lost"]) == "0")
        #expect(repaired.log.contains("cut back to its last complete command"), "\(repaired.log.suffix(800))")
        #expect(FileManager.default.contents(atPath: incremental) == complete, "the file was cut back to its complete commands")
        _ = try redisCLI(repaired.port, ["SHUTDOWN", "NOSAVE"])
        repaired.process.waitUntilExit()

        // A damaged base is refused, naming the file.
        let base = directory + "/appendonlydir/appendonly.aof.1.base.snap"
        var bytes = try #require(FileManager.default.contents(atPath: base))
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: base))
        #expect {
            _ = try CacheNodeProcess(arguments: flags)
        } throws: { error in
            "\(error)".contains("appendonly.aof.1.base.snap") && "\(error)".contains("damaged")
        }
    }

    @Test func aReplicaWithTheAOFRestartsWithItsPrimarysDataAfterAFullSync() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let primary = try CacheNodeProcess(arguments: ["--replication-plaintext", "yes", "--save", ""])
        defer { primary.stop() }
        for index in 0..<200 { _ = try redisCLI(primary.port, ["-n", String(index % 3), "SET", "before:\(index)", "\(index)"]) }
        let flags = ["--dir", directory, "--appendonly", "yes", "--save", "", "--replication-plaintext", "yes"]
        // The replica's own AOF holds data of its own first: the full sync replaces it, and so must the AOF.
        let seeded = try CacheNodeProcess(arguments: flags)
        _ = try redisCLI(seeded.port, ["SET", "only-on-the-replica", "1"])
        _ = try redisCLI(seeded.port, ["SHUTDOWN", "NOSAVE"])
        seeded.process.waitUntilExit()
        let replica = try CacheNodeProcess(arguments: flags + ["--replicaof", "127.0.0.1", String(primary.port)])
        try waitForSync(primary: primary.port, replicas: [replica.port])
        for index in 0..<100 { _ = try redisCLI(primary.port, ["-n", String(index % 2), "INCR", "after:\(index % 7)"]) }
        try waitForSync(primary: primary.port, replicas: [replica.port])
        try eventually("the replica's AOF rewrite after the sync finished") {
            let fields = try info(replica.port, "persistence")
            return fields["aof_rewrite_in_progress"] == "0" && fields["aof_last_bgrewrite_status"] == "ok"
                && (Int(fields["aof_rewrites"] ?? "0") ?? 0) >= 1
        }
        let digest = try redisCLI(primary.port, ["DEBUG", "DIGEST"])
        #expect(try redisCLI(replica.port, ["DEBUG", "DIGEST"]) == digest)
        replica.kill9()
        // Restarted on its own, it rebuilds exactly the primary's data from its AOF.
        let restarted = try CacheNodeProcess(arguments: flags)
        defer { restarted.stop() }
        #expect(try redisCLI(restarted.port, ["DEBUG", "DIGEST"]) == digest)
        #expect(try redisCLI(restarted.port, ["EXISTS", "only-on-the-replica"]) == "0")
    }
}
