// Lua scripts against a real cache-node process with two event loops: a runaway script is stopped by SCRIPT KILL
// sent from a connection on the other loop, its client gets redis's error, and the node serves on.
import Foundation
import LoopbackTestSupport
import Testing

@Suite(.serialized)
struct ScriptingProcessTests {
    @Test func scriptKillFromTheOtherEventLoopStopsARunawayScript() throws {
        let node = try CacheNodeProcess(arguments: ["--threads", "2"])
        defer { node.stop() }
        #expect(try redisCLI(node.port, ["SCRIPT", "KILL"]) == "NOTBUSY No scripts in execution right now.")

        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("runaway-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let runaway = Process()
        runaway.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        runaway.arguments = ["-h", "127.0.0.1", "-p", String(node.port), "EVAL", "local n = 0 while true do n = n + 1 end", "0"]
        runaway.standardOutput = output
        runaway.standardError = output
        try runaway.run()
        defer { if runaway.isRunning { runaway.terminate() } }

        // Connections are spread over the loops in turn: one on the busy loop waits (and is given up after a few
        // seconds), the next reaches the free one. NOTBUSY means the script had not started yet.
        var answers: [String] = []
        for _ in 0..<30 where answers.last != "OK" {
            if let result = try? runProgram(
                "/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(node.port), "SCRIPT", "KILL"], timeout: 3) {
                answers.append(result.output.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            if answers.last != "OK" { usleep(100_000) }
        }
        #expect(answers.last == "OK", "SCRIPT KILL answered \(answers)")
        let deadline = Date().addingTimeInterval(10)
        while runaway.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!runaway.isRunning)
        try output.close()
        let reply = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        #expect(reply.hasPrefix("ERR Script killed by user with SCRIPT KILL... script: "), "the script's client got: \(reply)")
        // Both loops serve again, and the cache still runs scripts.
        for _ in 0..<2 {
            #expect(try redisCLI(node.port, ["EVAL", "return redis.call('incr', KEYS[1])", "1", "after"]).isEmpty == false)
        }
        #expect(try redisCLI(node.port, ["GET", "after"]) == "2")
    }
}

/// FUNCTION libraries against real processes: they survive a restart from the snapshot file and from the
/// append-only file, reach a replica in its full sync and then through the replication stream, and a read-only
/// replica refuses to change them.
@Suite(.serialized)
struct FunctionProcessTests {
    private static let library = "#!lua name=counters\nredis.register_function('bump', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)\nredis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}"

    private func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "cache-node-functions-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func librariesSurviveRestartsFromTheSnapshotAndTheAppendOnlyFile() throws {
        for appendOnly in [false, true] {
            let directory = try scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let arguments = ["--dir", directory] + (appendOnly ? ["--appendonly", "yes"] : [])
            let first = try CacheNodeProcess(arguments: arguments)
            #expect(try redisCLI(first.port, ["FUNCTION", "LOAD", Self.library]) == "counters")
            #expect(try redisCLI(first.port, ["FCALL", "bump", "1", "c", "5"]) == "5")
            if appendOnly {
                // One library in the AOF's base (a rewrite), one only in its incremental log.
                #expect(try redisCLI(first.port, ["BGREWRITEAOF"]).contains("rewriting"))
                for _ in 0..<100 where try redisCLI(first.port, ["INFO", "persistence"]).contains("aof_rewrite_in_progress:1") { usleep(50_000) }
                usleep(200_000)
            }
            #expect(try redisCLI(first.port, ["FUNCTION", "LOAD", "#!lua name=later\nredis.register_function('later', function() return 'l' end)"]) == "later")
            if !appendOnly { #expect(try redisCLI(first.port, ["SAVE"]) == "OK") }
            first.stop()

            let second = try CacheNodeProcess(arguments: arguments)
            defer { second.stop() }
            let listed = try redisCLI(second.port, ["FUNCTION", "LIST"])
            #expect(listed.contains("counters") && listed.contains("later"), "appendonly \(appendOnly): \(listed)")
            #expect(try redisCLI(second.port, ["FCALL_RO", "peek", "1", "c"]) == "5")
            #expect(try redisCLI(second.port, ["FCALL", "later", "0"]) == "l")
        }
    }

    @Test func functionStatsAndKillFromTheOtherEventLoopStopARunawayFunction() throws {
        let node = try CacheNodeProcess(arguments: ["--threads", "2"])
        defer { node.stop() }
        #expect(try redisCLI(node.port, ["FUNCTION", "LOAD", "#!lua name=spin\nredis.register_function{function_name='spin', callback=function() local n = 0 while true do n = n + 1 end end, flags={'no-writes'}}"]) == "spin")
        #expect(try redisCLI(node.port, ["FUNCTION", "KILL"]) == "NOTBUSY No scripts in execution right now.")
        let runaway = Process()
        runaway.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        runaway.arguments = ["-h", "127.0.0.1", "-p", String(node.port), "FCALL", "spin", "0"]
        runaway.standardOutput = FileHandle.nullDevice
        runaway.standardError = FileHandle.nullDevice
        try runaway.run()
        defer { if runaway.isRunning { runaway.terminate() } }
        // A connection on the busy loop waits (and is given up after a few seconds); one on the free loop answers.
        var stats = ""
        for _ in 0..<30 where !stats.contains("spin") {
            if let result = try? runProgram("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(node.port), "FUNCTION", "STATS"], timeout: 3) {
                stats = result.output
            }
            if !stats.contains("spin") { usleep(100_000) }
        }
        #expect(stats.contains("running_script") && stats.contains("spin") && stats.contains("FCALL") && stats.contains("duration_ms"),
                "FUNCTION STATS answered \(stats)")
        var answers: [String] = []
        for _ in 0..<30 where answers.last != "OK" {
            if let result = try? runProgram("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(node.port), "FUNCTION", "KILL"], timeout: 3) {
                answers.append(result.output.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            if answers.last != "OK" { usleep(100_000) }
        }
        #expect(answers.last == "OK", "FUNCTION KILL answered \(answers)")
        let deadline = Date().addingTimeInterval(10)
        while runaway.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!runaway.isRunning)
        // Both loops serve again (connections alternate between them), and nothing runs any more.
        for _ in 0..<2 {
            let after = try redisCLI(node.port, ["FUNCTION", "STATS"])
            #expect(after.contains("running_script") && !after.contains("spin"), "\(after)")
        }
    }

    @Test func aReplicaGetsTheLibrariesInItsFullSyncAndThenFromTheStream() throws {
        let ids = try TestIdentities(nodes: ["p", "r"])
        defer { ids.remove() }
        let replicationPort = try LoopbackSocket.freeLoopbackPort()
        let primary = try CacheNodeProcess(arguments: ids.flags("p", replicationPort: replicationPort))
        defer { primary.stop() }
        #expect(try redisCLI(primary.port, ["FUNCTION", "LOAD", Self.library]) == "counters")
        #expect(try redisCLI(primary.port, ["FCALL", "bump", "1", "c", "7"]) == "7")
        let replica = try CacheNodeProcess(
            arguments: ids.flags("r", replicationPort: try LoopbackSocket.freeLoopbackPort()) + ["--replicaof", "127.0.0.1", String(replicationPort)])
        defer { replica.stop() }
        try waitForSync(primary: primary.port, replicas: [replica.port])
        #expect(try redisCLI(replica.port, ["FCALL_RO", "peek", "1", "c"]) == "7")
        #expect(try redisCLI(replica.port, ["FUNCTION", "LOAD", "#!lua name=mine\nredis.register_function('mine', function() return 1 end)"])
                == "READONLY You can't write against a read only replica.")
        #expect(try redisCLI(replica.port, ["FUNCTION", "LIST"]).contains("counters"))
        // Changes after the sync arrive as the commands themselves.
        #expect(try redisCLI(primary.port, ["FUNCTION", "LOAD", "#!lua name=later\nredis.register_function('later', function() return 'l' end)"]) == "later")
        #expect(try redisCLI(primary.port, ["FUNCTION", "DELETE", "counters"]) == "OK")
        try waitForSync(primary: primary.port, replicas: [replica.port])
        #expect(try redisCLI(replica.port, ["FCALL", "later", "0"]) == "l")
        #expect(try redisCLI(replica.port, ["FCALL_RO", "peek", "1", "c"]) == "ERR Function not found")
    }
}
