// cache-node's HyperLogLogs and geo indexes against Debian's redis-server, side by side. HyperLogLog: the same
// elements sent to both must build the same sketch byte for byte (sparse, through the promotion, dense), give the
// same estimates and merges, and a sketch copied from one server to the other (GET, then SET) must keep working
// there. Geo: the same random points must get the same scores, and searches around random centres the same members,
// distances and hashes in the same order.
import CacheStore
import Foundation
import Testing

@Suite(.serialized)
struct DataTypesAgainstRedisServerTests {
    /// redis-server and cache-node, started side by side, with a client on each (redis-server's first).
    private struct ServerPair {
        let redis: ServerProcess
        let node: CacheNodeProcess
        let clients: [HiredisClient]

        init() throws {
            let redis = try ServerProcess(executable: HiredisAgainstRedisServerTests.redisServerPath,
                                          extraArguments: HiredisAgainstRedisServerTests.redisArguments)
            let node = try CacheNodeProcess()
            do {
                clients = [try redis.connect(), try HiredisClient(port: node.port)]
            } catch {
                node.stop()
                redis.stop()
                throw error
            }
            self.redis = redis
            self.node = node
        }

        func stop() {
            node.stop()
            redis.stop()
        }
    }

    @Test func sketchesEstimatesAndMergesMatchRedisServer() throws {
        let pair = try ServerPair()
        defer { pair.stop() }
        let servers = pair.clients
        var random = SplitMix64(seed: 2024)  // deterministic, so a mismatch can be replayed
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

    @Test func geoScoresAndSearchesMatchRedisServer() throws {
        let pair = try ServerPair()
        defer { pair.stop() }
        let servers = pair.clients
        var random = SplitMix64(seed: 77)
        func coordinate(_ range: ClosedRange<Double>) -> String {
            String(format: "%.6f", Double.random(in: range, using: &random))
        }
        // 2,000 points around one region (so searches find many) and some anywhere.
        var add = ["GEOADD", "points"]
        for index in 0..<2000 {
            let anywhere = index % 10 == 0
            add += [anywhere ? coordinate(-180...180) : coordinate(12...16), anywhere ? coordinate(-85...85) : coordinate(36...40), "p\(index)"]
        }
        let commands = [add, ["ZRANGE", "points", "0", "-1", "WITHSCORES"], ["GEOHASH", "points", "p0", "p1", "p10"],
                        ["GEOPOS", "points", "p0", "p5"], ["GEODIST", "points", "p0", "p1", "km"]]
        #expect(try servers[1].pipeline(commands) == (try servers[0].pipeline(commands)))
        for round in 0..<40 {
            let centre = [coordinate(12...16), coordinate(36...40)]
            let radius = String(Int.random(in: 1...300, using: &random))
            let searches: [[String]] = [
                ["GEORADIUS", "points"] + centre + [radius, "km", "WITHDIST", "WITHHASH", "ASC"],
                ["GEOSEARCH", "points", "FROMLONLAT"] + centre + ["BYBOX", radius, String(Int(radius)! / 2 + 1), "km", "DESC", "COUNT", "25", "WITHDIST"],
                ["GEOSEARCH", "points", "FROMMEMBER", "p\(round)", "BYRADIUS", radius, "mi", "ASC", "WITHCOORD"],
            ]
            let expected = try servers[0].pipeline(searches)
            let actual = try servers[1].pipeline(searches)
            #expect(actual == expected, "round \(round): \(searches[actual.indices.first { actual[$0] != expected[$0] } ?? 0])")
            if actual != expected { break }
        }
    }
}
