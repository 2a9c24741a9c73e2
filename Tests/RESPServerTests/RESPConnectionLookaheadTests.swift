// Tests of RESPConnectionHandler decoding pipelined commands ahead of running them: the dispatcher's prefetch sees
// each batch before any of its commands runs, every command still runs once and in order, and what follows a
// decoded command (a malformed frame, a blocking command, an AUTH that lifts the unauthenticated limits) behaves as
// if commands were decoded one at a time.
import NIOCore
import NIOEmbedded
import RESPServer
import Synchronization
import Testing

/// What the dispatcher saw, in order.
private final class DispatchLog: Sendable {
    enum Event: Equatable {
        case prefetch([String])
        case dispatch(String)
    }

    let events = Mutex<[Event]>([])
    /// The note each dispatched command carried, in dispatch order.
    let notes = Mutex<[DispatchNote]>([])
    /// Connections of the sessions opened so far (to resume a suspended command).
    let connections = Mutex<[ClientConnection]>([])

    var prefetchBatches: [[String]] {
        events.withLock { $0.compactMap { if case .prefetch(let batch) = $0 { batch } else { nil } } }
    }

    var dispatched: [String] {
        events.withLock { $0.compactMap { if case .dispatch(let command) = $0 { command } else { nil } } }
    }
}

/// ECHO x replies x; AUTH authenticates; BLOCK suspends until the test resumes the connection; every command and
/// prefetched batch is logged as its arguments joined by spaces. `requiresAuth` starts sessions unauthenticated.
private struct LoggingDispatcher: CommandDispatcher {
    final class Session {
        var isAuthenticated: Bool
        init(isAuthenticated: Bool) { self.isAuthenticated = isAuthenticated }
    }

    let log: DispatchLog
    var requiresAuth = false

    func openSession(for connection: ClientConnection) -> Session {
        log.connections.withLock { $0.append(connection) }
        return Session(isAuthenticated: !requiresAuth)
    }

    func isAuthenticated(_ session: Session) -> Bool { session.isAuthenticated }
    func closeSession(_ session: inout Session) {}

    /// Logs the batch and notes each command's position in it and the batch's number.
    func prefetch(_ commands: inout [CommandArguments], count: Int, session: Session) {
        let batch = commands[0..<count].map(Self.text)
        let batchNumber = log.events.withLock { events in
            defer { events.append(.prefetch(batch)) }
            return events.count { if case .prefetch = $0 { true } else { false } }
        }
        for position in 0..<count {
            commands[position].note = DispatchNote(command: Int32(position), key: Int32(batchNumber))
        }
    }

    func dispatch(_ arguments: inout CommandArguments, session: Session, reply: inout ReplyWriter) -> DispatchOutcome {
        log.events.withLock { $0.append(.dispatch(Self.text(arguments))) }
        log.notes.withLock { $0.append(arguments.note) }
        switch arguments.string(0).lowercased() {
        case "auth":
            session.isAuthenticated = true
            reply.buffer.writeStaticString("+OK\r\n")
        case "block":
            return .suspend
        default:
            reply.bulk((1..<arguments.count).map { arguments.string($0) }.joined(separator: " "))
        }
        return .proceed
    }

    static func text(_ arguments: CommandArguments) -> String {
        (0..<arguments.count).map { arguments.string($0) }.joined(separator: " ")
    }
}

/// A client on an EmbeddedChannel running a RESPConnectionHandler over `dispatcher`.
private struct LookaheadClient {
    let channel: EmbeddedChannel

    init(dispatcher: LoggingDispatcher) throws {
        channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RESPConnectionHandler(dispatcher: dispatcher, connectionID: 1))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40001)).wait()
    }

    static func frame(_ arguments: [String]) -> String {
        String(buffer: RESPDecoderInvariants.encodeMultibulk(arguments.map { Array($0.utf8) }))
    }

    func write(_ text: String) throws { try channel.writeClientText(text) }

    /// Everything written to the client so far.
    func output() throws -> String { try channel.takeClientOutput() }
}

struct RESPConnectionLookaheadTests {
    @Test func pipelinedCommandsArePrefetchedInBatchesThenRunOnceInOrder() throws {
        let log = DispatchLog()
        let client = try LookaheadClient(dispatcher: LoggingDispatcher(log: log))
        let commands = (0..<40).map { ["ECHO", "value-\($0)"] }
        try client.write(commands.map(LookaheadClient.frame).joined())

        let expectedReplies = (0..<40).map { "$\("value-\($0)".utf8.count)\r\nvalue-\($0)\r\n" }.joined()
        #expect(try client.output() == expectedReplies)
        let texts = commands.map { $0.joined(separator: " ") }
        #expect(log.dispatched == texts)
        // Batches of at most 16, covering every command once, each offered before any of its commands ran.
        #expect(log.prefetchBatches.map(\.count) == [16, 16, 8])
        #expect(log.prefetchBatches.flatMap { $0 } == texts)
        let events = log.events.withLock { $0 }
        #expect(events.first == .prefetch(Array(texts[0..<16])))
        #expect(events[17] == .prefetch(Array(texts[16..<32])))
    }

    @Test func aLoneCommandIsNotPrefetched() throws {
        let log = DispatchLog()
        let client = try LookaheadClient(dispatcher: LoggingDispatcher(log: log))
        try client.write(LookaheadClient.frame(["ECHO", "one"]))
        #expect(try client.output() == "$3\r\none\r\n")
        #expect(log.prefetchBatches.isEmpty)
        #expect(log.dispatched == ["ECHO one"])
    }

    @Test func eachCommandCarriesTheNoteItsBatchLeftAndANewOneStartsWithout() throws {
        let log = DispatchLog()
        let client = try LookaheadClient(dispatcher: LoggingDispatcher(log: log))
        try client.write((0..<3).map { LookaheadClient.frame(["ECHO", "\($0)"]) }.joined())
        #expect(try client.output() == "$1\r\n0\r\n$1\r\n1\r\n$1\r\n2\r\n")
        // A lone command is decoded into the argument list the batch's first command used, and is not prefetched.
        try client.write(LookaheadClient.frame(["ECHO", "lone"]))
        try client.write((0..<2).map { LookaheadClient.frame(["ECHO", "again-\($0)"]) }.joined())
        _ = try client.output()

        #expect(log.notes.withLock { $0 } == [
            DispatchNote(command: 0, key: 0), DispatchNote(command: 1, key: 0), DispatchNote(command: 2, key: 0),
            .none,
            DispatchNote(command: 0, key: 1), DispatchNote(command: 1, key: 1),
        ])
    }

    @Test func commandsBeforeAMalformedFrameRunBeforeTheProtocolError() throws {
        let log = DispatchLog()
        let client = try LookaheadClient(dispatcher: LoggingDispatcher(log: log))
        try client.write(LookaheadClient.frame(["ECHO", "a"]) + LookaheadClient.frame(["ECHO", "b"]) + "*1\r\nfoo\r\n")

        #expect(try client.output() == "$1\r\na\r\n$1\r\nb\r\n-ERR Protocol error: expected '$', got 'f'\r\n")
        #expect(log.dispatched == ["ECHO a", "ECHO b"])
        #expect(!client.channel.isActive)
    }

    @Test func commandsAfterABlockingOneWaitForItsReply() throws {
        let log = DispatchLog()
        let client = try LookaheadClient(dispatcher: LoggingDispatcher(log: log))
        try client.write(["ECHO before", "BLOCK", "ECHO after", "ECHO last"].map {
            LookaheadClient.frame($0.split(separator: " ").map(String.init))
        }.joined())

        #expect(try client.output() == "$6\r\nbefore\r\n")
        #expect(log.dispatched == ["ECHO before", "BLOCK"])

        let connection = try #require(log.connections.withLock { $0.first })
        connection.resume(with: ByteBuffer(string: "+UNBLOCKED\r\n"))
        client.channel.embeddedEventLoop.run()

        #expect(try client.output() == "+UNBLOCKED\r\n$5\r\nafter\r\n$4\r\nlast\r\n")
        #expect(log.dispatched == ["ECHO before", "BLOCK", "ECHO after", "ECHO last"])
    }

    @Test func aCommandPipelinedAfterAuthIsDecodedUnderTheAuthenticatedLimits() throws {
        // Twelve arguments: over the unauthenticated limit of 10 (redis refuses such a frame before AUTH).
        let wide = ["ECHO"] + (1...11).map { "w\($0)" }

        let refusedLog = DispatchLog()
        let refused = try LookaheadClient(dispatcher: LoggingDispatcher(log: refusedLog, requiresAuth: true))
        try refused.write(LookaheadClient.frame(["ECHO", "x"]) + LookaheadClient.frame(wide))
        let refusedOutput = try refused.output()
        #expect(refusedOutput.hasPrefix("$1\r\nx\r\n-ERR Protocol error"))
        #expect(refusedLog.dispatched == ["ECHO x"])

        let log = DispatchLog()
        let client = try LookaheadClient(dispatcher: LoggingDispatcher(log: log, requiresAuth: true))
        try client.write(LookaheadClient.frame(["AUTH", "secret"]) + LookaheadClient.frame(wide) + LookaheadClient.frame(["ECHO", "y"]))
        let joined = wide.dropFirst().joined(separator: " ")
        #expect(try client.output() == "+OK\r\n$\(joined.utf8.count)\r\n\(joined)\r\n$1\r\ny\r\n")
        #expect(log.dispatched == ["AUTH secret", wide.joined(separator: " "), "ECHO y"])
        // Nothing was decoded ahead before AUTH ran; the two commands after it were, together.
        #expect(log.prefetchBatches == [[wide.joined(separator: " "), "ECHO y"]])
    }
}
