// SecureChannel: the async entry points — connect to a peer, or listen for peers — returning NIOAsyncChannels
// that carry plaintext ByteBuffers through the secure channel.
public import NIOCore
public import NIOPosix

/// Async API for Swift concurrency users.
public enum SecureChannel {
    /// Adds the frame decoder and the secure channel handler to a pipeline.
    /// - Returns: the handler, whose ``SecureChannelHandler/handshakeCompleted`` reports the peer.
    @discardableResult
    public static func addHandlers(
        to pipeline: ChannelPipeline.SynchronousOperations,
        role: SecureChannelRole,
        configuration: SecureChannelConfiguration,
        eventLoop: any EventLoop
    ) throws -> SecureChannelHandler {
        let handler = SecureChannelHandler(role: role, configuration: configuration, eventLoop: eventLoop)
        try pipeline.addHandler(
            ByteToMessageHandler(SecureFrameDecoder(maximumFrameLength: configuration.maximumFrameLength)))
        try pipeline.addHandler(handler)
        return handler
    }

    /// Connects to `host:port`, runs the handshake, and returns the channel and the authenticated peer.
    /// - Throws: the handshake's ``SecureChannelError`` (wrong node id, revoked, …) or a connection error.
    public static func connect(
        host: String,
        port: Int,
        configuration: SecureChannelConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> (channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, peer: NodeCertificate) {
        let (channel, handshake) = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try addHandlers(
                        to: channel.pipeline.syncOperations, role: .client, configuration: configuration,
                        eventLoop: channel.eventLoop)
                    return (try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel),
                            handler.handshakeCompleted)
                }
            }
        do {
            let peer = try await handshake.get()
            return (channel, peer)
        } catch {
            try? await channel.channel.close()
            throw error
        }
    }

    /// Listens on `host:port`; every accepted child runs the server handshake before any data flows.
    /// - Parameter admission: bounds half-open handshakes across this listener.
    public static func bind(
        host: String,
        port: Int,
        configuration: SecureChannelConfiguration,
        admission: HandshakeAdmission = HandshakeAdmission(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try addHandlers(
                        to: channel.pipeline.syncOperations, role: .server(admission: admission),
                        configuration: configuration, eventLoop: channel.eventLoop)
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Waits for the handshake on a channel set up by ``addHandlers(to:role:configuration:eventLoop:)``, ``bind``
    /// or ``connect``, and returns the authenticated peer (use it on accepted children before acting on them).
    public static func authenticatedPeer(of channel: any Channel) async throws -> NodeCertificate {
        try await channel.eventLoop.flatSubmit {
            do {
                return try channel.pipeline.syncOperations.handler(type: SecureChannelHandler.self).handshakeCompleted
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }
}
