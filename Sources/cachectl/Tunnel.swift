// Tunnel: carries plaintext TCP connections through the secure channel. One side accepts plaintext locally and
// connects securely to the other; the other accepts secure connections and forwards each to a local target.
import Logging
import NIOCore
import NIOPosix
import ReplicationSec

/// The byte pumps behind `cachectl tunnel listen` and `cachectl tunnel connect`.
enum Tunnel {
    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    typealias Listener = NIOAsyncChannel<Connection, Never>

    /// Binds a plaintext TCP listener.
    static func bindPlain(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws -> Listener
    {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try Connection(wrappingChannelSynchronously: channel) }
            }
    }

    /// Connects a plaintext TCP connection.
    static func connectPlain(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws -> Connection
    {
        try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try Connection(wrappingChannelSynchronously: channel) }
            }
    }

    /// `tunnel listen`: for every authenticated secure connection, open a plaintext one to the target and pipe.
    static func serveSecure(listener: Listener, targetHost: String, targetPort: Int, logger: Logger) async throws {
        try await listener.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await secure in inbound {
                    group.addTask {
                        do {
                            // Authenticate first: nothing reaches the target from an unauthenticated peer.
                            let peer = try await SecureChannel.authenticatedPeer(of: secure.channel)
                            logger.debug("tunnel peer authenticated", metadata: ["peer.node_id": "\(peer.nodeID)"])
                            let plain = try await connectPlain(host: targetHost, port: targetPort)
                            try await pipe(plain, secure)
                        } catch {
                            logger.warning("tunnel connection failed", metadata: ["error": "\(error)"])
                            try? await secure.channel.close()
                        }
                    }
                }
            }
        }
    }

    /// `tunnel connect`: for every local plaintext connection, open a secure one to the remote and pipe.
    static func servePlain(
        listener: Listener, remoteHost: String, remotePort: Int, configuration: SecureChannelConfiguration, logger: Logger
    ) async throws {
        try await listener.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await plain in inbound {
                    group.addTask {
                        do {
                            let (secure, peer) = try await SecureChannel.connect(
                                host: remoteHost, port: remotePort, configuration: configuration)
                            logger.debug("tunnel established", metadata: ["peer.node_id": "\(peer.nodeID)"])
                            try await pipe(plain, secure)
                        } catch {
                            logger.warning("tunnel connection failed", metadata: ["error": "\(error)"])
                            try? await plain.channel.close()
                        }
                    }
                }
            }
        }
    }

    /// Copies bytes both ways until either side finishes, then closes both (the secure side with its
    /// authenticated close record).
    static func pipe(_ plain: Connection, _ secure: Connection) async throws {
        try await plain.executeThenClose { plainIn, plainOut in
            try await secure.executeThenClose { secureIn, secureOut in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { for try await buffer in plainIn { try await secureOut.write(buffer) } }
                    group.addTask { for try await buffer in secureIn { try await plainOut.write(buffer) } }
                    defer { group.cancelAll() }
                    try await group.next()
                }
            }
        }
    }
}
