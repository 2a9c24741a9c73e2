// Blocking pops under real concurrency: every client runs on its own thread-safe testing event loop, so producers,
// consumers, wake-ups, timeouts and resumes interleave across threads. The invariant checked is conservation: every
// pushed element is popped exactly once or is still in the list, and no client stays counted as blocked.
import CacheNode
import CacheNodeTestSupport
import NIOCore
import NIOEmbedded
import RESPServer
import Synchronization
import Testing

struct BlockingConcurrencyTests {
    /// A client connection on its own event loop.
    struct Client: Sendable {
        let channel: NIOAsyncTestingChannel
        let loop: NIOAsyncTestingEventLoop

        init(node: NodeState, id: Int) async throws {
            let loop = NIOAsyncTestingEventLoop()
            self.loop = loop
            channel = try await NIOAsyncTestingChannel(loop: loop) { channel in
                try channel.pipeline.syncOperations.addHandler(
                    RESPConnectionHandler(dispatcher: NodeDispatcher(node: node), connectionID: id))
            }
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000 + id))
        }

        /// Sends commands as one pipelined write.
        func send(_ commands: [[String]]) async throws {
            var buffer = ByteBuffer()
            for command in commands {
                buffer.writeString("*\(command.count)\r\n")
                for argument in command { buffer.writeString("$\(argument.utf8.count)\r\n\(argument)\r\n") }
            }
            try await channel.writeInbound(buffer)
        }

        /// Waits for `count` replies.
        func replies(_ count: Int) async throws -> [RESPValue] {
            var pending = ByteBuffer()
            var replies: [RESPValue] = []
            while replies.count < count {
                var chunk = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
                pending.writeBuffer(&chunk)
                while let reply = RESPValue.parse(&pending) { replies.append(reply) }
            }
            return replies
        }

        func close() async {
            _ = try? await channel.finish(acceptAlreadyClosed: true)
            await loop.shutdownGracefully()
        }
    }

    static let perClient = 200
    static let clientCount = 4

    @Test func producersAndBlockedConsumersOnManyLoopsLoseNothing() async throws {
        let node = NodeState(configuration: NodeConfiguration(), clock: ManualNodeClock())
        var consumers: [Client] = []
        var producers: [Client] = []
        for index in 0..<Self.clientCount {
            consumers.append(try await Client(node: node, id: index + 1))
            producers.append(try await Client(node: node, id: index + 101))
        }
        let popped = try await withThrowingTaskGroup(of: [String].self) { group in
            for consumer in consumers {
                group.addTask {
                    try await consumer.send(Array(repeating: ["BLPOP", "q", "other", "0"], count: Self.perClient))
                    return try await consumer.replies(Self.perClient).compactMap { $0.elements?.last?.text }
                }
            }
            for (number, producer) in producers.enumerated() {
                group.addTask {
                    for item in 0..<Self.perClient {
                        try await producer.send([["RPUSH", "q", "p\(number)-\(item)"]])
                    }
                    _ = try await producer.replies(Self.perClient)
                    return []
                }
            }
            var all: [String] = []
            for try await values in group { all += values }
            return all
        }
        let produced = Set((0..<Self.clientCount).flatMap { number in (0..<Self.perClient).map { "p\(number)-\($0)" } })
        #expect(popped.count == produced.count)
        #expect(Set(popped) == produced)
        #expect(!node.blocking.hasWaiters)
        #expect(node.stats.total { $0.blockedClients.load(ordering: .relaxed) } == 0)
        for client in consumers + producers { await client.close() }
    }

    @Test func timeoutsRacingWakeUpsNeitherLoseNorDuplicate() async throws {
        let node = NodeState(configuration: NodeConfiguration(), clock: ManualNodeClock())
        var consumers: [Client] = []
        var producers: [Client] = []
        for index in 0..<Self.clientCount {
            consumers.append(try await Client(node: node, id: index + 1))
            producers.append(try await Client(node: node, id: index + 101))
        }
        let popped = try await withThrowingTaskGroup(of: [String].self) { group in
            for consumer in consumers {
                group.addTask {
                    try await consumer.send(Array(repeating: ["BRPOP", "q", "0.001"], count: Self.perClient))
                    // Fire the timeouts while the producers push, from another task.
                    let ticker = Task {
                        while !Task.isCancelled {
                            await consumer.loop.advanceTime(by: .milliseconds(1))
                            await Task.yield()
                        }
                    }
                    defer { ticker.cancel() }
                    let replies = try await consumer.replies(Self.perClient)
                    return replies.compactMap { $0.elements?.last?.text }
                }
            }
            for (number, producer) in producers.enumerated() {
                group.addTask {
                    for item in 0..<Self.perClient {
                        try await producer.send([["LPUSH", "q", "p\(number)-\(item)"]])
                    }
                    _ = try await producer.replies(Self.perClient)
                    return []
                }
            }
            var all: [String] = []
            for try await values in group { all += values }
            return all
        }
        let checker = try await Client(node: node, id: 1000)
        try await checker.send([["LRANGE", "q", "0", "-1"]])
        let remaining = try await checker.replies(1).first?.strings ?? []
        let produced = Set((0..<Self.clientCount).flatMap { number in (0..<Self.perClient).map { "p\(number)-\($0)" } })
        #expect(popped.count + remaining.count == produced.count)
        #expect(Set(popped + remaining) == produced)
        #expect(!node.blocking.hasWaiters)
        #expect(node.stats.total { $0.blockedClients.load(ordering: .relaxed) } == 0)
        for client in consumers + producers + [checker] { await client.close() }
    }
}
