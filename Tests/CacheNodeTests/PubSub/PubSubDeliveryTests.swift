// Pub/sub delivery on real event loops and loopback sockets: subscribers and publishers spread over two NIO event
// loops (so deliveries cross threads), many messages, mixed protocols, ordering and disconnects. The in-process
// EmbeddedChannel tests cover reply shapes; these check what only real threads can break.
import CacheNode
import CacheNodeTestSupport
import LoopbackTestSupport
import NIOCore
import NIOPosix
import RESPServer
import Synchronization
import Testing

/// A node served on 127.0.0.1 (free port) by a two-thread event loop group; connections alternate between loops.
private final class LiveNode {
    let state = NodeState(configuration: NodeConfiguration())
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let server: any Channel

    private final class IDs: Sendable {
        let next = Atomic<Int>(0)
    }

    init() throws {
        let dispatcher = NodeDispatcher(node: state)
        let ids = IDs()
        server = try ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = ids.next.add(1, ordering: .relaxed).newValue
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RESPConnectionHandler(dispatcher: dispatcher, connectionID: id))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
    }

    var port: Int { server.localAddress?.port ?? 0 }

    func connect() throws -> SocketClient { try SocketClient(port: port) }

    func shutdown() throws {
        try server.close().wait()
        try group.syncShutdownGracefully()
    }
}

/// Failures of the socket client.
private struct SocketClientError: Error, CustomStringConvertible {
    let description: String
}

/// A blocking loopback RESP client with a receive timeout, so a missing reply fails the test instead of hanging it.
private final class SocketClient {
    private let socket: LoopbackSocket
    private var pending = ByteBuffer()

    init(port: Int) throws {
        socket = try LoopbackSocket(port: port, receiveTimeout: .seconds(10))
    }

    /// Closes the socket now (the server sees the client go away).
    func disconnect() {
        socket.shutdown()
    }

    /// Writes raw bytes.
    func write(_ text: String) throws {
        try socket.send(text)
    }

    /// Sends one command (multibulk) and returns the first reply.
    @discardableResult
    func send(_ arguments: String...) throws -> RESPValue {
        var text = "*\(arguments.count)\r\n"
        for argument in arguments { text += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
        try write(text)
        return try read()
    }

    /// The next reply, waiting for it up to the receive timeout.
    func read() throws -> RESPValue {
        while true {
            if let value = RESPValue.parse(&pending) { return value }
            let chunk = try socket.receive(maxBytes: 64 * 1024)  // throws when no reply comes in time
            guard !chunk.isEmpty else { throw SocketClientError(description: "connection closed") }
            pending.writeBytes(chunk)
        }
    }

    /// `count` replies.
    func read(_ count: Int) throws -> [RESPValue] {
        try (0..<count).map { _ in try read() }
    }
}

@Suite(.serialized)
struct PubSubDeliveryTests {
    @Test func fanOutAcrossEventLoopsKeepsEachSubscribersOrder() throws {
        let node = try LiveNode()
        defer { try? node.shutdown() }
        // Eight subscribers over both loops: RESP2 and RESP3, channel and pattern subscriptions.
        var subscribers: [(client: SocketClient, resp3: Bool, pattern: Bool)] = []
        for index in 0..<8 {
            let client = try node.connect()
            let resp3 = index % 2 == 1
            let pattern = index % 4 >= 2
            if resp3 { _ = try client.send("HELLO", "3") }
            let confirmation = pattern ? try client.send("PSUBSCRIBE", "news.*") : try client.send("SUBSCRIBE", "news.tech")
            #expect(confirmation.elements?.last == .integer(1))
            subscribers.append((client, resp3, pattern))
        }
        // Two publishers, on different loops, take turns: causal order must hold at every subscriber.
        let publishers = [try node.connect(), try node.connect()]
        let messageCount = 200
        for index in 0..<messageCount {
            #expect(try publishers[index % 2].send("PUBLISH", "news.tech", "m\(index)") == .integer(8))
        }
        for (client, resp3, pattern) in subscribers {
            let received = try client.read(messageCount)
            for (index, reply) in received.enumerated() {
                let fields: [RESPValue] = pattern
                    ? [.string("pmessage"), .string("news.*"), .string("news.tech"), .string("m\(index)")]
                    : [.string("message"), .string("news.tech"), .string("m\(index)")]
                #expect(reply == (resp3 ? .push(fields) : .array(fields)))
            }
        }
        #expect(try publishers[0].send("PUBSUB", "NUMSUB", "news.tech") == .array([.string("news.tech"), .integer(4)]))
        #expect(try publishers[0].send("PUBSUB", "NUMPAT") == .integer(1))
    }

    @Test func publishingToItselfOnARealLoopRepliesFirst() throws {
        let node = try LiveNode()
        defer { try? node.shutdown() }
        let client = try node.connect()
        _ = try client.send("HELLO", "3")
        _ = try client.send("SUBSCRIBE", "self")
        // Pipelined: each PUBLISH reply precedes its own message, which precedes the next command's reply.
        try client.write("PUBLISH self a\r\nPUBLISH self b\r\nPING\r\n")
        #expect(try client.read(5) == [
            .integer(1), .push([.string("message"), .string("self"), .string("a")]),
            .integer(1), .push([.string("message"), .string("self"), .string("b")]),
            .simple("PONG"),
        ])
        // Inside MULTI the messages follow EXEC's reply.
        try client.write("MULTI\r\nPUBLISH self c\r\nEXEC\r\n")
        #expect(try client.read(4) == [
            .simple("OK"), .simple("QUEUED"), .array([.integer(1)]),
            .push([.string("message"), .string("self"), .string("c")]),
        ])
    }

    @Test func disconnectedSubscribersStopCounting() throws {
        let node = try LiveNode()
        defer { try? node.shutdown() }
        let leaving = try node.connect()
        let staying = try node.connect()
        let publisher = try node.connect()
        _ = try leaving.send("SUBSCRIBE", "c")
        _ = try leaving.send("PSUBSCRIBE", "c*")
        _ = try staying.send("SUBSCRIBE", "c")
        #expect(try publisher.send("PUBLISH", "c", "1") == .integer(3))
        leaving.disconnect()
        // The server learns of the close asynchronously: ask until it has (bounded by round trips, not time).
        var patterns = RESPValue.integer(1)
        for _ in 0..<10_000 where patterns != .integer(0) {
            patterns = try publisher.send("PUBSUB", "NUMPAT")
        }
        #expect(patterns == .integer(0))
        #expect(try publisher.send("PUBLISH", "c", "2") == .integer(1))
        #expect(try publisher.send("PUBSUB", "NUMSUB", "c") == .array([.string("c"), .integer(1)]))
        #expect(node.state.pubsub.channelCount == 1)
        #expect(node.state.pubsub.patternCount == 0)
        #expect(try staying.read(2) == [
            .array([.string("message"), .string("c"), .string("1")]), .array([.string("message"), .string("c"), .string("2")]),
        ])
    }
}
