// SecureChannelHandlerTests: the handler pair over EmbeddedChannels (buffered writes, authenticated close,
// truncation, tampering, half-open bound, timeout) and an end-to-end loopback session with the async API.
import Crypto
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing
@testable import ReplicationSec

struct SecureChannelHandlerTests {
    static func configuration(_ identity: NodeIdentity, expecting: PeerExpectation, payload: Int = 16 * 1024)
        -> SecureChannelConfiguration
    {
        SecureChannelConfiguration(
            handshake: Fixtures.configuration(identity, expecting: expecting), maximumRecordPayload: payload)
    }

    static let clientConfiguration = configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode))
    static let serverConfiguration = configuration(Fixtures.shardB, expecting: PeerExpectation(roles: [.cacheNode]))

    /// A client and a server EmbeddedChannel wired by hand (frames pumped with `pump`).
    final class Pair {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        let clientHandler: SecureChannelHandler
        let serverHandler: SecureChannelHandler

        init(client clientConfiguration: SecureChannelConfiguration = SecureChannelHandlerTests.clientConfiguration,
             server serverConfiguration: SecureChannelConfiguration = SecureChannelHandlerTests.serverConfiguration,
             admission: HandshakeAdmission? = nil) throws {
            clientHandler = try SecureChannel.addHandlers(
                to: client.pipeline.syncOperations, role: .client, configuration: clientConfiguration, eventLoop: client.eventLoop)
            serverHandler = try SecureChannel.addHandlers(
                to: server.pipeline.syncOperations, role: .server(admission: admission), configuration: serverConfiguration,
                eventLoop: server.eventLoop)
            try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        }

        /// Moves every outbound byte of each side to the other until both are quiet.
        func pump(tamper: (ByteBuffer) -> ByteBuffer = { $0 }) throws {
            var moved = true
            while moved {
                moved = false
                while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    try server.writeInbound(tamper(bytes))
                }
                while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    try client.writeInbound(bytes)
                }
            }
        }
    }

    @Test func writesBeforeTheHandshakeAreDeliveredAfterIt() throws {
        let pair = try Pair()
        pair.client.writeAndFlush(ByteBuffer(string: "PING"), promise: nil)
        try pair.pump()
        #expect(try pair.clientHandler.handshakeCompleted.wait().nodeID == "shard-b")
        #expect(try pair.serverHandler.handshakeCompleted.wait().nodeID == "shard-a")
        #expect(try pair.server.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "PING"))
        pair.server.writeAndFlush(ByteBuffer(string: "+PONG\r\n"), promise: nil)
        try pair.pump()
        #expect(try pair.client.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "+PONG\r\n"))
    }

    @Test func largeWritesAreSplitIntoRecords() throws {
        let pair = try Pair(client: Self.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode), payload: 1000))
        try pair.pump()
        let payload = ByteBuffer(bytes: (0..<5500).map { UInt8(truncatingIfNeeded: $0) })
        pair.client.writeAndFlush(payload, promise: nil)
        try pair.pump()
        var received = ByteBuffer()
        while var chunk = try pair.server.readInbound(as: ByteBuffer.self) {
            #expect(chunk.readableBytes <= 1000)
            received.writeBuffer(&chunk)
        }
        #expect(received == payload)
    }

    @Test func authenticatedCloseIsNotATruncation() throws {
        let pair = try Pair()
        try pair.pump()
        var events = [SecureChannelEvent]()
        let recorder = EventRecorder { events.append($0) }
        try pair.server.pipeline.syncOperations.addHandler(recorder)
        _ = pair.client.close()
        try pair.pump()
        #expect(events.contains { if case .peerClosed = $0 { true } else { false } })
        #expect(!pair.server.isActive)
    }

    @Test func transportCloseWithoutCloseRecordIsATruncation() throws {
        let pair = try Pair()
        try pair.pump()
        pair.server.pipeline.fireChannelInactive()
        #expect(throws: SecureChannelError.truncatedSession) { try pair.server.throwIfErrorCaught() }
    }

    @Test func tamperedRecordClosesTheConnectionWithBadTag() throws {
        let pair = try Pair()
        try pair.pump()
        pair.client.writeAndFlush(ByteBuffer(string: "SET k v"), promise: nil)
        #expect(throws: SecureChannelError.badRecordTag) {
            try pair.pump { bytes in
                var copy = bytes
                copy.setInteger(copy.getInteger(at: copy.writerIndex - 1, as: UInt8.self)! ^ 1, at: copy.writerIndex - 1)
                return copy
            }
        }
        #expect(try pair.server.readInbound(as: ByteBuffer.self) == nil)
        #expect(!pair.server.isActive)
    }

    @Test func installingARevocationListClosesOpenSessionsOfRevokedPeers() throws {
        let store = Fixtures.trustStore()
        let server = SecureChannelConfiguration(
            handshake: Fixtures.configuration(Fixtures.shardB, expecting: PeerExpectation(roles: [.cacheNode]), trustStore: store))
        let pair = try Pair(server: server)
        try pair.pump()
        #expect(try pair.serverHandler.handshakeCompleted.wait().serial == 100)
        #expect(store.sessionCount == 1)
        // A list that revokes someone else leaves the session open.
        try store.install(try Fixtures.authority.revocationList(sequence: 1, issuedAt: Fixtures.now, serials: [999]))
        #expect(pair.server.isActive)
        // A list that revokes the client's serial closes the server's side of the session.
        try store.install(try Fixtures.authority.revocationList(sequence: 2, issuedAt: Fixtures.now, serials: [100, 999]))
        pair.server.embeddedEventLoop.run()
        #expect(!pair.server.isActive)
        #expect(store.sessionCount == 0)
        // A new handshake from the revoked client is refused.
        let again = try Pair(server: server)
        #expect(throws: SecureChannelError.self) { try again.pump() }
        #expect(throws: SecureChannelError.certificateRevoked) { try again.serverHandler.handshakeCompleted.wait() }
    }

    @Test func wrongPeerFailsTheHandshakeFuture() throws {
        let pair = try Pair(client: Self.configuration(Fixtures.shardA, expecting: .node("shard-z", role: .cacheNode)))
        #expect(throws: SecureChannelError.self) { try pair.pump() }
        #expect(throws: SecureChannelError.wrongNodeID) { try pair.clientHandler.handshakeCompleted.wait() }
    }

    @Test func halfOpenHandshakesAreBounded() throws {
        let admission = HandshakeAdmission(limit: 1)
        let first = try Pair(admission: admission)
        #expect(admission.pendingCount == 1)
        let second = try Pair(admission: admission)
        #expect(throws: SecureChannelError.tooManyPendingHandshakes) { try second.server.throwIfErrorCaught() }
        #expect(!second.server.isActive)
        try first.pump()
        #expect(admission.pendingCount == 0)
    }

    @Test func handshakeTimesOut() throws {
        let pair = try Pair()
        pair.server.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(throws: SecureChannelError.handshakeTimeout) { try pair.server.throwIfErrorCaught() }
    }

    @Test func endToEndOverLoopbackWithTheAsyncAPI() async throws {
        let server = try await SecureChannel.bind(host: "127.0.0.1", port: 0, configuration: Self.serverConfiguration)
        let port = try #require(server.channel.localAddress?.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.executeThenClose { inbound in
                    for try await child in inbound {
                        try await child.executeThenClose { input, output in
                            for try await buffer in input { try await output.write(buffer) }  // echo
                        }
                        return
                    }
                }
            }
            let (client, peer) = try await SecureChannel.connect(host: "127.0.0.1", port: port, configuration: Self.clientConfiguration)
            #expect(peer.nodeID == "shard-b")
            let payload = ByteBuffer(bytes: (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            try await client.executeThenClose { input, output in
                try await output.write(payload)
                var received = ByteBuffer()
                for try await var chunk in input {
                    received.writeBuffer(&chunk)
                    if received.readableBytes >= payload.readableBytes { break }
                }
                #expect(received == payload)
            }
            try await group.next()
            group.cancelAll()
        }
    }

    @Test func connectFailsWithTypedErrorForWrongNode() async throws {
        let server = try await SecureChannel.bind(host: "127.0.0.1", port: 0, configuration: Self.serverConfiguration)
        let port = try #require(server.channel.localAddress?.port)
        let wrong = Self.configuration(Fixtures.shardA, expecting: .node("shard-c", role: .cacheNode))
        await #expect(throws: SecureChannelError.wrongNodeID) {
            _ = try await SecureChannel.connect(host: "127.0.0.1", port: port, configuration: wrong)
        }
        try await server.channel.close()
    }
}

/// Records SecureChannelEvents passing through the pipeline.
final class EventRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let onEvent: (SecureChannelEvent) -> Void
    init(onEvent: @escaping (SecureChannelEvent) -> Void) { self.onEvent = onEvent }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? SecureChannelEvent { onEvent(event) }
        context.fireUserInboundEventTriggered(event)
    }
}
