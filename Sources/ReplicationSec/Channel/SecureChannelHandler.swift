// SecureChannelHandler: the NIO handler that runs the handshake, then seals outbound and opens inbound records.
// It stays thin: the handshake and record logic live in HandshakeStateMachine and RecordSealer/RecordOpener.
import Crypto
import Foundation
import Logging
import Metrics
public import NIOCore

/// Events the handler sends down the pipeline as user inbound events.
public enum SecureChannelEvent: Sendable {
    /// The handshake finished; the peer is authenticated.
    case handshakeCompleted(peer: NodeCertificate)
    /// The peer sent its authenticated close: every byte it sent has been delivered.
    case peerClosed
}

/// Which side of the handshake this endpoint plays.
public enum SecureChannelRole: Sendable {
    case client
    case server(admission: HandshakeAdmission?)
}

/// Runs the ReplicationSec protocol on a channel. Place it after a `ByteToMessageHandler(SecureFrameDecoder)`.
///
/// Outbound `ByteBuffer` writes are buffered until the handshake completes, then sealed into records of at most
/// `maximumRecordPayload` bytes. Inbound plaintext is delivered only after its tag verified. Closing the channel
/// sends an authenticated close record first; a transport EOF without one raises `.truncatedSession`.
public final class SecureChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking(HandshakeStateMachine)
        case established(sealer: RecordSealer, opener: RecordOpener)
        case closed
    }

    private let configuration: SecureChannelConfiguration
    private let role: SecureChannelRole
    private var state: State
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var holdsAdmission = false
    private var receivedClose = false
    private var sentClose = false
    private var timeout: Scheduled<Void>?
    private var handshakeResolved = false
    private let handshakePromise: EventLoopPromise<NodeCertificate>
    private var logger: Logger
    private let recordsSealed = Metrics.Counter(label: "replicationsec_records_sealed")
    private let recordsOpened = Metrics.Counter(label: "replicationsec_records_opened")

    /// Completes with the peer certificate when the handshake succeeds, or fails with its error.
    public var handshakeCompleted: EventLoopFuture<NodeCertificate> { handshakePromise.futureResult }

    /// The authenticated peer once the handshake succeeded, else `nil`. Read it on the channel's event loop (a
    /// handler behind this one sees no byte before the handshake, so there it is always set).
    public private(set) var authenticatedPeer: NodeCertificate?

    /// Creates the handler for `role`; `eventLoop` is the channel's event loop.
    public init(role: SecureChannelRole, configuration: SecureChannelConfiguration, eventLoop: any EventLoop) {
        self.role = role
        self.configuration = configuration
        self.logger = configuration.logger
        switch role {
        case .client: self.state = .handshaking(.initiator(configuration.handshake))
        case .server: self.state = .handshaking(.responder(configuration.handshake))
        }
        self.handshakePromise = eventLoop.makePromise()
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { begin(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        configuration.handshake.trustStore.unregister(session: ObjectIdentifier(self))
        // A channel that never became active (its connect failed) never sees channelInactive: fail the handshake here
        // so its promise is not leaked.
        if case .handshaking = state { resolveHandshake(.failure(SecureChannelError.sessionClosed)) }
        finishHandshakeBookkeeping()
    }

    public func channelActive(context: ChannelHandlerContext) {
        begin(context: context)
        context.fireChannelActive()
    }

    private func begin(context: ChannelHandlerContext) {
        guard timeout == nil, case .handshaking(var machine) = state else { return }
        if case .server(let admission?) = role {
            guard admission.tryAcquire() else {
                Metrics.Counter(label: "replicationsec_handshakes_refused").increment()
                fail(context: context, .tooManyPendingHandshakes)
                return
            }
            holdsAdmission = true
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: configuration.handshakeTimeout) {
            let (handler, context) = loopBound.value
            if case .handshaking = handler.state { handler.fail(context: context, .handshakeTimeout) }
        }
        if case .client = role {
            let action = machine.start()
            state = .handshaking(machine)
            perform(action, context: context)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch state {
        case .handshaking(var machine):
            let action = machine.receive(Array(frame.readableBytesView))
            state = .handshaking(machine)
            perform(action, context: context)
        case .established(let sealer, var opener):
            do {
                let plaintext = try opener.open(frame, now: configuration.monotonicNow())
                state = .established(sealer: sealer, opener: opener)
                if let plaintext {
                    recordsOpened.increment()
                    var buffer = context.channel.allocator.buffer(capacity: plaintext.count)
                    buffer.writeBytes(plaintext)
                    context.fireChannelRead(wrapInboundOut(buffer))
                } else {
                    receivedClose = true
                    context.fireUserInboundEventTriggered(SecureChannelEvent.peerClosed)
                    // With remote half-closure allowed the peer may have closed only its output (`close(mode:
                    // .output)`): its TCP FIN follows and is passed on as `ChannelEvent.inputClosed`.
                    if !halfClosureAllowed(context) { context.close(promise: nil) }
                }
            } catch {
                fail(context: context, error)
            }
        case .closed:
            break
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .handshaking:
            pendingWrites.append((buffer, promise))
        case .established:
            seal(buffer, promise: promise, context: context)
        case .closed:
            promise?.fail(SecureChannelError.sessionClosed)
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Send the authenticated close record first and close once it is written, so queued records and the
        // close record reach the peer (otherwise it would report a truncation).
        if case .established(var sealer, let opener) = state, !sentClose, mode != .input,
            let frame = try? sealer.sealClose(now: configuration.monotonicNow())
        {
            sentClose = true
            state = .established(sealer: sealer, opener: opener)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame))).whenComplete { _ in
                loopBound.value.close(mode: mode, promise: promise)
            }
            return
        }
        context.close(mode: mode, promise: promise)
    }

    /// An input EOF without the peer's authenticated close record is a truncation (an attacker's FIN).
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event, case .established = state, !receivedClose {
            fail(context: context, .truncatedSession)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func halfClosureAllowed(_ context: ChannelHandlerContext) -> Bool {
        (try? context.channel.syncOptions?.getOption(.allowRemoteHalfClosure)) ?? false
    }

    public func channelInactive(context: ChannelHandlerContext) {
        configuration.handshake.trustStore.unregister(session: ObjectIdentifier(self))
        if case .established = state, !receivedClose {
            Metrics.Counter(label: "replicationsec_truncated_sessions").increment()
            context.fireErrorCaught(SecureChannelError.truncatedSession)
        }
        if case .handshaking = state { resolveHandshake(.failure(SecureChannelError.truncatedSession)) }
        finishHandshakeBookkeeping()
        state = .closed
        let writes = pendingWrites
        pendingWrites = []
        for (_, promise) in writes { promise?.fail(SecureChannelError.sessionClosed) }
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? SecureChannelError {
            fail(context: context, error)
        } else {
            context.fireErrorCaught(error)
        }
    }

    // MARK: actions

    private func perform(_ action: HandshakeStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .send(let frame):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
        case .sendAndComplete(let frame, let result):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
            establish(result, context: context)
        case .complete(let result):
            establish(result, context: context)
        case .fail(let error):
            fail(context: context, error)
        }
    }

    private func establish(_ result: HandshakeResult, context: ChannelHandlerContext) {
        let now = configuration.monotonicNow()
        state = .established(
            sealer: RecordSealer(trafficSecret: result.sendSecret, policy: configuration.rekeyPolicy, now: now),
            opener: RecordOpener(
                trafficSecret: result.receiveSecret, policy: configuration.rekeyPolicy, ordering: result.ordering, now: now)
        )
        finishHandshakeBookkeeping()
        Metrics.Counter(label: "replicationsec_handshakes_completed").increment()
        logger.debug(
            "secure channel established",
            metadata: ["peer.node_id": "\(result.peer.nodeID)", "peer.role": "\(result.peer.role)"])
        let channel = context.channel
        guard
            configuration.handshake.trustStore.register(
                session: ObjectIdentifier(self), serial: result.peer.serial, close: { channel.close(promise: nil) })
        else {
            fail(context: context, .certificateRevoked)
            return
        }
        authenticatedPeer = result.peer
        resolveHandshake(.success(result.peer))
        context.fireUserInboundEventTriggered(SecureChannelEvent.handshakeCompleted(peer: result.peer))
        let writes = pendingWrites
        pendingWrites = []
        for (buffer, promise) in writes { seal(buffer, promise: promise, context: context, flush: false) }
        context.flush()
    }

    private func seal(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext, flush: Bool = false) {
        guard case .established(var sealer, let opener) = state else { return }
        let maximum = configuration.maximumRecordPayload
        let records = max(1, (buffer.readableBytes + maximum - 1) / maximum)
        var output = context.channel.allocator.buffer(
            capacity: buffer.readableBytes + records * RecordFormat.minimumRecordLength)
        let now = configuration.monotonicNow()
        var failure: SecureChannelError?
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            repeat {
                let end = min(offset + maximum, bytes.count)
                do throws(SecureChannelError) {
                    try sealer.seal(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), now: now, into: &output)
                } catch {
                    failure = error
                    return
                }
                offset = end
            } while offset < bytes.count
        }
        recordsSealed.increment(by: records)
        if let failure {
            promise?.fail(failure)
            fail(context: context, failure)
            return
        }
        state = .established(sealer: sealer, opener: opener)
        context.write(wrapOutboundOut(output), promise: promise)
        if flush { context.flush() }
    }

    private func fail(context: ChannelHandlerContext, _ error: SecureChannelError) {
        if case .closed = state { return }
        Metrics.Counter(label: "replicationsec_failures", dimensions: [("code", error.code.description)]).increment()
        logger.warning("secure channel failed", metadata: ["error": "\(error)"])
        resolveHandshake(.failure(error))
        finishHandshakeBookkeeping()
        state = .closed
        let writes = pendingWrites
        pendingWrites = []
        for (_, promise) in writes { promise?.fail(error) }
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func resolveHandshake(_ result: Result<NodeCertificate, any Error>) {
        guard !handshakeResolved else { return }
        handshakeResolved = true
        handshakePromise.completeWith(result)
    }

    private func finishHandshakeBookkeeping() {
        timeout?.cancel()
        if holdsAdmission, case .server(let admission?) = role {
            admission.release()
            holdsAdmission = false
        }
    }
}

@available(*, unavailable)
extension SecureChannelHandler: Sendable {}
