// Tests of the end-of-tick reply flush: ReplyFlushQueue on a real event loop, and RESPListener's connections (which
// use it) answering pipelined commands from many clients over real sockets.
import Dispatch
import Logging
import NIOCore
import NIOPosix
import RESPServer
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

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

    func dispatch(_ arguments: CommandArguments, session: inout Session, reply: inout ReplyWriter) -> DispatchOutcome {
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
    /// A blocking client socket to 127.0.0.1:`port` with a 10 s receive timeout.
    private static func connectClient(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(connected == 0, "connect failed: errno \(errno)")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    private static func sendAll(_ fd: Int32, _ request: String) {
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            precondition(n > 0, "send failed: errno \(errno)")
            sent += n
        }
    }

    /// Reads until `expected` bytes, EOF or the receive timeout.
    private static func receive(_ fd: Int32, expected: Int) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while received.count < expected {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += chunk[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    @Test func pipelinedRepliesFromManyConnectionsArriveWholeAndInOrder() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ports = Mutex<[Int]>([])
        let listener = RESPListener(
            configuration: .init(hosts: ["127.0.0.1"], port: 0), dispatcher: EchoDispatcher(), group: group,
            logger: Logger(label: "test"), onBound: { bound in ports.withLock { $0 = bound } })
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await listener.run() }
            var port = 0
            for _ in 0..<500 where port == 0 {
                port = ports.withLock { $0.first ?? 0 }
                if port == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            try #require(port != 0)
            // 20 connections open at once on two event loops, each pipelining 200 commands in one write; the
            // replies are read only after every client has sent.
            var clients: [(fd: Int32, expected: String)] = []
            for client in 0..<20 {
                var request = ""
                var expected = ""
                for index in 0..<200 {
                    let value = "c\(client)-\(index)"
                    request += "*2\r\n$4\r\nECHO\r\n$\(value.utf8.count)\r\n\(value)\r\n"
                    expected += "$\(value.utf8.count)\r\n\(value)\r\n"
                }
                request += "PING\r\n"
                expected += "+PONG\r\n"
                let fd = Self.connectClient(port: port)
                Self.sendAll(fd, request)
                clients.append((fd, expected))
            }
            for (index, client) in clients.enumerated() {
                let received = Self.receive(client.fd, expected: client.expected.utf8.count)
                close(client.fd)
                #expect(received == client.expected, "client \(index)")
            }
            // Bytes sent to a client from elsewhere follow the replies it was already given, even those still
            // waiting for the end of the tick (the send is queued on the loop before this read's flush is).
            let announcing = Self.connectClient(port: port)
            Self.sendAll(announcing, "PING\r\nANNOUNCE a\r\n")
            let expectedAnnouncement = "+PONG\r\n+ANNOUNCED\r\n+LATER a\r\n"
            let announced = Self.receive(announcing, expected: expectedAnnouncement.utf8.count)
            close(announcing)
            #expect(announced == expectedAnnouncement)
            // A client that sends and half-closes at once still gets every reply before the close (QUIT).
            let quitting = Self.connectClient(port: port)
            Self.sendAll(quitting, "PING\r\nECHO hello\r\nQUIT\r\n")
            shutdown(quitting, Int32(SHUT_WR))
            let replies = Self.receive(quitting, expected: 1000)
            close(quitting)
            #expect(replies == "+PONG\r\n$5\r\nhello\r\n+OK\r\n")
            tasks.cancelAll()
        }
        try await group.shutdownGracefully()
    }
}
