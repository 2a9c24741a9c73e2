// The peer link: the RESP reply parser on its own (partial input, every type, malformed input), and a PeerLink
// against a real in-process listener serving the node's dispatcher (also once the link is closed: the command fails).
import CacheNode
import Logging
import NIOCore
import NIOPosix
import RESPServer
import Testing

struct PeerLinkTests {
    @Test func parserWaitsForWholeRepliesAndDecodesEveryType() throws {
        let text = "+OK\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n_\r\n,1.5\r\n#t\r\n%1\r\n+k\r\n+v\r\n"
        var buffer = ByteBuffer(string: text)
        var replies: [PeerReply] = []
        while let reply = try PeerReplyParser.parse(&buffer) { replies.append(reply) }
        #expect(replies == [
            .simpleString("OK"), .error("ERR bad"), .integer(42), .bulk(Array("abc".utf8)), .null,
            .array([.bulk([97]), .integer(1)]), .null, .double(1.5), .boolean(true), .map([.simpleString("k"), .simpleString("v")]),
        ])
        // Byte by byte: nothing is consumed until a reply is complete.
        var partial = ByteBuffer()
        var parsed: [PeerReply] = []
        for byte in "*2\r\n$5\r\nhello\r\n:7\r\n".utf8 {
            partial.writeInteger(byte)
            if let reply = try PeerReplyParser.parse(&partial) { parsed.append(reply) }
        }
        #expect(parsed == [.array([.bulk(Array("hello".utf8)), .integer(7)])])
        var malformed = ByteBuffer(string: "?nope\r\n")
        #expect(throws: PeerProtocolError.self) { _ = try PeerReplyParser.parse(&malformed) }
        var badLength = ByteBuffer(string: "$-5\r\n")
        #expect(throws: PeerProtocolError.self) { _ = try PeerReplyParser.parse(&badLength) }
    }

    @Test func encoderWritesRESPArrays() {
        var buffer = ByteBuffer()
        RESPCommandEncoder.encode(["SET", "k", ""], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n")
    }

    @Test func linkSendsCommandsAndReadsRepliesInOrder() async throws {
        try await withLinkToANode { link in
            #expect(try await link.command(["PING"]) == .simpleString("PONG"))
            let replies = try await link.pipeline([[Array("SET".utf8), [1], [0, 255]], [Array("GET".utf8), [1]], [Array("NOPE".utf8)]])
            #expect(replies[0] == .simpleString("OK"))
            #expect(replies[1] == .bulk([0, 255]))
            #expect(replies[2].isError)
            await link.close()
        }
    }

    @Test func aCommandOnALinkClosedAlreadyFailsInsteadOfLeakingItsReply() async throws {
        try await withLinkToANode { link in
            try await link.channel.close()
            await #expect(throws: (any Error).self) { _ = try await link.command(["PING"]) }
        }
    }

    /// Runs `body` with a link to a node listening on a free loopback port, then stops the node.
    private func withLinkToANode(_ body: (PeerLink) async throws -> Void) async throws {
        let node = NodeState(configuration: NodeConfiguration())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let listener = RESPListener(
            configuration: .init(hosts: ["127.0.0.1"], port: 0), dispatcher: NodeDispatcher(node: node), group: group,
            logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await listener.run() }
            while listener.boundPorts.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
            let link = try await PeerLink.connect(to: PeerEndpoint(host: "127.0.0.1", port: listener.boundPorts[0]), group: group)
            try await body(link)
            tasks.cancelAll()
        }
        try await group.shutdownGracefully()
    }
}
