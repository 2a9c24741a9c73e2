// Tests of the connection family's CLIENT KILL through the real decoder, dispatcher and reply writer (redis
// tests/unit/introspection.tcl), including a client that kills itself in the middle of a pipeline.
import CacheNode
import CacheNodeTestSupport
import Testing

struct ConnectionCommandsTests {
    /// The client's id as CLIENT ID reports it.
    private func id(of client: TestClient) throws -> Int {
        guard case .integer(let id) = try client.send("CLIENT", "ID") else { throw TestClientError.noReply(["CLIENT", "ID"]) }
        return id
    }

    @Test func killByIDClosesThatClientAndSkipsTheCallerUnlessAsked() throws {
        let node = TestNode()
        let killer = try node.connect()
        let victim = try node.connect()
        #expect(try killer.send("CLIENT", "KILL", "ID", String(try id(of: victim))) == .integer(1))
        #expect(victim.isClosed)
        #expect(!killer.isClosed)
        // SKIPME defaults to yes: a filter that matches only the caller kills nobody.
        #expect(try killer.send("CLIENT", "KILL", "ID", String(try id(of: killer))) == .integer(0))
        #expect(try killer.send("PING") == .simple("PONG"))
        #expect(try killer.send("CLIENT", "KILL", "ID", "0") == .error("ERR client-id should be greater than 0"))
        // Three arguments are the old form, CLIENT KILL addr:port, as in redis.
        #expect(try killer.send("CLIENT", "KILL", "ID") == .error("ERR No such client"))
        #expect(try killer.send("CLIENT", "KILL", "ID", "1", "SKIPME") == .error("ERR syntax error"))
        #expect(try killer.send("CLIENT", "KILL", "BOGUS", "1") == .error("ERR syntax error"))
        #expect(try killer.send("CLIENT", "KILL", "127.0.0.1:1") == .error("ERR No such client"))
    }

    @Test func aClientKillingItselfMidPipelineIsClosedAndRunsNothingAfter() throws {
        let node = TestNode()
        let client = try node.connect()
        let observer = try node.connect()
        let ownID = try id(of: client)
        // The kill closes the connection while its command runs; the commands behind it in the same read must not
        // run on the closed session.
        try client.writeRaw("CLIENT KILL ID \(ownID) SKIPME no\r\nSET after-kill 1\r\nPING\r\n")
        #expect(client.isClosed)
        #expect(try observer.send("EXISTS", "after-kill") == .integer(0))
        #expect(try observer.send("PING") == .simple("PONG"))
    }
}
