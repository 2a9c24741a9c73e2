// A small client link from this node to another cache node: connect to host:port (plaintext, or through
// ReplicationSec's secure channel expecting a given peer node id and role), send RESP commands, read replies.
// Replication uses `PeerConnector` for its own stream handler; MIGRATE and tools use `PeerLink`.
public import NIOCore
public import NIOPosix
public import ReplicationSec

/// Where a peer listens and how to reach it.
public struct PeerEndpoint: Sendable {
    public var host: String
    public var port: Int
    /// The secure channel settings (identity, trust, expected peer); `nil` for plaintext.
    public var security: SecureChannelConfiguration?
    /// How long connecting (and the secure handshake) may take.
    public var connectTimeout: TimeAmount

    public init(host: String, port: Int, security: SecureChannelConfiguration? = nil, connectTimeout: TimeAmount = .seconds(5)) {
        self.host = host
        self.port = port
        self.security = security
        self.connectTimeout = connectTimeout
    }
}

/// Why a peer link failed.
public struct PeerLinkError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// The link closed before a reply arrived.
    public static let closed = PeerLinkError("the peer closed the link")
}

/// Opens TCP connections to peers, with the secure channel when configured.
public enum PeerConnector {
    /// Connects to `endpoint`; `initializer` adds the caller's handlers (after the secure channel's, if any).
    /// - Returns: the channel and, over the secure channel, the authenticated peer certificate.
    public static func connect(
        to endpoint: PeerEndpoint, group: any EventLoopGroup,
        initializer: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> (channel: any Channel, peer: NodeCertificate?) {
        let security = endpoint.security
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.connectTimeout, value: endpoint.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let security {
                        try SecureChannel.addHandlers(
                            to: channel.pipeline.syncOperations, role: .client, configuration: security, eventLoop: channel.eventLoop)
                    }
                    try initializer(channel)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        guard security != nil else { return (channel, nil) }
        do {
            let peer = try await SecureChannel.authenticatedPeer(of: channel)
            return (channel, peer)
        } catch {
            try? await channel.close()
            throw error
        }
    }
}

/// A request/reply link to a peer node. Commands may be sent from any task; replies come back in order.
public final class PeerLink: Sendable {
    /// The underlying channel.
    public let channel: any Channel
    /// The authenticated peer (secure links only).
    public let peer: NodeCertificate?

    private init(channel: any Channel, peer: NodeCertificate?) {
        self.channel = channel
        self.peer = peer
    }

    /// Connects to a peer.
    public static func connect(to endpoint: PeerEndpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws -> PeerLink
    {
        let (channel, peer) = try await PeerConnector.connect(to: endpoint, group: group) { channel in
            try channel.pipeline.syncOperations.addHandler(PeerReplyHandler())
        }
        return PeerLink(channel: channel, peer: peer)
    }

    /// Sends one command and waits for its reply (an error reply is returned, not thrown).
    public func command(_ arguments: [String]) async throws -> PeerReply {
        try await command(bytes: arguments.map { Array($0.utf8) })
    }

    /// Sends one command given as raw arguments and waits for its reply.
    public func command(bytes arguments: [[UInt8]]) async throws -> PeerReply {
        try await pipeline([arguments])[0]
    }

    /// Sends several commands in one write and returns their replies in order.
    public func pipeline(_ commands: [[[UInt8]]]) async throws -> [PeerReply] {
        var buffer = channel.allocator.buffer(capacity: 256)
        for command in commands { RESPCommandEncoder.encode(command, into: &buffer) }
        var futures: [EventLoopFuture<PeerReply>] = []
        let channel = self.channel
        let promises = (0..<commands.count).map { _ in channel.eventLoop.makePromise(of: PeerReply.self) }
        futures = promises.map(\.futureResult)
        let request = PeerReplyHandler.Request(bytes: buffer, promises: promises)
        do {
            try await channel.writeAndFlush(request)
        } catch {
            // A link the peer closed already: the handler never saw the promises (failing one twice is a no-op).
            for promise in promises { promise.fail(error) }
            throw error
        }
        var replies: [PeerReply] = []
        for future in futures { replies.append(try await future.get()) }
        return replies
    }

    /// Closes the link (over the secure channel, with its authenticated close).
    public func close() async {
        try? await channel.close()
    }
}

/// Matches replies to requests in order.
final class PeerReplyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    struct Request {
        var bytes: ByteBuffer
        var promises: [EventLoopPromise<PeerReply>]
        /// Alternatively: `count` replies collected into one promise (a MIGRATE batch: one wake-up, not N).
        var batch: (count: Int, promise: EventLoopPromise<[PeerReply]>)? = nil
    }

    private enum Waiter {
        case one(EventLoopPromise<PeerReply>)
        case batch(count: Int, promise: EventLoopPromise<[PeerReply]>)

        func fail(_ error: any Error) {
            switch self {
            case .one(let promise): promise.fail(error)
            case .batch(_, let promise): promise.fail(error)
            }
        }
    }

    private var waiting = CircularBuffer<Waiter>()
    /// The replies collected so far for the batch at the head of ``waiting``.
    private var collected: [PeerReply] = []
    private var input = ByteBuffer()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        for reply in request.promises { waiting.append(.one(reply)) }
        if let batch = request.batch {
            if batch.count == 0 {
                batch.promise.succeed([])
            } else {
                waiting.append(.batch(count: batch.count, promise: batch.promise))
            }
        }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        do {
            while let reply = try PeerReplyParser.parse(&input) {
                guard let first = waiting.first else { throw PeerProtocolError("reply without a request") }
                switch first {
                case .one(let promise):
                    waiting.removeFirst()
                    promise.succeed(reply)
                case .batch(let count, let promise):
                    if collected.isEmpty { collected.reserveCapacity(count) }
                    collected.append(reply)
                    if collected.count == count {
                        waiting.removeFirst()
                        let replies = collected
                        collected = []
                        promise.succeed(replies)
                    }
                }
            }
            input.discardReadBytes()
        } catch {
            failAll(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(PeerLinkError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        let pending = waiting
        waiting = []
        collected = []
        for waiter in pending { waiter.fail(error) }
    }
}

@available(*, unavailable)
extension PeerReplyHandler: Sendable {}
