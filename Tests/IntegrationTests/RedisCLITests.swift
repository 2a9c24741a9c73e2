// redis-cli (Debian redis-tools 7.0) against a real cache-node process: the commands people type, RESP3 mode,
// INFO and CONFIG fields that admin tools read, and errors.
import Foundation
import Testing

@Suite(.serialized)
struct RedisCLITests {
    @Test func everydayCommandsWork() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        #expect(try redisCLI(node.port, ["PING"]) == "PONG")
        #expect(try redisCLI(node.port, ["set", "greeting", "hello world"]) == "OK")
        #expect(try redisCLI(node.port, ["GET", "greeting"]) == "hello world")
        #expect(try redisCLI(node.port, ["incr", "counter"]) == "1")
        #expect(try redisCLI(node.port, ["EXPIRE", "greeting", "100"]) == "1")
        #expect(try redisCLI(node.port, ["ttl", "greeting"]) == "100")
        #expect(try redisCLI(node.port, ["DBSIZE"]) == "2")
        #expect(try redisCLI(node.port, ["FLUSHALL"]) == "OK")
        #expect(try redisCLI(node.port, ["DBSIZE"]) == "0")
        #expect(try redisCLI(node.port, ["nosuchcommand", "x"]).contains("unknown command 'nosuchcommand'"))
    }

    @Test func pipedCommandsAndRESP3() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let piped = try runProgram("/usr/bin/redis-cli", ["-p", String(node.port)], input: "SET a 1\nINCRBY a 41\nGET a\n")
        #expect(piped.output.split(separator: "\n") == ["OK", "42", "42"])
        let hello = try redisCLI(node.port, ["HELLO", "3"], extra: ["-3"])
        #expect(hello.contains("proto"))
        #expect(hello.contains("3"))
    }

    // redis 7.2.4's own redis.conf, as released, starts a node (it was a fatal "Bad directive" at `pidfile`): the pid
    // file is written and removed, the directives cache-node has no use for
    // (encoding thresholds, lazy freeing, RDB tuning...) are accepted, shown by CONFIG GET under their names and
    // aliases, and logged when set away from redis's default.
    @Test func redisSevenTwoShippedRedisConfStartsANode() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redisconf-\(UInt64.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pidFile = directory.appendingPathComponent("node.pid").path
        let node = try CacheNodeProcess(
            arguments: ["--pidfile", pidFile, "--dir", directory.path], leading: [PackagePaths.fixture("redis-7.2.conf")])
        #expect(try String(contentsOfFile: pidFile, encoding: .utf8) == "\(node.process.processIdentifier)\n")
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "hash-max-ziplist-entries"]) == "hash-max-ziplist-entries\n512")
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "lazyfree-lazy-eviction"]) == "lazyfree-lazy-eviction\nno")
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "list-max-listpack-size", "-3"]) == "OK")
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "list-max-listpack-size", "-6"]).contains("argument must be an integer"))
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "notify-keyspace-events"]) == "notify-keyspace-events")  // and an empty value
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "notify-keyspace-events", "KEA"]) == "OK")
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "notify-keyspace-events"]) == "notify-keyspace-events\nAKE")
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "notify-keyspace-events", "KEq"])
            .contains("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."))
        #expect(try redisCLI(node.port, ["SET", "k", "v"]) == "OK")
        #expect(node.log.contains("'hash-max-listpack-entries 512' is accepted for redis.conf compatibility: it sets only the encoding OBJECT ENCODING reports"))
        #expect(try redisCLI(node.port, ["HSET", "h", "f", "v"]) == "1")
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "hash-max-listpack-entries", "0"]) == "OK")
        #expect(try redisCLI(node.port, ["OBJECT", "ENCODING", "h"]) == "hashtable")
        node.stop()
        #expect(!FileManager.default.fileExists(atPath: pidFile))
    }

    @Test func infoAndConfigExposeWhatAdminToolsRead() throws {
        let node = try CacheNodeProcess(arguments: ["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"])
        defer { node.stop() }
        #expect(try redisCLI(node.port, ["SET", "k", "v"]) == "OK")
        let info = try redisCLI(node.port, ["INFO"])
        for field in ["redis_version:", "tcp_port:\(node.port)", "connected_clients:", "used_memory:", "maxmemory:104857600",
                      "maxmemory_policy:allkeys-lru", "total_commands_processed:", "keyspace_hits:", "role:master",
                      "db0:keys=1,expires=0"] {
            #expect(info.contains(field), "INFO lacks \(field)")
        }
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "databases"]) == "databases\n16")
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]) == "OK")
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "maxmemory-policy"]) == "maxmemory-policy\nvolatile-ttl")
        #expect(try redisCLI(node.port, ["CONFIG", "SET", "port", "1"]).contains("can't set immutable config"))
        #expect(try redisCLI(node.port, ["CLIENT", "SETNAME", "admin"], extra: []) == "OK")
        #expect(try redisCLI(node.port, ["COMMAND", "COUNT"]).isEmpty == false)
        #expect(try redisCLI(node.port, ["COMMAND", "INFO", "get"]).contains("readonly"))
        // INFO commandstats (redis_exporter's per-command metrics): calls, and time from the real clock. KEYS over
        // 5,000 keys takes well over a microsecond.
        #expect(try redisCLI(node.port, ["MSET"] + (0..<5000).flatMap { ["key\($0)", "v"] }) == "OK")
        _ = try redisCLI(node.port, ["KEYS", "*"])
        let commandstats = try redisCLI(node.port, ["INFO", "commandstats"])
        let keysLine = commandstats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_keys:") }
        let fields = Dictionary(uniqueKeysWithValues: (keysLine?.dropFirst("cmdstat_keys:".count).split(separator: ",") ?? [])
            .map { field in (String(field.prefix { $0 != "=" }), String(field.drop { $0 != "=" }.dropFirst())) })
        #expect(fields["calls"] == "1", "\(commandstats)")
        #expect((Int(fields["usec"] ?? "") ?? 0) > 0, "\(commandstats)")
        #expect(commandstats.contains("cmdstat_mset:calls=1,"))
    }

    /// One event loop per CPU the process may use: `taskset` narrows it, `--threads` sets it, INFO says which.
    @Test func eventLoopsFollowTheCPUsTheNodeMayUse() throws {
        func loops(_ node: CacheNodeProcess) throws -> Int? {
            let info = try redisCLI(node.port, ["INFO", "server"])
            let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("event_loop_threads:") }
            return line.flatMap { Int($0.dropFirst("event_loop_threads:".count)) }
        }
        let usable = Int(try runProgram("/usr/bin/nproc", []).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let unpinned = try CacheNodeProcess()
        defer { unpinned.stop() }
        let defaultLoops = try loops(unpinned)
        #expect(defaultLoops != nil && defaultLoops! >= 1 && defaultLoops! <= usable, "default \(String(describing: defaultLoops)), nproc \(usable)")
        #expect(try redisCLI(unpinned.port, ["PING"]) == "PONG")
        let pinned = try CacheNodeProcess(launcher: ["/usr/bin/taskset", "-c", "0"])
        defer { pinned.stop() }
        #expect(try loops(pinned) == 1)
        #expect(try redisCLI(pinned.port, ["SET", "k", "v"]) == "OK")
        let explicit = try CacheNodeProcess(arguments: ["--io-threads", "3"], launcher: ["/usr/bin/taskset", "-c", "0"])
        defer { explicit.stop() }
        #expect(try loops(explicit) == 3)
        #expect(try redisCLI(explicit.port, ["CONFIG", "GET", "io-threads"]) == "io-threads\n3")
    }

    @Test func requirePassGatesCommandsUntilAuth() throws {
        let node = try CacheNodeProcess(arguments: ["--requirepass", "s3cret"])
        defer { node.stop() }
        #expect(try redisCLI(node.port, ["GET", "k"]).contains("NOAUTH"))
        #expect(try redisCLI(node.port, ["GET", "k"], extra: ["-a", "wrong", "--no-auth-warning"]).contains("WRONGPASS"))
        #expect(try redisCLI(node.port, ["SET", "k", "v"], extra: ["-a", "s3cret", "--no-auth-warning"]) == "OK")
    }

    @Test func unknownStartupFlagsFailClearly() throws {
        let result = try runProgram(PackagePaths.cacheNodeBinary, ["--no-such-flag", "1"])
        #expect(result.status != 0)
        #expect(result.output.contains("no-such-flag"))
        let badMemory = try runProgram(PackagePaths.cacheNodeBinary, ["--maxmemory", "lots"])
        #expect(badMemory.status != 0)
        #expect(badMemory.output.contains("maxmemory"))
    }

    @Test func configFileFirstThenFlags() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cache-node-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("node.conf")
        try "# a redis-style config file\nmaxmemory 10mb\ndatabases 4\nrequirepass \"pass word\"\n".write(to: file, atomically: true, encoding: .utf8)
        // The config file path comes first, as with redis-server; flags after it override it.
        let node = try CacheNodeProcess(leading: [file.path])
        defer { node.stop() }
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "databases"], extra: ["-a", "pass word", "--no-auth-warning"]) == "databases\n4")
        #expect(try redisCLI(node.port, ["CONFIG", "GET", "maxmemory"], extra: ["-a", "pass word", "--no-auth-warning"]) == "maxmemory\n10485760")
    }

    @Test func shutdownCommandAndSIGTERMStopTheNodeGracefully() throws {
        let first = try CacheNodeProcess()
        _ = try? redisCLI(first.port, ["SHUTDOWN"])
        #expect(waitForExit(first.process, seconds: 10), "SHUTDOWN did not stop cache-node")
        let second = try CacheNodeProcess()
        #expect(try redisCLI(second.port, ["PING"]) == "PONG")
        second.process.terminate()
        #expect(waitForExit(second.process, seconds: 10), "SIGTERM did not stop cache-node")
        #expect(second.process.terminationReason == .exit)
    }
}

/// Polls until `process` exits or `seconds` pass.
private func waitForExit(_ process: Process, seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    return !process.isRunning
}
