// Persistence against the real cache-node binary: every type with its TTL survives SAVE and a restart; kill -9
// in the middle of a BGSAVE of a large keyspace leaves a loadable snapshot (the previous or the new one, never a
// torn file); SHUTDOWN [SAVE|NOSAVE] [FORCE] and SIGTERM save as redis's do; a flipped byte makes start-up fail with a message naming the file; DUMP/RESTORE through redis-cli.
import Foundation
import Testing

@Suite(.serialized)
struct PersistenceTests {
    private func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "cache-node-persistence-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func infoField(_ port: Int, _ field: String) throws -> String? {
        let info = try redisCLI(port, ["INFO", "persistence"])
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1)).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// Fills the node with one key of every type (a few with TTLs) across two databases.
    private func populateEveryType(_ port: Int) throws {
        let commands = [
            ["SET", "string", "hello world"], ["SET", "counter", "-42"], ["SET", "big", String(repeating: "b", count: 4000)],
            ["SET", "session", "token", "EX", "3600"], ["RPUSH", "list", "a", "b", "c", "d"],
            ["HSET", "hash", "name", "cache", "kind", "node"], ["EXPIRE", "hash", "7200"],
            ["SADD", "set", "x", "y", "z"], ["ZADD", "zset", "1", "one", "2", "two", "3.5", "three"],
            ["PEXPIRE", "zset", "900000"], ["-n", "3", "SET", "other-db", "value"], ["-n", "3", "LPUSH", "other-list", "q"],
        ]
        for command in commands {
            let arguments = command.first == "-n" ? Array(command.dropFirst(2)) : command
            let extra = command.first == "-n" ? ["-n", command[1]] : []
            let reply = try redisCLI(port, arguments, extra: extra)
            #expect(!reply.contains("ERR"), "\(command): \(reply)")
        }
    }

    @Test func everyTypeWithTTLsSurvivesARestart() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try CacheNodeProcess(arguments: ["--dir", directory])
        try populateEveryType(first.port)
        let digest = try redisCLI(first.port, ["DEBUG", "DIGEST"])
        #expect(digest.count == 40 && digest != String(repeating: "0", count: 40))
        #expect(try redisCLI(first.port, ["SAVE"]) == "OK")
        let lastSave = Int(try redisCLI(first.port, ["LASTSAVE"])) ?? 0
        #expect(abs(lastSave - Int(Date().timeIntervalSince1970)) < 10)
        first.stop()
        #expect(FileManager.default.fileExists(atPath: directory + "/dump.cnsnap"))

        let second = try CacheNodeProcess(arguments: ["--dir", directory])
        defer { second.stop() }
        #expect(try redisCLI(second.port, ["DEBUG", "DIGEST"]) == digest)
        #expect(try redisCLI(second.port, ["LRANGE", "list", "0", "-1"]) == "a\nb\nc\nd")
        #expect(try redisCLI(second.port, ["ZSCORE", "zset", "three"]) == "3.5")
        #expect(try redisCLI(second.port, ["GET", "counter"]) == "-42")
        #expect(try redisCLI(second.port, ["GET", "other-db"], extra: ["-n", "3"]) == "value")
        let sessionTTL = Int(try redisCLI(second.port, ["TTL", "session"])) ?? -1
        #expect(sessionTTL > 3500 && sessionTTL <= 3600)
        let hashTTL = Int(try redisCLI(second.port, ["TTL", "hash"])) ?? -1
        #expect(hashTTL > 7100 && hashTTL <= 7200)
        #expect(try redisCLI(second.port, ["TTL", "string"]) == "-1")
        #expect(try redisCLI(second.port, ["DBSIZE"]) == "8")
        #expect(try infoField(second.port, "rdb_last_load_keys_loaded") == "10")
    }

    @Test func shutdownSavesAsItsModifiersAndTheSaveRulesSay() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/dump.cnsnap"
        // No save rules: plain SHUTDOWN does not save, SHUTDOWN SAVE does.
        let first = try CacheNodeProcess(arguments: ["--dir", directory])
        _ = try redisCLI(first.port, ["SET", "saved-by-shutdown-save", "1"])
        #expect(try redisCLI(first.port, ["SHUTDOWN", "NOSAVE", "SAVE"]).contains("syntax error"))
        _ = try redisCLI(first.port, ["SHUTDOWN", "SAVE"])
        first.process.waitUntilExit()
        #expect(FileManager.default.fileExists(atPath: file))

        // Save rules configured: SHUTDOWN NOSAVE skips the save, SIGTERM saves.
        let second = try CacheNodeProcess(arguments: ["--dir", directory, "--save", "3600 1"])
        #expect(try redisCLI(second.port, ["GET", "saved-by-shutdown-save"]) == "1")
        _ = try redisCLI(second.port, ["SET", "lost-by-nosave", "1"])
        _ = try redisCLI(second.port, ["SHUTDOWN", "NOSAVE"])
        second.process.waitUntilExit()
        let third = try CacheNodeProcess(arguments: ["--dir", directory, "--save", "3600 1"])
        #expect(try redisCLI(third.port, ["EXISTS", "lost-by-nosave"]) == "0")
        _ = try redisCLI(third.port, ["SET", "saved-by-sigterm", "1"])
        third.stop()
        #expect(third.log.contains("Saved"), "\(third.log.suffix(1000))")

        // A save that fails keeps the node up (SHUTDOWN) unless FORCE.
        let fourth = try CacheNodeProcess(arguments: ["--dir", directory])
        defer { fourth.stop() }
        #expect(try redisCLI(fourth.port, ["GET", "saved-by-sigterm"]) == "1")
        try FileManager.default.removeItem(atPath: directory)
        #expect(try redisCLI(fourth.port, ["SHUTDOWN", "SAVE"]).contains("Errors trying to SHUTDOWN"))
        #expect(try redisCLI(fourth.port, ["PING"]) == "PONG")
        #expect(try redisCLI(fourth.port, ["SHUTDOWN", "ABORT"]).contains("No shutdown in progress"))
        _ = try redisCLI(fourth.port, ["SHUTDOWN", "SAVE", "FORCE"])
        fourth.process.waitUntilExit()
        #expect(!fourth.process.isRunning)
    }

    @Test func killDuringBackgroundSaveLeavesALoadableSnapshot() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let node = try CacheNodeProcess(arguments: ["--dir", directory])
        try populateEveryType(node.port)
        #expect(try redisCLI(node.port, ["SAVE"]) == "OK")
        let smallDigest = try redisCLI(node.port, ["DEBUG", "DIGEST"])
        // A large keyspace: 400k keys with 100-byte values (~60 MB of snapshot).
        let fill = try runProgram(
            "/usr/bin/redis-benchmark",
            ["-h", "127.0.0.1", "-p", String(node.port), "-t", "set", "-n", "400000", "-r", "100000000", "-d", "100", "-P", "64", "-q"],
            timeout: 300)
        #expect(fill.status == 0)
        let keys = Int(try redisCLI(node.port, ["DBSIZE"])) ?? 0
        #expect(keys > 300_000)
        let largeDigest = try redisCLI(node.port, ["DEBUG", "DIGEST"])
        #expect(try redisCLI(node.port, ["BGSAVE"]) == "Background saving started")
        // Kill as soon as the save is visibly under way (or already done on a fast disk).
        let deadline = Date().addingTimeInterval(5)
        while try infoField(node.port, "rdb_bgsave_in_progress") != "1" && Date() < deadline {
            if try infoField(node.port, "rdb_saves") == "2" { break }
        }
        kill(node.process.processIdentifier, SIGKILL)
        node.process.waitUntilExit()

        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files.contains("dump.cnsnap"))
        #expect(files.allSatisfy { $0 == "dump.cnsnap" || ($0.hasPrefix("temp-") && $0.hasSuffix(".snap")) }, "\(files)")
        let restarted = try CacheNodeProcess(arguments: ["--dir", directory])
        defer { restarted.stop() }
        let digest = try redisCLI(restarted.port, ["DEBUG", "DIGEST"])
        #expect(digest == smallDigest || digest == largeDigest)
    }

    @Test func aFlippedByteStopsStartUpWithAClearMessage() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let node = try CacheNodeProcess(arguments: ["--dir", directory])
        try populateEveryType(node.port)
        #expect(try redisCLI(node.port, ["SAVE"]) == "OK")
        node.stop()
        let path = directory + "/dump.cnsnap"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0x04
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let result = try runProgram(
            PackagePaths.cacheNodeBinary, ["--bind", "127.0.0.1", "--port", "0", "--save", "", "--dir", directory], timeout: 30)
        #expect(result.status != 0)
        #expect(result.output.contains(path), "\(result.output)")
        #expect(result.output.contains("damaged"))
        #expect(!result.output.contains("Ready to accept connections"))
    }

    @Test func dumpAndRestoreThroughRedisCLI() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        try populateEveryType(node.port)
        for key in ["string", "counter", "list", "hash", "set", "zset"] {
            // redis-cli --raw prints the payload bytes and a newline; -x sends stdin as the last argument.
            let script = "redis-cli -p \(node.port) --raw DUMP \(key) | head -c -1 | redis-cli -p \(node.port) -x RESTORE copy-\(key) 0"
            let restored = try runProgram("/bin/sh", ["-c", script])
            #expect(restored.output.trimmingCharacters(in: .whitespacesAndNewlines) == "OK", "\(key): \(restored.output)")
            #expect(try redisCLI(node.port, ["DEBUG", "DIGEST-VALUE", "copy-\(key)"])
                    == redisCLI(node.port, ["DEBUG", "DIGEST-VALUE", key]) || key == "hash" || key == "zset")  // TTL marker
        }
        #expect(try redisCLI(node.port, ["LRANGE", "copy-list", "0", "-1"]) == "a\nb\nc\nd")
        #expect(try redisCLI(node.port, ["ZRANGE", "copy-zset", "0", "-1"]) == "one\ntwo\nthree")
        #expect(try redisCLI(node.port, ["RESTORE", "string", "0", "junk"]) == "BUSYKEY Target key name already exists.")
        #expect(try redisCLI(node.port, ["RESTORE", "fresh", "0", "junk"]) == "ERR DUMP payload version or checksum are wrong")
    }

    @Test func digestEqualsRedisServersForTheSameDataset() throws {
        let redis = try ServerProcess(
            executable: "/usr/bin/redis-server", extraArguments: ["--save", "", "--appendonly", "no", "--enable-debug-command", "yes"])
        defer { redis.stop() }
        let node = try CacheNodeProcess()
        defer { node.stop() }
        for port in [redis.port, node.port] { try populateEveryType(port) }
        let expected = try redisCLI(redis.port, ["DEBUG", "DIGEST"])
        #expect(expected.count == 40)
        #expect(try redisCLI(node.port, ["DEBUG", "DIGEST"]) == expected)
        for key in ["string", "counter", "list", "hash", "set", "zset", "missing"] {
            #expect(try redisCLI(node.port, ["DEBUG", "DIGEST-VALUE", key]) == redisCLI(redis.port, ["DEBUG", "DIGEST-VALUE", key]), "\(key)")
        }
    }
}
