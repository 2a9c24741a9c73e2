// Joins two channels on one event loop so bytes read on one are written to the other, with back-pressure (a side
// stops reading while its partner's channel is not writable) and close / half-close propagation. After
// swift-nio-examples' GlueHandler, plus one addition for tunnels: a half may be added to its pipeline before its
// partner is (the partner's channel still connecting or handshaking); what the partner reads meanwhile is held and
// written, with any close, once this half is added. Used by `cachectl tunnel` (plaintext ↔ secure channel) and by the
// sample network functions' proxies.

public import NIOCore

/// One half of a glued pair; add one to each channel's pipeline (both channels on the same event loop) with
/// ``matchedPair()``. A half placed after a ``SecureChannelHandler`` carries plaintext through the secure channel.
public final class GlueHandler: ChannelDuplexHandler {
    public typealias InboundIn = NIOAny
    public typealias OutboundIn = NIOAny
    public typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// What the partner read before this half was added to its pipeline.
    private var heldWrites: [NIOAny] = []
    private var heldOutputClose = false
    private var heldClose = false

    private init() {}

    /// Two handlers that forward to each other.
    public static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    private func partnerWrite(_ data: NIOAny) {
        guard let context else { return heldWrites.append(data) }
        context.write(data, promise: nil)
    }
    private func partnerFlush() { context?.flush() }
    private func partnerWriteEOF() {
        guard let context else {
            heldOutputClose = true
            return
        }
        context.close(mode: .output, promise: nil)
    }
    private func partnerCloseFull() {
        guard let context else {
            heldClose = true
            return
        }
        context.close(promise: nil)
    }
    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if !heldWrites.isEmpty {
            for data in heldWrites { context.write(data, promise: nil) }
            heldWrites = []
            context.flush()
        }
        if heldClose {
            context.close(promise: nil)
        } else if heldOutputClose {
            context.close(mode: .output, promise: nil)
        }
        // The partner may have stopped reading while this half was missing.
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.partnerWrite(data) }

    public func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }

    public func channelInactive(context: ChannelHandlerContext) { partner?.partnerCloseFull() }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) { partner?.partnerCloseFull() }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    public func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

@available(*, unavailable)
extension GlueHandler: Sendable {}
