// The TCP listener of a RESP server as a swift-service-lifecycle Service: binds, accepts, runs one
// RESPConnectionHandler per connection on the group's event loops, and stops accepting on graceful shutdown.
//
// Connections run as plain channel handlers on their event loop rather than NIOAsyncChannel tasks: the hot path
// (decode → execute → encode) then costs no task switches or async sequence hops per read.
public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// Client ids are unique in the process and increase (CLIENT ID).
private let connectionIDCounter = Atomic<Int>(0)

/// Listens for RESP clients and serves them through a ``CommandDispatcher``.
public final class RESPListener<Dispatcher: CommandDispatcher>: Service, Sendable {
    /// Where and how to listen.
    public struct Configuration: Sendable {
        /// Addresses to bind (redis `bind`), e.g. `["127.0.0.1"]`.
        public var hosts: [String]
        /// The TCP port; 0 picks a free one (see ``RESPListener/boundPorts``).
        public var port: Int
        /// The listen backlog (redis `tcp-backlog`).
        public var backlog: Int32
        /// Input limits (redis `proto-max-bulk-len`, `client-query-buffer-limit` and friends), shared by every
        /// connection and changeable while they run.
        public var limits: RESPInputLimits

        /// Creates a configuration; defaults are redis's.
        public init(
            hosts: [String] = ["127.0.0.1"],
            port: Int = 6379,
            backlog: Int32 = 511,
            limits: RESPInputLimits = RESPInputLimits()
        ) {
            self.hosts = hosts
            self.port = port
            self.backlog = backlog
            self.limits = limits
        }
    }

    private let configuration: Configuration
    private let dispatcher: Dispatcher
    private let group: any EventLoopGroup
    private let acceptGroup: (any EventLoopGroup)?
    private let logger: Logger
    private let boundChannels = Mutex<[any Channel]>([])
    private let onBound: @Sendable ([Int]) -> Void
    private let prepareChannel: (@Sendable (any Channel) throws -> Void)?
    private let flushQueues = ReplyFlushQueues()

    /// Creates a listener.
    /// - Parameters:
    ///   - configuration: addresses, port and limits.
    ///   - dispatcher: executes the commands.
    ///   - group: the event loops connections run on (one per core for the hot path).
    ///   - acceptGroup: where the listening sockets accept connections; `nil` accepts on `group`. A loop of its own
    ///     keeps accepting while a connection loop is busy with one long command (a Lua script, KEYS on a large
    ///     keyspace), so a client can still reach the other loops (SCRIPT KILL).
    ///   - logger: where start-up and shutdown are logged.
    ///   - onBound: called once with the bound ports after every address is bound.
    ///   - prepareChannel: adds handlers in front of the RESP handler of every accepted connection (e.g. a secure
    ///     channel), synchronously on its event loop.
    public init(
        configuration: Configuration,
        dispatcher: Dispatcher,
        group: any EventLoopGroup,
        acceptGroup: (any EventLoopGroup)? = nil,
        logger: Logger,
        onBound: @escaping @Sendable ([Int]) -> Void = { _ in },
        prepareChannel: (@Sendable (any Channel) throws -> Void)? = nil
    ) {
        self.prepareChannel = prepareChannel
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.group = group
        self.acceptGroup = acceptGroup
        self.logger = logger
        self.onBound = onBound
    }

    /// The ports bound so far (useful with port 0).
    public var boundPorts: [Int] {
        boundChannels.withLock { $0.compactMap { $0.localAddress?.port } }
    }

    public func run() async throws {
        let dispatcher = self.dispatcher
        let limits = configuration.limits
        let prepareChannel = self.prepareChannel
        let flushQueues = self.flushQueues
        let bootstrap = ServerBootstrap(group: acceptGroup ?? group, childGroup: group)
            .serverChannelOption(.backlog, value: configuration.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { channel in
                let id = connectionIDCounter.add(1, ordering: .relaxed).newValue
                return channel.eventLoop.makeCompletedFuture {
                    try prepareChannel?(channel)
                    let flushQueue = flushQueues.queue(of: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(
                        RESPConnectionHandler(dispatcher: dispatcher, connectionID: id, limits: limits, flushQueue: flushQueue)
                    )
                }
            }
        var channels: [any Channel] = []
        do {
            var port = configuration.port
            for entry in configuration.hosts {
                // redis's `bind` forms: `*` every IPv4 address, `::*` every IPv6 one, a leading `-` an address that
                // may be unavailable (redis.conf's default `bind 127.0.0.1 -::1` on a host without IPv6).
                let optional = entry.hasPrefix("-")
                let written = optional ? String(entry.dropFirst()) : entry
                let host = written == "*" ? "0.0.0.0" : written == "::*" ? "::" : written
                let channel: any Channel
                do {
                    channel = try await bootstrap.bind(host: host, port: port).get()
                } catch where optional {
                    logger.warning("Could not bind optional address \(written): \(error)")
                    continue
                }
                channels.append(channel)
                // With port 0 every address gets the port the first one was given.
                if port == 0, let bound = channel.localAddress?.port { port = bound }
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        boundChannels.withLock { $0 = channels }
        let ports = channels.compactMap { $0.localAddress?.port }
        logger.info("Ready to accept connections", metadata: ["hosts": "\(configuration.hosts)", "ports": "\(ports)"])
        onBound(ports)
        let listening = channels
        // Stop accepting on graceful shutdown, and also if the service group cancels us.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for channel in listening {
                    try? await channel.closeFuture.get()
                }
            } onGracefulShutdown: {
                for channel in listening { channel.close(promise: nil) }
            }
        } onCancel: {
            for channel in listening { channel.close(promise: nil) }
        }
        logger.info("Listener stopped")
    }
}

/// One ``ReplyFlushQueue`` per event loop, made on first use on that loop.
private final class ReplyFlushQueues: Sendable {
    private let queues = Mutex<[ObjectIdentifier: NIOLoopBound<ReplyFlushQueue>]>([:])

    /// The queue of `eventLoop`; call it on that loop.
    func queue(of eventLoop: any EventLoop) -> ReplyFlushQueue {
        queues.withLock { queues in
            let key = ObjectIdentifier(eventLoop)
            if let queue = queues[key] { return queue.value }
            let queue = ReplyFlushQueue(eventLoop: eventLoop)
            queues[key] = NIOLoopBound(queue, eventLoop: eventLoop)
            return queue
        }
    }
}
