// The per-connection channel handler: decodes every buffered command (up to 16 ahead, offered together to the
// dispatcher's prefetch so a pipelined batch's cache misses overlap), hands each to the dispatcher, and writes
// all replies of one read in a single flush (pipelining costs one syscall per batch, as in redis). Under
// RESPListener that flush waits for the end of the event loop's tick (ReplyFlushQueue), as redis writes replies in
// beforeSleep.
//
// It stays thin: decoding is RESPCommandDecoder's, execution the dispatcher's. Its only states are "running",
// "suspended" (a blocking command waits; later input stays buffered) and "closing".
public import NIOCore

/// Runs one client connection on its event loop. ``RESPListener`` installs one per accepted connection; tests can
/// install one on an `EmbeddedChannel`.
public final class RESPConnectionHandler<Dispatcher: CommandDispatcher>: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case running
        case suspended
        case closing
    }

    /// Replies beyond this size are handed to the channel before the batch ends, bounding memory per client.
    private static var outputWriteThreshold: Int { 64 * 1024 }
    /// How many buffered commands are decoded ahead and handed to the dispatcher's `prefetch` together.
    private static var lookahead: Int { 16 }

    private let dispatcher: Dispatcher
    private let connectionID: Int
    /// The server's limits, read again at each socket read (they can change at run time).
    private let inputLimits: RESPInputLimits
    private var decoder: RESPCommandDecoder
    private var session: Dispatcher.Session?
    private var connection: ClientConnection?
    private var context: ChannelHandlerContext?
    private var state = State.running
    private var input = ByteBuffer()
    /// Commands decoded ahead of running them (a pipelined batch, at most `lookahead`): `decoded[nextDecoded..<
    /// decodedCount]` still wait, in order. The array keeps its elements between batches so their argument lists
    /// are reused.
    private var decoded: [CommandArguments] = []
    private var decodedCount = 0
    private var nextDecoded = 0
    /// A malformed frame found while decoding ahead: reported once the commands before it have run, as if it had
    /// been decoded then.
    private var deferredDecodeError: RESPDecodeError?
    private var reply: ReplyWriter
    /// Replies handed to the channel mid-batch (large outputs) that still need a flush.
    private var hasUnflushedWrites = false
    /// Set while the client does not read its replies (the channel is over its write high-water mark): input stays
    /// buffered and the socket is not read, so a client that only writes cannot make the server buffer without end.
    private var pausedForBackpressure = false
    private let emptyFrame = ByteBuffer()
    /// Where a read's replies wait for the end of the tick; `nil`: flushed at the end of each read.
    private let flushQueue: ReplyFlushQueue?
    /// Whether this connection is in `flushQueue` for the current tick.
    private var isFlushQueued = false
    /// Set while this connection's commands run (`reply` is theirs then).
    private var isProcessingInput = false
    /// Set when a command of this client killed it (``closeOnBehalfOfCommand()``): closed once that command returns.
    private var closesAfterCommand = false
    /// The unprocessed input's size last reported to the dispatcher (``CommandDispatcher/recordQueryBuffer(_:bufferedBytes:)``).
    private var reportedQueryBuffer = 0

    /// Creates the handler for one connection.
    /// - Parameters:
    ///   - limits: the server's input limits, shared by its connections; a change applies from the next read.
    ///   - flushQueue: the queue of the connection's event loop: replies are flushed once every connection read in
    ///     the tick has been read. `nil` flushes them at the end of each read (an `EmbeddedChannel` in tests).
    public init(
        dispatcher: Dispatcher, connectionID: Int, limits: RESPInputLimits = RESPInputLimits(),
        flushQueue: ReplyFlushQueue? = nil
    ) {
        self.dispatcher = dispatcher
        self.connectionID = connectionID
        self.inputLimits = limits
        self.decoder = RESPCommandDecoder(limits: limits.current)
        self.reply = ReplyWriter(buffer: ByteBuffer())
        self.flushQueue = flushQueue
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.reply.buffer = context.channel.allocator.buffer(capacity: 4096)
        let connection = ClientConnection(id: connectionID, channel: context.channel)
        if let refusal = dispatcher.refusal(for: connection) {
            // Refused (too many clients): say why and close, as redis does, without opening a session.
            state = .closing
            reply.error(code: "ERR", message: refusal)
            if context.channel.isActive { sendRefusal(context: context) }
            return
        }
        self.connection = connection
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        connection.setResumeAction { reply in
            eventLoop.execute { loopBound.value.resume(with: reply) }
        }
        connection.setCloseAction {
            if eventLoop.inEventLoop {
                loopBound.value.closeOnBehalfOfCommand()
            } else {
                eventLoop.execute { loopBound.value.closeOnBehalfOfCommand() }
            }
        }
        if flushQueue != nil {
            connection.setSendAction { bytes, promise in
                if eventLoop.inEventLoop {
                    loopBound.value.sendFromElsewhere(bytes, promise: promise)
                } else {
                    eventLoop.execute { loopBound.value.sendFromElsewhere(bytes, promise: promise) }
                }
            }
        }
        self.session = dispatcher.openSession(for: connection)
        self.decoder.clientIsAuthenticated = dispatcher.isAuthenticated(session!)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        closeSession()
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        if session == nil && reply.buffer.readableBytes > 0 { sendRefusal(context: context) }
        context.fireChannelActive()
    }

    private func sendRefusal(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(reply.buffer), promise: nil)
        reply.buffer.clear()
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closeSession()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if let session { dispatcher.recordTraffic(session, inputBytes: incoming.readableBytes, outputBytes: 0) }
        if input.readableBytes == 0 {
            input = incoming
        } else {
            input.writeBuffer(&incoming)
        }
        decoder.limits = inputLimits.current
        processInput(context: context)
        enforceQueryBufferLimit(context: context)
        reportQueryBuffer()
    }

    /// Tells the dispatcher the unprocessed input's size when it changed (redis's `qbuf`).
    private func reportQueryBuffer() {
        guard input.readableBytes != reportedQueryBuffer, let session else { return }
        reportedQueryBuffer = input.readableBytes
        dispatcher.recordQueryBuffer(session, bufferedBytes: reportedQueryBuffer)
    }

    /// redis's `client-query-buffer-limit`: a client whose unprocessed input (a frame still arriving, or commands
    /// held while it is blocked) grows past the limit is closed without a reply, as redis closes it; replies already
    /// produced are still sent. This bounds what one connection can make the server hold.
    private func enforceQueryBufferLimit(context: ChannelHandlerContext) {
        guard state != .closing, input.readableBytes > decoder.limits.maximumQueryBufferLength else { return }
        state = .closing
        if let session { dispatcher.closingForQueryBufferLimit(session, bufferedBytes: input.readableBytes) }
        input = emptyFrame
        flushReplies(context: context)
        context.close(promise: nil)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if let flushQueue {
            if !isFlushQueued && (reply.buffer.readableBytes > 0 || hasUnflushedWrites) {
                isFlushQueued = true
                flushQueue.enqueue(self)
            }
        } else {
            flushReplies(context: context)
        }
        context.fireChannelReadComplete()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        checkOutputBuffer(context: context, whenWritable: true)
        if pausedForBackpressure && context.channel.isWritable {
            pausedForBackpressure = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            processInput(context: context)
            flushReplies(context: context)
            reportQueryBuffer()
        }
        context.fireChannelWritabilityChanged()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Connection-level I/O errors (resets) end this client only.
        context.close(promise: nil)
    }

    // MARK: command loop

    private func processInput(context: ChannelHandlerContext) {
        // One reference for the whole batch: passing the stored optional to each command would copy it each time.
        guard case .running = state, let session else { return }
        isProcessingInput = true
        defer {
            isProcessingInput = false
            dispatcher.inputProcessed(session)
        }
        // Writability changes only when this handler hands bytes to the channel, so it is read again only then.
        var channelIsWritable = context.channel.isWritable
        while true {
            // Closed meanwhile, or killed by one of its own commands (CLIENT KILL): run nothing more. A killed client
            // gets the replies it was already given, then is closed, now that none of its commands is running.
            if case .closing = state {
                if closesAfterCommand {
                    closesAfterCommand = false
                    flushReplies(context: context)
                    context.close(promise: nil)
                }
                return
            }
            if !channelIsWritable {
                // Hand over what is pending and wait for the client to read (channelWritabilityChanged).
                flushReplies(context: context)
                // Over its output limit: the top of the loop closes it.
                if case .closing = state { continue }
                channelIsWritable = context.channel.isWritable
                if !channelIsWritable {
                    pausedForBackpressure = true
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                    break
                }
            }
            if nextDecoded == decodedCount {
                if let error = deferredDecodeError {
                    deferredDecodeError = nil
                    reply.error(code: "ERR", message: "Protocol error: \(error)")
                    state = .closing
                    flushReplies(context: context)
                    context.close(promise: nil)
                    return
                }
                decodeAhead()
                if decodedCount == 0 && deferredDecodeError == nil { break }
                continue
            }
            let outcome = dispatcher.dispatch(&decoded[nextDecoded], session: session, reply: &reply)
            // Drops the frame's reference to the input storage so the next read can append without copying.
            decoded[nextDecoded].frame = emptyFrame
            nextDecoded += 1
            if !decoder.clientIsAuthenticated {
                decoder.clientIsAuthenticated = dispatcher.isAuthenticated(session)
            }
            // The command killed this client: the top of the loop closes it, whatever the outcome.
            if closesAfterCommand { continue }
            switch outcome {
            case .proceed:
                if reply.buffer.readableBytes >= Self.outputWriteThreshold {
                    dispatcher.recordTraffic(session, inputBytes: 0, outputBytes: reply.buffer.readableBytes)
                    context.write(NIOAny(reply.buffer), promise: nil)
                    hasUnflushedWrites = true
                    reply.buffer.clear()
                    channelIsWritable = context.channel.isWritable
                    if !channelIsWritable { checkOutputBuffer(context: context) }
                }
            case .closeAfterReply:
                state = .closing
                flushReplies(context: context)
                context.close(promise: nil)
                return
            case .suspend:
                state = .suspended
                return
            }
        }
        if input.readableBytes == 0 {
            input = emptyFrame
        } else if input.readerIndex > 64 * 1024 {
            input.discardReadBytes()
        }
    }

    /// Decodes up to `lookahead` buffered commands into `decoded` and lets the dispatcher prefetch for them. Before
    /// the client has authenticated it decodes one at a time: each command must be decoded under the limits that
    /// hold once the one before it has run (an AUTH lifts the unauthenticated limits).
    private func decodeAhead() {
        decodedCount = 0
        nextDecoded = 0
        while decodedCount < Self.lookahead {
            if decodedCount == decoded.count { decoded.append(CommandArguments()) }
            do {
                guard try decoder.next(from: &input, into: &decoded[decodedCount]) else { break }
            } catch {
                deferredDecodeError = error
                break
            }
            decodedCount += 1
            if !decoder.clientIsAuthenticated { break }
        }
        if decodedCount > 1, let session { dispatcher.prefetch(&decoded, count: decodedCount, session: session) }
    }

    private func flushReplies(context: ChannelHandlerContext) {
        guard reply.buffer.readableBytes > 0 else {
            if hasUnflushedWrites {
                hasUnflushedWrites = false
                context.flush()
            }
            return
        }
        hasUnflushedWrites = false
        if let session { dispatcher.recordTraffic(session, inputBytes: 0, outputBytes: reply.buffer.readableBytes) }
        context.writeAndFlush(NIOAny(reply.buffer), promise: nil)
        if reply.buffer.capacity > 1024 * 1024 {
            reply.buffer = context.channel.allocator.buffer(capacity: 4096)
        } else {
            reply.buffer.clear()
        }
        checkOutputBuffer(context: context)
    }

    /// redis's `client-output-buffer-limit`, checked whenever output was added while the client is not reading it
    /// (the channel is over its write high-water mark, 64 KiB) and, with `whenWritable`, once it caught up (so the
    /// dispatcher sees the output shrink). A client over its limit runs no further command and is closed, its
    /// unsent output dropped, as redis closes it "ASAP".
    private func checkOutputBuffer(context: ChannelHandlerContext, whenWritable: Bool = false) {
        guard context.channel.isWritable == whenWritable, state != .closing, let session else { return }
        let buffered = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
        if dispatcher.outputBufferChanged(session, bufferedBytes: buffered) {
            closeOnBehalfOfCommand()
        }
    }

    /// Called on the event loop when a suspended command completes.
    private func resume(with encodedReply: ByteBuffer) {
        guard case .suspended = state, let context else { return }
        var encodedReply = encodedReply
        reply.buffer.writeBuffer(&encodedReply)
        state = .running
        processInput(context: context)
        flushReplies(context: context)
        reportQueryBuffer()
    }

    /// Bytes for this client from elsewhere (``ClientConnection/send(_:promise:)``: pub/sub messages, the
    /// replication stream, a snapshot). Replies still waiting for the end of the tick were produced first, so they
    /// are written first. While one of this connection's own commands runs (a RESP3 client publishing to a channel
    /// it is subscribed to) the bytes go out at once, ahead of that command's reply, as redis orders them.
    private func sendFromElsewhere(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if !isProcessingInput { flushReplies(context: context) }
        context.writeAndFlush(NIOAny(bytes), promise: promise)
        checkOutputBuffer(context: context)
    }

    /// CLIENT KILL of this client (by itself, or by another on any event loop). It runs no further command from now
    /// on. The close itself waits until no command is running on this loop: the killer may hold stripe locks (CLIENT
    /// KILL inside EXEC) that ending the session takes, which on the same thread would deadlock. So a client that
    /// killed itself is closed by its own command loop once the command returns, and any other in a task of its own.
    private func closeOnBehalfOfCommand() {
        guard let context, state != .closing else { return }
        state = .closing
        if isProcessingInput {
            closesAfterCommand = true
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            guard let context = loopBound.value.context else { return }
            loopBound.value.flushReplies(context: context)
            context.close(promise: nil)
        }
    }

    private func closeSession() {
        guard session != nil else { return }
        state = .closing
        connection?.setResumeAction(nil)
        connection?.setSendAction(nil)
        connection?.setCloseAction(nil)
        dispatcher.closeSession(&session!)
        session = nil
        connection = nil
    }
}

extension RESPConnectionHandler: DeferredReplyFlushing {
    public func flushDeferredReplies() {
        isFlushQueued = false
        guard let context else { return }
        flushReplies(context: context)
    }
}

@available(*, unavailable)
extension RESPConnectionHandler: Sendable {}
