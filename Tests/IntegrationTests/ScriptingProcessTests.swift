// Lua scripts against a real cache-node process with two event loops: a runaway script is stopped by SCRIPT KILL
// sent from a connection on the other loop, its client gets redis's error, and the node serves on.
import Foundation
import LoopbackTestSupport
import Testing

/// Sends `arguments` with redis-cli on a new connection each time until `accepts` its answer (at most 30 tries, 3 s
/// each) and returns the answers, trimmed. Connections are spread over the event loops in turn: one on the loop a
/// script keeps busy waits and is given up, the next reaches the free loop.
private func askFromAnotherLoop(_ port: Int, _ arguments: [String], until accepts: (String) -> Bool) -> [String] {
    var answers: [String] = []
    for _ in 0..<30 {
        if let result = try? runProgram("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port)] + arguments, timeout: 3) {
            answers.append(result.output.trimmingCharacters(in: .whitespacesAndNewlines))
            if accepts(answers.last!) { break }
        }
        usleep(100_000)
    }
    return answers
}

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

        // NOTBUSY means the script had not started yet.
        let answers = askFromAnotherLoop(node.port, ["SCRIPT", "KILL"]) { $0 == "OK" }
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
        let stats = askFromAnotherLoop(node.port, ["FUNCTION", "STATS"]) { $0.contains("spin") }.last ?? ""
        #expect(stats.contains("running_script") && stats.contains("spin") && stats.contains("FCALL") && stats.contains("duration_ms"),
                "FUNCTION STATS answered \(stats)")
        let answers = askFromAnotherLoop(node.port, ["FUNCTION", "KILL"]) { $0 == "OK" }
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

/// A script past busy-reply-threshold (redis's busy script), against a real node with two event loops: clients on the
/// other loop are answered -BUSY, including a command that was already waiting for the keys the script holds, until
/// SCRIPT KILL stops it; one that wrote cannot be killed, and SHUTDOWN NOSAVE stops the node without its writes.
@Suite(.serialized)
struct BusyScriptProcessTests {
    /// A connection with a line reader: single-line replies, and bulk strings read whole.
    final class Connection {
        let socket: LoopbackSocket
        private var buffered: [UInt8] = []

        init(port: Int) throws {
            socket = try LoopbackSocket(port: port, receiveTimeout: .seconds(2))
        }

        func send(_ words: String...) throws { try send(words) }

        /// Sends one command as a RESP array of bulk strings.
        func send(_ words: [String]) throws {
            try socket.send(words.reduce("*\(words.count)\r\n") { $0 + "$\($1.utf8.count)\r\n\($1)\r\n" })
        }

        /// The next reply as text (`+OK`, `-ERR …`, `:1`, a bulk string's contents, `$-1`), or `nil` if none came
        /// within the receive timeout.
        func reply() -> String? {
            guard let line = line() else { return nil }
            guard line.hasPrefix("$"), let length = Int(line.dropFirst()), length >= 0 else { return line }
            return self.line()
        }

        private func line() -> String? {
            while true {
                if let end = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffered[..<end], as: UTF8.self).trimmingCharacters(in: .newlines)
                    buffered.removeSubrange(...end)
                    return line
                }
                guard let chunk = try? socket.receive(), !chunk.isEmpty else { return nil }
                buffered += chunk
            }
        }

        func ask(_ words: String...) throws -> String? {
            try send(words)
            return reply()
        }
    }

    static let evalRefusal = "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."

    /// Connects a client for the script and two others; starts `script` on the first and returns the clients, the other
    /// two as (on the other loop, on the script's loop), found by which one answers `probe` while the script runs.
    private func startBusyScript(
        _ node: CacheNodeProcess, script: String? = nil, command: [String]? = nil, probe: [String]
    ) throws -> (scripted: Connection, other: Connection, sameLoop: Connection, probeReply: String) {
        let scripted = try Connection(port: node.port)
        let candidates = [try Connection(port: node.port), try Connection(port: node.port)]
        for connection in [scripted] + candidates { #expect(try connection.ask("PING") == "+PONG") }
        try scripted.send(command ?? ["EVAL", script ?? "", "0"])
        usleep(50_000)
        for candidate in candidates { try candidate.send(probe) }
        // Two loops take connections in turn: one of the two shares the script's loop and cannot answer.
        for (index, candidate) in candidates.enumerated() {
            if let reply = candidate.reply() { return (scripted, candidate, candidates[1 - index], reply) }
        }
        throw HarnessError(description: "neither client answered while the script ran; log:\n\(node.log.suffix(2_000))")
    }

    @Test func otherClientsAreRefusedBusyUntilScriptKill() throws {
        let node = try CacheNodeProcess(arguments: ["--threads", "2", "--busy-reply-threshold", "300"])
        defer { node.stop() }
        let setUp = try Connection(port: node.port)
        #expect(try setUp.ask("SET", "k", "v") == "+OK")
        // The GET sent while the script runs waits for the key's lock, then gives up once the script turns busy.
        let (scripted, other, sameLoop, firstReply) = try startBusyScript(
            node, script: "local n = 0 while true do n = n + 1 end", probe: ["GET", "k"])
        #expect(firstReply == Self.evalRefusal)
        #expect(try other.ask("PING") == Self.evalRefusal)
        #expect(try other.ask("SCRIPT", "LOAD", "return 1") == Self.evalRefusal)
        #expect(try other.ask("CONFIG", "GET", "maxmemory") == Self.evalRefusal)
        #expect(try other.ask("FUNCTION", "KILL") == Self.evalRefusal)
        #expect(try other.ask("SHUTDOWN") == Self.evalRefusal)
        // A transaction: MULTI and DISCARD are served, what it would queue is refused.
        #expect(try other.ask("MULTI") == "+OK")
        #expect(try other.ask("SET", "a", "b") == Self.evalRefusal)
        #expect(try other.ask("DISCARD") == "+OK")
        #expect(try other.ask("SCRIPT", "KILL") == "+OK")
        #expect(scripted.reply()?.hasPrefix("-ERR Script killed by user with SCRIPT KILL...") == true)
        // The client on the script's loop had its GET waiting: it runs now.
        #expect(sameLoop.reply() == "v")
        #expect(try other.ask("PING") == "+PONG")
        #expect(try other.ask("SET", "a", "b") == "+OK")
        #expect(try scripted.ask("GET", "a") == "b")
    }

    @Test func aBusyFunctionNamesFunctionKillAndFunctionStatsShowsIt() throws {
        let node = try CacheNodeProcess(arguments: ["--threads", "2", "--busy-reply-threshold", "200"])
        defer { node.stop() }
        let setUp = try Connection(port: node.port)
        #expect(try setUp.ask("FUNCTION", "LOAD", "#!lua name=spin\nredis.register_function('spin', function() local n = 0 while true do n = n + 1 end end)") == "spin")
        let functionRefusal = "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
        let (scripted, other, _, firstReply) = try startBusyScript(node, command: ["FCALL", "spin", "0"], probe: ["SET", "k", "v"])
        #expect(firstReply == functionRefusal)
        #expect(try other.ask("SCRIPT", "KILL") == functionRefusal)
        #expect(try other.ask("FUNCTION", "LIST") == functionRefusal)
        try other.send("FUNCTION", "STATS")
        var stats: [String] = []
        while let line = other.reply(), line != "engines" { stats.append(line) }
        #expect(stats.contains("running_script") && stats.contains("spin"), "FUNCTION STATS answered \(stats)")
        while other.reply() != nil {}
        #expect(try other.ask("FUNCTION", "KILL") == "+OK")
        #expect(scripted.reply()?.hasPrefix("-ERR Script killed by user with SCRIPT KILL...") == true)
        #expect(try other.ask("SET", "k", "v") == "+OK")
    }

    @Test func aScriptThatWroteIsUnkillableAndShutdownNosaveStopsTheNodeWithoutItsWrites() throws {
        let directory = NSTemporaryDirectory() + "cache-node-busy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = ["--threads", "2", "--busy-reply-threshold", "200", "--appendonly", "yes", "--dir", directory]
        let node = try CacheNodeProcess(arguments: arguments)
        // A node that did not stop still runs the script: SIGTERM would wait for it, as redis's does.
        defer { node.kill9() }
        let setUp = try Connection(port: node.port)
        #expect(try setUp.ask("SET", "before", "1") == "+OK")
        let (_, other, _, firstReply) = try startBusyScript(
            node, script: "redis.call('set', 'partial', 'x') local n = 0 while true do n = n + 1 end", probe: ["GET", "before"])
        #expect(firstReply == Self.evalRefusal)
        #expect(try other.ask("SCRIPT", "KILL")?.hasPrefix("-UNKILLABLE Sorry the script already executed write commands") == true)
        #expect(try other.ask("SHUTDOWN", "SAVE") == Self.evalRefusal)
        try other.send("SHUTDOWN", "NOSAVE")
        let deadline = Date().addingTimeInterval(15)
        while node.process.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!node.process.isRunning, "the node did not stop; log:\n\(node.log.suffix(2_000))")
        // The append-only file has what was written before the script, not the script's own write.
        let restarted = try CacheNodeProcess(arguments: arguments)
        defer { restarted.stop() }
        let client = try Connection(port: restarted.port)
        #expect(try client.ask("GET", "before") == "1")
        #expect(try client.ask("GET", "partial") == "$-1")
    }
}
