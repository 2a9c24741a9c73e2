// Pub/sub channels, patterns and shard channels shared by all connections (redis pubsub.c).
//
// Who is subscribed to what lives in one `Mutex`: channel → subscribers, pattern → subscribers, shard channel →
// subscribers. A client's own view (`ClientSession.channels`/`patterns`) is kept in step by the methods here, which
// run on that client's event loop. PUBLISH runs on the publisher's loop: under the lock it looks the channel up once
// (and walks the patterns only when some exist), copies the subscriber tables out (a retain, they are copy-on-write),
// and releases the lock before anything is encoded or sent. Each message is encoded at most once per protocol
// version and appended to each receiver's outbox; one task per receiving event loop writes the outboxes there, so
// under load a subscriber gets many messages per write.
//
// Ordering: a message a client publishes to itself (RESP3 lets a subscribed client PUBLISH) must follow the
// PUBLISH reply, as redis 7.2 does. Outside a transaction those messages are handed back to the command, which
// writes them into its own reply buffer after the reply. Inside EXEC (the EXEC reply still being built) they go to
// a task on the publisher's loop like everyone else's, which runs after the EXEC reply is flushed. No delivery
// writes inline, so a failing write (which closes a client and takes locks) never runs under EXEC's locks.
// Deliveries to other clients always go through the receiver's outbox and loop, even when it is the publisher's:
// tasks run in queue order, so a message published after an earlier PUBLISH returned never overtakes that earlier
// message (writing inline on the same loop would; PubSubDeliveryTests catches it). The one exception left: a
// client's message to itself is written with its reply, so it can precede another publisher's message to that
// client that is still queued on its loop.
public import CacheStore
import NIOCore
import RESPServer
import Synchronization

/// The three namespaces of pub/sub subscriptions.
public enum PubSubKind: Sendable, Hashable {
    /// SUBSCRIBE / PUBLISH.
    case channel
    /// PSUBSCRIBE: glob patterns matched against PUBLISH channels.
    case pattern
    /// SSUBSCRIBE / SPUBLISH: shard channels, a namespace of their own.
    case shardChannel

    /// The first element of a subscription confirmation.
    var subscribeWord: String {
        switch self {
        case .channel: return "subscribe"
        case .pattern: return "psubscribe"
        case .shardChannel: return "ssubscribe"
        }
    }

    /// The first element of an unsubscription confirmation.
    var unsubscribeWord: String {
        switch self {
        case .channel: return "unsubscribe"
        case .pattern: return "punsubscribe"
        case .shardChannel: return "sunsubscribe"
        }
    }
}

/// What a PUBLISH did.
struct PublishOutcome: Sendable {
    /// How many deliveries were made: one per subscribed client and one per (client, matching pattern) pair.
    var receivers: Int
    /// Messages for the publishing client itself, to be written after its PUBLISH reply (empty when deliveries
    /// were deferred or the publisher is not subscribed).
    var ownMessages: [ByteBuffer]
}

/// Who is subscribed to what, and message delivery.
public final class PubSubHub: Sendable {
    /// Subscribers of one channel or pattern, by session identity.
    typealias Subscribers = [ObjectIdentifier: Outbox]

    private struct State {
        var channels: [CompactBytes: Subscribers] = [:]
        var patterns: [CompactBytes: Subscribers] = [:]
        var shardChannels: [CompactBytes: Subscribers] = [:]
        /// Shard channels per client (ClientSession has no field for them).
        var shardSubscriptions: [ObjectIdentifier: Set<CompactBytes>] = [:]
        /// The outbox of every client with a subscription (dropped when the client closes or RESETs).
        var outboxes: [ObjectIdentifier: Outbox] = [:]
        /// One flusher per event loop that has subscribers.
        var flushers: [ObjectIdentifier: LoopFlusher] = [:]

        mutating func outbox(for session: ClientSession) -> Outbox {
            let id = ObjectIdentifier(session)
            if let outbox = outboxes[id] { return outbox }
            let loop = session.connection.eventLoop
            let flusher: LoopFlusher
            if let existing = flushers[ObjectIdentifier(loop)] {
                flusher = existing
            } else {
                flusher = LoopFlusher(loop: loop)
                flushers[ObjectIdentifier(loop)] = flusher
            }
            let outbox = Outbox(session: session, flusher: flusher)
            outboxes[id] = outbox
            return outbox
        }

        func table(_ kind: PubSubKind) -> [CompactBytes: Subscribers] {
            switch kind {
            case .channel: return channels
            case .pattern: return patterns
            case .shardChannel: return shardChannels
            }
        }

        mutating func add(_ session: ClientSession, to name: CompactBytes, _ kind: PubSubKind) {
            let id = ObjectIdentifier(session)
            let outbox = outbox(for: session)
            switch kind {
            case .channel: channels[name, default: [:]][id] = outbox
            case .pattern: patterns[name, default: [:]][id] = outbox
            case .shardChannel: shardChannels[name, default: [:]][id] = outbox
            }
        }

        mutating func remove(_ session: ClientSession, from name: CompactBytes, _ kind: PubSubKind) {
            let id = ObjectIdentifier(session)
            switch kind {
            case .channel: Self.remove(id, name, &channels)
            case .pattern: Self.remove(id, name, &patterns)
            case .shardChannel: Self.remove(id, name, &shardChannels)
            }
        }

        private static func remove(_ id: ObjectIdentifier, _ name: CompactBytes, _ table: inout [CompactBytes: Subscribers]) {
            guard let index = table.index(forKey: name) else { return }
            table.values[index].removeValue(forKey: id)
            // Channels without subscribers disappear (PUBSUB CHANNELS, INFO pubsub_channels).
            if table.values[index].isEmpty { table.remove(at: index) }
        }
    }

    private let state = Mutex(State())

    init() {}

    // MARK: introspection

    /// Channels with at least one subscriber (INFO `pubsub_channels`).
    public var channelCount: Int { state.withLock { $0.channels.count } }
    /// Patterns with at least one subscriber (INFO `pubsub_patterns`, PUBSUB NUMPAT).
    public var patternCount: Int { state.withLock { $0.patterns.count } }
    /// Shard channels with at least one subscriber (INFO `pubsub_shardchannels`).
    public var shardChannelCount: Int { state.withLock { $0.shardChannels.count } }

    /// The active channels (or shard channels) whose names match `pattern` (all when `nil`): PUBSUB CHANNELS.
    public func activeChannels(_ kind: PubSubKind, matching pattern: CompactBytes?) -> [CompactBytes] {
        let names = state.withLock { Array($0.table(kind).keys) }
        guard let pattern else { return names }
        return pattern.withBytes { pattern in
            names.filter { name in name.withBytes { GlobPattern.matches(pattern, $0) } }
        }
    }

    /// The number of clients subscribed to each of `names` (patterns not counted): PUBSUB NUMSUB.
    public func subscriberCounts(_ kind: PubSubKind, for names: [CompactBytes]) -> [Int] {
        state.withLock { state in
            let table = state.table(kind)
            return names.map { table[$0]?.count ?? 0 }
        }
    }

    /// What `session` is subscribed to, by kind (ACL SETUSER checks them against a user's new channel rules).
    func subscriptions(of session: ClientSession) -> [(name: String, kind: PubSubKind)] {
        let id = ObjectIdentifier(session)
        return state.withLock { state in
            var result: [(name: String, kind: PubSubKind)] = []
            for kind in [PubSubKind.channel, .pattern, .shardChannel] {
                for (name, subscribers) in state.table(kind) where subscribers[id] != nil { result.append((name.string, kind)) }
            }
            return result
        }
    }

    /// How many shard channels `session` is subscribed to.
    public func shardSubscriptionCount(_ session: ClientSession) -> Int {
        state.withLock { $0.shardSubscriptions[ObjectIdentifier(session)]?.count ?? 0 }
    }

    // MARK: subscribing (on the session's event loop)

    /// Subscribes `session` to `names`.
    /// - Returns: for each name, the client's subscription count after it, as the confirmation reports it
    ///   (channels + patterns for `.channel`/`.pattern`, shard channels for `.shardChannel`).
    func subscribe(_ session: ClientSession, to names: [CompactBytes], _ kind: PubSubKind) -> [Int] {
        var counts: [Int] = []
        counts.reserveCapacity(names.count)
        switch kind {
        case .channel, .pattern:
            var added: [CompactBytes] = []
            for name in names {
                let inserted = kind == .channel ? session.channels.insert(name).inserted : session.patterns.insert(name).inserted
                if inserted { added.append(name) }
                counts.append(session.channels.count + session.patterns.count)
            }
            if !added.isEmpty {
                state.withLock { state in
                    for name in added { state.add(session, to: name, kind) }
                }
                publishCounts(session)
            }
        case .shardChannel:
            state.withLock { state in
                let id = ObjectIdentifier(session)
                for name in names {
                    if state.shardSubscriptions[id, default: []].insert(name).inserted {
                        state.add(session, to: name, .shardChannel)
                    }
                    counts.append(state.shardSubscriptions[id]?.count ?? 0)
                }
            }
        }
        return counts
    }

    /// Unsubscribes `session` from `names`, or from every subscription of `kind` when `names` is `nil`.
    /// - Returns: each name with the client's subscription count after it; names the client was not subscribed
    ///   to are reported too (redis confirms them all). Empty when `names` is `nil` and there was nothing to drop.
    func unsubscribe(_ session: ClientSession, from names: [CompactBytes]?, _ kind: PubSubKind) -> [(name: CompactBytes, count: Int)] {
        var result: [(name: CompactBytes, count: Int)] = []
        switch kind {
        case .channel, .pattern:
            let targets = names ?? Array(kind == .channel ? session.channels : session.patterns)
            var removed: [CompactBytes] = []
            for name in targets {
                let wasSubscribed = kind == .channel ? session.channels.remove(name) != nil : session.patterns.remove(name) != nil
                if wasSubscribed { removed.append(name) }
                result.append((name, session.channels.count + session.patterns.count))
            }
            if !removed.isEmpty {
                let outbox = state.withLock { state in
                    for name in removed { state.remove(session, from: name, kind) }
                    return state.outboxes[ObjectIdentifier(session)]
                }
                // Messages queued before the subscriptions went are written now, ahead of the confirmation.
                outbox?.flush()
                publishCounts(session)
            }
        case .shardChannel:
            let outbox = state.withLock { state in
                let id = ObjectIdentifier(session)
                let targets = names ?? Array(state.shardSubscriptions[id] ?? [])
                for name in targets {
                    if state.shardSubscriptions[id]?.remove(name) != nil {
                        state.remove(session, from: name, .shardChannel)
                    }
                    result.append((name, state.shardSubscriptions[id]?.count ?? 0))
                }
                if state.shardSubscriptions[id]?.isEmpty == true { state.shardSubscriptions[id] = nil }
                return state.outboxes[id]
            }
            outbox?.flush()
        }
        return result
    }

    /// Drops every subscription of a closing (or RESET) client. With `deliveringPending` (RESET, on the client's
    /// loop), messages queued for it before are written first, ahead of the command's reply and before the protocol
    /// changes; after it no message reaches the client.
    func unsubscribeAll(_ session: ClientSession, deliveringPending: Bool = false) {
        let channels = session.channels
        let patterns = session.patterns
        let id = ObjectIdentifier(session)
        let outbox = state.withLock { state in
            for name in channels { state.remove(session, from: name, .channel) }
            for name in patterns { state.remove(session, from: name, .pattern) }
            if let shard = state.shardSubscriptions.removeValue(forKey: id) {
                for name in shard { state.remove(session, from: name, .shardChannel) }
            }
            return state.outboxes.removeValue(forKey: id)
        }
        if deliveringPending { outbox?.flush() }
        if !channels.isEmpty || !patterns.isEmpty {
            session.channels = []
            session.patterns = []
            publishCounts(session)
        }
    }

    /// Switches `session` to `version` (HELLO) atomically with respect to publishing: messages encoded in the old
    /// protocol are written first, ahead of the command's reply; every later one is encoded in the new protocol.
    func switchProtocol(_ session: ClientSession, to version: RESPVersion) {
        let outbox = state.withLock { state in
            session.protocolVersion = version
            return state.outboxes[ObjectIdentifier(session)]
        }
        outbox?.flush()
    }

    private func publishCounts(_ session: ClientSession) {
        let channels = session.channels.count
        let patterns = session.patterns.count
        session.updateInfo {
            $0.subscriptions = channels
            $0.patternSubscriptions = patterns
        }
    }

    // MARK: publishing (on the publisher's event loop)

    /// Encodes the messages the node publishes itself.
    private static let allocator = ByteBufferAllocator()

    /// Delivers `message` on `channel` to its subscribers and, for `.channel`, to clients whose patterns match.
    /// - Parameters:
    ///   - channel: the channel name (PUBLISH's first argument).
    ///   - message: the payload.
    ///   - kind: `.channel` (PUBLISH) or `.shardChannel` (SPUBLISH).
    ///   - publisher: the publishing client (its own messages come back in the outcome, see ``PublishOutcome``);
    ///     `nil` for messages the node itself publishes (keyspace notifications), which every receiver, the client
    ///     whose command caused them included, gets through its outbox, after that command's reply.
    ///   - deferred: deliver the publisher's own messages from a task instead of returning them (inside EXEC).
    func publish(channel: ByteBuffer, message: ByteBuffer, _ kind: PubSubKind, from publisher: ClientSession?, deferred: Bool) -> PublishOutcome {
        let name = channel.withUnsafeReadableBytes { CompactBytes($0) }
        // Looked up and queued under one lock: an UNSUBSCRIBE, RESET or HELLO of a subscriber happens wholly before
        // this message (which then does not reach it, or is encoded in its new protocol) or wholly after (its
        // command writes the message ahead of its reply), as with redis's single thread.
        let allocator = publisher?.connection.allocator ?? Self.allocator
        return state.withLock { state -> PublishOutcome in
            let direct = kind == .shardChannel ? state.shardChannels[name] : state.channels[name]
            var delivery = Delivery(publisher: publisher, deferred: deferred)
            if let direct {
                var encoding = MessageEncoding(
                    word: kind == .shardChannel ? "smessage" : "message", pattern: nil, channel: channel, message: message,
                    allocator: allocator)
                for outbox in direct.values { delivery.deliver(to: outbox, &encoding) }
            }
            if kind == .channel && !state.patterns.isEmpty {
                name.withBytes { channelBytes in
                    for (pattern, subscribers) in state.patterns where pattern.withBytes({ GlobPattern.matches($0, channelBytes) }) {
                        var encoding = MessageEncoding(
                            word: "pmessage", pattern: pattern, channel: channel, message: message,
                            allocator: allocator)
                        for outbox in subscribers.values { delivery.deliver(to: outbox, &encoding) }
                    }
                }
            }
            return delivery.finish()
        }
    }
}

/// One message encoded lazily, at most once per protocol version.
private struct MessageEncoding {
    let word: StaticString
    let pattern: CompactBytes?
    let channel: ByteBuffer
    let message: ByteBuffer
    let allocator: ByteBufferAllocator
    private var resp2: ByteBuffer?
    private var resp3: ByteBuffer?

    init(word: StaticString, pattern: CompactBytes?, channel: ByteBuffer, message: ByteBuffer, allocator: ByteBufferAllocator) {
        self.word = word
        self.pattern = pattern
        self.channel = channel
        self.message = message
        self.allocator = allocator
    }

    mutating func encoded(_ version: RESPVersion) -> ByteBuffer {
        switch version {
        case .v2:
            if let resp2 { return resp2 }
            let buffer = encode(version)
            resp2 = buffer
            return buffer
        case .v3:
            if let resp3 { return resp3 }
            let buffer = encode(version)
            resp3 = buffer
            return buffer
        }
    }

    /// `["message", channel, payload]`, `["pmessage", pattern, channel, payload]` or `["smessage", channel, payload]`,
    /// a push under RESP3.
    private func encode(_ version: RESPVersion) -> ByteBuffer {
        let capacity = 48 + word.utf8CodeUnitCount + (pattern?.count ?? 0) + channel.readableBytes + message.readableBytes
        var writer = ReplyWriter(buffer: allocator.buffer(capacity: capacity), protocolVersion: version)
        writer.pushHeader(pattern == nil ? 3 : 4)
        writer.bulk(UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        if let pattern { pattern.withBytes { writer.bulk($0) } }
        writer.bulk(channel)
        writer.bulk(message)
        return writer.buffer
    }
}

/// Routes encoded messages: the publisher's own messages go back to the command, everyone else's into their
/// outbox.
private struct Delivery {
    let publisher: ClientSession?
    let deferred: Bool
    var receivers = 0
    var ownMessages: [ByteBuffer] = []

    init(publisher: ClientSession?, deferred: Bool) {
        self.publisher = publisher
        self.deferred = deferred
    }

    mutating func deliver(to outbox: Outbox, _ encoding: inout MessageEncoding) {
        receivers += 1
        let subscriber = outbox.session
        let isPublisher = subscriber === publisher
        // Another client's protocol is read through its locked info; the publisher's own is ours to read.
        let version = isPublisher ? subscriber.protocolVersion : RESPVersion(rawValue: subscriber.snapshot.protocolVersion) ?? .v2
        let buffer = encoding.encoded(version)
        if isPublisher && !deferred {
            ownMessages.append(buffer)
        } else {
            outbox.enqueue(buffer)
        }
    }

    func finish() -> PublishOutcome {
        PublishOutcome(receivers: receivers, ownMessages: ownMessages)
    }
}

/// Messages waiting to be written to one subscriber. Messages published while a flush is pending are appended to the
/// same buffer, so under load a subscriber gets many messages per write (as redis's output buffers do), and they are
/// written in the order they were published, whichever threads published them.
final class Outbox: Sendable {
    let session: ClientSession
    private let flusher: LoopFlusher
    private let pending = Mutex<ByteBuffer?>(nil)

    init(session: ClientSession, flusher: LoopFlusher) {
        self.session = session
        self.flusher = flusher
    }

    /// Queues an encoded message; the first one since the last flush asks the loop's flusher for a flush.
    func enqueue(_ message: ByteBuffer) {
        let needsFlush = pending.withLock { pending -> Bool in
            guard pending != nil else {
                pending = message
                return true
            }
            pending!.writeImmutableBuffer(message)
            return false
        }
        if needsFlush { flusher.schedule(self) }
    }

    /// Writes what is queued (on the subscriber's event loop).
    func flush() {
        let buffer = pending.withLock { pending -> ByteBuffer? in
            defer { pending = nil }
            return pending
        }
        if let buffer { session.connection.send(buffer) }
    }
}

/// Flushes the outboxes of one event loop's clients from a single task per burst of messages: a fan-out to many
/// clients on a loop costs one hop to that loop, not one per client.
///
/// Deliveries always hop, even to a client on the publisher's own loop: tasks run in queue order, so a message
/// published after an earlier PUBLISH returned never overtakes that earlier message.
final class LoopFlusher: Sendable {
    let loop: any EventLoop
    private let waiting = Mutex<[Outbox]>([])

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func schedule(_ outbox: Outbox) {
        let first = waiting.withLock { waiting -> Bool in
            waiting.append(outbox)
            return waiting.count == 1
        }
        if first { loop.execute { self.flushAll() } }
    }

    private func flushAll() {
        let outboxes = waiting.withLock { waiting -> [Outbox] in
            var taken: [Outbox] = []
            swap(&taken, &waiting)
            return taken
        }
        for outbox in outboxes { outbox.flush() }
    }
}
