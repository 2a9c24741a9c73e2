// Proves the integration-test support (HiredisClient, ServerProcess) against Debian's real
// redis-server, so the same helpers can be trusted when they are pointed at cache-node.
import Foundation
import Testing

struct HiredisAgainstRedisServerTests {
    static let redisServerPath = "/usr/bin/redis-server"
    static let redisArguments = ["--save", "", "--appendonly", "no"]

    private func startRedis() throws -> ServerProcess {
        try ServerProcess(executable: Self.redisServerPath, extraArguments: Self.redisArguments)
    }

    @Test func setThenGetReturnsTheStoredValue() throws {
        let server = try startRedis()
        let client = try server.connect()
        #expect(try client.command(["SET", "greeting", "hello"]) == .status("OK"))
        #expect(try client.command(["GET", "greeting"]) == .string("hello"))
        #expect(try client.command(["GET", "missing"]) == .null)
        #expect(try client.command(["DEL", "greeting", "missing"]) == .integer(1))
    }

    @Test func incrCountsAndRejectsNonIntegers() throws {
        let server = try startRedis()
        let client = try server.connect()
        #expect(try client.command(["INCR", "counter"]) == .integer(1))
        #expect(try client.command(["INCRBY", "counter", "41"]) == .integer(42))
        #expect(try client.command(["SET", "word", "abc"]) == .status("OK"))
        let reply = try client.command(["INCR", "word"])
        guard case .error(let message) = reply else {
            Issue.record("expected an error reply, got \(reply)")
            return
        }
        #expect(message.hasPrefix("ERR value is not an integer"))
    }

    @Test func errorRepliesAreReturnedNotThrown() throws {
        let server = try startRedis()
        let client = try server.connect()
        let unknown = try client.command(["NOSUCHCOMMAND", "x"])
        guard case .error(let unknownMessage) = unknown else {
            Issue.record("expected an error reply, got \(unknown)")
            return
        }
        #expect(unknownMessage.hasPrefix("ERR unknown command"))
        let arity = try client.command(["GET"])
        guard case .error(let arityMessage) = arity else {
            Issue.record("expected an error reply, got \(arity)")
            return
        }
        #expect(arityMessage.contains("wrong number of arguments"))
        #expect(try client.command(["LPUSH", "list", "a"]) == .integer(1))
        let wrongType = try client.command(["GET", "list"])
        guard case .error(let wrongTypeMessage) = wrongType else {
            Issue.record("expected an error reply, got \(wrongType)")
            return
        }
        #expect(wrongTypeMessage.hasPrefix("WRONGTYPE"))
        // The connection is still usable after error replies.
        #expect(try client.command(["PING"]) == .status("PONG"))
    }

    @Test func pipelinedRepliesComeBackInOrder() throws {
        let server = try startRedis()
        let client = try server.connect()
        let count = 100
        var commands: [[String]] = []
        for index in 0..<count { commands.append(["SET", "key:\(index)", "value-\(index)"]) }
        for index in 0..<count { commands.append(["GET", "key:\(index)"]) }
        commands.append(["INCR", "key:0"])
        let replies = try client.pipeline(commands)
        #expect(replies.count == 2 * count + 1)
        #expect(replies.prefix(count).allSatisfy { $0 == .status("OK") })
        for index in 0..<count {
            #expect(replies[count + index] == .string("value-\(index)"))
        }
        #expect(replies.last.map { if case .error = $0 { true } else { false } } == true)
    }

    @Test func binaryValuesRoundTripExactly() throws {
        let server = try startRedis()
        let client = try server.connect()
        let key: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF, 0x6B]
        let value: [UInt8] = (0...255).map { UInt8($0) } + [0x0D, 0x0A, 0x00]
        #expect(try client.command([Array("SET".utf8), key, value]) == .status("OK"))
        #expect(try client.command([Array("GET".utf8), key]) == .bulk(value))
        #expect(try client.command([Array("STRLEN".utf8), key]) == .integer(Int64(value.count)))
        #expect(try client.command([Array("SET".utf8), Array("empty".utf8), []]) == .status("OK"))
        #expect(try client.command(["GET", "empty"]) == .bulk([]))
    }

    @Test func arrayRepliesAreDecodedRecursively() throws {
        let server = try startRedis()
        let client = try server.connect()
        #expect(try client.command(["RPUSH", "list", "a", "b", "c"]) == .integer(3))
        #expect(try client.command(["LRANGE", "list", "0", "-1"]) == .array([.string("a"), .string("b"), .string("c")]))
        #expect(try client.command(["MGET", "list-missing", "nothing"]) == .array([.null, .null]))
    }

    @Test func stoppedServerRefusesNewConnections() throws {
        let server = try startRedis()
        let port = server.port
        #expect(try server.connect().command(["PING"]) == .status("PONG"))
        server.stop()
        #expect(throws: HiredisClientError.self) { try HiredisClient(port: port, timeoutMilliseconds: 200) }
    }

    @Test func missingExecutableIsReportedClearly() {
        #expect(throws: ServerProcessError.self) {
            try ServerProcess(executable: "/nonexistent/cache-node")
        }
    }
}
