// Tests of the end-of-tick reply flush: ReplyFlushQueue on a real event loop, and RESPListener's connections (which
// use it) answering pipelined commands from many clients over real sockets.
import Dispatch
import Logging
import LoopbackTestSupport
import NIOCore
import NIOPosix
import RESPServer
import ServiceLifecycle
import Synchronization
import Testing

/// Counts its flushes; re-enqueues itself from inside a flush while `requeues` > 0.
private final class RecordingConnection: DeferredReplyFlushing {
    let queue: ReplyFlushQueue
    var flushes = 0
    var requeues = 0

    init(queue: ReplyFlushQueue) { self.queue = queue }

    func flushDeferredReplies() {
        flushes += 1
        if requeues > 0 {
            requeues -= 1
            queue.enqueue(self)
        }
    }
}

struct ReplyFlushQueueTests {
    @Test func connectionsAreFlushedOnceAfterTheTickThatQueuedThem() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // One task stands for one tick's I/O: nothing is flushed while it runs.
        let (duringTick, connections) = try await loop.submit { () -> ([Int], NIOLoopBound<[RecordingConnection]>) in
            let queue = ReplyFlushQueue(eventLoop: loop)
            let first = RecordingConnection(queue: queue)
            let second = RecordingConnection(queue: queue)
            queue.enqueue(first)
            queue.enqueue(second)
            return ([first.flushes, second.flushes], NIOLoopBound([first, second], eventLoop: loop))
        }.get()
        #expect(duringTick == [0, 0])
        // The queue's task was scheduled during the first task, so it ran before this one.
        let afterTick = try await loop.submit { connections.value.map(\.flushes) }.get()
        #expect(afterTick == [1, 1])
        try await group.shutdownGracefully()
    }

    @Test func aConnectionQueuedDuringItsFlushIsFlushedAgain() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let (flushedInFirstTick, box) = try await loop.submit { () -> (Int, NIOLoopBound<RecordingConnection>) in
            let connection = RecordingConnection(queue: ReplyFlushQueue(eventLoop: loop))
            connection.requeues = 2
            connection.queue.enqueue(connection)
            return (connection.flushes, NIOLoopBound(connection, eventLoop: loop))
        }.get()
        #expect(flushedInFirstTick == 0)
        // Each flush queued the connection again; every queued flush runs, in later ticks.
        var flushes = 0
        for _ in 0..<100 where flushes < 3 {
            flushes = try await loop.submit { box.value.flushes }.get()
        }
        #expect(flushes == 3)
        #expect(try await loop.submit { box.value.requeues }.get() == 0)
        try await group.shutdownGracefully()
    }
}

/// Answers PING with +PONG and ECHO x with x; QUIT closes after the reply. ANNOUNCE x replies +ANNOUNCED and, from
/// another thread before the command returns, sends +LATER x through the connection (as a snapshot or a pub/sub
/// message is sent to a client from elsewhere).
private struct EchoDispatcher: CommandDispatcher {
    final class Session {
        let connection: ClientConnection
        init(connection: ClientConnection) { self.connection = connection }
    }

    func openSession(for connection: ClientConnection) -> Session { Session(connection: connection) }
    func isAuthenticated(_ session: Session) -> Bool { true }
    func closeSession(_ session: inout Session) {}

    func dispatch(_ arguments: inout CommandArguments, session: Session, reply: inout ReplyWriter) -> DispatchOutcome {
        switch arguments.string(0).lowercased() {
        case "ping": reply.buffer.writeStaticString("+PONG\r\n")
        case "echo": reply.bulk(arguments.string(1))
        case "announce":
            reply.buffer.writeStaticString("+ANNOUNCED\r\n")
            let connection = session.connection
            let text = arguments.string(1)
            let sent = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                var buffer = connection.allocator.buffer(capacity: 32)
                buffer.writeString("+LATER \(text)\r\n")
                connection.send(buffer)
                sent.signal()
            }
            sent.wait()
        case "quit":
            reply.buffer.writeStaticString("+OK\r\n")
            return .closeAfterReply
        default: reply.error(code: "ERR", message: "unknown command")
        }
        return .proceed
    }
}

struct RESPListenerFlushTests {
    /// The first port the listener reported through its `onBound` (waits up to 5 s for it to bind).
    private static func firstBoundPort(_ ports: borrowing Mutex<[Int]>) async throws -> Int {
        var port = 0
        for _ in 0..<500 where port == 0 {
            port = ports.withLock { $0.first ?? 0 }
            if port == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        try #require(port != 0)
        return port
    }

    @Test func pipelinedRepliesFromManyConnectionsArriveWholeAndInOrder() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ports = Mutex<[Int]>([])
        let listener = RESPListener(
            configuration: .init(hosts: ["127.0.0.1"], port: 0), dispatcher: EchoDispatcher(), group: group,
            logger: Logger(label: "test"), onBound: { bound in ports.withLock { $0 = bound } })
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await listener.run() }
            let port = try await Self.firstBoundPort(ports)
            // 20 connections open at once on two event loops, each pipelining 200 commands in one write; the
            // replies are read only after every client has sent (blocking sockets with a 10 s receive timeout).
            var clients: [(socket: LoopbackSocket, expected: String)] = []
            for client in 0..<20 {
                var request = ""
                var expected = ""
                for index in 0..<200 {
                    let value = "c\(client)-\(index)"
                    request += String(buffer: RESPDecoderInvariants.encodeMultibulk([Array("ECHO".utf8), Array(value.utf8)]))
                    expected += "$\(value.utf8.count)\r\n\(value)\r\n"
                }
                request += "PING\r\n"
                expected += "+PONG\r\n"
                let socket = try LoopbackSocket(port: port, receiveTimeout: .seconds(10))
                try socket.send(request)
                clients.append((socket, expected))
            }
            for (index, client) in clients.enumerated() {
                let received = String(decoding: client.socket.receive(atLeast: client.expected.utf8.count), as: UTF8.self)
                client.socket.close()
                #expect(received == client.expected, "client \(index)")
            }
            // Bytes sent to a client from elsewhere follow the replies it was already given, even those still
            // waiting for the end of the tick (the send is queued on the loop before this read's flush is).
            let announcing = try LoopbackSocket(port: port, receiveTimeout: .seconds(10))
            try announcing.send("PING\r\nANNOUNCE a\r\n")
            let expectedAnnouncement = "+PONG\r\n+ANNOUNCED\r\n+LATER a\r\n"
            let announced = String(decoding: announcing.receive(atLeast: expectedAnnouncement.utf8.count), as: UTF8.self)
            announcing.close()
            #expect(announced == expectedAnnouncement)
            // A client that sends and half-closes at once still gets every reply before the close (QUIT).
            let quitting = try LoopbackSocket(port: port, receiveTimeout: .seconds(10))
            try quitting.send("PING\r\nECHO hello\r\nQUIT\r\n")
            quitting.shutdownWrite()
            let replies = String(decoding: quitting.receive(atLeast: 1000), as: UTF8.self)
            quitting.close()
            #expect(replies == "+PONG\r\n$5\r\nhello\r\n+OK\r\n")
            tasks.cancelAll()
        }
        try await group.shutdownGracefully()
    }

    // redis's bind forms: `-addr` is an address that may be unavailable (redis.conf's `bind 127.0.0.1 -::1` on a host
    // without IPv6): skipped with a warning; `*` is every IPv4 address. A required address that cannot be bound
    // still stops the start.
    @Test func optionalAndWildcardBindAddressesAsRedisReadsThem() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ports = Mutex<[Int]>([])
        let listener = RESPListener(
            configuration: .init(hosts: ["-192.0.2.1", "*"], port: 0), dispatcher: EchoDispatcher(), group: group,
            logger: Logger(label: "test"), onBound: { bound in ports.withLock { $0 = bound } })
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await listener.run() }
            let port = try await Self.firstBoundPort(ports)
            #expect(ports.withLock { $0.count } == 1)
            let socket = try LoopbackSocket(port: port, receiveTimeout: .seconds(10))
            try socket.send("PING\r\n")
            #expect(String(decoding: socket.receive(atLeast: 7), as: UTF8.self) == "+PONG\r\n")
            socket.close()
            tasks.cancelAll()
        }
        let required = RESPListener(
            configuration: .init(hosts: ["192.0.2.1"], port: 0), dispatcher: EchoDispatcher(), group: group,
            logger: Logger(label: "test"), onBound: { _ in })
        await #expect(throws: (any Error).self) { try await required.run() }
        try await group.shutdownGracefully()
    }
}
