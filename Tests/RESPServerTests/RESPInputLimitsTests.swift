// Tests of the connection-level input limits: redis's client-query-buffer-limit (a client whose unprocessed input
// passes it is closed without a reply, whether a frame is still arriving or commands wait behind a blocked one), and
// limits changed while a connection is open (CONFIG SET proto-max-bulk-len) applying from its next read.
import NIOCore
import NIOEmbedded
import RESPServer
import Synchronization
import Testing

/// ECHO x replies x; BLOCK suspends; every close for the query-buffer limit is recorded with its buffered bytes.
private struct LimitRecordingDispatcher: CommandDispatcher {
    final class Session {}

    /// The buffered bytes of each close for the query-buffer limit, and each reported query-buffer size.
    final class Record: Sendable {
        let closures = Mutex<[Int]>([])
        let queryBuffers = Mutex<[Int]>([])
    }

    let record = Record()

    func openSession(for connection: ClientConnection) -> Session { Session() }
    func isAuthenticated(_ session: Session) -> Bool { true }
    func closeSession(_ session: inout Session) {}

    func dispatch(_ arguments: inout CommandArguments, session: Session, reply: inout ReplyWriter) -> DispatchOutcome {
        if arguments.matches(0, "block") { return .suspend }
        reply.bulk((1..<arguments.count).map { arguments.string($0) }.joined(separator: " "))
        return .proceed
    }

    func recordQueryBuffer(_ session: Session, bufferedBytes: Int) {
        record.queryBuffers.withLock { $0.append(bufferedBytes) }
    }

    func closingForQueryBufferLimit(_ session: Session, bufferedBytes: Int) {
        record.closures.withLock { $0.append(bufferedBytes) }
    }
}

/// A connection on an EmbeddedChannel, with the server's shared limits.
private struct LimitedClient {
    let channel = EmbeddedChannel()

    init(dispatcher: LimitRecordingDispatcher, limits: RESPInputLimits) throws {
        try channel.pipeline.syncOperations.addHandler(
            RESPConnectionHandler(dispatcher: dispatcher, connectionID: 1, limits: limits))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40002)).wait()
    }

    func write(_ text: String) throws { try channel.writeClientText(text) }

    func output() throws -> String { try channel.takeClientOutput() }
}

struct RESPInputLimitsTests {
    private static func echo(_ value: String) -> String { "*2\r\n$4\r\nECHO\r\n$\(value.utf8.count)\r\n\(value)\r\n" }

    @Test func aFrameStillArrivingPastTheQueryBufferLimitClosesTheClientWithoutAReply() throws {
        let dispatcher = LimitRecordingDispatcher()
        let client = try LimitedClient(dispatcher: dispatcher, limits: RESPInputLimits(.init(maximumQueryBufferLength: 1024)))
        // Under the limit, a partial frame waits for the rest.
        let header = "*2\r\n$4\r\nECHO\r\n$5000\r\n"
        try client.write(Self.echo("first") + header + String(repeating: "x", count: 900))
        #expect(try client.output() == "$5\r\nfirst\r\n")
        #expect(client.channel.isActive)
        #expect(dispatcher.record.closures.withLock { $0 }.isEmpty)
        // Past it, the client is closed; nothing more is replied.
        try client.write(String(repeating: "x", count: 200))
        #expect(try client.output() == "")
        #expect(!client.channel.isActive)
        #expect(dispatcher.record.closures.withLock { $0 } == [header.utf8.count + 1100])
    }

    @Test func commandsWaitingBehindABlockedOneCountTowardsTheLimit() throws {
        let dispatcher = LimitRecordingDispatcher()
        let client = try LimitedClient(dispatcher: dispatcher, limits: RESPInputLimits(.init(maximumQueryBufferLength: 1024)))
        try client.write("*1\r\n$5\r\nBLOCK\r\n" + String(repeating: Self.echo("waiting"), count: 40))
        #expect(client.channel.isActive, "40 short commands (680 bytes) fit under 1024")
        try client.write(String(repeating: Self.echo("waiting"), count: 40))
        #expect(!client.channel.isActive)
        #expect(try client.output() == "")
        #expect(dispatcher.record.closures.withLock { $0.count } == 1)
    }

    @Test func pipelinesLargerThanTheLimitAreFineWhenTheyAreProcessed() throws {
        let dispatcher = LimitRecordingDispatcher()
        let client = try LimitedClient(dispatcher: dispatcher, limits: RESPInputLimits(.init(maximumQueryBufferLength: 1024)))
        // 4 KiB of complete commands in one read: processed, so nothing stays buffered.
        try client.write(String(repeating: Self.echo("v"), count: 200))
        #expect(try client.output() == String(repeating: "$1\r\nv\r\n", count: 200))
        #expect(client.channel.isActive)
    }

    @Test func theUnprocessedInputIsReportedWhenItsSizeChanges() throws {
        let dispatcher = LimitRecordingDispatcher()
        let client = try LimitedClient(dispatcher: dispatcher, limits: RESPInputLimits())
        try client.write(Self.echo("a"))
        #expect(dispatcher.record.queryBuffers.withLock { $0 }.isEmpty, "an empty buffer that stays empty is not reported")
        let header = "*2\r\n$4\r\nECHO\r\n$10\r\n"
        try client.write(header + "01234")
        try client.write("56")
        try client.write("789\r\n")
        #expect(try client.output() == "$1\r\na\r\n$10\r\n0123456789\r\n")
        #expect(dispatcher.record.queryBuffers.withLock { $0 } == [header.utf8.count + 5, header.utf8.count + 7, 0])
    }

    @Test func limitsChangedWhileConnectedApplyFromTheNextRead() throws {
        let dispatcher = LimitRecordingDispatcher()
        let limits = RESPInputLimits()
        let client = try LimitedClient(dispatcher: dispatcher, limits: limits)
        let value = String(repeating: "v", count: 20)
        try client.write(Self.echo(value))
        #expect(try client.output() == "$20\r\n\(value)\r\n")
        limits.update(.init(maximumBulkLength: 10))
        #expect(limits.current.maximumBulkLength == 10)
        try client.write(Self.echo(value))
        #expect(try client.output() == "-ERR Protocol error: invalid bulk length\r\n")
        #expect(!client.channel.isActive)
    }
}
