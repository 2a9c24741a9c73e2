// Tunnel: carries plaintext TCP connections through the secure channel. One side accepts plaintext locally and
// connects securely to the other; the other accepts secure connections and forwards each to a local target.
// Each plaintext connection and its secure connection run on one event loop, joined by a `GlueHandler` pair: bytes
// move handler to handler with back-pressure and no hop through Swift concurrency, and closing either side closes
// the other (the secure side with its authenticated close record).
import Logging
import NIOCore
import NIOPosix
import ReplicationSec

/// The listeners behind `cachectl tunnel listen` and `cachectl tunnel connect`.
enum Tunnel {
    /// `tunnel listen`: accepts secure connections on `host:port`; once a peer is authenticated, opens a plaintext
    /// connection to `target` and joins the two. Nothing reaches the target from an unauthenticated peer.
    /// - Returns: the listening channel (close it to stop accepting).
    static func listenSecure(
        host: String, port: Int, target: HostPort, configuration: SecureChannelConfiguration,
        admission: HandshakeAdmission = HandshakeAdmission(), logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { secure in
                secure.eventLoop.makeCompletedFuture {
                    let handler = try SecureChannel.addHandlers(
                        to: secure.pipeline.syncOperations, role: .server(admission: admission), configuration: configuration,
                        eventLoop: secure.eventLoop)
                    // Completed on the event loop while the last handshake message is processed, so the glue is in
                    // place before any record that followed it in the same read is delivered.
                    handler.handshakeCompleted.whenComplete { result in
                        switch result {
                        case .failure(let error):
                            logger.warning("tunnel handshake failed", metadata: ["error": "\(error)"])
                            secure.close(promise: nil)
                        case .success(let peer):
                            logger.debug("tunnel peer authenticated", metadata: ["peer.node_id": "\(peer.nodeID)"])
                            let (secureHalf, plainHalf) = GlueHandler.matchedPair()
                            do {
                                try secure.pipeline.syncOperations.addHandler(secureHalf)
                            } catch {
                                secure.close(promise: nil)
                                return
                            }
                            let plainHalfOnLoop = NIOLoopBound(plainHalf, eventLoop: secure.eventLoop)
                            connectPlain(to: target, on: secure.eventLoop).whenComplete { connected in
                                switch connected {
                                case .failure(let error):
                                    logger.warning("tunnel target unreachable", metadata: ["target": "\(target.host):\(target.port)", "error": "\(error)"])
                                    secure.close(promise: nil)
                                case .success(let plain):
                                    do {
                                        try plain.pipeline.syncOperations.addHandler(plainHalfOnLoop.value)
                                    } catch {
                                        plain.close(promise: nil)
                                        secure.close(promise: nil)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            .bind(host: host, port: port).get()
    }

    /// `tunnel connect`: accepts plaintext connections on `host:port` and carries each through a secure connection
    /// to `remote`. What the client sends before the handshake finishes is held by the secure channel handler and
    /// sealed once the peer is authenticated.
    /// - Returns: the listening channel (close it to stop accepting).
    static func listenPlain(
        host: String, port: Int, remote: HostPort, configuration: SecureChannelConfiguration, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { plain in
                plain.eventLoop.makeCompletedFuture {
                    let (plainHalf, secureHalf) = GlueHandler.matchedPair()
                    try plain.pipeline.syncOperations.addHandler(plainHalf)
                    // The secure connection runs on the plaintext one's event loop, where its half may be used.
                    let secureHalfOnLoop = NIOLoopBound(secureHalf, eventLoop: plain.eventLoop)
                    ClientBootstrap(group: plain.eventLoop)
                        .channelOption(.socketOption(.tcp_nodelay), value: 1)
                        .channelInitializer { secure in
                            secure.eventLoop.makeCompletedFuture {
                                let handler = try SecureChannel.addHandlers(
                                    to: secure.pipeline.syncOperations, role: .client, configuration: configuration,
                                    eventLoop: secure.eventLoop)
                                try secure.pipeline.syncOperations.addHandler(secureHalfOnLoop.value)
                                handler.handshakeCompleted.whenComplete { result in
                                    switch result {
                                    case .failure(let error):
                                        logger.warning("tunnel handshake failed", metadata: ["error": "\(error)"])
                                        secure.close(promise: nil)
                                    case .success(let peer):
                                        logger.debug("tunnel established", metadata: ["peer.node_id": "\(peer.nodeID)"])
                                    }
                                }
                            }
                        }
                        .connect(host: remote.host, port: remote.port)
                        .whenFailure { error in
                            logger.warning("tunnel remote unreachable", metadata: ["remote": "\(remote.host):\(remote.port)", "error": "\(error)"])
                            plain.close(promise: nil)
                        }
                }
            }
            .bind(host: host, port: port).get()
    }

    private static func connectPlain(to target: HostPort, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: target.host, port: target.port)
    }
}
