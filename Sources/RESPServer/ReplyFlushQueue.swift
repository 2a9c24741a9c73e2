// Writes the replies of every connection read in one event-loop tick after all of them were read, as redis writes its
// clients' replies in beforeSleep (handleClientsWithPendingWrites) rather than after each read.
//
// Flushing each connection right after its read often finds the client asleep, waiting for that one reply, and
// wakes it: a single-threaded load generator with 50 connections was woken several times per tick instead of about
// once. Each wake-up is kernel time for the server; in pinned runs at -P 16 it was 0.1-0.3 µs per request, and
// flushing at the end of the tick raised throughput by 5-24% (README, Benchmarks).
public import NIOCore

/// A connection whose replies wait for the end of its event loop's tick.
public protocol DeferredReplyFlushing: AnyObject {
    /// Writes and flushes what the connection has buffered; called once per ``ReplyFlushQueue/enqueue(_:)``.
    func flushDeferredReplies()
}

/// The connections of one event loop with replies to flush at the end of the current tick. Used only on its loop.
public final class ReplyFlushQueue {
    private let eventLoop: any EventLoop
    private var pending: [any DeferredReplyFlushing] = []
    private var flushing: [any DeferredReplyFlushing] = []
    private var isScheduled = false

    /// Creates the queue of `eventLoop`; call it on that loop.
    public init(eventLoop: any EventLoop) {
        eventLoop.preconditionInEventLoop()
        self.eventLoop = eventLoop
        pending.reserveCapacity(64)
        flushing.reserveCapacity(64)
    }

    /// Flushes `connection` once the loop has handled this tick's I/O (NIO runs tasks after the ready channels).
    /// A connection enqueued during the flush is flushed in the next tick.
    public func enqueue(_ connection: any DeferredReplyFlushing) {
        eventLoop.assertInEventLoop()
        pending.append(connection)
        guard !isScheduled else { return }
        isScheduled = true
        let queue = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute { queue.value.flushAll() }
    }

    private func flushAll() {
        isScheduled = false
        swap(&pending, &flushing)
        for connection in flushing { connection.flushDeferredReplies() }
        flushing.removeAll(keepingCapacity: true)
    }
}
