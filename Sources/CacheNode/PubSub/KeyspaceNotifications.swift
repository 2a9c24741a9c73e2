// Keyspace notifications (redis notify.c): with `notify-keyspace-events` set, a change to a key is published on
// ordinary pub/sub channels, `__keyspace@<db>__:<key>` carrying the event's name and `__keyevent@<db>__:<event>`
// carrying the key. Commands report their events through `CommandContext.notify`; expiry, eviction and key creation
// happen inside the store and arrive through its `KeyspaceObserver`. With notifications off (the default) a report
// costs one relaxed atomic load.
//
// The messages are published while the command (or the store) still holds the key's stripe lock, so the events of
// one key reach subscribers in the order the changes were made, whichever event loops made them. Every receiver gets
// them through its outbox, the client whose command caused them included: after that command's reply, as redis 7.2
// sends pushes caused by a command.
import CacheStore
import NIOCore
import Synchronization

/// The classes of keyspace events `notify-keyspace-events` selects, one letter each (redis NOTIFY_*).
public struct KeyspaceEventClasses: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `K`: publish on `__keyspace@<db>__:<key>`.
    public static let keyspace = KeyspaceEventClasses(rawValue: 1 << 0)
    /// `E`: publish on `__keyevent@<db>__:<event>`.
    public static let keyevent = KeyspaceEventClasses(rawValue: 1 << 1)
    /// `g`: type-independent commands (DEL, EXPIRE, RENAME, ...).
    public static let generic = KeyspaceEventClasses(rawValue: 1 << 2)
    /// `$`: string commands.
    public static let string = KeyspaceEventClasses(rawValue: 1 << 3)
    /// `l`: list commands.
    public static let list = KeyspaceEventClasses(rawValue: 1 << 4)
    /// `s`: set commands.
    public static let set = KeyspaceEventClasses(rawValue: 1 << 5)
    /// `h`: hash commands.
    public static let hash = KeyspaceEventClasses(rawValue: 1 << 6)
    /// `z`: sorted set commands.
    public static let sortedSet = KeyspaceEventClasses(rawValue: 1 << 7)
    /// `x`: a key removed because its TTL passed.
    public static let expired = KeyspaceEventClasses(rawValue: 1 << 8)
    /// `e`: a key evicted under `maxmemory`.
    public static let evicted = KeyspaceEventClasses(rawValue: 1 << 9)
    /// `t`: stream commands.
    public static let stream = KeyspaceEventClasses(rawValue: 1 << 10)
    /// `m`: a read of a missing key (not part of `A`).
    public static let keyMiss = KeyspaceEventClasses(rawValue: 1 << 11)
    /// `d`: module events (accepted; cache-node has no modules).
    public static let module = KeyspaceEventClasses(rawValue: 1 << 13)
    /// `n`: a key created (not part of `A`).
    public static let newKey = KeyspaceEventClasses(rawValue: 1 << 14)
    /// `A`: every class but `m` and `n`.
    public static let all: KeyspaceEventClasses = [
        .generic, .string, .list, .set, .hash, .sortedSet, .expired, .evicted, .stream, .module,
    ]

    /// The characters `notify-keyspace-events` accepts, for the error message (redis's wording).
    static let validCharacters = "Ag$lshzxeKEtmdn"

    /// Letters of the classes in `A`, in redis's order.
    private static let letters: [(Character, KeyspaceEventClasses)] = [
        ("g", .generic), ("$", .string), ("l", .list), ("s", .set), ("h", .hash), ("z", .sortedSet), ("x", .expired),
        ("e", .evicted), ("t", .stream), ("d", .module), ("n", .newKey),
    ]

    /// Parses a `notify-keyspace-events` value (redis keyspaceEventsStringToFlags); `nil` if a character is not a
    /// class.
    public init?(configuration: String) {
        var classes: KeyspaceEventClasses = []
        for character in configuration {
            switch character {
            case "A": classes.formUnion(.all)
            case "K": classes.insert(.keyspace)
            case "E": classes.insert(.keyevent)
            case "m": classes.insert(.keyMiss)
            default:
                guard let match = Self.letters.first(where: { $0.0 == character }) else { return nil }
                classes.insert(match.1)
            }
        }
        self = classes
    }

    /// The canonical `notify-keyspace-events` value (redis keyspaceEventsFlagsToString): `A` for all of `A`'s
    /// classes, else their letters, then `K`, `E`, `m`.
    public var configurationString: String {
        var text = ""
        if isSuperset(of: .all) {
            text = "A"
            if contains(.newKey) { text += "n" }
        } else {
            for (letter, member) in Self.letters where contains(member) { text.append(letter) }
        }
        if contains(.keyspace) { text += "K" }
        if contains(.keyevent) { text += "E" }
        if contains(.keyMiss) { text += "m" }
        return text
    }
}

/// Publishes keyspace events on the node's pub/sub hub, for the classes `notify-keyspace-events` enables.
public final class KeyspaceNotifier: Sendable {
    private let hub: PubSubHub
    private let enabled = Atomic<UInt32>(0)

    init(hub: PubSubHub) {
        self.hub = hub
    }

    /// The enabled classes (`notify-keyspace-events`).
    public var classes: KeyspaceEventClasses {
        get { KeyspaceEventClasses(rawValue: enabled.load(ordering: .relaxed)) }
        set { enabled.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// Whether events of `type` are published at all (a channel kind, `K` or `E`, must be enabled too).
    @inline(__always)
    func publishes(_ type: KeyspaceEventClasses) -> Bool {
        let enabled = enabled.load(ordering: .relaxed)
        return enabled & type.rawValue != 0 && enabled & (KeyspaceEventClasses.keyspace.rawValue | KeyspaceEventClasses.keyevent.rawValue) != 0
    }

    /// Publishes `event` of class `type` for `key` in `database` (redis notifyKeyspaceEvent).
    @inline(__always)
    func notify(_ type: KeyspaceEventClasses, _ event: StaticString, key: CompactBytes, database: Int) {
        guard publishes(type) else { return }
        key.withBytes { publish(event, key: $0, database: database) }
    }

    /// Like ``notify(_:_:key:database:)``, for a key still in its argument buffer.
    @inline(__always)
    func notify(_ type: KeyspaceEventClasses, _ event: StaticString, key: UnsafeRawBufferPointer, database: Int) {
        guard publishes(type) else { return }
        publish(event, key: key, database: database)
    }

    private func publish(_ event: StaticString, key: UnsafeRawBufferPointer, database: Int) {
        let classes = classes
        let eventBytes = UnsafeRawBufferPointer(start: event.utf8Start, count: event.utf8CodeUnitCount)
        let databaseText = String(database)
        if classes.contains(.keyspace) { publish(on: "__keyspace@", databaseText, key, eventBytes) }
        if classes.contains(.keyevent) { publish(on: "__keyevent@", databaseText, eventBytes, key) }
    }

    /// Publishes `message` on `<kind><database>__:<name>`.
    private func publish(on kind: StaticString, _ databaseText: String, _ name: UnsafeRawBufferPointer, _ message: UnsafeRawBufferPointer) {
        var channel = Self.allocator.buffer(capacity: 16 + databaseText.utf8.count + name.count)
        channel.writeStaticString(kind)
        channel.writeString(databaseText)
        channel.writeStaticString("__:")
        channel.writeBytes(name)
        var payload = Self.allocator.buffer(capacity: message.count)
        payload.writeBytes(message)
        _ = hub.publish(channel: channel, message: payload, .channel, from: nil, deferred: true)
    }

    private static let allocator = ByteBufferAllocator()
}

/// What the node hears from its store: expiry and eviction deletes go to replication (as DELs) and, like key
/// creation, to keyspace notifications; changes of keys that clients track go to client tracking.
final class NodeKeyspaceObserver: KeyspaceObserver {
    private let replication: ReplicationState
    private let notifier: KeyspaceNotifier
    private let tracking: ClientTracking

    init(replication: ReplicationState, notifier: KeyspaceNotifier, tracking: ClientTracking) {
        self.replication = replication
        self.notifier = notifier
        self.tracking = tracking
    }

    func trackedKeyChanged(_ key: CompactBytes, readers: Set<Int>, by client: Int) {
        tracking.trackedKeyChanged(key, readers: readers, by: client)
    }

    func keyChangedForBroadcast(_ key: CompactBytes, by client: Int) {
        tracking.keyChangedForBroadcast(key, by: client)
    }

    func keyExpired(database: Int, key: CompactBytes) {
        replication.keyExpired(database: database, key: key)
        notifier.notify(.expired, "expired", key: key, database: database)
    }

    func keyEvicted(database: Int, key: CompactBytes) {
        replication.keyEvicted(database: database, key: key)
        notifier.notify(.evicted, "evicted", key: key, database: database)
    }

    func keyAdded(database: Int, key: CompactBytes) {
        notifier.notify(.newKey, "new", key: key, database: database)
    }
}
