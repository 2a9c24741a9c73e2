// An in-process client for command tests: a real RESPConnectionHandler and NodeDispatcher on an EmbeddedChannel,
// so every byte goes through the decoder, dispatcher and reply writer, with a manual clock and no sockets.
// Timers (blocking timeouts) fire when the test advances the embedded loop's time.
public import CacheNode
import CacheStore
public import NIOCore
public import NIOEmbedded
import RESPServer

/// A node under test and the clients connected to it.
public final class TestNode {
    /// The node's state.
    public let state: NodeState
    /// The clock commands read (advance it to expire keys).
    public let clock: ManualNodeClock
    private var nextID = 1

    /// Starts a node with `configuration` at a fixed start time.
    public init(configuration: NodeConfiguration = NodeConfiguration()) {
        clock = ManualNodeClock()
        state = NodeState(configuration: configuration, clock: clock)
    }

    /// Connects a new client.
    public func connect() throws -> TestClient {
        defer { nextID += 1 }
        return try TestClient(node: self, id: nextID)
    }

    /// Moves the node's clock forward.
    public func advance(milliseconds: Int64) {
        clock.advance(by: milliseconds)
    }
}

/// One connected client.
public final class TestClient {
    /// The node this client talks to.
    public let node: TestNode
    /// The embedded channel carrying the connection.
    public let channel: EmbeddedChannel
    private var pending = ByteBuffer()

    init(node: TestNode, id: Int) throws {
        self.node = node
        let loop = EmbeddedEventLoop()
        channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(
            RESPConnectionHandler(dispatcher: NodeDispatcher(node: node.state), connectionID: id))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000 + id)).wait()
    }

    deinit {
        _ = try? channel.finish()
    }

    /// Sends one command and returns its reply.
    @discardableResult
    public func send(_ arguments: String...) throws -> RESPValue {
        try send(arguments: arguments.map { Array($0.utf8) })
    }

    /// One command as a RESP multibulk frame (concatenate frames to pipeline commands in one write).
    public static func frame(_ arguments: [[UInt8]]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.count)\r\n")
            buffer.writeBytes(argument)
            buffer.writeString("\r\n")
        }
        return buffer
    }

    /// One command given as text, as a RESP multibulk frame.
    public static func frame(_ arguments: [String]) -> ByteBuffer {
        frame(arguments.map { Array($0.utf8) })
    }

    /// Sends a command without waiting for its reply (it may block).
    public func write(_ arguments: String...) throws {
        try writeRaw(Self.frame(arguments))
    }

    /// Sends one binary-safe command and returns its reply.
    @discardableResult
    public func send(arguments: [[UInt8]]) throws -> RESPValue {
        try writeRaw(Self.frame(arguments))
        guard let reply = try nextReply() else { throw TestClientError.noReply(arguments.map { String(decoding: $0, as: UTF8.self) }) }
        return reply
    }

    /// Writes raw bytes as if the client sent them (pipelines, inline commands, malformed input).
    public func writeRaw(_ bytes: ByteBuffer) throws {
        try channel.writeInbound(bytes)
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
    }

    /// Writes raw text.
    public func writeRaw(_ text: String) throws {
        try writeRaw(ByteBuffer(string: text))
    }

    /// The next reply the server sent, or `nil` if none is waiting (e.g. the client is blocked).
    public func nextReply() throws -> RESPValue? {
        channel.embeddedEventLoop.run()
        while let chunk = try channel.readOutbound(as: ByteBuffer.self) {
            var chunk = chunk
            pending.writeBuffer(&chunk)
        }
        return RESPValue.parse(&pending)
    }

    /// All replies waiting.
    @discardableResult
    public func allReplies() throws -> [RESPValue] {
        var replies: [RESPValue] = []
        while let reply = try nextReply() { replies.append(reply) }
        return replies
    }

    /// Advances this client's event loop time (fires BLPOP timeouts and other timers).
    public func advanceLoopTime(milliseconds: Int64) {
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(milliseconds))
    }

    /// Whether the server closed the connection.
    public var isClosed: Bool { !channel.isActive }

    /// The fields of INFO `section` whose names start with `prefix`, by name without it (`cmdstat_get` → `get`).
    public func info(_ section: String, prefix: String = "") throws -> [String: String] {
        guard let text = try send("INFO", section).text else { return [:] }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(prefix) {
            let parts = line.dropFirst(prefix.count).split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// CLIENT ID of this connection.
    public func clientID() throws -> Int {
        guard case .integer(let id) = try send("CLIENT", "ID") else { throw TestClientError.noReply(["CLIENT", "ID"]) }
        return id
    }
}

/// Failures of the test client itself.
public enum TestClientError: Error, CustomStringConvertible {
    case noReply([String])

    public var description: String {
        switch self {
        case .noReply(let command): return "no reply to \(command)"
        }
    }
}
