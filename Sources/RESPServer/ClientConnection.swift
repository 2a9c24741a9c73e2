// A thread-safe handle on one client connection, for the parts of the node that act on a client from elsewhere:
// pub/sub deliveries, waking a blocked client, CLIENT KILL, CLIENT LIST.
public import NIOCore
import NIOConcurrencyHelpers

/// A handle on an accepted client connection that can be used from any thread.
public final class ClientConnection: Sendable {
    /// A process-unique, increasing connection id (CLIENT ID).
    public let id: Int
    /// The connection's event loop; its session is only touched there.
    public let eventLoop: any EventLoop
    /// The peer's address, as `ip:port`.
    public let remoteAddress: String
    /// The local address the client connected to, as `ip:port`.
    public let localAddress: String

    private let channel: any Channel
    private let resumeAction: NIOLockedValueBox<(@Sendable (ByteBuffer) -> Void)?>
    /// Set by a connection handler that holds replies back until the end of its event loop's tick: bytes sent from
    /// elsewhere go through it so they follow those replies.
    private let sendAction: NIOLockedValueBox<(@Sendable (ByteBuffer, EventLoopPromise<Void>?) -> Void)?>
    /// Set by the connection's handler: how to close the connection on behalf of a command (CLIENT KILL).
    private let closeAction: NIOLockedValueBox<(@Sendable () -> Void)?>

    /// Creates a handle on `channel` (the listener makes one per accepted connection; node-to-node links make
    /// their own for the sessions they run).
    public init(id: Int, channel: any Channel) {
        self.id = id
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.remoteAddress = Self.describe(channel.remoteAddress)
        self.localAddress = Self.describe(channel.localAddress)
        self.resumeAction = NIOLockedValueBox(nil)
        self.sendAction = NIOLockedValueBox(nil)
        self.closeAction = NIOLockedValueBox(nil)
    }

    func setResumeAction(_ action: (@Sendable (ByteBuffer) -> Void)?) {
        resumeAction.withLockedValue { $0 = action }
    }

    func setSendAction(_ action: (@Sendable (ByteBuffer, EventLoopPromise<Void>?) -> Void)?) {
        sendAction.withLockedValue { $0 = action }
    }

    func setCloseAction(_ action: (@Sendable () -> Void)?) {
        closeAction.withLockedValue { $0 = action }
    }

    /// Sends already-encoded bytes (a pub/sub message, a push) to the client and flushes.
    public func send(_ bytes: ByteBuffer) {
        send(bytes, promise: nil)
    }

    /// Sends already-encoded bytes and flushes, completing `promise` once they are written (replication feeds count
    /// their unwritten bytes with it). They follow every reply the client was already given (a `+FULLRESYNC` before
    /// the snapshot, a `SUBSCRIBE` confirmation before the first message), even one still waiting for the end of
    /// the event loop's tick.
    public func send(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        if let action = sendAction.withLockedValue({ $0 }) {
            action(bytes, promise)
        } else {
            channel.writeAndFlush(bytes, promise: promise)
        }
    }

    /// Completes a suspended command with its encoded reply and resumes reading the client's later commands.
    /// Safe to call from any thread; does nothing if the connection is gone.
    public func resume(with reply: ByteBuffer) {
        let action = resumeAction.withLockedValue { $0 }
        action?(reply)
    }

    /// Closes the connection (CLIENT KILL). Safe to call from a running command, also one holding keyspace locks
    /// (CLIENT KILL inside EXEC), and on the client itself: under a connection handler the client runs no further
    /// command, gets the replies it was already given, and is closed once no command of its event loop is running
    /// (closing ends its session, which takes those locks).
    public func close() {
        if let action = closeAction.withLockedValue({ $0 }) {
            action()
        } else {
            channel.close(promise: nil)
        }
    }

    /// The connection's channel. Its pipeline may only be read on `eventLoop`, e.g. to ask a handler a listener put
    /// in front of the RESP handler (a secure channel's) who the peer is.
    public var underlyingChannel: any Channel { channel }

    /// An allocator for encoding replies off the connection's own path.
    public var allocator: ByteBufferAllocator { channel.allocator }

    private static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "?:0" }
        return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }
}
