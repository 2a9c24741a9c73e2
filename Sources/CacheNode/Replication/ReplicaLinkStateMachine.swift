// The replica side of the replication handshake and link lifecycle (redis replication.c syncWithMaster), as a pure
// value: the link handler feeds it events (connected, a reply, the snapshot loaded, the link lost) and performs the
// actions it returns. No sockets, no clocks: reconnect delays are returned, not slept.
//
//   idle ─start→ connecting ─connected→ PING → REPLCONF listening-port → REPLCONF capa → PSYNC
//        PSYNC → +FULLRESYNC id off → receivingSnapshot ─loaded→ streaming
//              → +CONTINUE [id]     → streaming (from the cached offset)
//   any ─lost/failed→ waitingToReconnect ─(delay)→ connecting …   REPLICAOF NO ONE → idle

/// The replica link's state machine.
public struct ReplicaLinkStateMachine: Sendable {
    public enum State: Sendable, Hashable {
        case idle
        case waitingToReconnect
        case connecting
        case awaitingPong
        case awaitingListeningPortAck
        case awaitingCapaAck
        case awaitingPSyncReply
        case receivingSnapshot
        case streaming
    }

    public enum Action: Sendable, Hashable {
        /// Open the transport to the primary.
        case connect
        /// Send this handshake command.
        case send([String])
        /// The next bytes are the snapshot (`$<len>` payload); the primary's stream is `replid` at `offset`.
        case receiveSnapshot(replid: String, offset: Int64)
        /// Partial resync accepted: the stream continues at the cached offset; `newReplID` when the primary's id
        /// changed (it was promoted), which the replica adopts keeping its history.
        case continueStream(newReplID: String?)
        /// Close the transport (then report ``linkLost(reason:)``).
        case disconnect(reason: String)
        /// Wait this long, then call ``reconnectDue()``.
        case scheduleReconnect(milliseconds: Int64)
        case none
    }

    public private(set) var state = State.idle
    /// The primary stream id the replica holds data of (PSYNC's first argument), `nil` before any sync.
    public private(set) var cachedReplID: String?
    /// The last stream byte processed (PSYNC asks for `offset + 1`).
    public private(set) var offset: Int64 = -1
    /// Consecutive failed attempts (for the backoff).
    public private(set) var failures = 0
    /// The port this node accepts clients on (REPLCONF listening-port).
    public let listeningPort: Int
    /// Backoff bounds in milliseconds.
    public let minimumDelay: Int64
    public let maximumDelay: Int64
    /// Why the last attempt failed (INFO / logs).
    public private(set) var lastError: String?

    /// Creates the machine; `cachedReplID`/`offset` are what the node already holds (a promoted node being pointed
    /// at another primary keeps its history and tries a partial resync).
    public init(listeningPort: Int, cachedReplID: String? = nil, offset: Int64 = -1, minimumDelay: Int64 = 100, maximumDelay: Int64 = 5000) {
        self.listeningPort = listeningPort
        self.cachedReplID = cachedReplID
        self.offset = offset
        self.minimumDelay = minimumDelay
        self.maximumDelay = maximumDelay
    }

    /// Whether the link is streaming (INFO `master_link_status:up`).
    public var isUp: Bool { state == .streaming }

    /// Whether a full sync is in progress (INFO `master_sync_in_progress`).
    public var isSyncing: Bool { state == .receivingSnapshot }

    /// REPLICAOF host port: start connecting.
    public mutating func start() -> Action {
        precondition(state == .idle, "start() on a running link")
        state = .connecting
        return .connect
    }

    /// The transport is up (and authenticated, over the secure channel).
    public mutating func connected() -> Action {
        guard state == .connecting else { return .none }
        state = .awaitingPong
        return .send(["PING"])
    }

    /// A reply to the last handshake command.
    public mutating func received(_ reply: PeerReply) -> Action {
        switch state {
        case .awaitingPong:
            if case .error(let message) = reply, message.hasPrefix("NOAUTH") || message.hasPrefix("NOPERM") || message.hasPrefix("ERR") {
                return fail("primary refused PING: \(message)")
            }
            state = .awaitingListeningPortAck
            return .send(["REPLCONF", "listening-port", String(listeningPort)])
        case .awaitingListeningPortAck:
            // Errors are ignored here, as redis does (old primaries do not know the option).
            state = .awaitingCapaAck
            return .send(["REPLCONF", "capa", "eof", "capa", "psync2"])
        case .awaitingCapaAck:
            if case .error(let message) = reply, message.hasPrefix("ERR plaintext") || message.hasPrefix("ERR secure") {
                return fail(message)
            }
            state = .awaitingPSyncReply
            if let cachedReplID, offset >= 0 {
                return .send(["PSYNC", cachedReplID, String(offset + 1)])
            }
            return .send(["PSYNC", "?", "-1"])
        case .awaitingPSyncReply:
            return receivedPSyncReply(reply)
        default:
            return fail("unexpected reply from the primary in state \(state): \(reply)")
        }
    }

    private mutating func receivedPSyncReply(_ reply: PeerReply) -> Action {
        switch reply {
        case .simpleString(let line) where line.hasPrefix("FULLRESYNC"):
            let words = line.split(separator: " ")
            guard words.count == 3, words[1].count == 40, let start = Int64(words[2]) else {
                return fail("malformed FULLRESYNC reply: \(line)")
            }
            state = .receivingSnapshot
            return .receiveSnapshot(replid: String(words[1]), offset: start)
        case .simpleString(let line) where line.hasPrefix("CONTINUE"):
            let words = line.split(separator: " ")
            state = .streaming
            failures = 0
            lastError = nil
            if words.count >= 2, words[1].count == 40, String(words[1]) != cachedReplID {
                cachedReplID = String(words[1])
                return .continueStream(newReplID: String(words[1]))
            }
            return .continueStream(newReplID: nil)
        case .error(let message):
            return fail("primary refused PSYNC: \(message)")
        default:
            return fail("unexpected PSYNC reply: \(reply)")
        }
    }

    /// The snapshot was received and loaded: the replica holds `replid` at `offset` and streams from there.
    public mutating func snapshotLoaded(replid: String, offset: Int64) -> Action {
        guard state == .receivingSnapshot else { return .none }
        cachedReplID = replid
        self.offset = offset
        state = .streaming
        failures = 0
        lastError = nil
        return .none
    }

    /// `count` stream bytes were applied.
    public mutating func processed(_ count: Int) {
        offset += Int64(count)
    }

    /// The transport closed or failed (or a ``Action/disconnect(reason:)`` was performed).
    public mutating func linkLost(reason: String) -> Action {
        switch state {
        case .idle, .waitingToReconnect:
            return .none
        default:
            lastError = reason
            failures += 1
            state = .waitingToReconnect
            return .scheduleReconnect(milliseconds: reconnectDelay)
        }
    }

    /// The reconnect delay passed.
    public mutating func reconnectDue() -> Action {
        guard state == .waitingToReconnect else { return .none }
        state = .connecting
        return .connect
    }

    /// REPLICAOF NO ONE (or another REPLICAOF): stop; the node keeps its data, id and offset.
    public mutating func stop() {
        state = .idle
        failures = 0
    }

    /// Exponential backoff from `minimumDelay`, doubling per failure, capped at `maximumDelay`.
    var reconnectDelay: Int64 {
        let exponent = min(max(failures - 1, 0), 20)
        return min(maximumDelay, minimumDelay << exponent)
    }

    private mutating func fail(_ reason: String) -> Action {
        lastError = reason
        return .disconnect(reason: reason)
    }
}
