// redis's `client-output-buffer-limit`: for each class of client (normal, replica, pub/sub) a hard limit, and a soft
// limit with the seconds a client may stay over it, on the output the client has not read yet. A client over either
// is closed and its unsent output dropped, so a slow subscriber or replica cannot make the node buffer without end.
// Parsed and validated here; NodeDispatcher applies the normal and pub/sub classes, ReplicationState the replica one.

/// One class's limits, in bytes (0 = none) and seconds.
public struct OutputLimit: Sendable, Hashable {
    /// Closed at once when this many bytes are waiting.
    public var hard: Int
    /// Closed when at least this many bytes have been waiting for ``softSeconds``.
    public var soft: Int
    /// How long a client may stay over ``soft``.
    public var softSeconds: Int

    /// Creates a limit.
    public init(hard: Int, soft: Int, softSeconds: Int) {
        self.hard = hard
        self.soft = soft
        self.softSeconds = softSeconds
    }

    /// No limit.
    public static let none = OutputLimit(hard: 0, soft: 0, softSeconds: 0)

    /// Whether `bytes` waiting at `now` (ms) pass the limit. `since` is when the client went over the soft limit:
    /// set on the first reading over it (which never closes, as in redis `checkClientOutputBufferLimits`), cleared
    /// by a reading under it.
    public func exceeded(bytes: Int, since: inout Int64?, now: Int64) -> Bool {
        if hard > 0 && bytes >= hard { return true }
        guard soft > 0 && bytes >= soft else {
            since = nil
            return false
        }
        if let start = since { return now - start >= Int64(softSeconds) * 1000 }
        since = now
        return false
    }
}

/// The limits of every client class, as `client-output-buffer-limit` sets them.
public struct ClientOutputBufferLimits: Sendable, Hashable, CustomStringConvertible {
    /// Ordinary clients (redis's default: none).
    public var normal = OutputLimit.none
    /// Replicas being fed (256 MB hard, 64 MB for 60 s soft).
    public var replica = OutputLimit(hard: 256 << 20, soft: 64 << 20, softSeconds: 60)
    /// Clients subscribed to a channel, pattern or shard channel (32 MB hard, 8 MB for 60 s soft).
    public var pubsub = OutputLimit(hard: 32 << 20, soft: 8 << 20, softSeconds: 60)

    /// redis's defaults.
    public init() {}

    /// The defaults with `text` applied (see ``apply(_:)``).
    public init(_ text: String) throws(ConfigurationError) {
        try apply(text)
    }

    /// Applies `<class> <hard> <soft> <soft seconds>` groups (classes `normal`, `replica` or `slave`, `pubsub`;
    /// amounts in bytes or with redis's units, e.g. `32mb`). Classes not named keep their limits, as with redis's
    /// CONFIG SET. Nothing changes when any group is invalid.
    public mutating func apply(_ text: String) throws(ConfigurationError) {
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard words.count % 4 == 0 else {
            throw ConfigurationError("Wrong number of arguments in buffer limit configuration.")
        }
        var updated = self
        for group in stride(from: 0, to: words.count, by: 4) {
            guard let hard = parseMemoryAmount(words[group + 1]), let soft = parseMemoryAmount(words[group + 2]),
                let seconds = Int(words[group + 3]), seconds >= 0
            else {
                throw ConfigurationError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
            }
            let limit = OutputLimit(hard: hard, soft: soft, softSeconds: seconds)
            switch words[group].lowercased() {
            case "normal": updated.normal = limit
            case "replica", "slave": updated.replica = limit
            case "pubsub": updated.pubsub = limit
            default: throw ConfigurationError("Invalid client class specified in buffer limit configuration.")
            }
        }
        self = updated
    }

    /// As CONFIG GET shows it (redis's wording: the replica class is `slave`).
    public var description: String {
        func group(_ name: String, _ limit: OutputLimit) -> String { "\(name) \(limit.hard) \(limit.soft) \(limit.softSeconds)" }
        return [group("normal", normal), group("slave", replica), group("pubsub", pubsub)].joined(separator: " ")
    }
}
