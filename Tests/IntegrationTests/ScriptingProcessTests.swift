// Lua scripts against a real cache-node process with two event loops: a runaway script is stopped by SCRIPT KILL
// sent from a connection on the other loop, its client gets redis's error, and the node serves on.
import Foundation
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
