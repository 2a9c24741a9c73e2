// cache-node's HyperLogLogs against Debian's redis-server, side by side: the same elements sent to both must build
// the same sketch byte for byte (sparse, through the promotion, dense), give the same estimates and merges, and a
// sketch copied from one server to the other (GET, then SET) must keep working there.
import Testing

@Suite(.serialized)
struct HyperLogLogAgainstRedisServerTests {
    /// A deterministic generator, so a mismatch can be replayed.
    private struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func sketchesEstimatesAndMergesMatchRedisServer() throws {
        let redis = try ServerProcess(executable: HiredisAgainstRedisServerTests.redisServerPath,
                                      extraArguments: HiredisAgainstRedisServerTests.redisArguments)
        defer { redis.stop() }
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let servers = [try redis.connect(), try HiredisClient(port: node.port)]
        var random = SplitMix(state: 2024)
        // Three sketches growing at different rates, with elements of every length (MurmurHash's tail handling).
        for round in 0..<60 {
            var commands: [[String]] = []
            for (key, size) in [("small", 3), ("medium", 40), ("large", 250)] {
                let elements = (0..<size).map { _ -> String in
                    let value = random.next()
                    return String(value, radix: 36) + String(repeating: "x", count: Int(value % 17))
                }
                commands.append(["PFADD", key] + elements)
            }
            commands += [["GET", "small"], ["GET", "medium"], ["GET", "large"], ["PFCOUNT", "small"], ["PFCOUNT", "large"],
                         ["PFCOUNT", "small", "medium", "large"]]
            let redisReplies = try servers[0].pipeline(commands)
            let nodeReplies = try servers[1].pipeline(commands)
            #expect(nodeReplies == redisReplies, "round \(round): \(zip(commands, zip(nodeReplies, redisReplies)).first { $1.0 != $1.1 }.map { "\($0.0[0]) \($0.0[1])" } ?? "")")
            if nodeReplies != redisReplies { break }
        }
        let encodings = try servers[1].pipeline([["PFDEBUG", "ENCODING", "small"], ["PFDEBUG", "ENCODING", "large"]])
        #expect(encodings == [.status("sparse"), .status("dense")])
        // Merges, into a fresh key and into an existing sparse one.
        for commands in [[["PFMERGE", "union", "small", "medium", "large"], ["GET", "union"], ["PFCOUNT", "union"]],
                         [["PFMERGE", "small", "medium"], ["GET", "small"], ["PFCOUNT", "small"]]] {
            #expect(try servers[1].pipeline(commands) == (try servers[0].pipeline(commands)))
        }
        // A sketch moved between the servers as a plain string keeps counting and growing the same way.
        for (source, target) in [(0, 1), (1, 0)] {
            guard case .bulk(let sketch) = try servers[source].command(["GET", "medium"]) else {
                Issue.record("GET medium")
                continue
            }
            #expect(try servers[target].command([Array("SET".utf8), Array("moved".utf8), sketch]) == .status("OK"))
            _ = try servers[source].command(["COPY", "medium", "moved", "REPLACE"])
            let more = [["PFADD", "moved", "one", "two", "three"], ["GET", "moved"], ["PFCOUNT", "moved"]]
            #expect(try servers[target].pipeline(more) == (try servers[source].pipeline(more)))
        }
    }
}
