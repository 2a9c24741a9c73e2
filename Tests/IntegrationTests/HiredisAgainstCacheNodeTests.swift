// libhiredis (through the CHiredis module) against a real cache-node process: the C client the load generator and
// many language bindings are built on, with pipelining, binary data, every data type and error replies.
import Testing

@Suite(.serialized)
struct HiredisAgainstCacheNodeTests {
    @Test func hiredisDrivesEveryDataType() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let client = try HiredisClient(port: node.port)
        #expect(try client.command(["PING"]) == .status("PONG"))
        #expect(try client.command(["SET", "s", "v"]) == .status("OK"))
        #expect(try client.command(["GET", "s"]) == .string("v"))
        #expect(try client.command(["HSET", "h", "f1", "a", "f2", "b"]) == .integer(2))
        #expect(try client.command(["HGETALL", "h"]) == .array([.string("f1"), .string("a"), .string("f2"), .string("b")]))
        #expect(try client.command(["RPUSH", "l", "x", "y", "z"]) == .integer(3))
        #expect(try client.command(["LRANGE", "l", "0", "-1"]) == .array([.string("x"), .string("y"), .string("z")]))
        #expect(try client.command(["SADD", "set", "m"]) == .integer(1))
        #expect(try client.command(["SISMEMBER", "set", "m"]) == .integer(1))
        #expect(try client.command(["ZADD", "z", "1.5", "a", "2", "b"]) == .integer(2))
        #expect(try client.command(["ZRANGE", "z", "0", "-1", "WITHSCORES"]) ==
            .array([.string("a"), .string("1.5"), .string("b"), .string("2")]))
        #expect(try client.command(["BLPOP", "l", "0"]) == .array([.string("l"), .string("x")]))
        #expect(try client.command(["INCR", "s"]) == .error("ERR value is not an integer or out of range"))
        #expect(try client.command(["LPUSH", "s", "x"]) == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(try client.command(["GET", "missing"]) == .null)
    }

    @Test func hiredisPipelinesAndBinaryValues() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let client = try HiredisClient(port: node.port)
        let commands = (0..<1000).map { ["SET", "key:\($0)", "value-\($0)"] } + (0..<1000).map { ["GET", "key:\($0)"] }
        let replies = try client.pipeline(commands)
        #expect(replies.count == 2000)
        #expect(replies[..<1000].allSatisfy { $0 == .status("OK") })
        #expect(replies[1000...].enumerated().allSatisfy { $0.element == .string("value-\($0.offset)") })
        let binary: [UInt8] = Array(0...255) + [13, 10, 0]
        #expect(try client.command([Array("SET".utf8), [0, 1, 2], binary]) == .status("OK"))
        #expect(try client.command([Array("GET".utf8), [0, 1, 2]]) == .bulk(binary))
        #expect(try client.command(["MULTI"]) == .status("OK"))
        #expect(try client.command(["INCR", "counter"]) == .status("QUEUED"))
        #expect(try client.command(["EXEC"]) == .array([.integer(1)]))
    }
}
