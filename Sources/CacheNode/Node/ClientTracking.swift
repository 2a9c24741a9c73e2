// Client-side caching (redis tracking.c): CLIENT TRACKING ON makes the node tell a client when a key it may have
// cached changes. In the default mode the node remembers the keys each tracking client reads (in the key's stripe,
// under the stripe's lock, so a read and a concurrent write of one key are ordered) and sends one invalidation per
// reader on the key's next change; in broadcast mode (BCAST) every change of a key under one of the client's
// prefixes is sent. Invalidations are RESP3 pushes (`invalidate [key]`, or `invalidate null` after a flush), or,
// with REDIRECT, go to another client: a RESP3 push, or for a RESP2 client in pub/sub mode a message on
// `__redis__:invalidate`. They are written from the tracking client's event loop, after the reply of the command
// being run there, as redis sends them after the reply.
public import CacheStore
import NIOCore
import RESPServer
import Synchronization

/// How a client tracks (CLIENT TRACKING ON's options).
public struct TrackingMode: Sendable, Equatable {
    /// REDIRECT: the client invalidations go to (0: this one).
    public var redirect = 0
    /// BCAST: every change of a key under `prefixes` (all keys without prefixes).
    public var broadcast = false
    /// OPTIN: only keys read right after CLIENT CACHING YES are tracked.
    public var optIn = false
    /// OPTOUT: keys read right after CLIENT CACHING NO are not tracked.
    public var optOut = false
    /// NOLOOP: no invalidation for the client's own changes.
    public var noLoop = false
    /// BCAST prefixes, in the order given.
    public var prefixes: [CompactBytes] = []
}

/// The tracking clients and the delivery of their invalidations.
final class ClientTracking: Sendable {
    private struct Tracker: Sendable {
        let session: ClientSession
        var mode: TrackingMode
    }

    private let trackers = Mutex<[Int: Tracker]>([:])
    /// Broadcast mode: keys changed since the last delivery, per client and prefix (redis sends each prefix's keys
    /// as one message per event-loop iteration). A client's first pending key schedules its delivery.
    private let pendingBroadcasts = Mutex<[Int: [CompactBytes: [CompactBytes]]]>([:])
    /// Clients whose redirect target was gone when an invalidation was due (TRACKINGINFO `broken_redirect`).
    private let brokenRedirects = Mutex<Set<Int>>([])
    /// The node's keyspace and client lookup, attached once the node is built (they refer to this object).
    private let attached = Mutex<(keyspace: Keyspace, clientWithID: @Sendable (Int) -> ClientSession?)?>(nil)
    private static let allocator = ByteBufferAllocator()

    init() {}

    /// Connects the tracking to the node's keyspace and clients (once, when the node is built).
    func attach(keyspace: Keyspace, clientWithID: @escaping @Sendable (Int) -> ClientSession?) {
        attached.withLock { $0 = (keyspace, clientWithID) }
    }

    private var keyspace: Keyspace? { attached.withLock { $0?.keyspace } }

    /// Turns tracking on for `session`, or replaces its options (CLIENT TRACKING has merged BCAST prefixes).
    func enable(_ session: ClientSession, mode: TrackingMode) {
        let id = session.connection.id
        let broadcasting = trackers.withLock { trackers -> Bool in
            trackers[id] = Tracker(session: session, mode: mode)
            return trackers.values.contains { $0.mode.broadcast }
        }
        brokenRedirects.withLock { _ = $0.remove(id) }
        keyspace?.broadcastsChanges = broadcasting
    }

    /// Turns tracking off for the client `id` (CLIENT TRACKING OFF, or the connection closing).
    func disable(_ id: Int) {
        guard let broadcasting = trackers.withLock({ trackers -> Bool? in
            guard trackers.removeValue(forKey: id) != nil else { return nil }
            return trackers.values.contains { $0.mode.broadcast }
        }) else { return }
        brokenRedirects.withLock { _ = $0.remove(id) }
        keyspace?.broadcastsChanges = broadcasting
    }

    /// The mode of client `id`, `nil` if it does not track.
    func mode(of id: Int) -> TrackingMode? {
        trackers.withLock { $0[id]?.mode }
    }

    /// Whether an invalidation for client `id` found its redirect target gone.
    func hasBrokenRedirect(_ id: Int) -> Bool {
        brokenRedirects.withLock { $0.contains(id) }
    }

    /// How many clients track (INFO `tracking_clients`).
    var clientCount: Int { trackers.withLock { $0.count } }

    /// How many distinct broadcast prefixes clients track (INFO `tracking_total_prefixes`; BCAST without prefixes
    /// counts as the empty prefix, as in redis).
    var prefixCount: Int {
        trackers.withLock { trackers in
            var prefixes = Set<CompactBytes>()
            for tracker in trackers.values where tracker.mode.broadcast {
                if tracker.mode.prefixes.isEmpty { prefixes.insert(CompactBytes("")) }
                prefixes.formUnion(tracker.mode.prefixes)
            }
            return prefixes.count
        }
    }

    // MARK: invalidation (called by the keyspace with a stripe locked)

    /// `key` changed, and the clients `readers` had read it while tracking.
    func trackedKeyChanged(_ key: CompactBytes, readers: Set<Int>, by client: Int) {
        let targets = trackers.withLock { trackers in
            readers.compactMap { id -> Tracker? in
                guard let tracker = trackers[id], !tracker.mode.broadcast else { return nil }
                return tracker.mode.noLoop && id == client ? nil : tracker
            }
        }
        for tracker in targets { deliver(key, to: tracker) }
    }

    /// `key` changed while some client tracks in broadcast mode: it is added to the pending keys of each
    /// broadcast client with a matching prefix (not the changing client's own under NOLOOP).
    func keyChangedForBroadcast(_ key: CompactBytes, by client: Int) {
        let targets = trackers.withLock { trackers in
            trackers.compactMap { id, tracker -> (Tracker, CompactBytes)? in
                guard tracker.mode.broadcast, !(tracker.mode.noLoop && id == client) else { return nil }
                let prefix = key.withBytes { bytes in
                    tracker.mode.prefixes.first { prefix in
                        prefix.withBytes { prefix in prefix.count <= bytes.count && prefix.elementsEqual(bytes.prefix(prefix.count)) }
                    }
                }
                return prefix.map { (tracker, $0) }
            }
        }
        for (tracker, prefix) in targets {
            let id = tracker.session.connection.id
            let first = pendingBroadcasts.withLock { pending -> Bool in
                let first = pending[id] == nil
                pending[id, default: [:]][prefix, default: []].append(key)
                return first
            }
            if first { tracker.session.connection.eventLoop.execute { [self] in self.deliverBroadcasts(to: tracker) } }
        }
    }

    /// Sends a broadcast client its pending keys, one message per prefix (in prefix order), each key once.
    private func deliverBroadcasts(to tracker: Tracker) {
        let id = tracker.session.connection.id
        guard let byPrefix = pendingBroadcasts.withLock({ $0.removeValue(forKey: id) }),
              trackers.withLock({ $0[id] != nil }) else { return }
        let prefixes = byPrefix.keys.sorted { CompactBytes.lexicographicallyPrecedes($0, $1) }
        for prefix in prefixes {
            var seen = Set<CompactBytes>()
            let keys = byPrefix[prefix]!.filter { seen.insert($0).inserted }
            send(.keys(keys), for: tracker)
        }
    }

    /// A database was flushed: every tracking client is told to drop everything (`invalidate` with a null), and
    /// no read is tracked any more. Requires every stripe locked.
    func flushed() {
        keyspace?.forgetTrackedReads()
        for tracker in trackers.withLock({ Array($0.values) }) { deliver(nil, to: tracker) }
    }

    /// Sends the invalidation of `key` (`nil`: everything) from the tracking client's event loop, where no keyspace
    /// lock is held and the reply of a command running there has gone out first. It goes through the loop's queue
    /// twice: a blocked command served by another client's write (BLMOVE into a list the blocked client tracks)
    /// has its reply queued on the loop just after this task, and redis sends that reply first.
    private func deliver(_ key: CompactBytes?, to tracker: Tracker) {
        let loop = tracker.session.connection.eventLoop
        loop.execute { [self] in
            loop.execute { self.send(key.map { .keys([$0]) } ?? .everything, for: tracker) }
        }
    }

    private enum Invalidation {
        case keys([CompactBytes])
        case everything
    }

    /// Writes one invalidation message for `tracker` (on its event loop): to it, or to its redirect target.
    private func send(_ invalidation: Invalidation, for tracker: Tracker) {
        let session = tracker.session
        let redirect = tracker.mode.redirect
        let clientWithID = attached.withLock { $0?.clientWithID }
        do {
            var target = session
            if redirect != 0 {
                guard let redirected = clientWithID?(redirect) else {
                    self.brokenRedirects.withLock { _ = $0.insert(session.connection.id) }
                    // A RESP3 client is told its redirect is broken.
                    guard RESPVersion(rawValue: session.snapshot.protocolVersion) == .v3 else { return }
                    var writer = ReplyWriter(buffer: Self.allocator.buffer(capacity: 48), protocolVersion: .v3)
                    writer.pushHeader(2)
                    writer.bulk("tracking-redir-broken")
                    writer.integer(redirect)
                    session.connection.send(writer.buffer)
                    return
                }
                target = redirected
            }
            let info = target.snapshot
            let version = RESPVersion(rawValue: info.protocolVersion) ?? .v2
            var writer = ReplyWriter(buffer: Self.allocator.buffer(capacity: 64), protocolVersion: version)
            if version == .v3 {
                writer.pushHeader(2)
                writer.bulk("invalidate")
            } else if redirect != 0 && info.isSubscriber {
                writer.arrayHeader(3)
                writer.bulk("message")
                writer.bulk("__redis__:invalidate")
            } else {
                // A RESP2 connection has no way to receive it.
                return
            }
            switch invalidation {
            case .keys(let keys):
                writer.arrayHeader(keys.count)
                for key in keys { key.withBytes { writer.bulk($0) } }
            case .everything:
                writer.null()
            }
            target.connection.send(writer.buffer)
        }
    }
}
