// The TCP forwarding core shared by the sample functions: accept a connection, ask the function's admission
// policy, pick an upstream (round-robin), connect, then glue the two channels; an optional payload filter sits in
// front of the glue and closes the connection when it sees a denied pattern.

import Dispatch
import NIOCore
import NIOPosix
import ReplicationSec
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a sample function decides per connection.
struct ProxyPolicy: Sendable {
    /// Whether to accept a connection from `remote` arriving on local port `localPort`.
    var admit: @Sendable (_ remote: SocketAddress?, _ localPort: Int?) -> Bool = { _, _ in true }
    /// Patterns that close a connection when seen in the client's bytes.
    var denyPatterns: [[UInt8]] = []
}

/// Round-robin over upstream addresses (replaced while running when the framework moves the next VNF).
final class Upstreams: Sendable {
    private let current: Mutex<[SocketAddress]>
    private let next = Atomic<Int>(0)

    init(_ addresses: [SocketAddress]) { current = Mutex(addresses) }

    /// The addresses now.
    var addresses: [SocketAddress] { current.withLock { $0 } }

    /// Replaces the addresses (new connections use them; open ones stay where they are).
    func replace(_ addresses: [SocketAddress]) {
        guard !addresses.isEmpty else { return }
        current.withLock { $0 = addresses }
    }

    /// The next upstream, round-robin (nil while there is none: the link is not bound yet).
    func pick() -> SocketAddress? {
        let index = next.add(1, ordering: .relaxed).oldValue
        return current.withLock { $0.isEmpty ? nil : $0[index % $0.count] }
    }
}

/// Closes the connection when the client's bytes contain a denied pattern.
final class PatternFilterHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var scanner: PatternScanner
    private var closed = false

    init(patterns: [[UInt8]]) { scanner = PatternScanner(patterns: patterns) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let buffer = unwrapInboundIn(data)
        if scanner.scan(buffer.readableBytesView) {
            closed = true
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension PatternFilterHandler: Sendable {}

/// Runs the proxy until the process ends.
enum Proxy {
    static func run(bind host: String, port: Int, upstreams: Upstreams, policy: ProxyPolicy, name: String) async throws {
        if let links = try SecureLinks.fromEnvironment() {
            try await runLinked(bind: host, port: port, upstreams: upstreams, policy: policy, name: name, links: links)
            return
        }
        let group = MultiThreadedEventLoopGroup.singleton
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    ConnectionStats.shared.opened(child)
                    let remote = child.remoteAddress
                    guard policy.admit(remote, child.localAddress?.port) else {
                        child.close(promise: nil)
                        return
                    }
                    guard let target = upstreams.pick() else {
                        child.close(promise: nil)
                        return
                    }
                    ClientBootstrap(group: child.eventLoop)
                        .connectTimeout(.seconds(3))
                        .channelOption(.allowRemoteHalfClosure, value: true)
                        .channelInitializer { _ in child.eventLoop.makeSucceededVoidFuture() }
                        .connect(to: target)
                        .whenComplete { result in
                            switch result {
                            case .failure:
                                child.close(promise: nil)
                            case .success(let upstream):
                                let (local, remote) = GlueHandler.matchedPair()
                                do {
                                    if !policy.denyPatterns.isEmpty {
                                        try child.pipeline.syncOperations.addHandler(PatternFilterHandler(patterns: policy.denyPatterns))
                                    }
                                    try child.pipeline.syncOperations.addHandler(local)
                                    try upstream.pipeline.syncOperations.addHandler(remote)
                                    child.setOption(.autoRead, value: true).whenFailure { _ in child.close(promise: nil) }
                                } catch {
                                    child.close(promise: nil)
                                    upstream.close(promise: nil)
                                }
                            }
                        }
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        let drain = Drain.onSIGTERM(close: channel)
        print("vnf-sample \(name): listening on \(host):\(channel.localAddress?.port ?? port), upstreams \(upstreams.addresses)")
        fflush(nil)
        try await channel.closeFuture.get()
        await Drain.waitForConnections()
        drain.cancel()
    }

    /// An echo server (the chain's target in samples and tests): writes back what it reads, prefixed by `tag`.
    static func echo(bind host: String, port: Int, tag: String) async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(EchoHandler(tag: tag)) }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        print("vnf-sample echo: listening on \(host):\(channel.localAddress?.port ?? port)")
        fflush(nil)
        try await channel.closeFuture.get()
    }
}

/// Writes back what it reads, each read prefixed by the tag.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let tag: String
    init(tag: String) { self.tag = tag }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        var out = context.channel.allocator.buffer(capacity: buffer.readableBytes + tag.utf8.count)
        out.writeString(tag)
        out.writeBuffer(&buffer)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { context.close(promise: nil) }
    }
}

@available(*, unavailable)
extension EchoHandler: Sendable {}
