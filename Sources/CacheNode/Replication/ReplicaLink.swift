// The replica side of replication (redis replication.c syncWithMaster / readSyncBulkPayload / the master client):
// one link to the primary that connects (through the secure channel when the node has an identity), runs the
// handshake through ReplicaLinkStateMachine, loads a full copy or continues from its offset, then applies the
// primary's stream through the dispatcher as the "master client" (replies discarded), recording the stream
// verbatim in this node's backlog. It reconnects with backoff and acknowledges its offset every second and on
// REPLCONF GETACK.
//
// Only whole commands are applied: bytes reach this handler after the secure channel verified their record, and a
// command split across records waits in the input buffer; a broken link drops the partial command and the
// replica continues from the last applied offset.
import CacheStore
import Logging
import NIOCore
import RESPServer
import ReplicationSec
import Synchronization

/// What the link does with incoming bytes.
enum ReplicaInputPhase {
    case handshake
    case snapshotHeader(replid: String, offset: Int64)
    case snapshotBody(replid: String, offset: Int64, remaining: Int)
    /// A snapshot streamed between end marks (`$EOF:<mark>`), decoded as it arrives.
    case snapshotStream(replid: String, offset: Int64)
    case streaming
}

/// Status of the link for INFO and ROLE.
struct ReplicaLinkStatus: Sendable {
    var host: String
    var port: Int
    var state: ReplicaLinkStateMachine.State = .connecting
    var lastIOMilliseconds: Int64 = 0
    var offset: Int64 = -1
    var lastError: String?
    var secure: Bool
}

/// The link from this replica to its primary.
final class ReplicaLink: @unchecked Sendable {
    struct State {
        var machine: ReplicaLinkStateMachine
        var phase = ReplicaInputPhase.handshake
        var input = ByteBuffer()
        var snapshot: [UInt8] = []
        /// A streamed snapshot: the end-mark scanner, the decoder and the records decoded so far.
        var snapshotScanner: SnapshotEndMarkScanner?
        var snapshotDecoder = SnapshotStreamDecoder()
        var snapshotRecords: [SnapshotRecord] = []
        var arguments = CommandArguments()
        var decoder = RESPCommandDecoder(limits: .trustedStream)
        var channel: (any Channel)?
        var generation = 0
        var stopped = false
        var session: ClientSession?
        var reply = ReplyWriter(buffer: ByteBuffer())
        /// Stream bytes of a transaction still open (MULTI and the commands queued since): they are recorded and
        /// counted only once EXEC or DISCARD closes it (redis counts `reploff` only outside MULTI), so the offset
        /// this replica acknowledges, snapshots and resumes from never falls inside a transaction.
        var openTransaction = ByteBuffer()
    }

    let node: NodeState
    let host: String
    let port: Int
    let security: SecureChannelConfiguration?
    let eventLoop: any EventLoop
    let logger: Logger
    private let state: Mutex<State>
    let status: Mutex<ReplicaLinkStatus>
    private let ackTask = Mutex<RepeatedTask?>(nil)

    init(node: NodeState, host: String, port: Int, security: SecureChannelConfiguration?, eventLoop: any EventLoop,
         logger: Logger, listeningPort: Int, cachedReplID: String?, offset: Int64) {
        self.node = node
        self.host = host
        self.port = port
        self.security = security
        self.eventLoop = eventLoop
        self.logger = logger
        self.state = Mutex(State(machine: ReplicaLinkStateMachine(
            listeningPort: listeningPort, cachedReplID: cachedReplID, offset: offset)))
        self.status = Mutex(ReplicaLinkStatus(host: host, port: port, offset: offset, secure: security != nil))
    }

    // MARK: lifecycle

    func start() {
        let action = state.withLock { $0.machine.start() }
        perform([action], generation: 0)
        let task = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.sendAck()
        }
        ackTask.withLock { $0 = task }
    }

    /// Stops the link for good (REPLICAOF NO ONE / another REPLICAOF / shutdown). When it returns, no further
    /// command from the primary is applied.
    func stop() {
        let channel = state.withLock { state -> (any Channel)? in
            state.stopped = true
            state.machine.stop()
            state.generation += 1
            defer { state.channel = nil }
            return state.channel
        }
        ackTask.withLock { $0?.cancel(); $0 = nil }
        channel?.close(promise: nil)
        status.withLock { $0.state = .idle }
    }

    /// Runs `body` between two applied commands of the primary's stream (and not during a full sync's load), so
    /// the keyspace and the recorded offset agree while it runs. Must not be called with a stripe locked.
    func withStreamApplyPaused<Result>(_ body: () -> Result) -> Result {
        // The link's own event loop can only get here from inside `receive`, which already holds the lock.
        if eventLoop.inEventLoop { return body() }
        return state.withLock { _ in body() }
    }

    /// The offset applied so far.
    var offset: Int64 { state.withLock { $0.machine.offset } }

    // MARK: actions

    private func perform(_ actions: [ReplicaLinkStateMachine.Action], generation: Int) {
        for action in actions {
            switch action {
            case .connect:
                connect()
            case .send(let command):
                var buffer = ByteBufferAllocator().buffer(capacity: 64)
                RESPCommandEncoder.encode(command, into: &buffer)
                let channel = state.withLock { $0.generation == generation ? $0.channel : nil }
                channel?.writeAndFlush(buffer, promise: nil)
            case .disconnect(let reason):
                logger.warning("Replication link to \(host):\(port) failed: \(reason)")
                let channel = state.withLock { $0.generation == generation ? $0.channel : nil }
                // Record the reason first: closing fires channelInactive, whose generic reason must not replace it.
                lost(reason: reason, generation: generation)
                channel?.close(promise: nil)
            case .scheduleReconnect(let milliseconds):
                eventLoop.scheduleTask(in: .milliseconds(milliseconds)) { [self] in
                    let next = state.withLock { state -> ReplicaLinkStateMachine.Action in
                        guard !state.stopped else { return .none }
                        return state.machine.reconnectDue()
                    }
                    perform([next], generation: generation)
                }
            case .receiveSnapshot, .continueStream, .none:
                break
            }
        }
        publishStatus()
    }

    private func connect() {
        let generation = state.withLock { state -> Int in
            state.generation += 1
            return state.generation
        }
        let endpoint = PeerEndpoint(host: host, port: port, security: security)
        logger.notice("Connecting to primary \(host):\(port)\(security == nil ? " (plaintext)" : " over the secure channel")")
        let eventLoop = self.eventLoop
        Task {
            do {
                let (channel, peer) = try await PeerConnector.connect(to: endpoint, group: eventLoop) { channel in
                    try channel.pipeline.syncOperations.addHandler(ReplicaStreamHandler(link: self, generation: generation))
                }
                if let peer { self.logger.info("Secure replication link authenticated: primary node \(peer.nodeID)") }
                self.connected(channel, generation: generation)
            } catch {
                self.logger.warning("Cannot connect to primary \(self.host):\(self.port): \(error)")
                self.lost(reason: "cannot connect: \(error)", generation: generation)
            }
        }
    }

    private func connected(_ channel: any Channel, generation: Int) {
        let action = state.withLock { state -> ReplicaLinkStateMachine.Action? in
            guard state.generation == generation, !state.stopped else { return nil }
            state.channel = channel
            state.input.clear()
            state.phase = .handshake
            return state.machine.connected()
        }
        guard let action else {
            channel.close(promise: nil)
            return
        }
        perform([action], generation: generation)
    }

    /// The connection of `generation` closed or failed.
    func lost(reason: String, generation: Int) {
        let action = state.withLock { state -> ReplicaLinkStateMachine.Action in
            guard state.generation == generation, !state.stopped else { return .none }
            state.channel = nil
            state.input.clear()
            // A transaction cut by the link's loss is dropped: the offset is still before its MULTI, so the
            // primary sends it again whole.
            state.openTransaction.clear()
            state.session?.transaction = nil
            state.session?.transactionHasErrors = false
            state.snapshot = []
            state.snapshotScanner = nil
            state.snapshotRecords = []
            state.phase = .handshake
            return state.machine.linkLost(reason: reason)
        }
        if case .scheduleReconnect = action {
            logger.warning("Replication link to \(host):\(port) lost: \(reason); reconnecting")
        }
        perform([action], generation: generation)
    }

    // MARK: input

    /// Bytes from the primary (already authenticated by the secure channel, if any).
    func receive(_ bytes: inout ByteBuffer, generation: Int) {
        var outgoing: [ReplicaLinkStateMachine.Action] = []
        var acknowledge: Int64?
        state.withLock { state in
            guard state.generation == generation, !state.stopped else { return }
            state.input.writeBuffer(&bytes)
            do {
                try process(&state, &outgoing, &acknowledge)
            } catch {
                outgoing.append(.disconnect(reason: "\(error)"))
            }
            if state.input.readerIndex > 64 * 1024 || state.input.readableBytes == 0 { state.input.discardReadBytes() }
        }
        status.withLock { $0.lastIOMilliseconds = monotonicMilliseconds() }
        perform(outgoing, generation: generation)
        if let acknowledge { sendAck(offset: acknowledge, generation: generation) }
    }

    /// The snapshot is loaded: the replica holds `replid` at `offset` and streams from there.
    private func finishFullSync(_ state: inout State, replid: String, offset: Int64) {
        node.replication.fullSyncLoaded(replid: replid, offset: offset)
        // The AOF on disk leads to the data this sync replaced: start a new history from the loaded data (on this
        // loop, so no command of the stream is applied before the rewrite's snapshot freezes the keyspace).
        if node.appendOnly.status.enabled {
            _ = try? node.appendOnly.startRewrite(node: node, replacingHistory: true)
        }
        state.session?.database = 0
        _ = state.machine.snapshotLoaded(replid: replid, offset: offset)
        logger.notice("Full resynchronization loaded; streaming from offset \(offset + 1)")
        state.phase = .streaming
    }

    private func process(_ state: inout State, _ outgoing: inout [ReplicaLinkStateMachine.Action], _ acknowledge: inout Int64?) throws {
        while true {
            switch state.phase {
            case .handshake:
                guard let reply = try PeerReplyParser.parse(&state.input) else { return }
                let action = state.machine.received(reply)
                switch action {
                case .receiveSnapshot(let replid, let offset):
                    logger.notice("Full resynchronization from primary: replid \(replid), offset \(offset)")
                    state.phase = .snapshotHeader(replid: replid, offset: offset)
                case .continueStream(let newID):
                    logger.notice("Partial resynchronization accepted; continuing at offset \(state.machine.offset + 1)")
                    node.replication.continued(newReplID: newID, at: state.machine.offset)
                    state.phase = .streaming
                case .disconnect:
                    outgoing.append(action)
                    return
                default:
                    outgoing.append(action)
                }
            case .snapshotHeader(let replid, let offset):
                // The primary may send newlines as keep-alives before the payload.
                while state.input.readableBytes > 0, state.input.getInteger(at: state.input.readerIndex, as: UInt8.self) == UInt8(ascii: "\n") {
                    state.input.moveReaderIndex(forwardBy: 1)
                }
                guard let line = try PeerReplyParser.readLine(&state.input) else { return }
                if line.hasPrefix("$EOF:") {
                    let mark = Array(line.utf8.dropFirst(5))
                    guard mark.count == SnapshotEndMarkScanner.markLength else {
                        throw PeerProtocolError("bad snapshot end mark in '\(line.prefix(60))'")
                    }
                    state.snapshotScanner = SnapshotEndMarkScanner(mark: mark)
                    state.snapshotDecoder = SnapshotStreamDecoder()
                    state.snapshotRecords = []
                    state.phase = .snapshotStream(replid: replid, offset: offset)
                    continue
                }
                guard line.hasPrefix("$"), let length = Int(line.dropFirst()), length >= 0 else {
                    throw PeerProtocolError("bad snapshot header '\(line.prefix(40))'")
                }
                state.snapshot = []
                state.snapshot.reserveCapacity(length)
                state.phase = .snapshotBody(replid: replid, offset: offset, remaining: length)
            case .snapshotBody(let replid, let offset, let remaining):
                let take = min(remaining, state.input.readableBytes)
                if take > 0 {
                    state.input.readWithUnsafeReadableBytes { bytes in
                        state.snapshot.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<take]))
                        return take
                    }
                }
                if remaining - take > 0 {
                    state.phase = .snapshotBody(replid: replid, offset: offset, remaining: remaining - take)
                    return
                }
                try FullSync.load(state.snapshot, into: node)
                state.snapshot = []
                finishFullSync(&state, replid: replid, offset: offset)
                acknowledge = offset
            case .snapshotStream(let replid, let offset):
                guard state.input.readableBytes > 0, var scanner = state.snapshotScanner else { return }
                let (snapshot, afterMark) = state.input.readWithUnsafeReadableBytes { bytes in
                    (bytes.count, scanner.scan(bytes))
                }
                state.snapshotScanner = scanner
                state.snapshotRecords += try state.snapshotDecoder.feed(snapshot)
                guard let afterMark else { return }
                // The stream's first bytes may have come in the same read as the mark: they go back in front.
                state.input.writeBytes(afterMark)
                try state.snapshotDecoder.finish()
                let records = state.snapshotRecords
                state.snapshotRecords = []
                state.snapshotScanner = nil
                try FullSync.load(records: records, functionLibraries: state.snapshotDecoder.functionLibraries, into: node)
                finishFullSync(&state, replid: replid, offset: offset)
                acknowledge = offset
            case .streaming:
                if state.session == nil, let channel = state.channel {
                    let session = ClientSession(
                        connection: ClientConnection(id: -1, channel: channel), createdAt: node.clock.nowMilliseconds(),
                        isAuthenticated: true, stats: node.stats.block(for: ObjectIdentifier(eventLoop)))
                    session.replicationRole = .primary
                    state.session = session
                }
                guard let session = state.session else { return }
                let dispatcher = NodeDispatcher(node: node)
                while true {
                    let before = state.input
                    guard try state.decoder.next(from: &state.input, into: &state.arguments) else { break }
                    let count = state.input.readerIndex - before.readerIndex
                    if state.arguments.count >= 2 && state.arguments.matches(0, "replconf")
                        && state.arguments.matches(1, "getack")
                    {
                        acknowledge = 0
                    } else {
                        if state.reply.buffer.capacity == 0 { state.reply.buffer = ByteBufferAllocator().buffer(capacity: 256) }
                        _ = dispatcher.dispatch(&state.arguments, session: session, reply: &state.reply)
                        state.reply.buffer.clear()
                    }
                    let applied = before.getSlice(at: before.readerIndex, length: count)!
                    if session.transaction != nil {
                        state.openTransaction.writeImmutableBuffer(applied)
                        continue
                    }
                    if state.openTransaction.readableBytes > 0 {
                        state.openTransaction.writeImmutableBuffer(applied)
                        node.replication.appendFromPrimary(state.openTransaction, database: session.database)
                        state.machine.processed(state.openTransaction.readableBytes)
                        state.openTransaction.clear()
                    } else {
                        node.replication.appendFromPrimary(applied, database: session.database)
                        state.machine.processed(count)
                    }
                }
                state.arguments.frame = ByteBuffer()
                if acknowledge != nil { acknowledge = state.machine.offset }
                return
            }
        }
    }

    // MARK: acknowledgements

    private func sendAck() {
        let (channel, offset) = state.withLock { state -> ((any Channel)?, Int64) in
            guard state.machine.isUp else { return (nil, 0) }
            return (state.channel, state.machine.offset)
        }
        guard let channel else { return }
        write(["REPLCONF", "ACK", String(offset)], to: channel)
    }

    private func sendAck(offset: Int64, generation: Int) {
        let channel = state.withLock { $0.generation == generation ? $0.channel : nil }
        guard let channel else { return }
        write(["REPLCONF", "ACK", String(offset)], to: channel)
    }

    private func write(_ command: [String], to channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: 48)
        RESPCommandEncoder.encode(command, into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func publishStatus() {
        let (machineState, offset, error) = state.withLock { ($0.machine.state, $0.machine.offset, $0.machine.lastError) }
        status.withLock { status in
            status.state = machineState
            status.offset = offset
            status.lastError = error
        }
    }
}

/// Feeds the link's channel events to the link.
final class ReplicaStreamHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    let link: ReplicaLink
    let generation: Int

    init(link: ReplicaLink, generation: Int) {
        self.link = link
        self.generation = generation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        link.receive(&bytes, generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.lost(reason: "connection closed by the primary", generation: generation)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        link.logger.error("Replication link error: \(error); dropping the link")
        link.lost(reason: "\(error)", generation: generation)
        context.close(promise: nil)
    }
}
